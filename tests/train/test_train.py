"""The trainer on CPU: resume exactness, crash-safe checkpoints, divergence guard, run folder, CLI."""

from __future__ import annotations

import json
import sys
import types

import pytest
import torch
import train_helpers as h
from safetensors.torch import load_file

import vganzoo
from vganzoo.errors import InvalidConfigError
from vganzoo.train import TrainConfig, Trainer, TrainingDiverged, apply_overrides, resolve_recipe
from vganzoo.train import checkpoint as ckpt
from vganzoo.train.batches import IndexStream

pytestmark = pytest.mark.usefixtures("one_thread")


QUIET = {"progress": False, "log_every": 1, "sample_every": 0, "tensorboard": False}


def make(name: str, **kw):
    torch.manual_seed(0)  # initial weights
    model = vganzoo.create(name, **kw)
    if name == "toy-gan":
        model.recipe = {**model.recipe, "batch_size": 4}
    return model


def dataset_for(model, n: int = 10) -> h.SyntheticVideos:
    g = model.generator
    return h.SyntheticVideos(n, channels=g.channels, frames=g.frames, resolution=g.resolution)


def fit(name: str, out, steps: int, *, resume=False, callbacks=None, model_kw=None, **cfg):
    model = make(name, **(model_kw or {}))
    config = TrainConfig(steps=steps, out_dir=str(out), resume=resume, **{**QUIET, **cfg})
    trainer = Trainer(model, dataset_for(model), config, callbacks=callbacks)
    return trainer, trainer.fit()


def optimizer_tensors(trainer):
    out = {}
    for name, opt in trainer.optimizers().items():
        tensors, _ = ckpt.flatten_optimizer_state(name, opt.state_dict())
        out.update({k: v.clone() for k, v in tensors.items()})
    return out


# ------------------------------------------------------------------------------------------------
# resume
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["tiny-cond-gan", "tiny-mask-gan"])
def test_resume_reaches_the_same_weights(tmp_path, name):
    # 10 clips, 8 (cond: image 5 + video 3) or 8 (mask: 2 D steps x 4) per iteration: epochs wrap.
    full, _ = fit(name, tmp_path / "full", 5)
    _, result = fit(name, tmp_path / "part", 3, checkpoint_every=2)
    assert result.step == 3 and result.checkpoint.name == "ckpt-00000003.safetensors"
    resumed, result = fit(name, tmp_path / "part", 5, resume=True)
    assert result.status == "completed" and result.step == 5
    h.assert_same_weights(h.weights(full.model), h.weights(resumed.model))
    h.assert_same_weights(optimizer_tensors(full), optimizer_tensors(resumed))
    assert full.stream.state() == resumed.stream.state()
    # the metrics log holds each step once, continuing across the resume
    steps = [
        json.loads(line)["step"]
        for line in (tmp_path / "part" / "logs" / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == [1, 2, 3, 4, 5]


def test_interrupt_then_resume(tmp_path):
    full, _ = fit("toy-gan", tmp_path / "full", 4)

    def stop_at_two(trainer, metrics):
        if trainer.step == 2:
            trainer.request_stop()

    _, result = fit("toy-gan", tmp_path / "run", 4, callbacks=[stop_at_two], checkpoint_every=0)
    assert result.status == "interrupted" and result.step == 2 and result.export_dir is None
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "run" / "checkpoints")] == [2]
    resumed, result = fit("toy-gan", tmp_path / "run", 4, resume=True)
    assert result.status == "completed"
    h.assert_same_weights(h.weights(full.model), h.weights(resumed.model))


def test_resume_from_an_explicit_checkpoint_file(tmp_path):
    fit("toy-gan", tmp_path / "a", 3, checkpoint_every=1, keep_checkpoints=5)
    trainer, result = fit(
        "toy-gan", tmp_path / "b", 3, resume=str(tmp_path / "a" / "checkpoints" / "ckpt-00000002.safetensors")
    )
    assert result.step == 3
    reference, _ = fit("toy-gan", tmp_path / "c", 3)
    h.assert_same_weights(h.weights(reference.model), h.weights(trainer.model))


def test_resume_applies_changed_optimizer_settings(tmp_path):
    fit("toy-gan", tmp_path / "run", 2)
    model = make("toy-gan")
    optimizers = {
        **model.recipe["optimizers"],
        "generator": {**model.recipe["optimizers"]["generator"], "lr": 1.234e-5},
    }
    model.recipe = {**model.recipe, "optimizers": optimizers}
    config = TrainConfig(steps=3, out_dir=str(tmp_path / "run"), resume=True, **QUIET)
    trainer = Trainer(model, dataset_for(model), config)
    result = trainer.fit()
    assert result.step == 3  # resumed from 2, with the saved Adam moments
    assert trainer.opt_g.param_groups[0]["lr"] == 1.234e-5  # not the saved lr
    assert trainer.opt_g.state[trainer.opt_g.param_groups[0]["params"][0]]["step"] == 3
    saved_lr = model.recipe["optimizers"]["discriminators"]["lr"]
    assert all(o.param_groups[0]["lr"] == saved_lr for o in trainer.opt_d.values())


def test_resume_rejects_a_checkpoint_of_another_model(tmp_path):
    fit("toy-gan", tmp_path / "a", 1)
    model = make("toy-gan", latent_dim=4)
    config = TrainConfig(steps=2, out_dir=str(tmp_path / "a"), resume=True, **QUIET)
    with pytest.raises(ckpt.CheckpointError, match="model config"):
        Trainer(model, dataset_for(model), config).fit()


