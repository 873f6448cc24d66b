"""Without a network: a Hub that cannot be reached fails at once with advice that fits (no retries for
half a minute, no "turn offline mode off" when it was never on), cached files still load, and pushing
says so in one line."""

from __future__ import annotations

import time

import huggingface_hub.constants
import pytest
from test_hub import MODEL, online, published, tiny_model, trained  # noqa: F401 (fixtures)

import vganzoo
from vganzoo import hub
from vganzoo.cli import main
from vganzoo.hub import fetch

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens there
FAST_S = 5.0  # huggingface_hub's own retries take ~24 s before they give up


@pytest.fixture
def network_allowed(monkeypatch):
    """Offline mode (forced by conftest) lifted, as on a user's machine; no cached reachability."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(fetch, "_REACHABILITY", {})


def test_an_unreachable_hub_fails_fast_with_the_right_advice(network_allowed, tmp_path):
    start = time.monotonic()
    with pytest.raises(hub.WeightsNotFoundError) as info:
        vganzoo.load("hf-hub:org/repo", endpoint=UNREACHABLE, cache_dir=tmp_path)
    assert time.monotonic() - start < FAST_S
    message = str(info.value)
    assert f"the Hub at {UNREACHABLE} cannot be reached (127.0.0.1:9: Connection refused)" in message
    assert "check the network connection" in message.lower()
    assert "offline mode" not in message  # it was never on


def test_offline_mode_is_named_only_when_it_is_on(published, monkeypatch):  # noqa: F811
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(hub.WeightsNotFoundError, match="offline mode is on.*Turn offline mode off"):
        vganzoo.load(f"{MODEL}.tiny", cache_dir=published.cache, endpoint=published.server.url)


def test_cached_files_load_when_the_hub_cannot_be_reached(published, monkeypatch):  # noqa: F811
    first = vganzoo.load(f"{MODEL}.tiny", cache_dir=published.cache, endpoint=published.server.url)
    monkeypatch.setattr(fetch, "_REACHABILITY", {})
    start = time.monotonic()
    again = vganzoo.load(f"{MODEL}.tiny", cache_dir=published.cache, endpoint=UNREACHABLE)
    assert time.monotonic() - start < FAST_S
    assert all(
        (a == b).all() for a, b in zip(first.state_dict().values(), again.state_dict().values(), strict=True)
    )


def test_push_to_an_unreachable_hub_is_one_line(network_allowed, trained, capsys):  # noqa: F811
    _model, folder = trained
    start = time.monotonic()
    assert main(["push", str(folder), "org/repo", "--endpoint", UNREACHABLE]) == 2
    assert time.monotonic() - start < FAST_S
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vganzoo push: error: push_to_hub: the Hub at")
    assert "cannot be reached" in err[0]


def test_a_failing_upload_is_one_line(online, trained, monkeypatch, capsys):  # noqa: F811
    """An error from the Hub during the upload (here: the server breaks mid-commit) is one line."""
    _model, folder = trained

    def broken(*args, **kwargs):
        raise RuntimeError("HTTP 500 Internal Server Error\nfor url: .../commit/main\nmore lines")

    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", broken)
    assert main(["push", str(folder), "org/repo", "--endpoint", online.url]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "vganzoo push: error: push_to_hub: uploading to org/repo at "
        f"{online.url} failed: HTTP 500 Internal Server Error for url: .../commit/main more lines"
    ]
