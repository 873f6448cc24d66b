"""Test-wide settings: no test may reach the network by accident."""

import os

# Any Hub access outside the local test server fails at once instead of hanging.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import pytest
import torch


def pytest_collection_modifyitems(config, items):
    skip_cuda = pytest.mark.skip(reason="needs a CUDA GPU")
    if not torch.cuda.is_available():
        for item in items:
            if "cuda" in item.keywords:
                item.add_marker(skip_cuda)


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a whole module (``pytestmark = pytest.mark.usefixtures("one_thread")``).

    The test box has 2 shared cores: for the small tensors of the model and trainer tests, intra-op
    threads only contend (up to 30x slower there). Module scope, so module-scoped fixtures that train
    or build models run with one thread too.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def no_tf32():
    """Exact float32 on the GPU: TF32 off for cuDNN convolutions and matmuls, restored afterwards."""
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


@pytest.fixture
def fake_data(monkeypatch):
    """``vganzoo.data.build_dataset`` replaced by tiny synthetic clips; returns the calls it got."""
    import sys
    import types

    import train_helpers as h

    calls = []

    def build_dataset(
        spec, *, resolution, frames, frame_stride=1, channels=None, split="train", seed=0, **kw
    ):
        calls.append(
            dict(
                spec=spec,
                resolution=resolution,
                frames=frames,
                frame_stride=frame_stride,
                channels=channels,
                seed=seed,
            )
        )
        return h.SyntheticVideos(6, channels=channels, frames=frames, resolution=resolution)

    module = types.ModuleType("vganzoo.data")
    module.build_dataset = build_dataset
    monkeypatch.setitem(sys.modules, "vganzoo.data", module)
    return calls
