"""Train the digits frame classifier that the offline quality check uses, reproducibly.

    python benchmarks/train_digits_classifier.py --out vganzoo/weights/digits-classifier

Data: ``moving-digits`` with one digit (``vganzoo.data.MovingDigits``), train split, rendered at 32
and at 64 px and brought to the classifier's 32x32 input by the same :func:`prepare_frames` the
evaluation uses; a few random frames per clip. Positives are lightly augmented (noise, blur, dimming)
so that slightly imperfect generated digits still count. Negatives for the ``NO_DIGIT`` class are
made on the fly: uniform noise, smooth noise, flat frames, soft blobs and patch-shuffled digit frames.

Output folder: ``model.safetensors`` (float32), ``config.json`` (architecture, the exact command,
wall time, machine, data, test accuracy and rejection rate) and ``SHA256SUMS``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from vganzoo.files import atomic_write_bytes, atomic_write_json, safetensors_bytes, sha256_file
from vganzoo.metrics.digits import (
    CONFIG_FILE,
    FEATURE_DIM,
    INPUT_SIZE,
    NO_DIGIT,
    NUM_CLASSES,
    SHA256_FILE,
    STAGE_WIDTHS,
    WEIGHTS_FILE,
    DigitFrameClassifier,
    prepare_frames,
)

__all__ = ["main", "make_negatives", "train"]

RESOLUTIONS = (32, 64)
CLIP_FRAMES = 16
PATCH = 8  # patch side for the shuffled-digit negatives
NEGATIVE_KINDS = ("uniform", "smooth", "flat", "blobs", "shuffled")
MAX_BLOBS = 3
BLOB_SIGMA_RANGE = (1.5, 5.0)  # pixels at 32x32
SMOOTH_GRID_RANGE = (2, 12)  # side of the low-resolution noise grid that is upsampled
AUG_NOISE_MAX = 0.2
AUG_DIM_RANGE = (0.6, 1.0)


def _load_frames(
    resolution: int, clips: int, frames_per_clip: int, seed: int, split: str, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(clips * frames_per_clip, 1, 32, 32) frames and their digit labels from MovingDigits."""
    from vganzoo.data import MovingDigits

    dataset = MovingDigits(
        num_digits=1,
        resolution=resolution,
        frames=CLIP_FRAMES,
        length=clips,
        seed=seed,
        channels=1,
        split=split,
    )
    videos, labels = [], []
    for index in range(clips):
        item = dataset[index]
        chosen = np.sort(rng.choice(CLIP_FRAMES, size=frames_per_clip, replace=False))
        videos.append(item["video"][:, chosen])
        labels.append(int(item["label"]))
    frames = prepare_frames(torch.stack(videos))  # (clips, 1, k, 32, 32)
    frames = rearrange(frames, "n c t h w -> (n t) c h w")
    return frames.contiguous(), torch.tensor(labels).repeat_interleave(frames_per_clip)


