"""CUDA-graph replay (vganzoo.nn.graphs) for sampling, and the trainer's --cuda-graphs wiring.

On a CPU machine this checks the refusals, the eager fallback and which compile backend the trainer
picks; the `cuda` tests (run by benchmarks/gpu_check.sh) check that replays give the eager results.
"""

from __future__ import annotations

import logging

import pytest
import torch
import train_helpers as h
from torch import nn

import vganzoo
from vganzoo.nn.graphs import GraphedInference, require_cuda
from vganzoo.sampling import latent_walk, sample_videos
from vganzoo.train import TrainConfig, Trainer
from vganzoo.train import trainer as trainer_module

pytestmark = pytest.mark.usefixtures("one_thread")


class Affine(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(2.0))
        self.calls = 0

    def forward(self, x: torch.Tensor, shift: float = 0.0, sync: bool = False) -> torch.Tensor:
        self.calls += 1
        if sync:  # a host sync: cannot be recorded
            shift = shift + float(x.sum().item()) * 0
        return torch.tanh(x * self.weight + shift)


# ------------------------------------------------------------------------------------------------
# everywhere
# ------------------------------------------------------------------------------------------------
def test_require_cuda_refuses_the_cpu():
    expected = r"^cuda_graphs: CUDA graphs need a CUDA device, got 'cpu'; "
    with pytest.raises(ValueError, match=expected) as info:
        require_cuda("cpu")
    assert "\n" not in str(info.value)
    if torch.version.cuda is None:  # the way out, said at once
        assert "is a CPU-only build; install a CUDA build of torch" in str(info.value)
    with pytest.raises(ValueError, match=r"^--cuda-graphs: .*got 'cpu'"):
        require_cuda(torch.device("cpu"), "--cuda-graphs")


@pytest.mark.parametrize(
    ("device", "error", "match"),
    [
        ("garbage", ValueError, r"^cuda_graphs: 'garbage' is not a device; use 'cpu'"),
        ("", ValueError, "is not a device"),
        ("meta", ValueError, "^cuda_graphs: 'meta' tensors hold no data"),
        (3, ValueError, "^cuda_graphs: give a device name such as 'cuda:3', not the number 3"),
        (None, TypeError, "^cuda_graphs: expected a device name such as 'cuda:0', got NoneType"),
        (1.5, TypeError, "got float"),
    ],
)
def test_require_cuda_names_bad_devices_in_one_line(device, error, match):
    with pytest.raises(error, match=match) as info:
        require_cuda(device)
    assert "\n" not in str(info.value)


def test_library_training_refuses_cuda_graphs_before_a_process_group_waits(tmp_path, monkeypatch):
    from vganzoo.train import train

    for key, value in {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "MASTER_PORT": "29622"}.items():
        monkeypatch.setenv(key, value)  # a torchrun launch whose peer never comes: must not wait for it
    with pytest.raises(ValueError, match="cuda_graphs: CUDA graphs are for one process .* WORLD_SIZE=2"):
        train("tgan", data="moving-digits", steps=1, cuda_graphs=True, device="cpu", out=str(tmp_path / "r"))
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"max_graphs": 0}, r"max_graphs must be an int in \[1, 64\]"),
        ({"warmup": True}, r"warmup must be an int in \[1, 100\]"),
        ({"warmup": 10**12}, r"warmup must be an int in \[1, 100\]"),
    ],
)
def test_graphed_inference_checks_its_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        GraphedInference(Affine(), **kw)
    with pytest.raises(TypeError, match="module must be an nn.Module"):
        GraphedInference(lambda x: x)


def test_cpu_tensors_run_eagerly_with_the_same_result():
    module = Affine()
    graphed = GraphedInference(module)
    x = torch.randn(3, 4)
    out = graphed(x=x, shift=0.5)
    assert torch.equal(out, torch.tanh(x * 2 + 0.5))
    assert not out.requires_grad  # inference: no graph of autograd either
    assert graphed.num_graphs == 0 and graphed.replays == 0 and module.calls == 1
    assert torch.equal(graphed(x, 0.5), out)  # positional arguments too


class Zeros(nn.Module):
    def forward(self, n: int = 2) -> torch.Tensor:
        return torch.zeros(n)


