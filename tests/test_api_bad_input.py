"""The Python API under bad input: non-finite config values, unknown devices and sizes beyond memory
are errors that name the argument, raised before anything is allocated or written."""

from __future__ import annotations

import pytest

import vganzoo
from vganzoo.errors import InvalidConfigError, ResourceLimitError


@pytest.mark.parametrize("value", [float("inf"), float("nan"), -float("inf")])
def test_non_finite_config_values_are_refused_by_name(value):
    with pytest.raises(InvalidConfigError, match="'width' must be a finite number"):
        vganzoo.create("tgan", width=value)


@pytest.mark.parametrize("device", ["potato", "meta"])
def test_train_refuses_a_device_by_name_before_writing(device, tmp_path):
    from vganzoo.train import train

    with pytest.raises(ValueError, match="^device: "):
        train("tgan", data="moving-digits", device=device, out=str(tmp_path / "run"))
    assert list(tmp_path.iterdir()) == []


def test_sampling_more_than_memory_holds_is_refused_before_drawing(monkeypatch):
    model = vganzoo.create("tgan", resolution=32, width=0.125)
    drawn = []
    monkeypatch.setattr(model.generator, "sample_latents", lambda n, **kw: drawn.append(n))
    with pytest.raises(ResourceLimitError, match=r"sample: n=1000000000 videos .* needs at least"):
        model.sample(10**9)
    assert drawn == []


@pytest.mark.parametrize(
    ("name", "overrides"),
    [("mocogan-rnn", {"num_classes": 20_000_000}), ("stylegan-v", {"time_dim": 1_000_000})],
)
def test_create_refuses_giant_configs_before_building(name, overrides, monkeypatch):
    from vganzoo import registry

    built = []
    monkeypatch.setenv("VGANZOO_MEMORY_LIMIT", "1G")  # far below either model, whatever the machine
    monkeypatch.setattr(registry, "create", lambda *a, **k: built.append(a))
    with pytest.raises(ResourceLimitError, match=r"^building .* needs at least .* choose smaller settings"):
        vganzoo.create(name, **overrides)
    assert built == []
