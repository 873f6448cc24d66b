"""Turn a training run into a bundled weight set, with its evaluation in the model card.

    python benchmarks/bundle_weights.py RUN_DIR vganzoo/weights/mocogan-rnn.digits \
        --generator raw --metadata card.json --n 1024

Steps (all printed):
1. export the run's checkpoint in float32 and in float16 (``vganzoo.train.export_checkpoint``);
2. evaluate both, and the same architecture with random weights, with one protocol
   (``vganzoo.metrics.evaluate``: fvd-digits + consistency on the moving-digits test split, the
   real data at the model's training frame stride); the real data's own scores come with them;
3. write the float16 folder to OUT with the scores and their protocol in weights.json / README.md;
4. print the ``PretrainedSpec`` to paste into the family's ``register_model`` (sha256 pinned) and a
   Markdown table for benchmarks/RESULTS.md.

The float16 copy is kept only if its scores are within the noise of the float32 ones (checked
here: FVD-digits within 5% and frame score within 0.01; otherwise the script stops).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

import vganzoo
from vganzoo import hub
from vganzoo.metrics import evaluate
from vganzoo.train import export_checkpoint

KEYS = ("fvd_digits", "frame_score", "identity_consistency", "identity_agreement", "digit_frame_rate")


def _scores(model, args) -> dict:
    result = evaluate(
        model, args.data, metric="fvd-digits,consistency", n=args.n, seed=args.seed, batch_size=64, frames=16
    )
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="run folder or checkpoint file")
    p.add_argument("out", help="weight-set folder to write (replaced if it exists)")
    p.add_argument("--step", type=int, default=None)
    p.add_argument("--generator", choices=("both", "ema", "raw"), default="both")
    p.add_argument("--no-discriminators", action="store_true")
    p.add_argument(
        "--metadata", help="JSON file with model-card fields (machine, wall_time, training_command...)"
    )
    p.add_argument("--data", default="moving-digits")
    p.add_argument("--n", type=int, default=1024, help="clips per set (generated, real)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tag", default="digits")
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    meta = json.loads(Path(args.metadata).read_text()) if args.metadata else {}
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        common = dict(
            step=args.step, generator=args.generator, discriminators=not args.no_discriminators, metadata=meta
        )
        f32 = export_checkpoint(args.run, Path(tmp) / "f32", **common)
        f16 = export_checkpoint(args.run, Path(tmp) / "f16", dtype="float16", **common)
        results = {}
        for label, name, kw in (
            ("float32", f"local-dir:{f32}", {}),
            ("float16", f"local-dir:{f16}", {}),
            ("random", None, {}),
        ):
            if name is None:  # the same architecture and recipe (training frame stride), random weights
                trained = vganzoo.load(f"local-dir:{f16}")
                config = dict(trained.config)
                arch = config.pop("model")
                torch.manual_seed(args.seed)
                model = vganzoo.create(arch, **config)
                model.recipe = dict(trained.recipe)
            else:
                model = vganzoo.load(name, **kw)
            t0 = time.time()
            results[label] = _scores(model, args)
            print(
                f"{label}: "
                + ", ".join(f"{k} {results[label]['scores'][k]:.4f}" for k in KEYS)
                + f"  ({time.time() - t0:.0f} s)",
                flush=True,
            )
        real = results["float16"]["real_scores"]
        print("real data: " + ", ".join(f"{k} {real[k]:.4f}" for k in KEYS if isinstance(real.get(k), float)))
        a, b = results["float32"]["scores"], results["float16"]["scores"]
        if (
            abs(a["fvd_digits"] - b["fvd_digits"]) > 0.05 * a["fvd_digits"]
            or abs(a["frame_score"] - b["frame_score"]) > 0.01
        ):
            print("float16 storage changes the scores beyond noise; not bundling", file=sys.stderr)
            return 1
        proto = dict(results["float16"]["protocol"])
        protocol_text = (
            f"vganzoo.metrics.evaluate(metric='fvd-digits,consistency', n={args.n}, "
            f"n_real={proto['n_real']}, frames=16, "
            f"seed={args.seed}) on {args.data} ({proto.get('data_split', 'test')} split, real clips every "
            f"{proto['real_frame_step']} frames like training), bundled digits classifier"
        )
        metrics = {}
        for key in KEYS:
            metrics[key] = {
                "value": round(b[key], 4),
                "protocol": "these weights (float16), see the protocol above",
            }
            metrics[f"{key}, real data"] = {
                "value": round(real[key], 4),
                "protocol": "real vs real clips, same protocol",
            }
            metrics[f"{key}, random weights"] = {
                "value": round(results["random"]["scores"][key], 4),
                "protocol": "this architecture with random weights (seed 0), same protocol",
            }
        ratio_fvd = b["fvd_digits"] / results["random"]["scores"]["fvd_digits"]
        ratio_frame = b["frame_score"] / real["frame_score"]
        verdict = (
            f"FVD-digits is {ratio_fvd:.2f} of the random-weights model's (bar: at most 0.25) and the frame "
            "score "
            f"{ratio_frame:.2f} of real data's (bar: at least 0.70)."
        )
        description = "\n\n".join(
            filter(
                None,
                [
                    meta.get("description"),
                    f"Evaluation protocol: {protocol_text}. Float32 storage scores FVD-digits "
                    f"{a['fvd_digits']:.4f}, "
                    f"frame score {a['frame_score']:.4f} (the float16 copy shipped here: "
                    f"{b['fvd_digits']:.4f}, {b['frame_score']:.4f}). " + verdict,
                ],
            )
        )
        final_meta = {
            **meta,
            "description": description,
            "metrics": metrics,
            "evaluation_machine": f"{platform.machine()}, torch {torch.__version__}",
        }
        out = export_checkpoint(
            args.run, args.out, dtype="float16", overwrite=True, **{**common, "metadata": final_meta}
        )
    package = Path(vganzoo.__file__).resolve().parent
    inside = Path(out).resolve().is_relative_to(package)
    spec = hub.spec_from_folder(
        out, tag=args.tag, bundled=str(Path(out).resolve().relative_to(package)) if inside else None
    )
    total = sum(f.stat().st_size for f in Path(out).iterdir())
    print(f"\nwrote {out} ({total / 1e6:.2f} MB) in {time.time() - started:.0f} s\n")
    print("PretrainedSpec for register_model(pretrained=[...]):")
    print(
        json.dumps(
            {
                "tag": spec.tag,
                "bundled": spec.bundled,
                "files": dict(spec.files),
                "sha256": dict(spec.sha256),
            },
            indent=4,
        )
    )
    print(
        "\n| weights | FVD-digits | frame score | identity consistency | digit frame rate "
        "|\n|---|---|---|---|---|"
    )
    rows = (
        ("real data", real),
        ("shipped (float16)", b),
        ("float32 copy", a),
        ("random weights", results["random"]["scores"]),
    )
    for label, s in rows:
        print(f"| {label} | " + " | ".join(f"{s[k]:.4f}" for k in KEYS) + " |")
    print(f"\nProtocol: {protocol_text}\n{verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
