"""Third-party plugins through entry points: discovery, lazy import, failures and clashes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from plugin_utils import PluginSandbox, toy_source

import vganzoo
from vganzoo import plugins, registry
from vganzoo.errors import AmbiguousNameError, PluginError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def sandbox(tmp_path):
    box = PluginSandbox(tmp_path)
    yield box
    box.close()


def test_listing_reads_metadata_without_importing(sandbox):
    sandbox.add("zz-plugin-a", "zz_plugin_a", toy_source("zz-plug-gan"), models=["zz-plug-gan"])
    assert "zz-plug-gan" in vganzoo.list_models("zz-*")
    assert "zz_plugin_a" not in sys.modules  # listed from metadata alone
    model = vganzoo.create("zz-plug-gan")
    assert "zz_plugin_a" in sys.modules
    assert model.sample(1, seed=0).shape == (1, 3, 2, 4, 4)
    assert registry.get_model_spec("zz-plug-gan").source == "zz-plugin-a"
    assert model.config["model"] == "zz-plugin-a::zz-plug-gan"
    assert vganzoo.create(model.config["model"]).config == model.config


def test_broken_plugin_fails_only_its_own_names(sandbox):
    sandbox.add("zz-good", "zz_good", toy_source("zz-good-gan"), models=["zz-good-gan"])
    sandbox.add("zz-broken", "zz_broken", "raise RuntimeError('boom at import')\n", models=["zz-broken-gan"])
    assert {"zz-good-gan", "zz-broken-gan"} <= set(vganzoo.list_models("zz-*"))
    with pytest.raises(PluginError) as err:
        vganzoo.create("zz-broken-gan")
    message = str(err.value)
    assert "zz-broken" in message and "boom at import" in message
    assert isinstance(err.value.__cause__, RuntimeError)
    failures = plugins.errors()
    assert len(failures) == 1 and failures[0].distribution == "zz-broken"
    assert "boom at import" in failures[0].traceback
    # the working plugin and the listing are unaffected; the failure is sticky, not retried silently
    assert vganzoo.create("zz-good-gan").sample(1, seed=0).shape[0] == 1
    with pytest.raises(PluginError):
        vganzoo.create("zz-broken-gan")
    assert "zz-broken-gan" in vganzoo.list_models()


def test_a_plugin_that_exits_or_whose_factory_raises_names_the_plugin(sandbox, capsys):
    """sys.exit at import and an exception in a plugin's factory are that plugin's failures: the
    error names it (one line from the command line), and the rest of the zoo is unaffected."""
    from vganzoo.cli import main

    sandbox.add("zz-exits", "zz_exits", "import sys\nsys.exit(3)\n", models=["zz-exit-gan"])
    source = toy_source("zz-raise-gan").replace(
        '    "a test model"\n', '    "a test model"\n    raise RuntimeError("factory boom")\n'
    )
    assert "factory boom" in source
    sandbox.add("zz-raises", "zz_raises", source, models=["zz-raise-gan"])
    with pytest.raises(PluginError, match="plugin 'zz-exits' failed to load 'zz-exit-gan'.*SystemExit"):
        vganzoo.create("zz-exit-gan")
    with pytest.raises(
        PluginError,
        match="plugin 'zz-raises': building model 'zz-raises::zz-raise-gan' failed: RuntimeError: factory "
        "boom",
    ):
        vganzoo.create("zz-raise-gan")
    assert main(["info", "zz-raise-gan"]) == 2
    assert "factory boom" in capsys.readouterr().err
    assert main(["list", "zz-*"]) == 0  # listing survives both
    out = capsys.readouterr().out
    assert "zz-exit-gan" in out and "zz-raise-gan" in out


def test_entry_point_name_that_the_module_does_not_register(sandbox):
    sandbox.add("zz-misnamed", "zz_misnamed", toy_source("zz-other-gan"), models=["zz-declared-gan"])
    sandbox.add("zz-empty", "zz_empty", "x = 1\n", models=["zz-empty-gan"])
    with pytest.raises(PluginError, match="declares model 'zz-declared-gan' .* registered 'zz-other-gan'"):
        vganzoo.create("zz-declared-gan")
    with pytest.raises(PluginError, match="declares model 'zz-empty-gan' .* registered no model"):
        vganzoo.create("zz-empty-gan")


def test_two_plugins_claiming_one_name_are_ambiguous(sandbox):
    sandbox.add("zz-one", "zz_one", toy_source("zz-clash", family="one"), models=["zz-clash"])
    sandbox.add("zz-two", "zz_two", toy_source("zz-clash", family="two"), models=["zz-clash"])
    with pytest.raises(AmbiguousNameError) as err:
        vganzoo.create("zz-clash")
    assert "zz-one::zz-clash" in str(err.value) and "zz-two::zz-clash" in str(err.value)
    assert registry.get_model_spec("zz-one::zz-clash").family == "one"
    assert registry.get_model_spec("zz-two::zz-clash").family == "two"
    assert vganzoo.create("zz-two::zz-clash").config["model"] == "zz-two::zz-clash"
    assert {"zz-one::zz-clash", "zz-two::zz-clash"} <= set(vganzoo.list_models("*zz-clash"))


def test_builtin_beats_plugin_with_a_warning(sandbox):
    namespace: dict = {}
    exec(compile(toy_source("zz-shadowed", family="builtin"), "<builtin>", "exec"), namespace)
    try:
        sandbox.add(
            "zz-shadow", "zz_shadow", toy_source("zz-shadowed", family="plugin"), models=["zz-shadowed"]
        )
        with pytest.warns(UserWarning, match="zz-shadow::zz-shadowed"):
            assert registry.get_model_spec("zz-shadowed").family == "builtin"
        assert registry.get_model_spec("zz-shadow::zz-shadowed").family == "plugin"
        assert vganzoo.list_models("zz-shadowed") == ["zz-shadowed"]
    finally:
        registry.core._models.pop("zz-shadowed", None)


def test_autoload_can_be_disabled_and_reload_rescans(sandbox, monkeypatch):
    sandbox.add("zz-late", "zz_late", toy_source("zz-late-gan"), models=["zz-late-gan"])
    monkeypatch.setenv("VGANZOO_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert "zz-late-gan" not in vganzoo.list_models()
    with pytest.raises(vganzoo.UnknownModelError):
        vganzoo.create("zz-late-gan")
    monkeypatch.delenv("VGANZOO_DISABLE_PLUGIN_AUTOLOAD")
    assert "zz-late-gan" in vganzoo.list_models()
    vganzoo.create("zz-late-gan")
    plugins.reload()  # forgets registrations; the (already imported) module is restored on use
    assert vganzoo.create("zz-late-gan").sample(1, seed=0).shape[0] == 1


def test_plugin_components_are_namespaced(sandbox):
    source = """
