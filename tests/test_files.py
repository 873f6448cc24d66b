"""Every safetensors file vganzoo writes has a sorted header, so the same content gives the same bytes
(and a sha256 pin can be reproduced). safetensors itself writes ``__metadata__`` in hash-map order."""

import json
import struct

import numpy as np
import torch

from vganzoo.files import safetensors_bytes


def _header(data: bytes) -> tuple[str, dict]:
    (size,) = struct.unpack("<Q", data[:8])
    text = data[8 : 8 + size].decode()
    return text, json.loads(text)


def _assert_sorted(data: bytes) -> None:
    text, header = _header(data)
    assert list(header) == sorted(header)
    assert list(header["__metadata__"]) == sorted(header["__metadata__"])
    assert len(text.encode()) % 8 == 0  # padded with spaces to 8 bytes, as safetensors does


def test_same_content_same_bytes_and_every_reader_agrees():
    from safetensors.numpy import load as np_load
    from safetensors.torch import load

    metadata = {f"key{i}": str(i) for i in range(12)}
    tensors = {"b": torch.arange(6.0).reshape(2, 3), "a": torch.ones(3, dtype=torch.float16)}
    first = safetensors_bytes(tensors, metadata)
    _assert_sorted(first)
    for _ in range(5):  # safetensors' own order changes between calls
        assert safetensors_bytes(tensors, dict(reversed(list(metadata.items())))) == first
    loaded = load(first)
    assert torch.equal(loaded["b"], tensors["b"]) and torch.equal(loaded["a"], tensors["a"])
    arrays = {"x": np.arange(12, dtype=np.float64).reshape(3, 4)[:, ::2]}  # a strided numpy view
    data = safetensors_bytes(arrays, {"n": "3"})
    np.testing.assert_array_equal(np_load(data)["x"], arrays["x"])


def test_checkpoints_statistics_caches_and_extractors_are_written_sorted(tmp_path):
    from vganzoo.metrics.extractors import save_extractor
    from vganzoo.metrics.frechet import FeatureStats
    from vganzoo.train.checkpoint import load_checkpoint, save_checkpoint

    path = save_checkpoint(tmp_path / "c.safetensors", {"w": torch.ones(2)}, {"step": 3, "z": 1, "a": 2})
    _assert_sorted(path.read_bytes())
    assert load_checkpoint(path)[1] == {"step": 3, "z": 1, "a": 2}

    stats = FeatureStats(4)
    stats.update(np.random.default_rng(0).normal(size=(5, 4)))
    stats.save(tmp_path / "s.safetensors", protocol={"b": 1, "a": 2})
    _assert_sorted((tmp_path / "s.safetensors").read_bytes())
    assert FeatureStats.load(tmp_path / "s.safetensors").n == 5

    net = torch.nn.Linear(3, 2)
    digests = {save_extractor(net, tmp_path / f"e{i}.safetensors", "toy", {"y": 1, "x": 2}) for i in range(4)}
    assert len(digests) == 1
    _assert_sorted((tmp_path / "e0.safetensors").read_bytes())
