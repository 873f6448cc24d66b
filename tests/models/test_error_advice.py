"""Advice in error messages works when followed, and says it in terms both the API and the command
line use (no Python keywords to pass)."""

from __future__ import annotations

import re

import pytest

import vganzoo
from vganzoo.errors import InvalidConfigError


def _advised(message: str) -> list[str]:
    """The discriminators the message says to use (an aside in parentheses is not advice)."""
    advice = message.split("got frames=")[1].split(" (")[0]
    return re.findall(r"mocogan/[a-z-]+", advice)


@pytest.mark.parametrize("frames,resolution", [(8, 64), (8, 32), (12, 32), (13, 64), (20, 64)])
def test_the_discriminator_advised_for_another_clip_length_fits(frames, resolution):
    with pytest.raises(InvalidConfigError) as info:
        vganzoo.create("mocogan-rnn", frames=frames, resolution=resolution, width=0.125)
    advised = _advised(str(info.value))
    assert advised, str(info.value)
    discriminators = advised if "mocogan/patch-image" in advised else ["mocogan/patch-image", *advised]
    model = vganzoo.create(
        "mocogan-rnn", frames=frames, resolution=resolution, width=0.125, discriminators=discriminators
    )
    assert model.generator.frames == frames


def test_labels_for_an_unconditional_model_name_no_keyword():
    model = vganzoo.create("tgan", resolution=32, width=0.125)
    with pytest.raises(ValueError, match="unconditional") as info:
        model.sample(1, labels=0)
    assert "labels=None" not in str(info.value)