import torch
import vganzoo

@vganzoo.register_component("generator", "zz/gen")
class ZZGen(torch.nn.Module):
    pass
"""
    sandbox.add("zz-comp", "zz_comp", source, components=["generator/zz/gen"])
    assert "zz/gen" in vganzoo.list_components("generator")
    assert vganzoo.get_component("generator", "zz/gen").__name__ == "ZZGen"
    assert vganzoo.get_component("generator", "zz-comp::zz/gen").__name__ == "ZZGen"


def test_example_plugin_installs_and_loads(tmp_path):
    """The example in examples/plugin-example is a real package: pip installs it, vganzoo finds it."""
    target, source = tmp_path / "site", tmp_path / "plugin-example"
    # Built from a copy: an in-tree build leaves vganzoo_toy.egg-info beside the example, and the other
    # tests that import the example from its folder would then also see it as an installed distribution.
    shutil.copytree(
        REPO / "examples" / "plugin-example",
        source,
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"),
    )
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--target",
        str(target),
        str(source),
    ]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
    code = (
        "import sys, vganzoo\n"
        "names = vganzoo.list_models('toy*')\n"
        "assert 'vganzoo_toy' not in sys.modules, 'listing imported the plugin'\n"
        "model = vganzoo.create('toy-gan', frames=3)\n"
        "v = model.sample(2, seed=0)\n"
        "assert tuple(v.shape) == (2, 3, 3, 16, 16), v.shape\n"
        "assert 'toy/mlp' in vganzoo.list_components('generator')\n"
        "print(names, vganzoo.model_info('toy-gan')['source'])\n"
    )
    env = {**__import__("os").environ, "PYTHONPATH": f"{target}{__import__('os').pathsep}{REPO}"}
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env, timeout=120
    )
    assert "['toy-gan'] vganzoo-toy" in out.stdout


# ---- plugins that live together -----------------------------------------------------------------
MIXING_SOURCE = """
import torch
from torch import nn
import vganzoo
from vganzoo.models.base import DiscriminatorOutput, VideoGAN