def test_calls_without_tensors_run_eagerly():
    graphed = GraphedInference(Zeros())
    assert torch.equal(graphed(), torch.zeros(2)) and torch.equal(graphed(n=3), torch.zeros(3))
    assert graphed.num_graphs == 0


def test_signature_tells_graphs_apart(monkeypatch):
    from vganzoo.nn import graphs

    monkeypatch.setattr(torch.Tensor, "device", property(lambda t: torch.device("cuda", 0)))  # pretend
    x = torch.zeros(2, 3)
    base = graphs._signature((x,), {"shift": 0.5})
    assert base is not None and graphs._signature((x,), {"shift": 0.5}) == base
    for other in (
        graphs._signature((torch.zeros(3, 2),), {"shift": 0.5}),  # shape
        graphs._signature((x.double(),), {"shift": 0.5}),  # dtype
        graphs._signature((x.t().contiguous().t(),), {"shift": 0.5}),  # strides
        graphs._signature((x,), {"shift": 0.25}),  # a scalar
        graphs._signature((), {"x": x, "shift": 0.5}),  # positional vs keyword
    ):
        assert other != base
    monkeypatch.setattr(torch, "is_autocast_enabled", lambda *a: True)  # under torch.autocast
    assert graphs._signature((x,), {"shift": 0.5}) != base
    assert graphs._signature((x,), {"shift": [1]}) is None  # not a plain scalar: eager
    assert graphs._signature((x,), {"shift": float("nan")}) is None  # NaN would record at every call
    assert graphs._signature((x.requires_grad_(),), {}) is None  # needs grad: eager


class _NoHostReads(torch.utils._python_dispatch.TorchDispatchMode):
    """Fails on any op that copies a tensor value to the host (what a CUDA graph cannot record)."""

    READS = (
        torch.ops.aten._local_scalar_dense.default,
        torch.ops.aten.item.default,
        torch.ops.aten.is_nonzero.default,
    )

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        assert func not in self.READS, f"host read {func} while a CUDA graph records"
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name", ["mocogan-rnn", "tgan", "vgan", "dvdgan", "stylegan-v"])
def test_generators_read_no_values_while_a_graph_records(name, monkeypatch):
    """Every family's generator forward, conditional ones included, can be recorded: its input checks
    that read values (labels in range, enough motion codes) stand aside while a capture runs."""
    torch.manual_seed(0)
    kw = {"num_classes": 10} if name != "vgan" else {}
    g = vganzoo.create(name, width=0.125, resolution=32, **kw).generator.eval()
    latents = g.sample_latents(2, generator=torch.Generator().manual_seed(0), labels=None)
    with torch.no_grad():
        eager = g(**latents)  # not capturing: the checks run (and read values)
        monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
        monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: True)
        with _NoHostReads():
            recorded = g(**latents)
    torch.testing.assert_close(recorded, eager, rtol=0, atol=0)


def test_sampling_and_training_refuse_cuda_graphs_on_the_cpu(tmp_path):
    model = vganzoo.create("tgan", resolution=32, width=0.125, channels=1)
    for n in (2, 0):
        with pytest.raises(ValueError, match="cuda_graphs: CUDA graphs need a CUDA device, got 'cpu'"):
            sample_videos(model, n, device="cpu", cuda_graphs=True)
    with pytest.raises(TypeError, match="cuda_graphs must be True or False, got 'yes'"):
        sample_videos(model, 2, cuda_graphs="yes")
    for name in ("cuda_graphs", "amp", "compile"):
        with pytest.raises(TypeError, match=f"^{name} must be True or False, got 'yes'"):
            TrainConfig(**{name: "yes"})
    with pytest.raises(ValueError, match="cuda_graphs: CUDA graphs need a CUDA device"):
        latent_walk(model, 2, device="cpu", cuda_graphs=True)
    data = h.SyntheticVideos(4, channels=1, frames=16, resolution=32)
    config = TrainConfig(steps=1, out_dir=str(tmp_path / "run"), device="cpu", cuda_graphs=True)
    with pytest.raises(ValueError, match="cuda_graphs: CUDA graphs need a CUDA device, got 'cpu'"):
        Trainer(model, data, config)
    assert not (tmp_path / "run").exists()  # refused before anything was written


