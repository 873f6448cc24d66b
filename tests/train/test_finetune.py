"""Fine-tuning: hub.load_weights / pretrained_config, and ``train(init_from=...)`` / ``--init-from``."""

from __future__ import annotations

import json
import logging

import pytest
import torch
import train_helpers as h
from safetensors.torch import load_file

import vganzoo
from vganzoo import hub
from vganzoo.errors import InvalidConfigError
from vganzoo.train import train

pytestmark = pytest.mark.usefixtures("one_thread")

QUIET = {"progress": False, "log_every": 1, "sample_every": 0, "tensorboard": False}
FROZEN = ["optimizers.generator.lr=0", "optimizers.discriminators.lr=0"]  # Adam with lr 0 moves nothing


def saved_weight_set(tmp_path, name="tiny-cond-gan", *, seed=1, ema=False, roles=None, recipe=None, **config):
    """A save_pretrained folder of a randomly initialised model; returns (local-dir name, model)."""
    torch.manual_seed(seed)
    model = vganzoo.create(name, **config)
    if ema:
        model.add_ema()
        with torch.no_grad():
            for p in model.generator_ema.parameters():
                p.add_(1.0)  # distinguishable from the generator
    if roles is not None:
        for role in list(model.discriminators):
            if role not in roles:
                del model.discriminators[role]
    if recipe is not None:
        model.recipe = recipe
    folder = tmp_path / f"weights-{seed}"
    vganzoo.save_pretrained(model, str(folder))
    return f"local-dir:{folder}", model


