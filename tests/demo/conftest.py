"""The demo's test fixtures: weight-set folders, and one `vganzoo serve` shared by the server tests.

The server runs in a subprocess through ``offline_serve.py``, which refuses (and logs) every
network lookup or connection that is not loopback, so the tests show the page works offline.
Tests that need Gradio or the browser skip when those are absent; with VGANZOO_REQUIRE_DEMO_TESTS=1
(CI sets it) they fail instead, so CI cannot pass by skipping them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from demo_support import BUNDLED, Server, require_gradio


@pytest.fixture(scope="session")
def weight_folders(tmp_path_factory) -> dict[str, Path]:
    """``{"copy": a copy of the bundled weight set, "broken": a folder that is not one}``."""
    from vganzoo import hub

    root = tmp_path_factory.mktemp("weights")
    bundled = hub.download(BUNDLED, components="all")["config"].parent
    copy = shutil.copytree(bundled, root / "digits-copy")
    broken = root / "broken-run"
    broken.mkdir()
    (broken / "weights.json").write_text(json.dumps({"format": "not-vganzoo"}))
    return {"copy": Path(copy), "broken": broken}


@pytest.fixture(scope="session")
def demo_server(weight_folders, tmp_path_factory):
    """One `vganzoo serve` with the bundled weight set, a copy of it and a broken folder."""
    require_gradio()
    net_log = tmp_path_factory.mktemp("net") / "refused.log"
    server = Server([str(weight_folders["copy"]), str(weight_folders["broken"])], net_log)
    yield server
    code = server.stop()
    assert code == 0, f"vganzoo serve exited with {code} on SIGTERM:\n{server.log()}"