def test_existing_run_needs_resume(tmp_path):
    fit("toy-gan", tmp_path / "a", 1)
    with pytest.raises(ValueError, match="--resume"):
        fit("toy-gan", tmp_path / "a", 2)


def test_resume_without_checkpoint_starts_fresh(tmp_path):
    with pytest.warns(UserWarning, match="starting from scratch"):
        _, result = fit("toy-gan", tmp_path / "new", 1, resume=True)
    assert result.step == 1


# ------------------------------------------------------------------------------------------------
# checkpoints
# ------------------------------------------------------------------------------------------------
def test_crash_mid_save_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    trainer, _ = fit("toy-gan", tmp_path / "run", 2, checkpoint_every=1, keep_checkpoints=5)
    directory = tmp_path / "run" / "checkpoints"
    good = ckpt.checkpoint_path(directory, 2)
    good_bytes = good.read_bytes()

    def crash_half_way(handle, data):
        handle.write(bytes(memoryview(data)[: len(data) // 2]))
        raise OSError("simulated crash while writing")

    monkeypatch.setattr(vganzoo.files, "_write_all", crash_half_way)
    trainer.step = 3
    with pytest.raises(OSError, match="simulated crash"):
        trainer._save_checkpoint()
    monkeypatch.undo()
    assert good.read_bytes() == good_bytes
    assert [s for s, _ in ckpt.list_checkpoints(directory)] == [1, 2]
    assert not [p for p in directory.iterdir() if p.name.startswith(".tmp-")]
    path, _tensors, state = ckpt.latest_checkpoint(directory)
    assert path == good and state["step"] == 2


def test_killed_save_leftovers_are_ignored(tmp_path):
    fit("toy-gan", tmp_path / "run", 2, checkpoint_every=1, keep_checkpoints=5)
    directory = tmp_path / "run" / "checkpoints"
    (directory / ".tmp-ckpt-00000003.safetensors.abc").write_bytes(b"half a file")  # SIGKILL during write
    ckpt.checkpoint_path(directory, 9).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")  # damaged
    with pytest.warns(UserWarning, match="damaged"):
        _path, _, state = ckpt.latest_checkpoint(directory)
    assert state["step"] == 2
    with pytest.raises(ckpt.CheckpointError, match="damaged"):
        ckpt.load_checkpoint(ckpt.checkpoint_path(directory, 9))
    assert ckpt.remove_stale_temp_files(directory) == 1


def test_checkpoint_is_safetensors_with_json_state(tmp_path):
    _, result = fit("tiny-mask-gan", tmp_path / "run", 2)
    tensors = load_file(str(result.checkpoint))  # plain safetensors, no pickle involved
    assert tensors["rng.torch"].dtype == torch.uint8 and tensors["rng.latent"].dtype == torch.uint8
    assert any(k.startswith("model.generator_ema.") for k in tensors)
    assert any(k.startswith("optim.generator.") for k in tensors)
    _, state = ckpt.load_checkpoint(result.checkpoint)
    assert state["step"] == 2 and set(state["data_position"]) == {"epoch", "offset"}
    assert state["model_config"]["model"] == "tiny-mask-gan"
    assert {"generator", "discriminator.video"} <= set(state["optimizers"])
    other = tmp_path / "plain.safetensors"
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(other))
    with pytest.raises(ckpt.CheckpointError, match="not a vganzoo"):
        ckpt.load_checkpoint(other)


def test_keep_checkpoints(tmp_path):
    fit("toy-gan", tmp_path / "run", 5, checkpoint_every=1, keep_checkpoints=2)
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "run" / "checkpoints")] == [4, 5]


# ------------------------------------------------------------------------------------------------
# the loop
# ------------------------------------------------------------------------------------------------
def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    def poison(trainer, metrics):
        if trainer.step == 3:
            with torch.no_grad():
                next(trainer.model.discriminators["video"].parameters()).fill_(float("nan"))

    with pytest.raises(
        TrainingDiverged, match=r"diverged at iteration 4: discriminator loss \(video\) is nan.*ckpt-00000002"
    ):
        fit("toy-gan", tmp_path / "run", 6, callbacks=[poison], checkpoint_every=2)
    steps = [s for s, _ in ckpt.list_checkpoints(tmp_path / "run" / "checkpoints")]
    assert steps == [2]
    tensors, _ = ckpt.load_checkpoint(ckpt.checkpoint_path(tmp_path / "run" / "checkpoints", 2))
    assert all(torch.isfinite(v).all() for k, v in tensors.items() if k.startswith("model."))
    assert not (tmp_path / "run" / "model").exists()


def test_per_role_batches_category_loss_and_data_position(tmp_path):
    seen = []

    class Spy(h.SyntheticVideos):
        def __getitem__(self, i):
            seen.append(i)
            return super().__getitem__(i)

    model = make("tiny-cond-gan")
    calls = {}
    for role, disc in model.discriminators.items():
        disc.register_forward_hook(
            lambda m, args, kwargs, out, role=role: calls.setdefault(role, []).append(
                (args[0].shape[0], kwargs.get("labels") is not None, out.class_logits is not None)
            ),
            with_kwargs=True,
        )
    config = TrainConfig(steps=2, out_dir=str(tmp_path / "run"), **QUIET)
    trainer = Trainer(model, Spy(10, frames=4, resolution=8), config)
    trainer.fit()
    # every iteration: image D sees 5 real + 5 fake, video D 3 + 3, then the G step 5 and 3 fakes
    assert [c[0] for c in calls["image"]] == [5, 5, 5, 5, 5, 5]
    assert [c[0] for c in calls["video"]] == [3, 3, 3, 3, 3, 3]
    assert all(labelled for _, labelled, _ in calls["video"])  # labels go to the discriminators
    assert all(has_class for _, _, has_class in calls["video"])
    assert len(seen) == 16 and trainer.stream.state() == {"epoch": 1, "offset": 6}
    first_epoch = IndexStream(10, seed=0).epoch_indices(0)
    assert seen[:10] == first_epoch and sorted(seen[:10]) == list(range(10))


