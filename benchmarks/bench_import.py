"""How much time `import vganzoo` adds over `import torch` (target: at most 0.3 s).

Each measurement is a fresh interpreter; the two are interleaved and the median of each is
reported, so machine noise hits both alike. Also times the first `list_models()` (which imports
the built-in families) separately.

    python benchmarks/bench_import.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys

SNIPPETS = {
    "torch": "import time; t=time.perf_counter(); import torch; print(time.perf_counter()-t)",
    "torch+vganzoo": "import time; t=time.perf_counter(); import torch, vganzoo; "
    "print(time.perf_counter()-t)",
    "torch+vganzoo+list": (
        "import time; t=time.perf_counter(); import torch, vganzoo; vganzoo.list_models(); "
        "print(time.perf_counter()-t)"
    ),
}


def run(code: str) -> float:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    times: dict[str, list[float]] = {k: [] for k in SNIPPETS}
    run(SNIPPETS["torch"])  # warm the file cache once
    for _ in range(args.repeats):
        for name, code in SNIPPETS.items():
            times[name].append(run(code))
    base = statistics.median(times["torch"])
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}")
    print(f"{'what':<22}{'median s':>10}{'over torch s':>14}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:<22}{med:>10.3f}{med - base:>14.3f}")
    added = statistics.median(times["torch+vganzoo"]) - base
    print(
        f"import vganzoo adds {added:.3f} s over import torch (target <= 0.300): "
        f"{'OK' if added <= 0.3 else 'OVER'}"
    )


if __name__ == "__main__":
    main()