def params(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def test_pretrained_config_is_the_saved_config(tmp_path):
    name, model = saved_weight_set(tmp_path, num_classes=2)
    config = hub.pretrained_config(name)
    assert config == {**model.config}
    assert config["model"] == "tiny-cond-gan" and config["num_classes"] == 2


def test_load_weights_exact_into_a_fresh_model(tmp_path):
    name, source = saved_weight_set(tmp_path)
    torch.manual_seed(5)
    target = vganzoo.create("tiny-cond-gan")
    report = hub.load_weights(target, name)
    assert report.loaded == ["generator", "discriminator.image", "discriminator.video"]
    assert not report.partial and not report.skipped and not report.not_in_weights
    h.assert_same_weights(h.weights(target), h.weights(source))


def test_load_weights_partial_keeps_fresh_tensors_and_reports_them(tmp_path):
    name, source = saved_weight_set(tmp_path, num_classes=3)
    torch.manual_seed(5)
    target = vganzoo.create("tiny-cond-gan", num_classes=5)  # class embedding and video D head change shape
    fresh = h.weights(target)
    with pytest.raises(hub.StateDictMismatchError, match="shape mismatches"):
        hub.load_weights(target, name)  # strict by default
    report = hub.load_weights(target, name, strict=False)
    assert set(report.partial) == {"generator", "discriminator.video"}
    assert [m.split(" ")[0] for m in report.partial["generator"].mismatched] == ["embed.weight"]
    assert {m.split(" ")[0] for m in report.partial["discriminator.video"].mismatched} == {
        "head.weight",
        "head.bias",
    }
    got, want = h.weights(target), h.weights(source)
    changed_shape = {
        "generator.embed.weight",
        "discriminators.video.head.weight",
        "discriminators.video.head.bias",
    }
    for key in got:
        expected = fresh[key] if key in changed_shape else want[key]
        assert torch.equal(got[key], expected), key
    text = report.summary()
    assert "embed.weight" in text and "discriminator.video" in text
    assert json.loads(json.dumps(report.to_dict()))["partial"]["generator"]["mismatched"]


def test_load_weights_keeps_discriminators_the_weight_set_lacks(tmp_path):
    name, source = saved_weight_set(tmp_path, roles=["video"])
    torch.manual_seed(5)
    target = vganzoo.create("tiny-cond-gan")
    image_before = h.weights(target.discriminators["image"])
    report = hub.load_weights(target, name)
    assert report.not_in_weights == ["discriminator.image"]
    assert set(target.discriminators) == {"image", "video"}  # load() would have dropped "image"
    h.assert_same_weights(h.weights(target.discriminators["image"]), image_before)
    h.assert_same_weights(
        h.weights(target.discriminators["video"]), h.weights(source.discriminators["video"])
    )


def test_load_weights_role_the_model_lacks(tmp_path):
    name, _ = saved_weight_set(tmp_path)
    target = vganzoo.create("tiny-cond-gan")
    del target.discriminators["image"]
    with pytest.raises(hub.WeightsError, match="no discriminator 'image'"):
        hub.load_weights(target, name)
    report = hub.load_weights(target, name, strict=False)
    assert report.skipped == ["discriminator.image"]


def test_load_weights_creates_the_ema_from_the_weight_set(tmp_path):
    name, source = saved_weight_set(tmp_path, ema=True)
    target = vganzoo.create("tiny-cond-gan")
    assert target.generator_ema is None
    report = hub.load_weights(target, name)
    assert "generator_ema" in report.loaded
    h.assert_same_weights(h.weights(target.generator_ema), h.weights(source.generator_ema))
    assert not any(p.requires_grad for p in target.generator_ema.parameters())
    only = vganzoo.create("tiny-cond-gan")
    hub.load_weights(only, name, components="generator")
    assert only.generator_ema is None and list(only.discriminators) == ["image", "video"]


def test_load_weights_nothing_fits_is_an_error(tmp_path):
    name, _ = saved_weight_set(tmp_path, resolution=8)
    target = vganzoo.create(
        "tiny-cond-gan", resolution=4, num_classes=2
    )  # output and embedding shapes differ...
    del target.generator.body  # ...and the body is gone: nothing of the generator file fits
    target.generator.body = torch.nn.Identity()
    with pytest.raises(hub.WeightsError, match="none of the file's tensors fit"):
        hub.load_weights(target, name, components="generator", strict=False)


def test_load_weights_rejects_a_non_model(tmp_path):
    name, _ = saved_weight_set(tmp_path)
    with pytest.raises(TypeError, match="model: expected a VideoGAN"):
        hub.load_weights(torch.nn.Linear(2, 2), name)


# ------------------------------------------------------------------------------------------------
# train(init_from=...)
# ------------------------------------------------------------------------------------------------
def run_train(tmp_path, out="run", steps=1, **kw):
    model_overrides = kw.pop("model_overrides", None)
    dataset = h.SyntheticVideos(8, channels=3, frames=4, resolution=8)
    result = train(
        "tiny-cond-gan",
        dataset=dataset,
        out=str(tmp_path / out),
        steps=steps,
        model_overrides=model_overrides,
        **{**QUIET, **kw},
    )
    return result, json.loads((tmp_path / out / "config.json").read_text())


def final_generator(tmp_path, out="run"):
    return load_file(str(tmp_path / out / "model" / "generator.safetensors"))


def test_train_init_from_starts_at_the_pretrained_weights(tmp_path):
    name, source = saved_weight_set(tmp_path, seed=7)
    result, config = run_train(tmp_path, init_from=name, recipe_overrides=FROZEN)
    assert result.status == "completed"
    assert config["init_from"]["loaded"] == ["generator", "discriminator.image", "discriminator.video"]
    got = final_generator(tmp_path)
    want = dict(source.generator.named_parameters())
    for key, value in want.items():
        torch.testing.assert_close(got[key], value.detach(), rtol=0, atol=0, msg=key)
    # the control: the same run without init_from ends somewhere else
    run_train(tmp_path, out="scratch", recipe_overrides=FROZEN)
    other = final_generator(tmp_path, "scratch")
    assert not torch.equal(other["to_video.weight"], want["to_video.weight"].detach())


def test_train_init_from_with_another_num_classes(tmp_path, caplog):
    name, source = saved_weight_set(tmp_path, num_classes=3)
    with caplog.at_level(logging.INFO, logger="vganzoo.train"):
        _result, config = run_train(
            tmp_path,
            init_from=name,
            model_overrides={"num_classes": 5},
            recipe_overrides=FROZEN,
            progress=True,
        )
    assert config["model"]["num_classes"] == 5 and config["model"]["resolution"] == 8
    assert "embed.weight" in config["init_from"]["partial"]["generator"]["mismatched"][0]
    assert "initialised from" in caplog.text
    got = final_generator(tmp_path)
    assert got["embed.weight"].shape == (5, 6)
    torch.testing.assert_close(
        got["to_video.weight"], source.generator.to_video.weight.detach(), rtol=0, atol=0
    )


def test_train_init_from_uses_the_weight_sets_recipe(tmp_path):
    recipe = {**vganzoo.create("tiny-cond-gan").recipe, "batch_size": 2, "discriminator_batch_size": None}
    name, _ = saved_weight_set(tmp_path, recipe=recipe)
    _, config = run_train(tmp_path, init_from=name, recipe_overrides=["d_steps=2"])
    assert config["recipe"]["batch_size"] == 2 and config["recipe"]["d_steps"] == 2


def test_train_init_from_without_ema_in_the_recipe_drops_the_loaded_ema(tmp_path):
    name, _ = saved_weight_set(tmp_path, ema=True)
    _, config = run_train(tmp_path, init_from=name)  # tiny-cond-gan's recipe has no EMA
    assert "generator_ema" in config["init_from"]["skipped"]
    assert not (tmp_path / "run" / "model" / "generator_ema.safetensors").exists()
    _, config = run_train(tmp_path, out="with-ema", init_from=name, recipe_overrides=["ema.decay=0.9"])
    assert "generator_ema" in config["init_from"]["loaded"]


def test_train_init_from_errors(tmp_path):
    name, _ = saved_weight_set(tmp_path, name="tiny-mask-gan")
    with pytest.raises(
        InvalidConfigError, match="init_from: .* holds weights of 'tiny-mask-gan', not of 'tiny-cond-gan'"
    ):
        run_train(tmp_path, init_from=name)
    with pytest.raises(hub.WeightsNotFoundError, match="is not a folder"):
        run_train(tmp_path, init_from=f"local-dir:{tmp_path / 'nowhere'}")
    with pytest.raises(ValueError, match="init_from: expected a weight-set name"):
        run_train(tmp_path, init_from="")
    assert not (tmp_path / "run").exists()  # nothing written before the weights were checked


def test_resume_without_a_checkpoint_initialises_and_with_one_the_checkpoint_wins(tmp_path):
    name, source = saved_weight_set(tmp_path, seed=7)
    other, _ = saved_weight_set(tmp_path, seed=8)
    # --resume on a fresh folder: nothing to resume, so the run starts from init_from
    with pytest.warns(UserWarning, match="resume: no checkpoint"):
        _, config = run_train(tmp_path, steps=1, init_from=name, resume=True, recipe_overrides=FROZEN)
    assert config["init_from"]["name"] == name
    start = dict(source.generator.named_parameters())["to_video.weight"].detach()
    torch.testing.assert_close(final_generator(tmp_path)["to_video.weight"], start, rtol=0, atol=0)
    # resuming that run's checkpoint: its weights win over another init_from; the record is kept
    _, config = run_train(tmp_path, steps=2, init_from=other, resume=True, recipe_overrides=FROZEN)
    assert config["init_from"]["name"] == name
    torch.testing.assert_close(final_generator(tmp_path)["to_video.weight"], start, rtol=0, atol=0)


def test_cli_init_from_a_folder_path(tmp_path, fake_data, capsys):
    from vganzoo.cli import main

    name, source = saved_weight_set(tmp_path)
    folder = name[len("local-dir:") :]
    base = ["train", "tiny-cond-gan", "--data", "x", "--steps", "1", "--no-progress"]
    code = main(
        [*base, "--out", str(tmp_path / "cli"), "--init-from", folder, "--set", FROZEN[0], "--set", FROZEN[1]]
    )
    assert code == 0, capsys.readouterr().err
    got = final_generator(tmp_path, "cli")
    torch.testing.assert_close(
        got["to_video.weight"], source.generator.to_video.weight.detach(), rtol=0, atol=0
    )
    assert main([*base, "--out", str(tmp_path / "bad"), "--init-from", "tiny-cond-gan.nope"]) == 2
    assert "has no pretrained weights" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "bad"), "--init-from", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_resume_without_a_checkpoint_starts_from_the_runs_init_from(tmp_path):
    """A fine-tune run stopped before its first checkpoint, resumed without repeating init_from,
    still starts from the weights its config.json names (not from random ones)."""
    name, source = saved_weight_set(tmp_path, seed=7)
    run_train(tmp_path, steps=1, init_from=name, recipe_overrides=FROZEN, checkpoint_every=0)
    for f in (tmp_path / "run" / "checkpoints").iterdir():
        f.unlink()  # as if killed before its first checkpoint
    with pytest.warns(UserWarning, match="resume: no checkpoint"):
        _, config = run_train(tmp_path, steps=1, resume=True, recipe_overrides=FROZEN)
    assert config["init_from"]["name"] == name
    start = source.generator.to_video.weight.detach()
    torch.testing.assert_close(final_generator(tmp_path)["to_video.weight"], start, rtol=0, atol=0)