def make_negatives(count: int, positives: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``count`` frames (count, 1, 32, 32) in [-1, 1] that show no digit, mixed over NEGATIVE_KINDS."""
    size = INPUT_SIZE
    kinds = torch.randint(len(NEGATIVE_KINDS), (count,), generator=generator)
    out = torch.empty(count, 1, size, size)
    for k, kind in enumerate(NEGATIVE_KINDS):
        idx = (kinds == k).nonzero().flatten()
        m = len(idx)
        if m == 0:
            continue
        if kind == "uniform":
            x = torch.rand(m, 1, size, size, generator=generator) * 2 - 1
        elif kind == "smooth":
            grid = int(
                torch.randint(SMOOTH_GRID_RANGE[0], SMOOTH_GRID_RANGE[1] + 1, (1,), generator=generator)
            )
            low = torch.randn(m, 1, grid, grid, generator=generator) * (
                0.5 + 1.5 * torch.rand(m, 1, 1, 1, generator=generator)
            )
            x = torch.tanh(
                F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
                + torch.rand(m, 1, 1, 1, generator=generator) * 2
                - 1
            )
        elif kind == "flat":
            level = torch.where(
                torch.rand(m, 1, 1, 1, generator=generator) < 0.5,
                torch.full((m, 1, 1, 1), -1.0),
                torch.rand(m, 1, 1, 1, generator=generator) * 2 - 1,
            )
            x = level.expand(m, 1, size, size).clone()
        elif kind == "blobs":
            ys, xs = torch.meshgrid(
                torch.arange(size, dtype=torch.float32),
                torch.arange(size, dtype=torch.float32),
                indexing="ij",
            )
            x = torch.zeros(m, 1, size, size)
            for _ in range(MAX_BLOBS):
                present = (torch.rand(m, 1, 1, 1, generator=generator) < 0.7).float()
                cy, cx = (torch.rand(2, m, 1, 1, 1, generator=generator) * size).unbind(0)
                sigma = BLOB_SIGMA_RANGE[0] + torch.rand(m, 1, 1, 1, generator=generator) * (
                    BLOB_SIGMA_RANGE[1] - BLOB_SIGMA_RANGE[0]
                )
                blob = torch.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * sigma**2))
                x = torch.maximum(
                    x, present * blob * (0.5 + 0.5 * torch.rand(m, 1, 1, 1, generator=generator))
                )
            x = x * 2 - 1
        else:  # shuffled: the 8x8 patches of a real digit frame in random order
            source = positives[torch.randint(len(positives), (m,), generator=generator)]
            patches = rearrange(source, "m c (gh ph) (gw pw) -> m (gh gw) c ph pw", ph=PATCH, pw=PATCH)
            order = torch.argsort(torch.rand(m, patches.shape[1], generator=generator), dim=1)
            patches = patches[torch.arange(m)[:, None], order]
            x = rearrange(patches, "m (gh gw) c ph pw -> m c (gh ph) (gw pw)", gh=size // PATCH)
        out[idx] = x.clamp(-1, 1)
    return out


def _augment(frames: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Light augmentation of digit frames (B, 1, 32, 32): dimming, 3x3 blur, gaussian noise."""
    b = frames.shape[0]
    dim = AUG_DIM_RANGE[0] + torch.rand(b, 1, 1, 1, generator=generator) * (
        AUG_DIM_RANGE[1] - AUG_DIM_RANGE[0]
    )
    use_dim = torch.rand(b, 1, 1, 1, generator=generator) < 0.3
    frames = torch.where(use_dim, (frames + 1) * dim - 1, frames)
    blurred = F.avg_pool2d(frames, 3, stride=1, padding=1, count_include_pad=False)
    frames = torch.where(torch.rand(b, 1, 1, 1, generator=generator) < 0.25, blurred, frames)
    noise = (
        torch.randn(frames.shape, generator=generator)
        * torch.rand(b, 1, 1, 1, generator=generator)
        * AUG_NOISE_MAX
    )
    frames = torch.where(torch.rand(b, 1, 1, 1, generator=generator) < 0.5, frames + noise, frames)
    return frames.clamp(-1, 1)


@torch.no_grad()
def _evaluate(
    model: DigitFrameClassifier, resolution: int, clips: int, seed: int, negatives: torch.Tensor
) -> dict[str, Any]:
    from vganzoo.data import MovingDigits
    from vganzoo.metrics.digits import DigitScores, DigitsScorer

    model.eval()
    dataset = MovingDigits(
        num_digits=1,
        resolution=resolution,
        frames=CLIP_FRAMES,
        length=clips,
        seed=seed,
        channels=1,
        split="test",
    )
    scorer = DigitsScorer(model)
    scores = DigitScores()
    correct = total = 0
    for start in range(0, clips, 64):
        items = [dataset[i] for i in range(start, min(start + 64, clips))]
        videos = torch.stack([it["video"] for it in items])
        labels = torch.stack([it["label"] for it in items])
        features, probs = scorer(videos)
        scores.update(features, probs)
        correct += int((probs.argmax(-1) == labels[:, None]).sum())
        total += probs.shape[0] * probs.shape[1]
    result = scores.result()
    _, logits = model(negatives)
    neg_probs = logits.softmax(-1)
    return {
        "frame_accuracy": correct / total,
        "frame_score": result["frame_score"],
        "identity_consistency": result["identity_consistency"],
        "negatives_rejected": float((neg_probs.argmax(-1) == NO_DIGIT).float().mean()),
        "negatives_frame_score": float(neg_probs[:, :NO_DIGIT].max(-1).values.mean()),
        "test_clips": clips,
    }


def train(
    out: str,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    train_clips: int,
    frames_per_clip: int,
    negative_fraction: float,
    test_clips: int,
    test_negatives: int = 2000,
    command: str,
) -> dict[str, Any]:
    started = time.time()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    parts = [_load_frames(res, train_clips, frames_per_clip, seed, "train", rng) for res in RESOLUTIONS]
    frames = torch.cat([p[0] for p in parts])
    labels = torch.cat([p[1] for p in parts])
    data_seconds = time.time() - started
    print(f"training frames: {len(frames)} ({data_seconds:.0f} s to render)", flush=True)

    model = DigitFrameClassifier()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )
    n_neg = round(batch_size * negative_fraction)
    n_pos = batch_size - n_neg
    model.train()
    for step in range(1, steps + 1):
        pick = torch.randint(len(frames), (n_pos,), generator=generator)
        pos = _augment(frames[pick], generator)
        neg = make_negatives(n_neg, frames, generator)
        x = torch.cat([pos, neg])
        y = torch.cat([labels[pick], torch.full((n_neg,), NO_DIGIT)])
        _, logits = model(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 100 == 0 or step == steps:
            acc = float((logits.argmax(-1) == y).float().mean())
            print(
                f"step {step}/{steps}  loss {loss.item():.4f}  batch acc {acc:.3f}  "
                f"{time.time() - started:.0f} s",
                flush=True,
            )
    train_seconds = time.time() - started

    negatives = make_negatives(test_negatives, frames, torch.Generator().manual_seed(seed + 1))
    test = {f"{res}px": _evaluate(model, res, test_clips, seed, negatives) for res in RESOLUTIONS}
    wall = time.time() - started
    os.makedirs(out, exist_ok=True)
    state = {
        k: v.detach().contiguous()
        for k, v in model.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    weights_path = os.path.join(out, WEIGHTS_FILE)
    atomic_write_bytes(weights_path, safetensors_bytes(state, {"format": "vganzoo-digits-classifier/1"}))
    digest = sha256_file(weights_path)
    from vganzoo import __version__

    card = {
        "name": "vganzoo-digits-classifier",
        "purpose": "offline quality check for moving-digits (vganzoo.metrics: fvd-digits, consistency)",
        "architecture": {
            "class": "vganzoo.metrics.digits.DigitFrameClassifier",
            "widths": list(STAGE_WIDTHS),
            "feature_dim": FEATURE_DIM,
            "num_classes": NUM_CLASSES,
            "input": f"1x{INPUT_SIZE}x{INPUT_SIZE} in [-1, 1]",
            "parameters": sum(p.numel() for p in model.parameters()),
        },
        "classes": [str(d) for d in range(NO_DIGIT)] + ["no-digit"],
        "weights_sha256": digest,
        "training": {
            "command": command,
            "steps": steps,
            "batch_size": batch_size,
            "negative_fraction": negative_fraction,
            "optimizer": f"AdamW lr {lr} (cosine to 0), weight decay 1e-4",
            "seed": seed,
            "data": f"MovingDigits(num_digits=1, frames={CLIP_FRAMES}, split='train', seed={seed}) at "
            f"{list(RESOLUTIONS)} px, {train_clips} clips each, {frames_per_clip} random frames per "
            f"clip, resized to {INPUT_SIZE} by prepare_frames",
            "wall_time_s": round(wall, 1),
            "train_time_s": round(train_seconds, 1),
            "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, torch threads "
            f"{torch.get_num_threads()}",
            "torch": torch.__version__,
            "vganzoo": __version__,
        },
        "test": {
            **test,
            "data": f"MovingDigits(num_digits=1, split='test', seed={seed}), all {CLIP_FRAMES} frames; "
            f"negatives: {test_negatives} synthetic no-digit frames (seed {seed + 1})",
        },
        "test_accuracy": round(min(t["frame_accuracy"] for t in test.values()), 4),
    }
    atomic_write_json(os.path.join(out, CONFIG_FILE), card)
    atomic_write_bytes(
        os.path.join(out, SHA256_FILE),
        f"{digest}  {WEIGHTS_FILE}\n{sha256_file(os.path.join(out, CONFIG_FILE))}  {CONFIG_FILE}\n".encode(),
    )
    return card


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/train_digits_classifier.py",
        description="Train the bundled moving-digits frame classifier.",
    )
    parser.add_argument("--out", required=True, help="output folder (e.g. vganzoo/weights/digits-classifier)")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-clips", type=int, default=3000, help="clips per resolution")
    parser.add_argument("--frames-per-clip", type=int, default=4)
    parser.add_argument("--negative-fraction", type=float, default=0.25)
    parser.add_argument("--test-clips", type=int, default=500)
    parser.add_argument(
        "--test-negatives", type=int, default=2000, help="synthetic no-digit frames for the rejection test"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (default 1: the machine is shared)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    command = "python benchmarks/train_digits_classifier.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    card = train(
        args.out,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        train_clips=args.train_clips,
        frames_per_clip=args.frames_per_clip,
        negative_fraction=args.negative_fraction,
        test_clips=args.test_clips,
        test_negatives=args.test_negatives,
        command=command,
    )
    print(
        json.dumps(
            {
                "test": card["test"],
                "wall_time_s": card["training"]["wall_time_s"],
                "sha256": card["weights_sha256"],
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
