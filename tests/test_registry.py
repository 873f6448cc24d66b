"""The registry: names, listing, overrides and the errors users see."""

from __future__ import annotations

import json

import pytest
import torch
from plugin_utils import toy_source

import vganzoo
from vganzoo import registry
from vganzoo.errors import InvalidConfigError, UnknownComponentError, UnknownModelError
from vganzoo.models.base import DiscriminatorOutput, VideoGAN, check_labels


@pytest.fixture()
def toy_models():
    """Register two throw-away models directly (as a user script would) and remove them after."""
    namespace: dict = {}
    exec(compile(toy_source("zz-test-gan2"), "<toy2>", "exec"), namespace)
    exec(compile(toy_source("zz-test-gan10"), "<toy10>", "exec"), namespace)
    yield ["zz-test-gan2", "zz-test-gan10"]
    for name in ("zz-test-gan2", "zz-test-gan10"):
        registry.core._models.pop(name, None)


def test_list_models_wildcard_and_natural_sort(toy_models):
    assert vganzoo.list_models("zz-test-*") == ["zz-test-gan2", "zz-test-gan10"]
    assert vganzoo.list_models("zz-test-gan1*") == ["zz-test-gan10"]
    assert vganzoo.list_models("zz-test-*", exclude_filters="*10") == ["zz-test-gan2"]
    assert vganzoo.list_models("no-such-*") == []
    assert vganzoo.list_models(["zz-test-gan2", "zz-test-gan1*"]) == ["zz-test-gan2", "zz-test-gan10"]


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"filter": 3}, "filter"),
        ({"filter": ["ok", 3]}, "filter"),
        ({"exclude_filters": 1.5}, "exclude_filters"),
    ],
)
def test_list_models_rejects_non_pattern_filters(toy_models, kwargs, name):
    with pytest.raises(TypeError, match=name):
        vganzoo.list_models(**kwargs)


def test_create_applies_overrides_and_records_config(toy_models):
    model = vganzoo.create("zz-test-gan2", frames=3, size=None)  # None overrides are ignored
    assert isinstance(model, VideoGAN)
    assert model.config == {"model": "zz-test-gan2", "frames": 3, "size": 4}
    json.dumps(model.config)
    rebuilt = vganzoo.create(model.config["model"], **{k: v for k, v in model.config.items() if k != "model"})
    assert rebuilt.config == model.config
    assert model.sample(2, seed=0).shape == (2, 3, 3, 4, 4)


def test_unknown_override_names_the_accepted_ones(toy_models):
    with pytest.raises(InvalidConfigError) as err:
        vganzoo.create("zz-test-gan2", frame=3)
    assert "'frame'" in str(err.value) and "frames" in str(err.value) and "size" in str(err.value)


def test_unknown_model_suggests_close_names(toy_models):
    with pytest.raises(UnknownModelError) as err:
        vganzoo.create("zz-test-gan3")
    assert "zz-test-gan2" in str(err.value)
    with pytest.raises(LookupError):  # the built-in exception type a caller would catch
        vganzoo.create("completely-unrelated-name")


def test_tagged_name_resolves_to_the_architecture(toy_models):
    assert registry.get_model_spec("zz-test-gan2.some-tag").name == "zz-test-gan2"
    assert registry.split_tag("dist::arch.tag") == ("dist::arch", "tag")
    assert registry.split_tag("arch") == ("arch", None)
    assert registry.get_model_spec("vganzoo::zz-test-gan2").name == "zz-test-gan2"


def test_model_info_counts_parameters(toy_models):
    info = vganzoo.model_info("zz-test-gan2")
    assert info["family"] == "test"
    assert info["description"] == "a test model"
    expected = 4 * 3 * 2 * 4 * 4 + 3 * 2 * 4 * 4
    assert info["parameters"]["generator"] == expected
    assert info["parameters"]["discriminator.video"] == 1
    assert info["parameters"]["total"] == expected + 1


def test_sample_is_seeded_and_in_range(toy_models):
    model = vganzoo.create("zz-test-gan2")
    a, b = model.sample(3, seed=7), model.sample(3, seed=7)
    assert torch.equal(a, b)
    assert not torch.equal(a, model.sample(3, seed=8))
    assert a.min() >= -1 and a.max() <= 1
    assert model.sample(0, seed=1).shape[0] == 0
    with pytest.raises(ValueError, match="n must be"):
        model.sample(-1)
    with pytest.raises(ValueError, match="labels"):
        model.sample(2, labels=1)  # unconditional model


def test_register_rejects_bad_names_and_duplicates(toy_models):
    with pytest.raises(ValueError, match="reserved for pretrained tags"):
        vganzoo.register_model("has.dot")
    with pytest.raises(ValueError, match="already registered"):
        vganzoo.register_model("zz-test-gan2")(lambda **kw: None)
    with pytest.raises(ValueError, match="kind must be one of"):
        vganzoo.register_component("optimizer", "x")


def test_components_register_list_and_fail_clearly():
    @vganzoo.register_component("discriminator", "zz-test/disc")
    class Disc(torch.nn.Module):
        pass

    try:
        assert vganzoo.get_component("discriminator", "zz-test/disc") is Disc
        assert "zz-test/disc" in vganzoo.list_components("discriminator")
        assert "discriminator/zz-test/disc" in vganzoo.list_components()
        with pytest.raises(UnknownComponentError) as err:
            vganzoo.get_component("discriminator", "zz-test/dsic")
        assert "zz-test/disc" in str(err.value)
    finally:
        registry.core._components.pop(("discriminator", "zz-test/disc"))


@pytest.mark.parametrize(
    "labels, error",
    [
        ([0, 1], "shape"),
        (torch.tensor([0.0, 1.0, 2.0]), "integer"),
        ([0, 1, 5], r"\[0, 4\]"),
        (-1, r"\[0, 4\]"),
        ("1", "labels must be"),
    ],
)
def test_check_labels_errors(labels, error):
    with pytest.raises((ValueError, TypeError), match=error):
        check_labels(labels, 3, 5)


def test_check_labels_accepts_int_sequence_and_tensor():
    assert check_labels(2, 3, 5).tolist() == [2, 2, 2]
    assert check_labels((0, 4, 1), 3, 5).tolist() == [0, 4, 1]
    assert check_labels(torch.tensor([1, 2, 3], dtype=torch.int32), 3, 5).dtype == torch.long
    assert check_labels(None, 3, 5) is None


def test_discriminator_output_defaults():
    out = DiscriminatorOutput(torch.zeros(2, 1))
    assert out.class_logits is None