@pytest.mark.parametrize(
    ("compile_too", "expected"),
    [(False, {"backend": "cudagraphs"}), (True, {"mode": "reduce-overhead"})],
)
def test_trainer_compiles_with_the_cuda_graph_backend(tmp_path, monkeypatch, compile_too, expected):
    """The wiring, without a GPU: every module goes through torch.compile with CUDA graphs, and each
    iteration starts a new cudagraph-trees step (earlier replays' outputs may be overwritten)."""
    compiled, steps = [], []
    monkeypatch.setattr(trainer_module, "require_cuda", lambda device, what: device)
    monkeypatch.setattr(torch, "compile", lambda module, **kw: compiled.append((module, kw)) or module)
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: steps.append(1))
    torch.manual_seed(0)
    model = vganzoo.create("tiny-cond-gan")
    g = model.generator
    data = h.SyntheticVideos(8, channels=g.channels, frames=g.frames, resolution=g.resolution)
    config = TrainConfig(
        steps=2,
        out_dir=str(tmp_path / "run"),
        device="cpu",
        cuda_graphs=True,
        compile=compile_too,
        progress=False,
        sample_every=0,
        tensorboard=False,
    )
    result = Trainer(model, data, config).fit()
    assert result.status == "completed"
    assert [kw for _, kw in compiled] == [expected] * (1 + len(model.discriminators))
    assert {id(m) for m, _ in compiled} == {id(model.generator), *map(id, model.discriminators.values())}
    assert len(steps) == 2


@pytest.mark.parametrize("reg", ["r1", "gradient_penalty"])
def test_compiled_training_runs_double_backward_regularizers_uncompiled(tmp_path, monkeypatch, reg):
    """R1 and the gradient penalty differentiate the discriminator twice, which AOTAutograd (under
    torch.compile and the cudagraphs backend) refuses: they go through the uncompiled module.
    aot_eager on the CPU takes the same AOTAutograd path as the cudagraphs backend."""
    real_compile = torch.compile
    monkeypatch.setattr(trainer_module, "require_cuda", lambda device, what: device)
    monkeypatch.setattr(torch, "compile", lambda module, **kw: real_compile(module, backend="aot_eager"))
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: None)
    torch.manual_seed(0)
    model = vganzoo.create("tiny-cond-gan")
    model.recipe = {**model.recipe, "regularizers": [{"name": reg, "weight": 1.0, "every": 1}]}
    g = model.generator
    data = h.SyntheticVideos(8, channels=g.channels, frames=g.frames, resolution=g.resolution)
    config = TrainConfig(
        steps=1, out_dir=str(tmp_path / "run"), device="cpu", cuda_graphs=True, progress=False
    )
    trainer = Trainer(model, data, config)
    assert trainer.fit().status == "completed"
    assert all(not hasattr(d, "_orig_mod") for d in trainer.d_eager.values())


