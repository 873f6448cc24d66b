"""vganzoo.sampling on the bundled weights (more of it is tested with `vganzoo sample` in tests/cli)."""

import pytest
import torch

import vganzoo
from vganzoo.sampling import latent_walk

pytestmark = pytest.mark.usefixtures("one_thread")


def test_latent_walk_goes_to_the_end_seed():
    model = vganzoo.load("mocogan-rnn.digits")
    default, _ = latent_walk(model, 2, seed=3)
    explicit, _ = latent_walk(model, 2, seed=3, end_seed=4)
    elsewhere, _ = latent_walk(model, 2, seed=3, end_seed=9)
    assert torch.equal(default, explicit)
    assert torch.equal(elsewhere[0], default[0])  # the walks start at seed 3 either way
    assert not torch.allclose(elsewhere[1], default[1])  # and end at seed 9's latents
    with pytest.raises(TypeError, match="end_seed"):
        latent_walk(model, 2, seed=3, end_seed="9")


@pytest.mark.parametrize("chunk", [0, -1, 1.5, True])
def test_chunk_is_checked(chunk):
    from vganzoo.sampling import sample_videos

    model = vganzoo.load("mocogan-rnn.digits")
    with pytest.raises(ValueError, match=r"^chunk must be a positive int \(videos per forward pass\)"):
        sample_videos(model, 2, chunk=chunk)
