"""``vganzoo convert mocogan|tgan|stylegan-v SRC OUT_DIR``: original checkpoints -> a vganzoo weight
folder; ``vganzoo convert i3d|c3d SRC OUT.safetensors``: a legacy detector state dict -> safetensors;
``vganzoo convert tgan2-c3d conv3d_deepnetA_ucf.npz OUT.safetensors --mean mean2.npz``: tgan2's C3D."""

from __future__ import annotations

import argparse

from .options import existing_path, out_dir, out_file


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
    _add_mocogan(formats)
    _add_tgan(formats)
    _add_stylegan_v(formats)
    for arch, source in (("i3d", "pytorch-i3d's rgb_imagenet.pt"), ("c3d", "a C3D state dict")):
        _add_detector(formats, arch, source)
    _add_tgan2_c3d(formats)


def _add_src_and_out_dir(f: argparse.ArgumentParser, src_help: str) -> None:
    f.add_argument("src", type=existing_path, help=src_help)
    f.add_argument("out_dir", type=out_dir, help="folder to write")


def _add_force(f: argparse.ArgumentParser) -> None:
    """--force, the last option of every checkpoint format, and the command that runs them."""
    f.add_argument(
        "--force",
        action="store_true",
        help="replace the weight set in OUT_DIR (never a folder that is not one)",
    )
    f.set_defaults(func=run)


def _add_replace_file(f: argparse.ArgumentParser) -> None:
    f.add_argument("--force", action="store_true", help="replace DST when it exists")


def _add_mocogan(formats: argparse._SubParsersAction) -> None:
    m = formats.add_parser(
        "mocogan",
        help="MoCoGAN generator_NNNNN.pytorch (a pickled PyTorch 0.3 module)",
        description="Convert MoCoGAN's pickled generator. The file is unpickled through an allow-list "
        "(the original's model classes are replaced by stand-ins); anything else is refused.",
    )
    _add_src_and_out_dir(m, "generator_NNNNN.pytorch")
    _add_force(m)


def _add_tgan(formats: argparse._SubParsersAction) -> None:
    t = formats.add_parser(
        "tgan",
        help="TGAN Chainer snapshots gen_iter_N.npz (+ vgen_, vdis_)",
        description="Convert TGAN's Chainer .npz snapshots (read without pickle).",
    )
    _add_src_and_out_dir(
        t, "gen_iter_N.npz (the temporal generator), or a folder holding the snapshots (latest N)"
    )
    t.add_argument("--image-generator", type=existing_path, help="vgen_iter_N.npz (default: next to SRC)")
    t.add_argument(
        "--discriminator", type=existing_path, help="vdis_iter_N.npz (default: next to SRC when present)"
    )
    t.add_argument("--no-discriminator", action="store_true", help="convert the generator only")
    _add_force(t)


def _add_stylegan_v(formats: argparse._SubParsersAction) -> None:
    s = formats.add_parser(
        "stylegan-v",
        help="StyleGAN-V network-snapshot-NNNNNN.pkl (the authors' persistence pickles)",
        description="Convert a StyleGAN-V checkpoint (G, G_ema and D; a training snapshot's optimiser "
        "states and other entries are ignored). The pickle is read by a restricted unpickler: tensors and "
        "plain containers only, the network classes replaced by inert records; the source code it carries "
        "is never run, and any other global is refused.",
    )
    _add_src_and_out_dir(s, "network-snapshot-NNNNNN.pkl")
    _add_force(s)


def _add_detector(formats: argparse._SubParsersAction, arch: str, source: str) -> None:
    e = formats.add_parser(
        arch,
        help=f"{arch.upper()} evaluation detector: {source} -> .safetensors",
        description=f"Convert a legacy {arch.upper()} state dict ({source}) into the safetensors file "
        "`vganzoo eval --extractor` loads. It is read with torch.load(weights_only=True): tensors and "
        "containers only, no code runs. The output's sha256 is printed: pin it in your notes.",
    )
    e.add_argument("src", type=existing_path, help="legacy .pt state dict")
    e.add_argument("dst", type=out_file([".safetensors"]), help="output .safetensors")
    if arch == "c3d":
        e.add_argument(
            "--mean",
            required=True,
            help="training mean in the network's channel order: 'C0,C1,C2' or a .npy file",
        )
        e.add_argument(
            "--bgr",
            action="store_true",
            help="the network was trained on BGR frames (reorder its input channels to RGB)",
        )
    _add_replace_file(e)
    e.set_defaults(func=run_extractor, mean=None, bgr=False)


def _add_tgan2_c3d(formats: argparse._SubParsersAction) -> None:
    g = formats.add_parser(
        "tgan2-c3d",
        help="tgan2's C3D for the tgan2-is protocol: conv3d_deepnetA_ucf.npz + mean2.npz -> .safetensors",
        description="Convert tgan2's Chainer C3D (conv3d_deepnetA_ucf.npz) and its mean clip (mean2.npz) "
        "into the safetensors file `vganzoo eval --protocol tgan2-is --detector` loads. Both are read with "
        "numpy.load(allow_pickle=False): arrays only. The output's sha256 is printed: pin it.",
    )
    g.add_argument("src", type=existing_path, help="conv3d_deepnetA_ucf.npz")
    g.add_argument("dst", type=out_file([".safetensors"]), help="output .safetensors")
    g.add_argument("--mean", type=existing_path, required=True, help="tgan2's mean2.npz")
    _add_replace_file(g)
    g.set_defaults(func=run_extractor, bgr=False)


# command-line format -> converter architecture
_EXTRACTOR_ARCHITECTURES = {"i3d": "i3d", "c3d": "c3d", "tgan2-c3d": "c3d-tgan2"}


def run_extractor(args: argparse.Namespace) -> int:
    from ..convert import convert_extractor

    architecture = _EXTRACTOR_ARCHITECTURES[args.format]
    digest = convert_extractor(
        architecture, args.src, args.dst, mean=args.mean, bgr=args.bgr, overwrite=args.force
    )
    print(f"wrote {args.dst}  sha256 {digest}")
    return 0


def _check_out_dir(out_dir: str, force: bool) -> None:
    from ..hub import check_replaceable

    check_replaceable(out_dir, force, "OUT_DIR", "--force")


def run(args: argparse.Namespace) -> int:
    from .. import convert

    summary = None
    _check_out_dir(args.out_dir, args.force)
    if args.format == "tgan":
        if args.discriminator is not None and args.no_discriminator:
            raise ValueError("--discriminator: given together with --no-discriminator; choose one")
        from ..convert.tgan import find_tgan_files

        _temporal, image, _critic = find_tgan_files(args.src)
        if image is None and args.image_generator is None:
            raise FileNotFoundError(
                f"--image-generator: no vgen_iter_N.npz next to {args.src!r}; give the image generator's "
                "snapshot with --image-generator"
            )
    if args.format == "mocogan":
        folder = convert.convert_mocogan(args.src, args.out_dir, overwrite=args.force)
    elif args.format == "stylegan-v":
        folder, report = convert.convert_stylegan_v(args.src, args.out_dir, overwrite=args.force)
        summary = report.summary()
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
    if summary:
        print(f"  {summary}")
    return 0