def test_cli_refuses_cuda_graphs_on_the_cpu(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from vganzoo.cli import main

    assert main(["sample", "mocogan-rnn.digits", "--device", "cpu", "--cuda-graphs", "--out", "x.gif"]) == 2
    err = capsys.readouterr().err
    assert "--cuda-graphs: CUDA graphs need a CUDA device, got 'cpu'" in err and "Traceback" not in err
    assert main(["train", "tgan", "--data", "moving-digits", "--cuda-graphs", "--out", "run"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("vganzoo train: error: --cuda-graphs: CUDA graphs need a CUDA device")
    assert "building" not in captured.out + captured.err  # refused before the model is built
    assert not (tmp_path / "x.gif").exists() and not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------------------
# on a GPU
# ------------------------------------------------------------------------------------------------
@pytest.mark.cuda
def test_replay_matches_eager_and_sees_weight_updates():
    module = Affine().cuda()
    graphed = GraphedInference(module, warmup=1)
    x = torch.randn(5, 7, device="cuda")
    first = graphed(x=x, shift=0.25)
    torch.testing.assert_close(first, torch.tanh(x * 2 + 0.25), rtol=0, atol=0)
    y = torch.randn(5, 7, device="cuda")
    second = graphed(x=y, shift=0.25)  # new inputs, the recorded graph
    torch.testing.assert_close(second, torch.tanh(y * 2 + 0.25), rtol=0, atol=0)
    torch.testing.assert_close(first, torch.tanh(x * 2 + 0.25), rtol=0, atol=0)  # the caller's copy kept
    assert graphed.num_graphs == 1 and graphed.replays == 2
    with torch.no_grad():
        module.weight.fill_(3.0)  # in place: the graph reads the parameter where it lives
    torch.testing.assert_close(graphed(x=y, shift=0.25), torch.tanh(y * 3 + 0.25), rtol=0, atol=0)
    graphed(x=y, shift=0.5)  # another scalar: another graph
    graphed(x=torch.randn(2, 7, device="cuda"), shift=0.5)  # another shape: another graph
    assert graphed.num_graphs == 3


@pytest.mark.cuda
def test_unrecordable_forward_runs_eagerly_with_one_warning(caplog):
    graphed = GraphedInference(Affine().cuda(), warmup=1)
    x = torch.randn(4, device="cuda")
    with caplog.at_level(logging.WARNING, logger="vganzoo.nn.graphs"):
        for _ in range(3):
            torch.testing.assert_close(graphed(x=x, sync=True), torch.tanh(x * 2), rtol=0, atol=0)
    assert graphed.num_graphs == 0 and graphed.replays == 0
    assert len([r for r in caplog.records if "could not be recorded" in r.getMessage()]) == 1
    # the device is usable after the aborted capture, and other signatures still record
    torch.testing.assert_close(graphed(x=x), torch.tanh(x * 2), rtol=0, atol=0)
    assert graphed.num_graphs == 1


@pytest.mark.cuda
def test_autocast_gets_its_own_graph():
    lin = nn.Linear(8, 8).cuda()
    graphed = GraphedInference(lin, warmup=1)
    x = torch.randn(4, 8, device="cuda")
    full = graphed(x)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        half = graphed(x)
    assert full.dtype == torch.float32 and half.dtype == torch.bfloat16 and graphed.num_graphs == 2
    assert graphed(x).dtype == torch.float32  # the float32 graph again


@pytest.mark.cuda
def test_max_graphs_bounds_the_recordings():
    graphed = GraphedInference(Affine().cuda(), max_graphs=1, warmup=1)
    for n in (1, 2, 3):
        x = torch.randn(n, device="cuda")
        torch.testing.assert_close(graphed(x=x), torch.tanh(x * 2), rtol=0, atol=0)
    assert graphed.num_graphs == 1 and graphed.replays == 1


@pytest.mark.cuda
@pytest.mark.parametrize("name", ["mocogan-rnn", "tgan", "vgan", "dvdgan", "stylegan-v"])
def test_sampling_with_cuda_graphs_gives_the_eager_videos(name):
    torch.manual_seed(0)
    model = vganzoo.create(name, width=0.25, resolution=32).cuda().eval()
    eager, _ = sample_videos(model, 5, seed=3, chunk=2)
    graphed, _ = sample_videos(model, 5, seed=3, chunk=2, cuda_graphs=True)  # chunks of 2, 2 and 1
    torch.testing.assert_close(graphed, eager, rtol=1e-5, atol=1e-5)


@pytest.mark.cuda
@pytest.mark.parametrize("name", ["mocogan-rnn", "tgan", "vgan"])
def test_training_with_cuda_graphs_follows_eager_training(tmp_path, name):
    """Three iterations with cudagraph trees reach the weights eager training reaches (same seeds)."""

    def run(out, **kw):
        torch.manual_seed(0)
        model = vganzoo.create(name, width=0.25, resolution=32, channels=1, num_classes=0)
        g = model.generator
        data = h.SyntheticVideos(64, channels=1, frames=g.frames, resolution=32)
        config = TrainConfig(
            steps=3, out_dir=str(out), device="cuda", progress=False, sample_every=0, tensorboard=False, **kw
        )
        trainer = Trainer(model, data, config)
        assert trainer.fit().status == "completed"
        return h.weights(trainer.model)

    eager, graphed = run(tmp_path / "eager"), run(tmp_path / "graphs", cuda_graphs=True)
    for key, value in eager.items():
        torch.testing.assert_close(graphed[key].float(), value.float(), rtol=1e-3, atol=1e-4, msg=key)