def test_category_loss_weight_changes_training(tmp_path):
    a, _ = fit("tiny-cond-gan", tmp_path / "a", 1)
    model = make("tiny-cond-gan")
    model.recipe = {**model.recipe, "category_loss_weight": 0.0}
    b = Trainer(model, dataset_for(model), TrainConfig(steps=1, out_dir=str(tmp_path / "b"), **QUIET))
    b.fit()
    wa, wb = h.weights(a.model), h.weights(b.model)
    assert not torch.equal(wa["discriminators.video.head.weight"], wb["discriminators.video.head.weight"])


def test_grad_accum_and_d_steps(tmp_path):
    trainer, _ = fit("tiny-mask-gan", tmp_path / "run", 3, grad_accum=2)
    # 2 D steps x 2 micro-batches x 4 clips per iteration
    assert trainer.stream.state() == {"epoch": 4, "offset": 8}
    assert int(trainer.opt_d["video"].state_dict()["state"][0]["step"]) == 6
    assert int(trainer.opt_g.state_dict()["state"][0]["step"]) == 3


def test_singular_value_clipping_schedule(tmp_path, monkeypatch):
    from vganzoo import losses

    clipped = []
    monkeypatch.setattr(losses.SingularValueClipping, "__call__", lambda self, d: clipped.append(1))
    fit("tiny-mask-gan", tmp_path / "run", 5)
    assert len(clipped) == 2  # every 2 iterations: after iterations 2 and 4


def test_regularizer_roles_limit_it_to_those_discriminators(tmp_path, monkeypatch):
    from vganzoo import losses

    penalised = []
    original = losses.R1Penalty.__call__

    def spy(self, critic, real, fake=None, *, generator=None):
        penalised.append(tuple(real.shape))
        return original(self, critic, real, fake, generator=generator)

    monkeypatch.setattr(losses.R1Penalty, "__call__", spy)
    model = make("tiny-cond-gan")
    model.recipe = {**model.recipe, "regularizers": [{"name": "r1", "weight": 1.0, "roles": ["image"]}]}
    Trainer(
        model,
        h.SyntheticVideos(10, frames=4, resolution=8),
        TrainConfig(steps=2, out_dir=str(tmp_path / "a"), **QUIET),
    ).fit()
    assert [shape[0] for shape in penalised] == [
        5,
        5,
    ]  # the image D's real batch, once per iteration; never video's 3
    penalised.clear()
    model.recipe = {**model.recipe, "regularizers": [{"name": "r1", "weight": 1.0}]}
    Trainer(
        model,
        h.SyntheticVideos(10, frames=4, resolution=8),
        TrainConfig(steps=1, out_dir=str(tmp_path / "b"), **QUIET),
    ).fit()
    assert sorted(shape[0] for shape in penalised) == [3, 5]
    model.recipe = {**model.recipe, "regularizers": [{"name": "r1", "roles": ["spatial"]}]}
    with pytest.raises(InvalidConfigError, match=r"roles \['spatial'\].*\['image', 'video'\]"):
        Trainer(
            model,
            h.SyntheticVideos(10, frames=4, resolution=8),
            TrainConfig(steps=1, out_dir=str(tmp_path / "c"), **QUIET),
        )
    with pytest.raises(InvalidConfigError, match="roles must be a non-empty list"):
        losses.regularizer({"name": "r1", "roles": "image"})


def test_ema_follows_the_generator(tmp_path):
    trainer, _ = fit("tiny-mask-gan", tmp_path / "run", 2)
    g, ema = trainer.model.generator, trainer.model.generator_ema
    assert ema is not None
    assert not torch.equal(g.to_video.weight, ema.to_video.weight)
    assert not ema.to_video.weight.requires_grad


def test_shape_mismatch_is_a_clear_error(tmp_path):
    model = make("toy-gan")
    config = TrainConfig(steps=1, out_dir=str(tmp_path / "run"), **QUIET)
    with pytest.raises(ValueError, match=r"real clips have shape .* generates"):
        Trainer(model, h.SyntheticVideos(4, frames=3, resolution=16), config).fit()


def test_samples_and_export(tmp_path, monkeypatch):
    written = []
    fake_io = types.ModuleType("vganzoo.videoio")
    fake_io.save_video = lambda videos, path, **kw: written.append((tuple(videos.shape), str(path)))
    monkeypatch.setitem(sys.modules, "vganzoo.videoio", fake_io)
    trainer, result = fit("toy-gan", tmp_path / "run", 4, sample_every=2, num_samples=3)
    assert [w[1].rsplit("/", 1)[1] for w in written] == ["step_00000002.gif", "step_00000004.gif"]
    assert written[0][0] == (3, 3, 4, 16, 16)
    export = result.export_dir
    config = json.loads((export / "config.json").read_text())
    rebuilt = vganzoo.create(config.pop("model"), **config)
    rebuilt.generator.load_state_dict(load_file(str(export / "generator.safetensors")))
    assert torch.equal(rebuilt.sample(2, seed=1), trainer.model.sample(2, seed=1))
    run_config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert run_config["recipe"]["batch_size"] == 4 and run_config["train"]["steps"] == 4


