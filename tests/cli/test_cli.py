"""The command line: a thin layer with tables, JSON, --help and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from plugin_utils import toy_source

import vganzoo
from vganzoo import registry
from vganzoo.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def toy_model():
    exec(compile(toy_source("zz-cli-gan", family="clitest"), "<cli>", "exec"), {})
    yield "zz-cli-gan"
    registry.core._models.pop("zz-cli-gan", None)


def test_list_prints_a_table(toy_model, capsys):
    assert main(["list", "zz-cli-*"]) == 0
    out = capsys.readouterr().out
    assert "name" in out.splitlines()[0] and "zz-cli-gan" in out and "clitest" in out


def test_list_json(toy_model, capsys):
    assert main(["list", "zz-cli-*", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == ["zz-cli-gan"]
    assert main(["list", "cli-g", "--json"]) == 0  # a word without wildcards: names containing it
    assert json.loads(capsys.readouterr().out) == ["zz-cli-gan"]
    assert main(["list", "cli-g?n", "--json"]) == 0  # a wildcard: the whole name
    assert json.loads(capsys.readouterr().out) == []


def test_list_pretrained_shows_each_weight_set_with_its_recorded_scores(capsys, monkeypatch):
    """Scores come from the weight set's card (its pinned weights.json), beside real data's and the
    random-weights model's; a set whose files are not here says so, without a download."""
    from vganzoo.registry import PretrainedSpec

    remote = PretrainedSpec(tag="elsewhere", repo_id="nobody/nothing", revision="0" * 40)
    monkeypatch.setitem(registry.get_model_spec("tgan").pretrained, "elsewhere", remote)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["list", "--pretrained"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("mocogan-rnn.digits "))
    assert "fvd_digits 139.6 (0.8698, 591.9)" in row and "frame_score 0.7901 (0.9962, 0)" in row
    assert "moving-digits, 32, 16" in row
    other = next(line for line in out.splitlines() if line.startswith("tgan.elsewhere "))
    assert "none recorded" in other


def test_an_empty_pretrained_listing_names_the_models_that_matched(capsys):
    """`list --pretrained 'tgan*'` must not read as if tgan did not exist."""
    assert main(["list", "--pretrained", "tgan*"]) == 0
    assert capsys.readouterr().out.strip() == (
        "no weight set matches 'tgan*' (models matching it: tgan; it has no pretrained weights)"
    )
    assert main(["list", "--pretrained", "zz-nothing*"]) == 0
    assert "no model does" in capsys.readouterr().out


def test_info_shows_parameters_and_config(toy_model, capsys):
    assert main(["info", "zz-cli-gan"]) == 0
    out = capsys.readouterr().out
    assert "frames" in out and "generator" in out and "total" in out
    assert main(["info", "zz-cli-gan", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["default_config"] == {"frames": 2, "size": 4}


def test_user_error_is_one_line_exit_2(capsys):
    assert main(["info", "no-such-model"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vganzoo info: error: unknown model 'no-such-model'")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    # the hint names the command, not the Python call the library's message names
    assert "(`vganzoo list` lists them all)" in err and "list_models()" not in err
    with pytest.raises(vganzoo.UnknownModelError, match=r"vganzoo\.list_models\(\) lists them all"):
        vganzoo.create("no-such-model")


def test_help_everywhere():
    from vganzoo.cli import SUBCOMMAND_MODULES, build_parser

    parser = build_parser()
    assert SUBCOMMAND_MODULES
    for command in parser._subparsers._group_actions[0].choices:
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0


def test_import_is_quiet_offline_and_compiles_nothing():
    """`import vganzoo; list_models()` prints nothing else, loads no hub client and no compiler."""
    code = (
        "import sys, vganzoo\n"
        "print(vganzoo.list_models())\n"
        "assert 'huggingface_hub' not in sys.modules, 'import pulled in huggingface_hub'\n"
        "assert 'torch.utils.cpp_extension' not in sys.modules, 'import loaded the JIT compiler'\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith("[")
    # only warnings we emit on purpose (missing extension) may appear, never compiler output
    assert all("vganzoo" in line or not line.strip() for line in out.stderr.splitlines()), out.stderr


def test_python_dash_m_entry_point():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-m", "vganzoo", "--version"], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0 and out.stdout.startswith("vganzoo ")


def test_info_of_a_weight_set_describes_those_weights(capsys):
    """`info arch.tag` counts and lists the weight set's config (32 px, 1 channel, 10 classes for the
    bundled digits weights), not the architecture's defaults."""
    assert main(["info", "mocogan-rnn.digits", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["weights"] == "mocogan-rnn.digits"
    assert (info["config"]["resolution"], info["config"]["channels"], info["config"]["num_classes"]) == (
        32,
        1,
        10,
    )
    loaded = vganzoo.load("mocogan-rnn.digits", components="all")
    assert info["parameters"]["total"] == sum(p.numel() for p in loaded.parameters())
    # an architecture name describes its default config: no "weights", its weight sets under "pretrained"
    arch = vganzoo.model_info("mocogan-rnn")
    assert (
        arch["weights"] is None and list(arch["pretrained"]) == ["digits"] and arch["default_tag"] == "digits"
    )
    assert main(["info", "mocogan-rnn"]) == 0
    out = capsys.readouterr().out
    assert (
        "default config:" in out and "weights" not in out.split("default config:")[1].split("pretrained:")[0]
    )


def test_eval_out_never_replaces_a_file_the_evaluation_reads(tmp_path, capsys):
    folder = vganzoo.hub.save_pretrained(
        vganzoo.create("tgan", resolution=32, width=0.125), str(tmp_path / "w")
    )
    config = folder / "config.json"
    before = config.read_bytes()
    detector = tmp_path / "det.safetensors"
    detector.write_bytes(b"x" * 64)
    for out, extra in ((config, []), (detector, ["--extractor", str(detector)]), (folder / "new.json", [])):
        argv = ["eval", str(folder), "--data", "moving-digits", "--metric", "fvd-digits", "--n", "4"]
        assert main([*argv, *extra, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "--out: " in err and "which the evaluation reads" in err and "Traceback" not in err
    assert config.read_bytes() == before and detector.read_bytes() == b"x" * 64
    assert not (folder / "new.json").exists()


def test_eval_on_moving_digits_defaults_to_the_offline_fvd_digits(tmp_path, capsys):
    folder = vganzoo.hub.save_pretrained(
        vganzoo.create("tgan", resolution=32, width=0.125), str(tmp_path / "w")
    )
    out = tmp_path / "scores.json"
    argv = ["eval", str(folder), "--data", "moving-digits", "--n", "4", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    assert "fvd_digits" in json.loads(out.read_text())["scores"]


def test_errors_give_command_line_advice_not_python_calls(capsys):
    assert main(["download", "vgan"]) == 2
    err = capsys.readouterr().err
    assert "vgan has no pretrained weights; sample or evaluate it with --random-weights" in err
    assert "vganzoo.create" not in err


@pytest.mark.parametrize("flag", ["--n", "--n-real"])
def test_eval_counts_are_bounded_at_parse_time(flag, capsys):
    assert main(["eval", "tgan", "--random-weights", "--data", "moving-digits", flag, "100000000"]) == 2
    assert f"argument {flag}: expected an integer from 1 to 1000000" in capsys.readouterr().err
