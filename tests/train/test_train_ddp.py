"""Two processes with gloo on CPU through torchrun: identical weights on both ranks, and resume."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import train_helpers  # noqa: F401  (registers the tiny models)
from safetensors.torch import load_file

import vganzoo

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed with gloo"
)

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
LAUNCH_TIMEOUT_S = 240
# BN + GP + SVC + EMA + mask; per-role batches + categories (with MoCoGAN's paper loop too); the
# shared-forward loops (TGAN's, VGAN's)
MODELS = ("tiny-mask-gan", "tiny-cond-gan", "tiny-cond-paper-gan", "tiny-g-first-gan", "tiny-d-first-gan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
        str(TESTS / "ddp_worker.py"), str(out), *MODELS,
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=LAUNCH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both workers
        stdout, stderr = proc.communicate()
        pytest.fail(f"torchrun did not finish in {LAUNCH_TIMEOUT_S} s:\n{stdout[-3000:]}\n{stderr[-6000:]}")
    assert proc.returncode == 0, f"torchrun failed ({proc.returncode}):\n{stdout[-3000:]}\n{stderr[-6000:]}"
    return out


def weights(out: Path, name: str, phase: str, rank: int) -> dict[str, torch.Tensor]:
    return load_file(str(out / f"{name}-{phase}-rank{rank}.safetensors"))


def assert_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs"


@pytest.mark.parametrize("name", MODELS)
def test_two_ranks_end_with_identical_weights(ddp_runs, name):
    r0, r1 = weights(ddp_runs, name, "full", 0), weights(ddp_runs, name, "full", 1)
    assert_equal(r0, r1)
    _epoch, _offset, world, step = r0.pop("__run__").tolist()
    assert world == 2 and step == 3
    torch.manual_seed(0)
    fresh = vganzoo.create(name).state_dict()
    assert any(not torch.equal(fresh[k], r0[k]) for k in fresh)  # it trained
    # only rank 0 writes the log: one line per step
    lines = (ddp_runs / f"{name}-full" / "logs" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3]


@pytest.mark.parametrize("name", MODELS)
def test_resume_under_ddp_matches_uninterrupted(ddp_runs, name):
    full = weights(ddp_runs, name, "full", 0)
    for rank in (0, 1):
        part = weights(ddp_runs, name, "part", rank)
        assert part["__run__"][3].item() == 2
        resumed = weights(ddp_runs, name, "resumed", rank)
        assert_equal(resumed, full)


def test_cli_under_torchrun(ddp_runs):
    """``torchrun -m vganzoo train``'s path: both ranks exit 0 and rank 0 wrote one run folder."""
    for rank in (0, 1):
        assert load_file(str(ddp_runs / f"cli-rank{rank}.safetensors"))["__exit__"].item() == 0
    run = ddp_runs / "cli"
    assert json.loads((run / "config.json").read_text())["world_size"] == 2
    assert (run / "model" / "config.json").is_file()
    assert [
        json.loads(line)["step"] for line in (run / "logs" / "metrics.jsonl").read_text().splitlines()
    ] == [1, 2]
