"""Data pipeline throughput: clips per second from each dataset, and grid-video write times.

Every dataset is timed in one process with one torch thread (as in a DataLoader worker), one clip
at a time, after a warm-up pass (glyph cache, file probes). The baseline in the same run is a
dataset that only allocates a random clip of the same shape: the ratio is each dataset's time per
clip over the baseline's. The video files hold smooth moving content (upsampled moving shapes), as
real footage is; random noise would make the codecs, not the pipeline, the thing measured.

    python benchmarks/bench_data.py [--clips 64]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import Dataset

from vganzoo import videoio as vio
from vganzoo.data import MovingDigits, MovingShapes, VideoFolder

SOURCE_VIDEO = (3, 48, 240, 320)  # (C, T, H, W): a UCF-101-sized clip, 48 frames of 320x240 (colour)
REPEATS = 3


class RandomClips(Dataset):
    def __init__(self, shape: tuple[int, ...], length: int) -> None:
        self.shape, self.length = shape, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"video": torch.rand(self.shape) * 2 - 1, "label": torch.tensor(-1)}


def clips_per_second(dataset: Dataset, clips: int) -> float:
    for i in range(min(clips, len(dataset))):  # warm-up
        dataset[i]
    rates = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for i in range(clips):
            dataset[i % len(dataset)]
        rates.append(clips / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=64)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    print(
        f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()} "
        f"torch {torch.__version__} threads {torch.get_num_threads()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "videos"
        _, t, h, w = SOURCE_VIDEO
        shapes = MovingShapes(resolution=h, frames=t)
        source = torch.nn.functional.interpolate(
            shapes[0]["video"], size=(h, w), mode="bilinear"
        )  # (C, T, H, W)
        for i in range(4):
            vio.save_video(source, folder / f"c{i % 2}" / f"v{i}.mp4", fps=25)
        rows = []
        for res in (32, 64):
            frames = 16
            baseline = clips_per_second(RandomClips((3, frames, res, res), args.clips), args.clips)
            for name, ds in [
                ("moving-digits 1", MovingDigits(resolution=res, frames=frames, channels=3)),
                ("moving-digits 2", MovingDigits(num_digits=2, resolution=res, frames=frames, channels=3)),
                ("moving-shapes", MovingShapes(resolution=res, frames=frames)),
                (
                    "VideoFolder mp4 320x240",
                    VideoFolder(folder, frames=frames, frame_stride=2, resolution=res),
                ),
            ]:
                rate = clips_per_second(ds, args.clips)
                rows.append((f"{name} @ {res}px x{frames}", rate, baseline / rate))
        print(f"\n{'dataset':<40}{'clips/s':>10}{'time / baseline':>18}")
        for name, rate, ratio in rows:
            print(f"{name:<40}{rate:>10.1f}{ratio:>18.2f}")
        shapes = MovingShapes(resolution=64, frames=16)
        grids = {
            "noise (untrained G)": torch.rand(16, 3, 16, 64, 64) * 2 - 1,
            "moving shapes": torch.stack([shapes[i]["video"] for i in range(16)]),
        }
        print(
            f"\n{'save_video 16 x (3, 16, 64, 64), ms':<40}"
            + "".join(f"{e:>8}" for e in vio.WRITABLE_EXTENSIONS)
        )
        for what, grid in grids.items():
            cells = []
            for ext in vio.WRITABLE_EXTENSIONS:
                times = []
                for _ in range(REPEATS):
                    start = time.perf_counter()
                    vio.save_video(grid, Path(tmp) / f"grid{ext}")
                    times.append(time.perf_counter() - start)
                cells.append(f"{statistics.median(times) * 1000:>8.0f}")
            print(f"{what:<40}" + "".join(cells))


if __name__ == "__main__":
    main()