def test_amp_is_ignored_on_cpu(tmp_path):
    with pytest.warns(UserWarning, match="CUDA-only"):
        trainer, result = fit("toy-gan", tmp_path / "run", 1, amp=True)
    assert trainer.amp_dtype is None and result.status == "completed"


# ------------------------------------------------------------------------------------------------
# recipe handling
# ------------------------------------------------------------------------------------------------
def test_recipe_overrides_and_validation():
    recipe = {"optimizers": {"generator": {"name": "rmsprop", "lr": 5e-5}}, "d_steps": 1}
    out = apply_overrides(
        recipe,
        [
            "optimizers.generator.lr=1e-4",
            "d_steps=2",
            "ema.decay=0.99",
            "optimizers.discriminator.video.lr=3e-4",
            "adversarial_loss=hinge",
        ],
    )
    assert out["optimizers"]["generator"] == {"name": "rmsprop", "lr": 1e-4}
    assert out["d_steps"] == 2 and out["ema"] == {"decay": 0.99} and out["adversarial_loss"] == "hinge"
    assert out["optimizers"]["discriminator.video"] == {"lr": 3e-4}
    assert recipe["d_steps"] == 1  # the input is not modified
    resolved = resolve_recipe(out, roles=["video"])
    assert (
        "betas" not in resolved["optimizers"]["generator"]
    )  # a family's optimiser replaces the default whole
    with pytest.raises(InvalidConfigError, match="unknown recipe key"):
        apply_overrides(recipe, ["d_stesp=2"])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        apply_overrides(recipe, ["d_steps"])
    with pytest.raises(InvalidConfigError, match="d_steps"):
        resolve_recipe({"d_steps": 0})
    with pytest.raises(InvalidConfigError, match="no discriminator 'image'"):
        resolve_recipe({"optimizers": {"discriminator.image": {"lr": 1.0}}}, roles=["video"])
    with pytest.raises(InvalidConfigError, match="discriminator_batch_size"):
        resolve_recipe({"discriminator_batch_size": {"image": 4}}, roles=["video"])
    with pytest.raises(InvalidConfigError, match="ema"):
        resolve_recipe({"ema": {"decay": 1.5}})
    # NaN / infinite / non-number settings are refused up front, naming the key (not 'training diverged'
    # later)
    with pytest.raises(InvalidConfigError, match="category_loss_weight"):
        resolve_recipe(apply_overrides({}, ["category_loss_weight=NaN"]))
    for text, key in [
        ("optimizers.generator.lr=Infinity", "lr"),
        ("optimizers.generator.lr=abc", "lr"),
        ("optimizers.discriminators.weight_decay=-1", "weight_decay"),
    ]:
        with pytest.raises(InvalidConfigError, match=rf"\['{key}'\]: expected a finite non-negative number"):
            resolve_recipe(apply_overrides({}, [text]))


def test_bad_optimizer_settings_name_the_key(tmp_path):
    model = make("toy-gan")
    model.recipe = apply_overrides(model.recipe, ["optimizers.generator.name=adamax"])
    with pytest.raises(InvalidConfigError, match=r"optimizers\['generator'\].*adamax"):
        Trainer(model, dataset_for(model), TrainConfig(steps=1, out_dir=str(tmp_path / "r"), **QUIET))


# ------------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------------
def test_cli_train_and_resume(tmp_path, fake_data, capsys):
    from vganzoo.cli import main

    out = tmp_path / "run"
    args = [
        "train",
        "toy-gan",
        "--data",
        "moving-digits",
        "--resolution",
        "8",
        "--frames",
        "3",
        "--batch-size",
        "2",
        "--out",
        str(out),
        "--no-progress",
        "--set",
        "optimizers.generator.lr=5e-4",
        "--seed",
        "3",
    ]
    assert main([*args, "--steps", "2"]) == 0
    assert fake_data[-1] == dict(  # the training data (a first call reads the data's channels and classes)
        spec="moving-digits", resolution=8, frames=3, frame_stride=1, channels=3, seed=3
    )
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"]["resolution"] == 8 and saved["recipe"]["optimizers"]["generator"]["lr"] == 5e-4
    assert saved["recipe"]["batch_size"] == 2 and saved["data"] == "moving-digits"
    assert (out / "model" / "config.json").exists() and (out / "logs" / "metrics.jsonl").exists()
    assert (
        main(
            [
                "train",
                "toy-gan",
                "--data",
                "moving-digits",
                "--out",
                str(out),
                "--steps",
                "3",
                "--resume",
                "--no-progress",
                "--seed",
                "3",
            ]
        )
        == 0
    )
    assert "trained 1 iteration (resumed at 2)" in capsys.readouterr().out  # what this call ran
    finished = ["train", "toy-gan", "--data", "moving-digits", "--out", str(out), "--steps", "3"]
    assert main([*finished, "--resume", "--no-progress", "--seed", "3"]) == 0
    assert "\nalready at step 3 of 3; nothing to train (model in " in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["train"]["seed"] == 3  # not given: the run's own
    # Resuming with the run's own command line changes nothing: no warning; a real change is named.
    import warnings as _warnings

    with _warnings.catch_warnings():
        _warnings.filterwarnings("error", message="resume: changing the recipe")
        assert main([*args, "--steps", "4", "--resume"]) == 0
    with pytest.warns(UserWarning, match=r"changing the recipe \(batch_size\)"):
        assert main([*args[:-2], "--batch-size", "3", "--steps", "5", "--resume"]) == 0
    assert json.loads((out / "config.json").read_text())["recipe"]["batch_size"] == 3
    _, state = ckpt.load_checkpoint(ckpt.checkpoint_path(out / "checkpoints", 3))
    assert state["step"] == 3 and state["model_config"]["frames"] == 3


