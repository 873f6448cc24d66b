"""The demo's library part without Gradio: the catalog, the checks and limits, the video files."""

from __future__ import annotations

import dataclasses
import sys

import pytest
import torch
from demo_grids import cells, decode, to_gray_uint8

from vganzoo.demo import Catalog, DemoError, Limits, generate, interpolate
from vganzoo.demo.catalog import parse_card
from vganzoo.sampling import latent_walk

pytestmark = pytest.mark.usefixtures("one_thread")
BUNDLED = "mocogan-rnn.digits"


@pytest.fixture(scope="module")
def catalog(weight_folders):
    return Catalog(BUNDLED, [weight_folders["copy"], weight_folders["broken"]], device="cpu")


@pytest.fixture(scope="module")
def digits(catalog):
    return catalog.get(BUNDLED)


def test_the_catalog_lists_registered_weight_sets_then_the_folders(catalog, weight_folders):
    names = list(catalog.entries)
    assert names == [
        BUNDLED,
        f"local-dir:{weight_folders['copy']}",
        f"local-dir:{weight_folders['broken']}",
    ]
    assert catalog.choices()[0] == ("mocogan-rnn.digits (bundled)", BUNDLED)
    assert catalog.entries[names[1]].source == "folder"


def test_what_the_page_knows_about_the_bundled_weights(digits):
    assert (digits.num_classes, digits.frames, digits.resolution, digits.channels) == (10, 16, 32, 1)
    assert digits.variable_frames and digits.splits_content_and_motion and digits.family == "mocogan"
    assert digits.class_names == "the digit (0-9)" and digits.fps == 8
    assert digits.card.startswith("# mocogan-rnn.digits") and "## Evaluation" in digits.card
    scores = dict(digits.scores)
    assert scores["fvd_digits"] == {"this model": 139.6347, "real data": 0.8698, "random weights": 591.8605}
    assert 0 < digits.seconds_per_frame < 10


def test_loading_is_cached_per_weight_set(weight_folders):
    catalog = Catalog(BUNDLED, [weight_folders["copy"]], device="cpu", cached_models=1)
    first = catalog.get(BUNDLED)
    assert catalog.get(BUNDLED) is first
    folder = catalog.get(f"local-dir:{weight_folders['copy']}")
    assert catalog.loaded_names() == [folder.entry.name]  # the least recently used one went
    assert catalog.get(BUNDLED) is not first


def test_the_catalog_loads_only_its_own_names(catalog, tmp_path):
    for name in ["local-dir:/etc", "mocogan-rnn", f"local-dir:{tmp_path}", None, 3]:
        with pytest.raises(DemoError, match="unknown weight set"):
            catalog.get(name)


def test_an_unloadable_folder_is_listed_and_says_why(catalog, weight_folders):
    with pytest.raises(DemoError, match=r"cannot load broken-run .*not a vganzoo weight index"):
        catalog.get(f"local-dir:{weight_folders['broken']}")


def test_bad_catalog_arguments(tmp_path):
    with pytest.raises(DemoError, match="not a folder"):
        Catalog(BUNDLED, [tmp_path / "missing"])
    with pytest.raises(DemoError, match="no weight set matches 'nothing-\\*'"):
        Catalog("nothing-*")
    with pytest.raises(DemoError, match="device"):
        Catalog(BUNDLED, device="tpu")


def test_generate_writes_the_clips_vganzoo_sample_draws(digits, tmp_path):
    result = generate(digits, seed=4, clips=4, label="2", frames=None, fps=10, out_dir=tmp_path)
    assert result.mp4.name == "mocogan-rnn.digits_seed4_4clips.mp4" and result.mp4.is_file()
    details = result.details
    assert (details["rows"], details["columns"], details["labels"], details["fps"]) == (2, 2, [2] * 4, 10)
    expected = to_gray_uint8(digits.model.sample(4, seed=4, labels=2)).reshape(2, 2, 16, 32, 32)
    assert torch.equal(cells(decode(result.gif), details), expected)  # GIF keeps gray exactly
    mp4 = decode(result.mp4)
    assert mp4.shape[0] == 16 and (cells(mp4, details).float() - expected.float()).abs().mean() < 12


def test_generate_draws_other_lengths_where_the_family_allows(digits, tmp_path):
    result = generate(digits, seed=0, clips=2, label=None, frames=30, out_dir=tmp_path)
    assert decode(result.mp4).shape[0] == 30 and result.details["frames"] == 30
    assert "classes drawn at random" in result.caption
    fixed = dataclasses.replace(digits, variable_frames=False)
    with pytest.raises(DemoError, match="16 frames only"):
        generate(fixed, seed=0, clips=2, frames=30, out_dir=tmp_path)
    assert generate(fixed, seed=0, clips=1, frames=16, out_dir=tmp_path).details["frames"] == 16


