"""Run by torchrun from tests/test_train_ddp.py (one launch, several runs in one process group).

For each tiny model: train 3 iterations in OUT/MODEL-full; train 2 in OUT/MODEL-part, then build a
fresh model and Trainer and resume it to 3. After each run every rank saves its weights to
OUT/MODEL-PHASE-rankR.safetensors.

usage: ddp_worker.py OUT_DIR MODEL [MODEL ...]
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
import train_helpers as h
from safetensors.torch import save_file

import vganzoo
from vganzoo.train import TrainConfig, Trainer, distributed


def run(name: str, out: Path, phase: str, steps: int, resume: bool) -> None:
    torch.manual_seed(0)
    model = vganzoo.create(name)
    g = model.generator
    dataset = h.SyntheticVideos(10, channels=g.channels, frames=g.frames, resolution=g.resolution)
    run_dir = out / f"{name}-{'full' if phase == 'full' else 'part'}"
    config = TrainConfig(
        steps=steps,
        out_dir=str(run_dir),
        resume=resume,
        device="cpu",
        progress=False,
        log_every=1,
        sample_every=0,
        checkpoint_every=2,
        tensorboard=False,
    )
    trainer = Trainer(model, dataset, config)
    result = trainer.fit()
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    state["__run__"] = torch.tensor(
        [trainer.stream.epoch, trainer.stream.offset, trainer.world_size, result.step]
    )
    save_file(state, str(out / f"{name}-{phase}-rank{os.environ['RANK']}.safetensors"))


def run_cli(out: Path) -> None:
    """``vganzoo train`` under torchrun, with a stand-in for vganzoo.data's build_dataset."""
    import types

    from vganzoo.cli import main as cli_main

    def build_dataset(
        spec, *, resolution, frames, frame_stride=1, channels=None, split="train", seed=0, **kw
    ):
        return h.SyntheticVideos(10, channels=channels, frames=frames, resolution=resolution)

    sys.modules["vganzoo.data"] = types.SimpleNamespace(build_dataset=build_dataset)
    argv = ["train", "toy-gan", "--data", "fake", "--resolution", "8", "--batch-size", "2", "--steps", "2"]
    code = cli_main(
        [*argv, "--out", str(out / "cli"), "--no-progress", "--checkpoint-every", "1", "--log-every", "1"]
    )
    model = vganzoo.create("toy-gan", resolution=8)
    from vganzoo.train import load_checkpoint

    tensors, _ = load_checkpoint(out / "cli" / "checkpoints" / "ckpt-00000002.safetensors")
    model.load_state_dict({k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")})
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    state["__exit__"] = torch.tensor([code])
    save_file(state, str(out / f"cli-rank{os.environ['RANK']}.safetensors"))


def main() -> None:
    out = Path(sys.argv[1])
    for name in sys.argv[2:]:
        run(name, out, "full", 3, False)
        run(name, out, "part", 2, False)
        run(name, out, "resumed", 3, True)
    run_cli(out)  # reuses the process group
    distributed.shutdown()


if __name__ == "__main__":
    main()