def test_cli_user_errors_exit_2(tmp_path, fake_data, capsys):
    from vganzoo.cli import main

    base = ["train", "toy-gan", "--data", "x", "--out", str(tmp_path / "r"), "--steps", "1", "--no-progress"]
    assert main([*base, "--set", "nonsense=1"]) == 2
    assert "unknown recipe key" in capsys.readouterr().err
    assert main([*base, "--width", "2"]) == 2  # toy-gan has no width keyword
    assert "unknown keyword" in capsys.readouterr().err
    assert main(["train", "no-such-model", "--data", "x", "--no-progress"]) == 2


# ------------------------------------------------------------------------------------------------
# data stream and signals
# ------------------------------------------------------------------------------------------------
def test_index_stream_is_a_function_of_seed_and_epoch():
    a = IndexStream(7, seed=3)
    taken = a.take(5) + a.take(5) + a.take(4)  # crosses into epochs 1 and 2
    assert a.state() == {"epoch": 2, "offset": 0}
    assert sorted(taken[:7]) == list(range(7)) and sorted(taken[7:]) == list(range(7))
    b = IndexStream(7, seed=3)
    b.load_state({"epoch": 1, "offset": 3})
    assert b.take(4) == taken[10:14]
    shards = [IndexStream(7, seed=3, rank=r, world_size=2).epoch_indices(0) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 4 and set(shards[0]) | set(shards[1]) == set(range(7))


def test_worker_loader_gives_the_same_batches(tmp_path):
    from vganzoo.train.batches import BatchLoader

    data = h.SyntheticVideos(9)
    plan = [4, 2]
    plain = BatchLoader(data, IndexStream(9, seed=1), plan=plan)
    workers = BatchLoader(data, IndexStream(9, seed=1), plan=plan, num_workers=2)
    for size in plan * 3:
        a, b = plain.next_batch(size), workers.next_batch(size)
        assert torch.equal(a["video"], b["video"]) and torch.equal(a["label"], b["label"])
    assert plain.stream.state() == workers.stream.state()
    with pytest.raises(RuntimeError, match="plan"):
        workers.next_batch(3)
    workers.close()


def test_sigint_stops_at_an_iteration_boundary_with_a_checkpoint(tmp_path):
    import signal

    def interrupt(trainer, metrics):
        if trainer.step == 1:
            signal.raise_signal(signal.SIGINT)

    previous = signal.getsignal(signal.SIGINT)
    _, result = fit("toy-gan", tmp_path / "run", 5, callbacks=[interrupt], checkpoint_every=0)
    assert result.status == "interrupted" and result.step == 1
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "run" / "checkpoints")] == [1]
    assert signal.getsignal(signal.SIGINT) is previous  # handlers restored


@pytest.mark.cuda
@pytest.mark.parametrize("name", ["tiny-mask-gan", "tiny-cond-gan"])
def test_amp_on_cuda_trains_and_resumes(tmp_path, name):
    full, result = fit(name, tmp_path / "full", 3, amp=True, device="cuda")
    assert full.amp_dtype in (torch.bfloat16, torch.float16) and result.status == "completed"
    assert all(torch.isfinite(v).all() for v in h.weights(full.model).values())
    fit(name, tmp_path / "part", 2, amp=True, device="cuda")
    resumed, _ = fit(name, tmp_path / "part", 3, amp=True, device="cuda", resume=True)
    for key, value in h.weights(full.model).items():  # GPU kernels may not be bitwise deterministic
        assert torch.allclose(value.float(), h.weights(resumed.model)[key].float(), rtol=1e-3, atol=1e-4), key


@pytest.mark.cuda
@pytest.mark.parametrize("name", ["mocogan-rnn", "tgan", "vgan", "dvdgan"])
def test_amp_on_cuda_trains_every_builtin_model(tmp_path, name):
    """AMP through the real models: their 3-D layers (the fused ops) take autocast's bfloat16 / float16
    activations from the 2-D and linear layers around them."""
    trainer, result = fit(
        name, tmp_path / "run", 2, amp=True, device="cuda", model_kw={"width": 0.25, "resolution": 32}
    )
    assert result.status == "completed" and trainer.amp_dtype in (torch.bfloat16, torch.float16)
    assert all(torch.isfinite(v).all() for v in h.weights(trainer.model).values())


def test_export_uses_the_hubs_save_pretrained(tmp_path, monkeypatch):
    from vganzoo import hub

    calls = []

    def save_pretrained(model, directory, *, metadata=None, repo_id=None, overwrite=False, dtype=None):
        calls.append({"directory": directory, "metadata": metadata, "overwrite": overwrite})

    monkeypatch.setattr(hub, "save_pretrained", save_pretrained)
    _, result = fit("toy-gan", tmp_path / "run", 1)
    assert calls == [
        {
            "directory": str(tmp_path / "run" / "model"),
            "metadata": {"steps": 1, "seed": 0},
            "overwrite": True,
        }
    ]
    assert result.export_dir == tmp_path / "run" / "model"


