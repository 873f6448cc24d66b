"""Converters for the original authors' checkpoints into vganzoo weight folders.

Each converter reads one original format and writes a weight set (through
``vganzoo.save_pretrained``): ``generator.safetensors`` (plus ``discriminator.<role>.safetensors``
when the original saved one), ``config.json``, ``weights.json`` with the sha256 pins and a model
card naming the source file, so ``vganzoo.load("local-dir:OUT")``, ``vganzoo sample OUT``,
``eval``, ``push`` and ``train --init-from OUT`` take it as they take any weight set.

* :func:`convert_mocogan`: MoCoGAN's pickled generator modules (Python 2, PyTorch 0.2/0.3), through
  an allow-list. This and :func:`convert_stylegan_v` are the only places vganzoo unpickles anything.
* :func:`convert_tgan`: TGAN's Chainer ``.npz`` snapshots (read with ``allow_pickle=False``).
* :func:`convert_stylegan_v`: StyleGAN-V's network pickles (their persistence format), read by a
  restricted unpickler that rebuilds tensors and plain containers only and runs nothing
  (:mod:`vganzoo.convert.persistence`).

Evaluation detectors are converted too: :func:`convert_extractor` turns a legacy I3D / C3D ``.pt``
state dict (read with ``torch.load(weights_only=True)``) into the safetensors file the metrics load.
"""

from __future__ import annotations

from .extractors import convert_extractor
from .folder import write_weight_folder
from .mocogan import UnsafeCheckpointError, convert_mocogan, load_mocogan_generator
from .stylegan_v import convert_stylegan_v, load_stylegan_v
from .tgan import convert_tgan, load_tgan_state_dicts

__all__ = [
    "UnsafeCheckpointError",
    "convert_extractor",
    "convert_mocogan",
    "convert_stylegan_v",
    "convert_tgan",
    "load_mocogan_generator",
    "load_stylegan_v",
    "load_tgan_state_dicts",
    "write_weight_folder",
]