class Gen(nn.Module):
    num_classes = 0
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3 * 2 * 4 * 4)
    def sample_latents(self, n, *, generator, labels=None):
        return {"z": torch.randn(n, 4, generator=generator)}
    def forward(self, z):
        return self.fc(z).tanh().view(z.shape[0], 3, 2, 4, 4)

@vganzoo.register_component("discriminator", "zz/d3d")
class D3D(nn.Module):
    def __init__(self, **shared):
        super().__init__()
        self.w = nn.Parameter(torch.full((1,), SCALE))
    def forward(self, video, labels=None):
        return DiscriminatorOutput(video.flatten(1).mean(1, keepdim=True) * self.w)

MODEL = "zz-mix-gan"
if MODEL:
    @vganzoo.register_model(MODEL, default_config={"discriminators": ["zz/d3d"]})
    def build(discriminators):
        "a plugin model whose discriminators are components named in its config"
        discs = {f"d{i}": vganzoo.get_component("discriminator", n)() for i, n in enumerate(discriminators)}
        return VideoGAN(Gen(), discs)
"""


def _mixing_plugin(scale: float, model: str | None) -> str:
    return MIXING_SOURCE.replace("SCALE", repr(scale)).replace('MODEL = "zz-mix-gan"', f"MODEL = {model!r}")


class _Clips(torch.utils.data.Dataset):
    num_classes = 0

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> dict:
        return {
            "video": torch.rand(3, 2, 4, 4, generator=torch.Generator().manual_seed(i)) * 2 - 1,
            "label": -1,
        }


def test_saved_work_of_a_plugin_survives_another_plugin_claiming_its_component(sandbox, tmp_path):
    """A saved weight set and a run name their plugin components as dist::name, so a second plugin
    declaring the same component name later does not make them ambiguous; old bare names still load
    while there is no clash."""
    from vganzoo.train import train

    sandbox.add(
        "zz-first",
        "zz_first",
        _mixing_plugin(1.0, "zz-mix-gan"),
        models=["zz-mix-gan"],
        components=["discriminator/zz/d3d"],
    )
    model = vganzoo.create("zz-mix-gan")
    assert model.config == {"model": "zz-first::zz-mix-gan", "discriminators": ["zz-first::zz/d3d"]}
    folder = vganzoo.save_pretrained(model, tmp_path / "weights")
    # a folder saved by an older vganzoo, with the bare component name
    old = tmp_path / "old"
    shutil.copytree(folder, old)
    (old / "config.json").write_text(
        json.dumps({"model": "zz-first::zz-mix-gan", "discriminators": ["zz/d3d"]})
    )
    index = json.loads((old / "weights.json").read_text())
    index["sha256"]["config.json"] = vganzoo.hub.sha256_file(old / "config.json")
    (old / "weights.json").write_text(json.dumps(index))
    assert vganzoo.load(str(old), components="all").config["discriminators"] == ["zz-first::zz/d3d"]
    run = train(
        "zz-mix-gan", dataset=_Clips(), out=str(tmp_path / "run"), steps=1, batch_size=2, progress=False
    )
    assert run.step == 1

    sandbox.add("zz-second", "zz_second", _mixing_plugin(2.0, None), components=["discriminator/zz/d3d"])
    with pytest.raises(AmbiguousNameError, match="zz-first::zz/d3d.*zz-second::zz/d3d"):
        vganzoo.get_component("discriminator", "zz/d3d")
    loaded = vganzoo.load(str(folder), components="all")  # generator and discriminators
    assert loaded.discriminators["d0"].w.item() == 1.0  # the first plugin's component
    assert vganzoo.load(str(folder)).sample(1, seed=0).shape == (1, 3, 2, 4, 4)
    config = dict(model.config)
    assert vganzoo.create(config.pop("model"), **config).config == model.config
    run = train(
        "zz-mix-gan",
        dataset=_Clips(),
        out=str(tmp_path / "run"),
        steps=2,
        batch_size=2,
        resume=True,
        progress=False,
    )
    assert run.step == 2 and run.status == "completed"


def test_a_plugin_component_shadowed_by_a_builtin_is_warned_about(sandbox):
    source = """
import torch
import vganzoo

@vganzoo.register_component("discriminator", "mocogan/image")
class Impostor(torch.nn.Module):
    pass
