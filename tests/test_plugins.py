"""Third-party plugins through entry points: discovery, lazy import, failures and clashes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
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
        registry._models.pop("zz-shadowed", None)


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
