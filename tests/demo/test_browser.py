"""The demo page in headless Chromium: it renders the model list, generates, and plays the clips.

Drives Debian's Chromium (/usr/bin/chromium, or CHROMIUM) with playwright-core from npm
(``npm ci --prefix tests/demo/browser``; it downloads no browser). The screenshot it takes is
docs/demo.png when VGANZOO_DEMO_SCREENSHOT names that file:

    VGANZOO_DEMO_SCREENSHOT=$PWD/docs/demo.png python -m pytest tests/demo/test_browser.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from demo_support import HERE, require

pytestmark = pytest.mark.slow
BROWSER_DIR = HERE / "browser"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PAGE_TIMEOUT = 600  # seconds for the whole page check (a cold Chromium on a busy box is slow)


def _browser_available() -> None:
    require(Path(CHROMIUM).is_file(), f"no Chromium at {CHROMIUM}: apt-get install chromium or set CHROMIUM")
    require(shutil.which("node") is not None, "no node: the page check runs playwright-core on Node.js")
    require(
        (BROWSER_DIR / "node_modules" / "playwright-core").is_dir(),
        f"playwright-core not installed: npm ci --prefix {BROWSER_DIR.relative_to(HERE.parents[1])}",
    )


def test_the_page_renders_the_model_list_and_plays_generated_clips(demo_server, weight_folders, tmp_path):
    _browser_available()
    screenshot = Path(os.environ.get("VGANZOO_DEMO_SCREENSHOT") or tmp_path / "demo.png")
    run = subprocess.run(
        ["node", str(BROWSER_DIR / "check_page.mjs"), demo_server.url, str(screenshot)],
        capture_output=True,
        text=True,
        timeout=PAGE_TIMEOUT,
        env={**os.environ, "CHROMIUM": CHROMIUM},
    )
    assert run.returncode == 0, f"page check failed:\n{run.stderr}\n{run.stdout}\n{demo_server.log()}"
    report = json.loads(run.stdout.strip().splitlines()[-1])

    # the model list: the bundled weight set and both folders named on the command line
    models = [line.strip() for text in report["models"] for line in text.splitlines() if line.strip() != "✓"]
    assert report["model_value"] == "mocogan-rnn.digits (bundled)"
    assert models[0] == "mocogan-rnn.digits (bundled)"
    assert any(m.startswith("digits-copy (folder ") for m in models)
    assert any(m.startswith("broken-run (folder ") for m in models)
    assert "family mocogan" in report["summary"] and report["title"] == "vganzoo demo"

    # a generated video, decoded and playing in the page, showing digits (not one flat colour)
    video = report["video"]
    assert video["src"].startswith(demo_server.url) and video["src"].endswith("_seed7_9clips.mp4")
    assert video["ready_state"] >= 2 and not video["paused"]
    grid = 3 * (32 + 2) + 2  # 3x3 clips of 32x32, 2 pixels apart, upscaled 4 times
    assert (video["width"], video["height"]) == (4 * grid, 4 * grid)
    assert video["duration"] == pytest.approx(16 / 8, abs=0.2)
    assert video["pixel_std"] > 10, video
    assert video["shown_width"] > 300
    assert "9 clips" in report["caption"] and "seed 7" in report["caption"]
    downloads = report["downloads"].replace("\n", "")  # the page breaks a name before its extension
    for name in ["mocogan-rnn.digits_seed7_9clips.mp4", "mocogan-rnn.digits_seed7_9clips.gif"]:
        assert name in downloads

    # offline: every request the page made went to the demo server, and nothing failed
    outside = [url for url in report["requests"] if not url.startswith(demo_server.url)]
    assert outside == [], outside
    assert report["page_errors"] == [] and report["console_errors"] == [], report
    assert demo_server.refused_network() == [], demo_server.log()

    data = screenshot.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 20_000
