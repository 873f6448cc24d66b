"""`vganzoo serve`: its arguments and its one-line errors (the page itself: tests/demo/)."""

from __future__ import annotations

import sys

import pytest

from vganzoo.cli import main


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err.strip()


def test_help_names_every_option(capsys):
    with pytest.raises(SystemExit) as info:
        main(["serve", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for option in ["FOLDER", "--host", "--port", "--models", "--share", "--device", "vganzoo[demo]"]:
        assert option in out


def test_a_folder_that_does_not_exist_is_refused(capsys, tmp_path):
    assert main(["serve", str(tmp_path / "no-such-run")]) == 2
    err = _one_line_error(capsys)
    assert err.startswith("vganzoo serve: error: ") and ("not a folder" in err or "vganzoo[demo]" in err)


def test_a_pattern_that_matches_nothing_is_refused(capsys):
    assert main(["serve", "--models", "no-such-gan.*"]) == 2
    err = _one_line_error(capsys)
    assert "no weight set matches 'no-such-gan.*'" in err or "vganzoo[demo]" in err


def test_without_gradio_it_names_the_extra(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio -> ImportError
    assert main(["serve"]) == 2
    assert _one_line_error(capsys) == (
        "vganzoo serve: error: the demo needs Gradio: pip install 'vganzoo[demo]'"
    )


def test_share_takes_yes_or_no(capsys):
    assert main(["serve", "--share", "maybe"]) == 2
    assert "invalid choice" in capsys.readouterr().err