"""
    sandbox.add("zz-impostor", "zz_impostor", source, components=["discriminator/mocogan/image"])
    with pytest.warns(UserWarning, match="zz-impostor::mocogan/image"):
        factory = vganzoo.get_component("discriminator", "mocogan/image")
    assert factory.__module__ == "vganzoo.models.mocogan"
    assert vganzoo.get_component("discriminator", "zz-impostor::mocogan/image").__name__ == "Impostor"


@pytest.mark.parametrize("returned", ["{}", "None", "torch.nn.Linear(2, 2)", "raise SystemExit(4)"])
def test_a_factory_returning_the_wrong_thing_names_the_plugin(sandbox, capsys, returned):
    from vganzoo.cli import main

    body = f"    {returned}\n" if returned.startswith("raise") else f"    return {returned}\n"
    source = f"""
import torch
import vganzoo

@vganzoo.register_model("zz-wrong-gan", default_config={{}})
def build():
    "returns the wrong thing"
{body}
@vganzoo.register_component("discriminator", "zz/wrong")
def wrong_disc(**shared):
{body}"""
    sandbox.add(
        "zz-wrong", "zz_wrong", source, models=["zz-wrong-gan"], components=["discriminator/zz/wrong"]
    )
    with pytest.raises(PluginError, match="plugin 'zz-wrong'") as err:
        vganzoo.create("zz-wrong-gan")
    assert (
        ("SystemExit" in str(err.value)) if "SystemExit" in returned else ("not a VideoGAN" in str(err.value))
    )
    with pytest.raises(PluginError, match="plugin 'zz-wrong'"):
        vganzoo.create("mocogan-rnn", discriminators=["mocogan/image", "zz/wrong"])
    assert main(["sample", "zz-wrong-gan", "--out", str(sandbox.root / "x.gif")]) == 2
    err_lines = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("warning:")]
    assert len(err_lines) == 1 and "plugin 'zz-wrong'" in err_lines[0]


def test_list_names_a_broken_plugin_and_why(sandbox, capsys):
    from vganzoo.cli import main

    sandbox.add("zz-crashy", "zz_crashy", "raise ImportError('needs libfoo')\n", models=["zz-crashy-gan"])
    assert main(["list", "zz-*"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("zz-crashy-gan"))
    assert "zz-crashy" in row.split("unavailable:")[1] and "needs libfoo" in row


def test_the_example_plugins_pieces_mix_with_builtins():
    import train_helpers  # noqa: F401  (imports the example plugin from its folder)

    model = vganzoo.create("mocogan-rnn", resolution=32, discriminators=["mocogan/image", "toy/frame-mean"])
    assert set(model.discriminators) == {"image", "video"}
    video = model.sample(2, seed=0)
    assert model.discriminators["video"](video).logits.shape == (2, 1)
    # and a built-in discriminator in a plugin-style model's place: the toy model's clips scored by it
    toy_video = vganzoo.create("toy-gan", resolution=32, frames=16, channels=3).sample(2, seed=0)
    assert model.discriminators["image"](toy_video).logits.shape[0] == 2


def test_a_plugin_module_imported_directly_is_still_that_plugins(sandbox):
    """`import plugin.module` before vganzoo loads it registers under the plugin's name (not as a
    built-in that 'wins' over the plugin), and a later load, after reload(), gets the same names."""
    import importlib
    import warnings

    source = toy_source("zz-direct-gan") + (
        '\n@vganzoo.register_component("discriminator", "zz/direct")\nclass ZZDirect(Disc):\n    pass\n'
    )
    sandbox.add(
        "zz-direct", "zz_direct", source, models=["zz-direct-gan"], components=["discriminator/zz/direct"]
    )
    importlib.import_module("zz_direct")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "the built-in wins" about a model no built-in has
        assert registry.get_model_spec("zz-direct-gan").source == "zz-direct"
        assert vganzoo.create("zz-direct-gan").config["model"] == "zz-direct::zz-direct-gan"
    assert "zz-direct-gan" not in registry.core._models
    plugins.reload()  # the module stays imported: loading it again must not come back empty
    assert vganzoo.create("zz-direct-gan").sample(1, seed=0).shape == (1, 3, 2, 4, 4)
    assert vganzoo.get_component("discriminator", "zz-direct::zz/direct").__name__ == "ZZDirect"
    assert plugins.errors() == []