def test_a_replaced_discriminator_starts_fresh(tmp_path):
    """Fine-tuning with another kind of discriminator under a role: nothing of the old one fits, so it
    keeps its fresh initialisation (reported), while a generator that does not fit is an error."""
    name, source = saved_weight_set(tmp_path)
    torch.manual_seed(5)
    target = vganzoo.create("tiny-cond-gan")
    target.discriminators["video"] = torch.nn.Sequential(torch.nn.Conv3d(3, 2, 1))
    fresh = h.weights(target.discriminators["video"])
    with pytest.raises(hub.StateDictMismatchError):
        hub.load_weights(target, name)
    report = hub.load_weights(target, name, strict=False)
    assert report.unfit == ["discriminator.video"] and "discriminator.video" not in report.loaded
    assert "nothing fits" in report.summary()
    h.assert_same_weights(h.weights(target.discriminators["video"]), fresh)
    h.assert_same_weights(h.weights(target.generator), h.weights(source.generator))


def test_registry_weight_sets_carry_their_training_recipe():
    """`arch.tag` and the same folder as local-dir: give the same recipe (the one they were trained with)."""
    from pathlib import Path

    folder = Path(vganzoo.__file__).parent / "weights" / "mocogan-rnn.digits"
    by_name = vganzoo.load("mocogan-rnn.digits").recipe
    assert by_name == vganzoo.load(f"local-dir:{folder}").recipe
    assert by_name == json.loads((folder / "weights.json").read_text())["recipe"]
    target = vganzoo.create(
        "mocogan-rnn",
        **{k: v for k, v in hub.pretrained_config("mocogan-rnn.digits").items() if k != "model"},
    )
    assert hub.load_weights(target, "mocogan-rnn.digits").recipe == by_name


