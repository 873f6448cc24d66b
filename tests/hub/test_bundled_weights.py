"""Every weight set bundled inside the package: present, pinned, loadable offline, and sampling."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

import vganzoo
from vganzoo import hub, registry

PACKAGE = Path(vganzoo.__file__).resolve().parent
BUNDLE_LIMIT = 10 * 1024 * 1024  # all bundled model weights together


def bundled_sets() -> list[tuple[str, registry.PretrainedSpec]]:
    out = []
    for name in vganzoo.list_pretrained():
        arch, tag = registry.split_tag(name)
        spec = registry.get_model_spec(arch).pretrained[tag]
        if spec.bundled:
            out.append((name, spec))
    return out


BUNDLED = bundled_sets()


def test_the_main_job_weights_are_bundled():
    assert "mocogan-rnn.digits" in [name for name, _ in BUNDLED]


def test_bundled_weights_fit_the_size_budget():
    total = sum(
        f.stat().st_size for _, spec in BUNDLED for f in (PACKAGE / spec.bundled).iterdir() if f.is_file()
    )
    assert 0 < total <= BUNDLE_LIMIT, f"bundled weights take {total / 2**20:.1f} MiB"


@pytest.mark.parametrize(("name", "spec"), BUNDLED, ids=[n for n, _ in BUNDLED])
def test_bundled_files_match_their_pinned_sha256(name, spec):
    folder = PACKAGE / spec.bundled
    index = json.loads((folder / "weights.json").read_text())
    for filename in ["config.json", *spec.files.values()]:
        digest = hashlib.sha256((folder / filename).read_bytes()).hexdigest()
        assert digest == spec.sha256[filename], (
            f"{name}: {filename} changed without updating the registry pin"
        )
        assert index["sha256"][filename] == digest  # the folder is publishable as is (vganzoo push)
    assert set(spec.files.items()) <= set(index["files"].items())
    card = (folder / "README.md").read_text()
    assert "vganzoo train" in card and "## Evaluation" in card  # training command and scores in the card


@pytest.mark.parametrize(("name", "spec"), BUNDLED, ids=[n for n, _ in BUNDLED])
def test_bundled_weights_load_offline_and_sample(name, spec):
    model = vganzoo.load(name, local_files_only=True)
    assert model.pretrained["name"] == name
    videos = model.sample(2, seed=0)
    config = model.config
    assert videos.shape == (
        2,
        config["channels"],
        config["frames"],
        config["resolution"],
        config["resolution"],
    )
    assert videos.dtype == torch.float32 and videos.min() >= -1 and videos.max() <= 1
    assert torch.equal(videos, model.sample(2, seed=0))
    assert videos.std() > 0.05  # not a constant frame


def test_a_damaged_bundled_file_is_refused(tmp_path, monkeypatch):
    name, spec = next((n, s) for n, s in BUNDLED if n == "mocogan-rnn.digits")
    copy = tmp_path / "copy"
    shutil.copytree(PACKAGE / spec.bundled, copy)
    weights = copy / spec.files["generator"]
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    monkeypatch.setattr(hub.weightsets, "PACKAGE_DIR", tmp_path)
    arch, tag = registry.split_tag(name)
    patched = registry.PretrainedSpec(**{**spec.to_dict(), "bundled": "copy"})
    monkeypatch.setitem(registry.get_model_spec(arch).pretrained, tag, patched)
    with pytest.raises(hub.HashMismatchError, match="generator"):
        vganzoo.load(name, local_files_only=True)