def test_a_failing_sample_grid_does_not_end_the_run(tmp_path, monkeypatch):
    def save_video(videos, path, **kw):
        raise OSError("disk full")

    monkeypatch.setitem(sys.modules, "vganzoo.videoio", types.SimpleNamespace(save_video=save_video))
    with pytest.warns(UserWarning, match="could not write .*disk full"):
        _, result = fit("toy-gan", tmp_path / "run", 2, sample_every=1)
    assert result.status == "completed" and result.step == 2


class EpochRecorder(h.SyntheticVideos):
    """Item i of epoch e is shifted by e, so a wrong epoch shows in the data."""

    epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __getitem__(self, i):
        item = super().__getitem__(i)
        return {
            "video": item["video"] + self.epoch,
            "label": item["label"],
            "epoch": torch.tensor(self.epoch),
        }


@pytest.mark.parametrize("workers", [0, 2])
def test_datasets_with_set_epoch_see_the_epoch_of_each_item(workers):
    from vganzoo.train.batches import BatchLoader

    loader = BatchLoader(EpochRecorder(5), IndexStream(5, seed=2), plan=[3], num_workers=workers)
    batches = [loader.next_batch(3) for _ in range(4)]
    assert torch.cat([b["epoch"] for b in batches]).tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2]
    # a loader restarted mid-epoch (as after a resume) gives the same items
    stream = IndexStream(5, seed=2)
    stream.load_state({"epoch": 1, "offset": 1})
    again = BatchLoader(EpochRecorder(5), stream, plan=[3], num_workers=workers).next_batch(3)
    assert torch.equal(again["video"], torch.cat([b["video"] for b in batches])[6:9])
    loader.close()


def test_max_time_stops_with_a_checkpoint_and_resumes(tmp_path, monkeypatch):
    """max_time: the run stops at the first iteration boundary past the budget, checkpointed, and
    --resume finishes it exactly as an uninterrupted run (a fake clock that ticks once per iteration)."""
    from vganzoo.train import trainer as trainer_module

    now = [0.0]
    monkeypatch.setattr(trainer_module, "_clock", lambda: now[0])

    def tick(trainer, metrics):
        now[0] += 1.0

    full, _ = fit("toy-gan", tmp_path / "full", 5)
    _, result = fit("toy-gan", tmp_path / "run", 5, callbacks=[tick], checkpoint_every=0, max_time=2.5)
    assert result.status == "time_limit" and result.step == 3 and result.export_dir is None
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "run" / "checkpoints")] == [3]
    resumed, result = fit("toy-gan", tmp_path / "run", 5, resume=True, max_time=100.0)
    assert result.status == "completed" and result.step == 5
    h.assert_same_weights(h.weights(full.model), h.weights(resumed.model))


@pytest.mark.parametrize(
    "bad, error",
    [(0, ValueError), (-1.0, ValueError), (float("nan"), ValueError), ("5m", TypeError), (True, TypeError)],
)
def test_max_time_is_checked(bad, error):
    with pytest.raises(error, match="max_time"):
        TrainConfig(max_time=bad)


def test_cli_bounds_match_the_train_config():
    """The CLI keeps its bounds literal (no torch import to build the parser); TrainConfig enforces them."""
    from vganzoo.cli import train as cli_train
    from vganzoo.train import config

    assert (cli_train.MAX_STEPS, cli_train.MAX_GRAD_ACCUM) == (config.MAX_STEPS, config.MAX_GRAD_ACCUM)
    with pytest.raises(ValueError, match="steps must be at most"):
        TrainConfig(steps=config.MAX_STEPS + 1)
    with pytest.raises(ValueError, match="grad_accum must be from 1 to 4096"):
        TrainConfig(grad_accum=config.MAX_GRAD_ACCUM + 1)


def test_cli_max_time_durations():
    import argparse

    from vganzoo.cli.train import parse_duration

    assert parse_duration("90") == 90.0 and parse_duration("90s") == 90.0
    assert parse_duration("20m") == 1200.0 and parse_duration("1.5h") == 5400.0
    assert parse_duration("1h30m") == 5400.0 and parse_duration(" 2M ") == 120.0
    for bad in ("", "m", "5 minutes", "-3", "0", "1d", "h1"):
        with pytest.raises(argparse.ArgumentTypeError, match="duration"):
            parse_duration(bad)


def test_labels_are_used_or_dropped_for_the_whole_run(tmp_path):
    """Conditioning is decided once per run, never batch by batch."""
    model = make("tiny-cond-gan")  # num_classes=3
    wide = h.SyntheticVideos(10, num_classes=5)  # labels 0-4: some batches would fit, some not
    with pytest.warns(UserWarning) as caught:
        trainer = Trainer(model, wide, TrainConfig(steps=1, out_dir=str(tmp_path / "a"), **QUIET))
    (message,) = [str(w.message) for w in caught if "num_classes" in str(w.message)]
    assert message == (  # one sentence: what is wrong, what follows, how to condition on the labels
        "data: the dataset has 5 classes, more than the model's num_classes=3, so the conditional "
        "model's discriminators see real clips without labels for the rest of the run; pass "
        "--num-classes 5 (num_classes=5) to condition on them"
    )
    trainer._loader = trainer._make_loader()
    assert all(trainer._real_batch(2)[1] is None for _ in range(5))

    class NoCount(torch.utils.data.Dataset):  # no num_classes attribute: decided at the first bad batch
        def __init__(self):
            self.inner = h.SyntheticVideos(8, num_classes=3)

        def __len__(self):
            return 8

        def __getitem__(self, i):
            item = dict(self.inner[i])
            if i == 5:
                item["label"] = torch.tensor(-1)
            return item

    trainer = Trainer(
        make("tiny-cond-gan"), NoCount(), TrainConfig(steps=1, out_dir=str(tmp_path / "b"), seed=0, **QUIET)
    )
    trainer._loader = trainer._make_loader()
    seen = []
    with pytest.warns(UserWarning, match="unlabelled clips"):
        for _ in range(8):
            seen.append(trainer._real_batch(1)[1] is not None)
    first_bad = seen.index(False)
    assert all(seen[:first_bad]) and not any(seen[first_bad:])
    _tensors, state = trainer.state_tensors_and_meta()
    assert state["use_labels"] is False