def test_resume_checks_the_model_and_says_what_changed(tmp_path):
    run_train(tmp_path, steps=1, seed=0)
    with pytest.raises(
        InvalidConfigError, match="resume: the run in .* trains 'tiny-cond-gan', not 'tiny-mask-gan'"
    ):
        train(
            "tiny-mask-gan",
            dataset=h.SyntheticVideos(8),
            out=str(tmp_path / "run"),
            steps=2,
            resume=True,
            **QUIET,
        )
    with pytest.warns(UserWarning, match=r"resume: changing seed 0 -> 3, grad_accum 1 -> 2"):
        run_train(tmp_path, steps=2, resume=True, seed=3, grad_accum=2)


def test_train_argument_checks(tmp_path):
    with pytest.raises(ValueError, match="batch_size: expected a positive int, got 2.7"):
        run_train(tmp_path, batch_size=2.7)
    with pytest.raises(ValueError, match="batch_size: expected a positive int, got True"):
        run_train(tmp_path, batch_size=True)
    with pytest.raises(TypeError, match="recipe_overrides: expected a list"):
        run_train(tmp_path, recipe_overrides="d_steps=2")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(NotADirectoryError, match="out: .* is a file"):
        run_train(tmp_path, out="afile")
    run_train(tmp_path, steps=2)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(
        ValueError, match="^steps: .* is already at iteration 2, past steps=1; give --steps 2"
    ):
        run_train(tmp_path, steps=1, resume=True)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
