"""`vganzoo serve` driven through gradio_client: generate, interpolate, bad inputs, files, offline.

One server (tests/demo/conftest.py) lists the bundled weight set, a copy of it in a folder and a
broken folder. The returned videos are decoded and compared with what the library samples.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest
import torch
from demo_grids import cells, decode, to_gray_uint8
from demo_support import REPO

import vganzoo
from vganzoo.sampling import latent_walk

pytestmark = pytest.mark.slow
BUNDLED = "mocogan-rnn.digits"
MP4_TOLERANCE = 12  # mean absolute difference (of 255) allowed by lossy H.264 at crf 18 on 32x32 digits


@pytest.fixture(scope="module")
def client(demo_server):
    from gradio_client import Client

    return Client(demo_server.url, verbose=False, analytics_enabled=False)


@pytest.fixture(scope="module")
def model():
    return vganzoo.load(BUNDLED)


def _video_path(value):
    return value["video"] if isinstance(value, dict) else value  # older clients wrap the path


def _not_blank(clips: torch.Tensor) -> None:
    """Every clip has bright strokes on a dark background: a spread of values, and motion."""
    flat = clips.float().flatten(2)  # (rows, columns, T*h*w)
    assert (flat.std(-1) > 10).all(), f"blank clips: std per clip {flat.std(-1)}"
    moves = (clips[..., 1:, :, :].float() - clips[..., :-1, :, :].float()).abs().mean((-1, -2, -3))
    assert (moves > 0.5).all(), f"clips that do not move: {moves}"


def test_generate_returns_the_clips_the_library_samples(client, model):
    video, files, caption, details = client.predict(BUNDLED, 3, 4, "5", 16, 8, api_name="/generate")
    assert details["clips"] == 4 and details["labels"] == [5, 5, 5, 5] and details["frames"] == 16
    assert "seed 3" in caption and "class 5" in caption
    frames = decode(_video_path(video))
    height, width = details["video_size"]
    assert frames.shape == (16, height + height % 2, width + width % 2)  # H.264 pads odd sizes
    grid = cells(frames, details)
    assert grid.shape == (2, 2, 16, 32, 32)
    _not_blank(grid)
    expected = to_gray_uint8(model.sample(4, seed=3, labels=5)).reshape(2, 2, 16, 32, 32)
    assert (grid.float() - expected.float()).abs().mean() < MP4_TOLERANCE
    # the GIF download is lossless for gray: exactly the library's clips
    (gif,) = [f for f in files if f.endswith(".gif")]
    assert torch.equal(cells(decode(gif), details), expected)
    assert any(f.endswith(".mp4") for f in files)


def test_generate_longer_clips_where_the_family_allows(client):
    video, _files, _caption, details = client.predict(BUNDLED, 0, 2, "random", 40, 12, api_name="/generate")
    frames = decode(_video_path(video))
    assert frames.shape[0] == 40 == details["frames"] and details["fps"] == 12
    _not_blank(cells(frames, details))


def test_interpolate_walks_content_then_motion(client, model):
    video, files, caption, details = client.predict(BUNDLED, 2, 9, 4, "7", 8, api_name="/interpolate")
    assert details["walks"] == ["content walk, motion fixed", "motion walk, content fixed"]
    assert (details["rows"], details["columns"], details["label"]) == (2, 4, 7)
    assert "Seed 2 → seed 9" in caption
    grid = cells(decode(_video_path(video)), details).float()
    assert grid.shape == (2, 4, 16, 32, 32)
    _not_blank(grid)
    # both walks start from seed 2's latents, and end in different places
    assert (grid[0, 0] - grid[1, 0]).abs().mean() < 2
    assert (grid[0, -1] - grid[1, -1]).abs().mean() > 5
    assert all((grid[0, i + 1] - grid[0, i]).abs().mean() > 0.5 for i in range(3))  # it moves
    (gif,) = [f for f in files if f.endswith(".gif")]
    walk, _rows = latent_walk(model, 4, seed=2, end_seed=9, labels=7)
    expected = to_gray_uint8(walk).reshape(2, 4, 16, 32, 32)
    assert torch.equal(cells(decode(gif), details), expected)


def test_a_folder_named_on_the_command_line_is_listed_and_loads(client, demo_server, weight_folders):
    name = f"local-dir:{weight_folders['copy']}"
    summary, *_ = client.predict(name, api_name="/describe")
    assert "family **mocogan**" in summary and "folder" in summary
    _video, files, _caption, details = client.predict(name, 3, 4, "5", 16, 8, api_name="/generate")
    bundled = client.predict(BUNDLED, 3, 4, "5", 16, 8, api_name="/generate")
    gif = next(f for f in files if f.endswith(".gif"))
    bundled_gif = next(f for f in bundled[1] if f.endswith(".gif"))
    assert torch.equal(decode(gif), decode(bundled_gif))  # the same weights, the same clips
    assert details["weights"] == name


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ((BUNDLED, 0, 4, "12", 16, 8), "class label (the digit (0-9)) must be from 0 to 9, got 12"),
        ((BUNDLED, 0, 4, "three", 16, 8), "class label"),
        ((BUNDLED, -1, 4, "random", 16, 8), "minimum"),
        ((BUNDLED, 2**40, 4, "random", 16, 8), "maximum"),
        ((BUNDLED, 0, 10**9, "random", 16, 8), "maximum"),
        ((BUNDLED, 0, 4, "random", 10**6, 8), "maximum"),
        ((BUNDLED, 0, 4, "random", 16, 0), "minimum"),
        (("local-dir:/etc", 0, 4, "random", 16, 8), "not in the list of choices"),
    ],
)
def test_bad_inputs_are_refused_with_a_message(client, inputs, message):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as info:
        client.predict(*inputs, api_name="/generate")
    assert message in str(info.value)


def test_inputs_gradio_refuses_leave_no_traceback_in_the_server_log(client, demo_server):
    """Out of a slider's range is the user's doing: a message in the page, not a server traceback."""
    from gradio_client.exceptions import AppError

    before = len(demo_server.log())
    with pytest.raises(AppError, match="maximum"):
        client.predict(BUNDLED, 0, 500, "random", 16, 8, api_name="/generate")
    time.sleep(1.0)  # the server writes its log from another thread
    assert "Traceback" not in demo_server.log()[before:], demo_server.log()[before:]


def test_an_unloadable_folder_says_why_and_the_server_keeps_serving(client, weight_folders):
    from gradio_client.exceptions import AppError

    name = f"local-dir:{weight_folders['broken']}"
    summary, *_ = client.predict(name, api_name="/describe")
    assert summary.startswith("**Cannot use this weight set.**") and "not a vganzoo weight index" in summary
    with pytest.raises(AppError, match="cannot load broken-run"):
        client.predict(name, 0, 4, "random", 16, 8, api_name="/generate")
    with pytest.raises(AppError, match="cannot load broken-run"):
        client.predict(name, 0, 1, 3, "random", 8, api_name="/interpolate")
    _video, _files, _caption, details = client.predict(BUNDLED, 1, 1, "random", 16, 8, api_name="/generate")
    assert details["clips"] == 1


def test_the_server_serves_no_file_it_did_not_make(demo_server, weight_folders):
    for path in ["/etc/passwd", str(weight_folders["copy"] / "config.json"), str(REPO / "pyproject.toml")]:
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"{demo_server.url}gradio_api/file={path}", timeout=30)
        assert info.value.code in (403, 404)


def test_the_server_made_no_network_access(demo_server, client):
    client.predict(BUNDLED, 0, 1, "random", 16, 8, api_name="/generate")
    assert demo_server.refused_network() == [], demo_server.log()
    assert "vganzoo/demo" not in demo_server.log(), demo_server.log()  # no traceback from the demo


def test_a_port_in_use_is_a_one_line_error(demo_server, capsys):
    from vganzoo.cli import main

    assert main(["serve", "--models", BUNDLED, "--port", str(demo_server.port)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vganzoo serve: error: ") and str(demo_server.port) in err
    assert len(err.splitlines()) == 1