def test_interpolate_is_the_latent_walk_between_the_two_seeds(digits, tmp_path):
    result = interpolate(digits, seed=5, end_seed=11, steps=3, label=1, out_dir=tmp_path)
    walk, _rows = latent_walk(digits.model, 3, seed=5, end_seed=11, labels=1)
    expected = to_gray_uint8(walk).reshape(2, 3, 16, 32, 32)
    assert torch.equal(cells(decode(result.gif), result.details), expected)
    assert result.details["walks"] == ["content walk, motion fixed", "motion walk, content fixed"]
    assert result.gif.name == "mocogan-rnn.digits_walk_seed5-to-11.gif"


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"seed": -1}, "seed must be from 0 to 4294967295, got -1"),
        ({"seed": 2**32}, "seed must be from 0"),
        ({"seed": 1.5}, "seed must be a whole number"),
        ({"seed": float("nan")}, "seed must be a whole number"),
        ({"seed": True}, "seed must be a whole number"),
        ({"seed": "seven"}, "seed must be a whole number"),
        ({"clips": 0}, "number of clips must be from 1 to 16"),
        ({"clips": 10**12}, "number of clips must be from 1 to 16"),
        ({"label": "10"}, r"class label \(the digit \(0-9\)\) must be from 0 to 9, got 10"),
        ({"label": -1}, "class label"),
        ({"label": "two"}, "class label"),
        ({"frames": 0}, "frames must be from 1 to 64"),
        ({"frames": 10**9}, "frames must be from 1 to 64"),
        ({"fps": 0}, "fps must be from 1 to 60"),
        ({"fps": float("inf")}, "fps must be a number"),
    ],
)
def test_bad_values_are_refused_before_sampling(digits, tmp_path, request_, message):
    values = {"seed": 0, "clips": 2, "label": "random", "frames": 16, "fps": 8, **request_}
    with pytest.raises(DemoError, match=message):
        generate(digits, **values, out_dir=tmp_path)
    assert not any(tmp_path.iterdir())  # nothing was written


def test_integral_values_arrive_as_floats_or_strings(digits, tmp_path):
    result = generate(digits, seed="3", clips=2.0, label=4.0, frames=16.0, fps=8.0, out_dir=tmp_path)
    assert (result.details["seed"], result.details["clips"], result.details["labels"]) == (3, 2, [4, 4])


def test_an_unconditional_model_takes_no_label(digits, tmp_path):
    unconditional = dataclasses.replace(digits, num_classes=0)
    with pytest.raises(DemoError, match="unconditional"):
        generate(unconditional, seed=0, clips=1, label="3", out_dir=tmp_path)


def test_requests_over_the_time_or_memory_budget_are_refused(digits, tmp_path):
    with pytest.raises(DemoError, match=r"too long: 16 clips of 64 frames would take about \d+ s"):
        generate(digits, seed=0, clips=16, frames=64, out_dir=tmp_path, limits=Limits(max_seconds=1e-6))
    with pytest.raises(DemoError, match="too much memory: 16 clips of 64 frames at 32x32 are 1,048,576"):
        generate(digits, seed=0, clips=16, frames=64, out_dir=tmp_path, limits=Limits(max_values=10**6))
    with pytest.raises(DemoError, match="too long: 12 clips"):
        interpolate(digits, seed=0, end_seed=1, steps=6, out_dir=tmp_path, limits=Limits(max_seconds=1e-6))
    with pytest.raises(DemoError, match="steps must be from 2 to 10"):
        interpolate(digits, seed=0, end_seed=1, steps=11, out_dir=tmp_path)


def test_running_out_of_memory_is_a_message(digits, tmp_path, monkeypatch):
    def no_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(digits.model, "sample", no_memory)
    with pytest.raises(DemoError, match="out of memory while sampling"):
        generate(digits, seed=0, clips=1, out_dir=tmp_path)


def test_parse_card_drops_the_yaml_header():
    assert parse_card("---\nlicense: x\n---\n\n# Title\ntext") == "# Title\ntext"
    assert parse_card("# No header") == "# No header"


def test_building_the_page_without_gradio_names_the_extra(monkeypatch):
    from vganzoo.demo import build_app

    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio -> ImportError
    with pytest.raises(DemoError, match=r"pip install 'vganzoo\[demo\]'"):
        build_app(Catalog(BUNDLED))


def test_old_request_folders_go_but_nothing_else_in_the_output_folder(tmp_path):
    import os
    import time

    from vganzoo.demo.clips import KEEP_SECONDS, new_request_folder

    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "a.jpg").write_text("x")
    old_request = tmp_path / "request-old"
    old_request.mkdir()
    long_ago = time.time() - 2 * KEEP_SECONDS
    for folder in (mine, old_request):
        os.utime(folder, (long_ago, long_ago))
    fresh = new_request_folder(tmp_path)
    assert fresh.is_dir() and fresh.name.startswith("request-")
    assert (mine / "a.jpg").read_text() == "x"  # a user's folder in out_root is never removed
    assert not old_request.exists()


@pytest.mark.parametrize(
    ("device", "match"),
    [
        ("potato", "^device: 'potato' is not a device"),
        (3, "^device: give a device name such as 'cuda:3'"),
        pytest.param(
            "cuda",
            "^device: 'cuda', but (this PyTorch .* is a CPU-only build|no CUDA GPU is visible)",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA"),
        ),
    ],
)
def test_the_catalog_checks_its_device_as_the_library_does(device, match):
    with pytest.raises(DemoError, match=match):
        Catalog("*", [], device=device)
