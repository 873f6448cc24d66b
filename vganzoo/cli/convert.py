"""``vganzoo convert mocogan|tgan SRC OUT_DIR``: original checkpoints -> a vganzoo weight folder."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="convert an original authors' checkpoint into a weight set",
        description="Convert the original authors' checkpoints into a weight-set folder "
        "(generator.safetensors, "
        "discriminator.<role>.safetensors where the original saved one, config.json, weights.json, "
        "README.md) "
        "that `vganzoo sample OUT_DIR`, eval, push and train --init-from read.",
    )
    formats = p.add_subparsers(dest="format", metavar="FORMAT")
    formats.required = True

    m = formats.add_parser(
        "mocogan",
        help="MoCoGAN generator_NNNNN.pytorch (a pickled PyTorch 0.3 module)",
        description="Convert MoCoGAN's pickled generator. The file is unpickled through an allow-list "
        "(the original's model classes are replaced by stand-ins); anything else is refused.",
    )
    m.add_argument("src", help="generator_NNNNN.pytorch")
    m.add_argument("out_dir", help="folder to write")
    m.add_argument("--force", action="store_true", help="replace the weights in an existing folder")
    m.set_defaults(func=run)

    t = formats.add_parser(
        "tgan",
        help="TGAN Chainer snapshots gen_iter_N.npz (+ vgen_, vdis_)",
        description="Convert TGAN's Chainer .npz snapshots (read without pickle).",
    )
    t.add_argument(
        "src", help="gen_iter_N.npz (the temporal generator), or a folder holding the snapshots (latest N)"
    )
    t.add_argument("out_dir", help="folder to write")
    t.add_argument("--image-generator", help="vgen_iter_N.npz (default: next to SRC)")
    t.add_argument("--discriminator", help="vdis_iter_N.npz (default: next to SRC when present)")
    t.add_argument("--no-discriminator", action="store_true", help="convert the generator only")
    t.add_argument("--force", action="store_true", help="replace the weights in an existing folder")
    t.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import convert

    if args.format == "mocogan":
        folder = convert.convert_mocogan(args.src, args.out_dir, overwrite=args.force)
    else:
        folder = convert.convert_tgan(
            args.src,
            args.out_dir,
            image_generator=args.image_generator,
            discriminator=args.discriminator,
            include_discriminator=not args.no_discriminator,
            overwrite=args.force,
        )
    files = ", ".join(sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")))
    print(f"wrote {folder}: {files}")
    return 0
