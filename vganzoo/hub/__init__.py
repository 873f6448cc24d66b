"""Pretrained weights: resolve a name, fetch and verify its files, build the model, save and publish.

A weight set is a folder (a Hub repo, a bundled package folder or a ``save_pretrained`` output)::

    config.json                          # model.config: vganzoo.create(config["model"], **rest)
    generator.safetensors                # one file per component
    generator_ema.safetensors            # optional
    discriminator.<role>.safetensors     # one per discriminator role
    weights.json                         # files per component, sha256 of each, metadata, recipe
    README.md                            # model card (Hub metadata: library_name vganzoo, ...)

Names accepted by :func:`load`:

* ``arch`` / ``arch.tag``: a registered :class:`~vganzoo.registry.PretrainedSpec` (pinned
  revision and sha256 per file from the registry; a bundled copy is used first);
* ``hf-hub:org/repo[@revision]``: any repo laid out as above; hashes come from the repo's own
  ``weights.json`` so the weights are *not pinned* (an :class:`UnpinnedWeightsWarning` says so);
* ``local-dir:/path``, or a folder path (``./my-run``): a folder written by :func:`save_pretrained`
  (checked against its weights.json); a registered name wins over a folder of the same name.

Every file is accepted only if its sha256 matches; network access goes through
``huggingface_hub.hf_hub_download`` (cache, resume, locking). The endpoint is read at call time:
``endpoint=``, then ``VGANZOO_ENDPOINT``, then ``HF_ENDPOINT``. Only JSON and safetensors are read.

The package, by concern: :mod:`.weightsets` (names, files and hashes), :mod:`.fetch` (verified
fetching, also of single pinned files such as evaluation detectors), :mod:`.loading` (building and
loading models), :mod:`.save` (writing, publishing, pinning), :mod:`.errors`.
"""

from __future__ import annotations

from ..files import sha256_file
from .checks import (
    OversizedConfigError,
    UnsafeTensorError,
    check_config_size,
    check_model_memory,
    check_tensors,
)
from .errors import (
    HashMismatchError,
    NoPretrainedWeightsError,
    StateDictMismatchError,
    UnpinnedWeightsWarning,
    WeightsError,
    WeightsNotFoundError,
)
from .fetch import ENDPOINT_ENV_VARS, download, fetch_file, recorded_metrics, resolve_endpoint
from .loading import (
    LoadReport,
    component_module,
    load,
    load_or_create,
    load_weights,
    model_info,
    pretrained_config,
)
from .save import push_to_hub, save_pretrained, spec_from_folder
from .weightsets import CARD_FILE, CONFIG_FILE, INDEX_FILE, HubOptions, component_file

__all__ = [
    "CARD_FILE",
    "CONFIG_FILE",
    "ENDPOINT_ENV_VARS",
    "INDEX_FILE",
    "HashMismatchError",
    "HubOptions",
    "LoadReport",
    "NoPretrainedWeightsError",
    "OversizedConfigError",
    "StateDictMismatchError",
    "UnpinnedWeightsWarning",
    "UnsafeTensorError",
    "WeightsError",
    "WeightsNotFoundError",
    "check_config_size",
    "check_model_memory",
    "check_tensors",
    "component_file",
    "component_module",
    "download",
    "fetch_file",
    "load",
    "load_or_create",
    "load_weights",
    "model_info",
    "pretrained_config",
    "push_to_hub",
    "recorded_metrics",
    "resolve_endpoint",
    "save_pretrained",
    "sha256_file",
    "spec_from_folder",
]