def test_resume_without_data_takes_the_runs_own(tmp_path, capsys):
    """`--max-time` prints `continue with: vganzoo train MODEL --resume --out RUN`: it works as printed."""
    from vganzoo.cli import main

    out = tmp_path / "run"
    base = ["train", "tgan", "--resolution", "32", "--width", "0.125", "--batch-size", "2", "--no-progress"]
    assert main([*base, "--data", "moving-digits", "--steps", "1", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["data_spec"] == "moving-digits"
    capsys.readouterr()
    assert main([*base, "--steps", "2", "--out", str(out), "--resume"]) == 0
    assert "trained 1 iteration (resumed at 1)" in capsys.readouterr().out
    assert main([*base, "--steps", "1", "--out", str(tmp_path / "new")]) == 2  # no --data, no --resume
    assert "--data is required" in capsys.readouterr().err
    assert main([*base, "--steps", "1", "--out", str(tmp_path / "none"), "--resume"]) == 2
    assert "found no run to continue" in capsys.readouterr().err
    assert not (tmp_path / "new").exists() and not (tmp_path / "none").exists()


def test_resume_without_steps_keeps_the_runs_total(tmp_path, capsys):
    """`--resume` without `--steps` continues to the run's own total (it once fell back to 1000: a run
    started for 100000 iterations said "already at step 5918 of 1000" and stopped)."""
    from vganzoo.cli import main

    out = tmp_path / "run"
    base = ["train", "tgan", "--resolution", "32", "--width", "0.125", "--batch-size", "2", "--no-progress"]
    assert (
        main([*base, "--data", "moving-digits", "--steps", "2", "--out", str(out), "--max-time", "0.001"])
        == 0
    )
    printed = capsys.readouterr().out  # stopped after the first iteration, with the command to go on
    assert (
        f"--max-time reached at iteration 1 of 2; continue with: vganzoo train tgan --resume --out {out}"
        in printed
    )
    assert main([*base, "--out", str(out), "--resume"]) == 0  # as printed (and base's model settings)
    assert "trained 1 iteration (resumed at 1)" in capsys.readouterr().out
    assert main([*base, "--out", str(out), "--resume"]) == 0
    assert "already at step 2 of 2; nothing to train" in capsys.readouterr().out
    assert main([*base, "--steps", "3", "--out", str(out), "--resume"]) == 0
    assert "trained 1 iteration (resumed at 2)" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["train"]["steps"] == 3
    assert main([*base, "--out", str(out), "--resume"]) == 0  # the total given last is kept
    assert "already at step 3 of 3" in capsys.readouterr().out
    from vganzoo.errors import InvalidConfigError
    from vganzoo.train.run import _total_steps

    assert _total_steps(None, None, "x") == 1000  # a new run
    for bad in ([], {"steps": "5"}, {"steps": True}, {"steps": -5}, {"steps": 10**30}, {"steps": 5.0}, None):
        with pytest.raises(
            InvalidConfigError, match=r"^resume: '.*config.json' has train.steps .*; give --steps"
        ):
            _total_steps(None, {"train": bad}, "x")  # never silently 1000 (or endless)
    from vganzoo.train.run import _saved_init_from

    assert _saved_init_from({"init_from": {"name": "mocogan-rnn.digits"}}, "x") == "mocogan-rnn.digits"
    assert _saved_init_from({}, "x") is None
    for bad in ("abc", {"name": 5}, {"name": ""}, [1]):
        with pytest.raises(InvalidConfigError, match=r"^resume: '.*config.json' has init_from"):
            _saved_init_from({"init_from": bad}, "x")


# ------------------------------------------------------------------------------------------------
# tampered checkpoints: every field is checked, errors name the file and the field
# ------------------------------------------------------------------------------------------------
def _tamper(path, change_state=None, change_tensors=None, raw_state=None):
    import json
    import struct

    from safetensors.torch import load, save

    data = path.read_bytes()
    size = struct.unpack("<Q", data[:8])[0]
    meta = json.loads(data[8 : 8 + size])["__metadata__"]
    tensors = load(data)
    state = json.loads(meta["state"])
    if change_state:
        change_state(state)
    if change_tensors:
        change_tensors(tensors)
    meta["state"] = raw_state if raw_state is not None else json.dumps(state)
    if raw_state == "":
        del meta["state"]
    path.write_bytes(save(tensors, metadata=meta))


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tamper") / "run"
    fit("toy-gan", out, 2)
    return out


def _set(key, value, inner=None):
    def change(state):
        if inner is None:
            state[key] = value
        else:
            state[key][inner] = value

    return change


@pytest.mark.parametrize(
    ("change", "raw", "match"),
    [
        (_set("step", -5), None, r"field step is -5, expected an int from 0"),
        (_set("step", 1.5), None, r"field step is 1.5"),
        (_set("step", 10**18), None, r"field step is 1000000000000000000"),
        (_set("step", "abc"), None, r"field step is 'abc'"),
        (_set("data_position", -100, "offset"), None, r"field data_position.offset is -100"),
        (_set("data_position", 10**15, "epoch"), None, r"field data_position.epoch is 1000000000000000"),
        (_set("world_size", 0), None, r"field world_size is 0"),
        (None, "[1, 2]", r"field state is a JSON list, expected an object"),
        (None, "", r"has no 'state' field"),
        (None, "[" * 100_000 + "]" * 100_000, r"field state: JSON nested more than"),
    ],
)
def test_a_tampered_checkpoint_is_refused_naming_the_field(saved_run, tmp_path, change, raw, match):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(saved_run, run)
    path = ckpt.latest_checkpoint(run / "checkpoints")[0]
    _tamper(path, change, raw_state=raw)
    with pytest.raises(ckpt.CheckpointError, match=match) as info:
        ckpt.load_checkpoint(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_checkpoint_without_what_resuming_needs_is_refused(saved_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(saved_run, run)
    path = ckpt.latest_checkpoint(run / "checkpoints")[0]
    _tamper(path, lambda s: s.pop("optimizers"))
    with pytest.raises(ckpt.CheckpointError, match=r"has no 'optimizers' field"):
        fit("toy-gan", tmp_path / "other", 3, resume=str(path))


def test_an_rng_state_of_the_wrong_size_is_refused(saved_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(saved_run, run)
    path = ckpt.latest_checkpoint(run / "checkpoints")[0]

    def shrink(tensors):
        tensors["rng.torch"] = torch.zeros(3, dtype=torch.uint8)

    _tamper(path, change_tensors=shrink)
    with pytest.raises(ckpt.CheckpointError, match=r"tensor rng.torch is torch.uint8 of shape \(3,\)"):
        fit("toy-gan", run, 3, resume=True)

    def python_state(state):
        state["rng"]["python"] = [3, [1, 2], None]

    _tamper(path, python_state, change_tensors=lambda t: t.update(rng_torch=t.pop("rng.torch")))
    with pytest.raises(ckpt.CheckpointError, match=r"field rng.python is not a Python RNG state"):
        fit("toy-gan", run, 3, resume=True)


def test_resumes_keep_the_first_command_and_the_card_lists_each(tmp_path, fake_data):
    """The card's training command must reproduce the run: the command that started it, then every
    resume, not just the last `--resume` line (which lacks the data and model options)."""
    from vganzoo.train import train

    out = tmp_path / "run"
    common = dict(data="moving-digits", out=str(out), model_overrides={"resolution": 8, "frames": 3})
    first = "vganzoo train toy-gan --data moving-digits --resolution 8 --frames 3 --steps 1"
    train("toy-gan", steps=1, command=first, progress=False, **common)
    for step in (2, 3):
        train(
            "toy-gan",
            steps=step,
            resume=True,
            command=f"vganzoo train toy-gan --resume --steps {step}",
            progress=False,
            **common,
        )
    saved = json.loads((out / "config.json").read_text())
    assert saved["command"] == first
    assert saved["resume_commands"] == [f"vganzoo train toy-gan --resume --steps {s}" for s in (2, 3)]
    card = (out / "model" / "README.md").read_text()
    assert f"{first}\n# resumed with:\nvganzoo train toy-gan --resume --steps 2\n" in card


def test_cli_train_device_auto(tmp_path, fake_data):
    """--device auto (which the option accepts) picks CUDA when there is one, else the CPU."""
    from vganzoo.cli import main

    out = tmp_path / "run"
    args = ["train", "toy-gan", "--data", "moving-digits", "--resolution", "8", "--frames", "3"]
    assert main([*args, "--device", "auto", "--steps", "1", "--out", str(out), "--no-progress"]) == 0
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    recorded = json.loads((out / "config.json").read_text())["train"]["device"]
    assert recorded in (expected, f"{expected}:0", None)


def test_hostile_optimiser_state_is_refused_at_load_naming_the_tensor(saved_run, tmp_path):
    """Not a RuntimeError (or a divergence) iterations later."""
    import shutil

    def first_state_tensor(tensors):
        return next(k for k in sorted(tensors) if k.startswith("optim.") and tensors[k].ndim > 0)

    cases = [
        (
            lambda t: t.update({first_state_tensor(t): torch.zeros(1)}),
            None,
            r"shape \(1,\), but the parameter",
        ),
        (
            lambda t: t.update({first_state_tensor(t): t[first_state_tensor(t)] * float("nan")}),
            None,
            "NaN or inf",
        ),
        (
            None,
            lambda s: next(iter(s["optimizers"].values()))["plain"].update({"0": {"x": "5"}}),
            "expected a number",
        ),
        (
            None,
            lambda s: next(iter(s["optimizers"].values()))["plain"].update({"999": {"x": 1}}),
            "does not belong",
        ),
    ]
    for i, (change_tensors, change_state, match) in enumerate(cases):
        run = tmp_path / f"run{i}"
        shutil.copytree(saved_run, run)
        path = ckpt.latest_checkpoint(run / "checkpoints")[0]
        _tamper(path, change_state, change_tensors)
        with pytest.raises(ckpt.CheckpointError, match=match):
            fit("toy-gan", run, 3, resume=True)
