"""Each family's ``paper`` loop (issue 20): the order of updates and which batches each step sees.

A recorder hooks the generator's forward, every discriminator's forward, every optimiser's step and
the category loss, then the test reads the event list of one iteration. Fakes are told apart from
real clips by their storage (a fake cut to a batch size shares its batch's storage).
"""

from __future__ import annotations

import pytest
import torch
import train_helpers as h

import vganzoo
from vganzoo import losses, registry
from vganzoo.errors import InvalidConfigError
from vganzoo.train import TrainConfig, Trainer, resolve_recipe

pytestmark = pytest.mark.usefixtures("one_thread")

QUIET = {"progress": False, "log_every": 1, "sample_every": 0, "tensorboard": False}
SMALL = {"resolution": 32, "channels": 1, "width": 0.125}


class Recorder:
    """Events ``(kind, name, tensor, labels)``: kind "G" (a generator output), "D" (a discriminator
    input: real or fake), "step" (an optimiser step), "cat" (a category loss's labels)."""

    def __init__(self, trainer: Trainer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[tuple[str, str, torch.Tensor | None, torch.Tensor | None]] = []
        model = trainer.model
        model.generator.register_forward_hook(  # (video, aux) when the G step asks for the mask
            lambda m, a, out: self.events.append(("G", "", out[0] if isinstance(out, tuple) else out, None))
        )
        for role, disc in model.discriminators.items():
            disc.register_forward_pre_hook(
                lambda m, args, kwargs, role=role: self.events.append(
                    ("D", role, args[0], kwargs.get("labels"))
                ),
                with_kwargs=True,
            )
        for name, opt in trainer.optimizers().items():
            opt.register_step_pre_hook(
                lambda o, a, k, name=name: self.events.append(("step", name, None, None))
            )
        real_category_loss = losses.category_loss

        def category_loss(logits, labels):
            self.events.append(("cat", "", None, labels))
            return real_category_loss(logits, labels)

        monkeypatch.setattr(losses, "category_loss", category_loss)

    def fake_index(self, x: torch.Tensor) -> int | None:
        """Which generator output (0, 1, ...) ``x`` is cut from; None for a real clip."""
        outputs = [e[2] for e in self.events if e[0] == "G"]
        for i, out in enumerate(outputs):
            if x.untyped_storage().data_ptr() == out.untyped_storage().data_ptr():
                return i
        return None

    def trace(self) -> list[str]:
        """The events as words: ``G``, ``D:image:real``, ``D:video:fake0``, ``step:generator``, ``cat``."""
        out = []
        last_step = max(i for i, e in enumerate(self.events) if e[0] == "step")
        for kind, name, tensor, _ in self.events[: last_step + 1]:  # not the samples written after
            if kind == "D":
                index = self.fake_index(tensor)
                out.append(f"D:{name}:" + ("real" if index is None else f"fake{index}"))
            elif kind == "step":
                out.append(f"step:{name}")
            else:
                out.append(kind)
        return out


def one_iteration(monkeypatch, tmp_path, name: str, recipe: str | None = None, **model_kw):
    torch.manual_seed(0)
    model = vganzoo.create(name, **{**SMALL, **model_kw})
    if recipe is not None:
        model.recipe = registry.get_recipe(name, recipe)
    model.recipe = {**model.recipe, "batch_size": 2, "discriminator_batch_size": None}
    if name == "mocogan-rnn":
        model.recipe["discriminator_batch_size"] = {"image": 3, "video": 2}
    g = model.generator
    data = h.SyntheticVideos(8, channels=g.channels, frames=g.frames, resolution=g.resolution)
    trainer = Trainer(model, data, TrainConfig(steps=1, out_dir=str(tmp_path / "run"), **QUIET))
    recorder = Recorder(trainer, monkeypatch)
    trainer.fit()
    return trainer, recorder


def test_mocogan_paper_loop(monkeypatch, tmp_path):
    """trainers.py: image D, video D (category CE on the real clips only), then G on a separate fresh
    batch for each discriminator, with the InfoGAN CE on the video D's fakes."""
    _, rec = one_iteration(monkeypatch, tmp_path, "mocogan-rnn", num_classes=3)
    assert rec.trace() == [
        "G", "D:image:real", "D:image:fake0", "step:discriminator.image",
        "G", "D:video:real", "D:video:fake1", "cat", "step:discriminator.video",
        "G", "D:image:fake2", "G", "D:video:fake3", "cat", "step:generator",
    ]  # fmt: skip
    d_inputs = [e for e in rec.events if e[0] == "D"]
    cats = [e for e in rec.events if e[0] == "cat"]
    video_real, video_fake_g = d_inputs[2], d_inputs[5]
    assert cats[0][3] is video_real[3]  # the D step's CE: the real clips' labels
    assert cats[1][3] is video_fake_g[3]  # the G step's CE: the labels drawn for those fakes
    sizes = [e[2].shape[0] for e in d_inputs]
    assert sizes == [3, 3, 2, 2, 3, 2]  # each discriminator its own batch size, real and fake


def test_mocogan_named_variants_keep_the_old_loop(monkeypatch, tmp_path):
    """zoo-v1 (how mocogan-rnn.digits was trained): CE on fakes in the D step, one shared G batch."""
    _, rec = one_iteration(monkeypatch, tmp_path, "mocogan-rnn", "zoo-v1", num_classes=3)
    assert rec.trace() == [
        "G", "D:image:real", "D:image:fake0", "step:discriminator.image",
        "G", "D:video:real", "D:video:fake1", "cat", "cat", "step:discriminator.video",
        "G", "D:image:fake2", "D:video:fake2", "cat", "step:generator",
    ]  # fmt: skip
    assert registry.get_recipe("mocogan-rnn", "fake-category-loss")["g_fake_batches"] == "per-discriminator"
    assert registry.get_recipe("mocogan-rnn", "shared-fake-batch")["d_category_loss"] == "real"


def test_a_recipe_saved_without_loop_keys_means_the_old_loop():
    """Recipes saved before issue 20 (the bundled weights.json) still describe how they trained."""
    old = {k: v for k, v in registry.get_recipe("mocogan-rnn").items() if k not in ("loop", "name")}
    del old["g_fake_batches"], old["d_category_loss"]
    resolved = resolve_recipe(old)
    zoo_v1 = resolve_recipe(registry.get_recipe("mocogan-rnn", "zoo-v1"))
    for key in ("loop", "g_fake_batches", "d_category_loss"):
        assert resolved[key] == zoo_v1[key]


def test_tgan_paper_loop(monkeypatch, tmp_path):
    """TGANUpdaterWGANSVC: one forward pass (fakes, D(fake), D(real)); G updated first, then D."""
    _, rec = one_iteration(monkeypatch, tmp_path, "tgan")
    assert rec.trace() == ["G", "D:video:fake0", "D:video:real", "step:generator", "step:discriminator.video"]


def test_tgan_critic_gradient_is_from_the_forward_before_the_generator_update(monkeypatch, tmp_path):
    """The critic's gradient is that of the same fakes and outputs: recomputing D's loss on the fakes
    of that forward pass (saved by the hook) with the pre-update critic gives the same gradient."""
    torch.manual_seed(0)
    model = vganzoo.create("tgan", **SMALL)
    model.recipe = {**model.recipe, "batch_size": 2, "regularizers": []}
    g = model.generator
    data = h.SyntheticVideos(8, channels=g.channels, frames=g.frames, resolution=g.resolution)
    trainer = Trainer(model, data, TrainConfig(steps=1, out_dir=str(tmp_path / "run"), **QUIET))
    seen, grads = [], {}
    disc = model.discriminators["video"]
    before = {k: v.clone() for k, v in disc.state_dict().items()}
    disc.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    trainer.opt_d["video"].register_step_pre_hook(
        lambda o, a, k: grads.update({n: p.grad.clone() for n, p in disc.named_parameters()})
    )
    trainer.fit()
    fake, real = seen
    disc.load_state_dict(before)
    disc.zero_grad()
    (disc(fake).logits.mean() - disc(real).logits.mean()).backward()
    for name, p in disc.named_parameters():
        torch.testing.assert_close(p.grad, grads[name], rtol=1e-4, atol=1e-6)


def test_vgan_paper_loop(monkeypatch, tmp_path):
    """main.lua: D(real), D(fake); D updated; G from that fake batch and output: no second forward."""
    _, rec = one_iteration(monkeypatch, tmp_path, "vgan", frames=16)
    assert rec.trace() == ["G", "D:video:real", "D:video:fake0", "step:discriminator.video", "step:generator"]


def test_vgan_generator_gradient_is_from_the_d_output_before_the_d_update(monkeypatch, tmp_path):
    """The G step uses the D step's fakes and D output: recomputing G's loss from the same latents
    with the pre-update discriminator gives G's gradient; the updated one would not."""
    torch.manual_seed(0)
    model = vganzoo.create("vgan", frames=16, **SMALL)
    model.recipe = {**model.recipe, "batch_size": 2}
    g, disc = model.generator, model.discriminators["video"]
    data = h.SyntheticVideos(8, channels=g.channels, frames=g.frames, resolution=g.resolution)
    trainer = Trainer(model, data, TrainConfig(steps=1, out_dir=str(tmp_path / "run"), **QUIET))
    g_before = {k: v.clone() for k, v in g.state_dict().items()}
    d_before = {k: v.clone() for k, v in disc.state_dict().items()}
    inputs, grads = [], {}
    g.register_forward_pre_hook(lambda m, args, kwargs: inputs.append(dict(kwargs)), with_kwargs=True)
    trainer.opt_g.register_step_pre_hook(
        lambda o, a, k: grads.update({n: p.grad.clone() for n, p in g.named_parameters()})
    )
    trainer.fit()

    def generator_grads(d_state):
        g.load_state_dict(g_before)
        disc.load_state_dict(d_state)
        g.zero_grad()
        video, aux = g(inputs[0]["z"], return_aux=True)
        loss = trainer.adversarial.g_loss(disc(video).logits) + losses.mask_l1(aux["mask"])
        loss.backward()
        return {n: p.grad.clone() for n, p in g.named_parameters()}

    d_after = {k: v.clone() for k, v in disc.state_dict().items()}
    for d_state, same in ((d_before, True), (d_after, False)):
        recomputed = generator_grads(d_state)
        close = all(torch.allclose(recomputed[n], grads[n], rtol=1e-4, atol=1e-7) for n in grads)
        assert close == same


@pytest.mark.parametrize("name", ["tgan", "vgan"])
def test_alternate_recipe_keeps_our_loop(monkeypatch, tmp_path, name):
    _, rec = one_iteration(monkeypatch, tmp_path, name, "alternate")
    assert rec.trace() == [
        "G", "D:video:real", "D:video:fake0", "step:discriminator.video",
        "G", "D:video:fake1", "step:generator",
    ]  # fmt: skip


def test_paper_is_every_family_default():
    for name in ("mocogan-rnn", "tgan", "vgan", "dvdgan"):
        spec = registry.get_model_spec(name)
        assert next(iter(spec.recipes)) == "paper" and spec.recipe == spec.recipes["paper"]
        assert (
            vganzoo.create(name, **({"num_classes": 0} if name == "mocogan-rnn" else {})).recipe["name"]
            == "paper"
        )


def test_loop_validation():
    with pytest.raises(InvalidConfigError, match="loop"):
        resolve_recipe({"loop": "sideways"})
    with pytest.raises(InvalidConfigError, match="d_steps"):
        resolve_recipe({"loop": "g-first-shared-forward", "d_steps": 2})
    with pytest.raises(InvalidConfigError, match="no recipe 'nope'.*paper"):
        registry.get_recipe("tgan", "nope")


def test_info_lists_the_recipes_and_how_the_weights_were_trained(capsys):
    from vganzoo.cli import main

    assert main(["info", "mocogan-rnn.digits"]) == 0
    out = capsys.readouterr().out
    assert "recipes (vganzoo train --recipe NAME" in out and "zoo-v1" in out
    assert 'differs from paper: d_category_loss="real-and-fake" (paper: "real")' in out
    trained = out.split("mocogan-rnn.digits was trained with:")[1]
    assert "one fake batch for all discriminators" in trained  # its weights.json predates the keys
    assert main(["info", "tgan"]) == 0
    assert "g-first-shared-forward" in capsys.readouterr().out


def test_train_with_a_named_recipe(tmp_path):
    from vganzoo.train import train

    model = vganzoo.create("tgan", **SMALL)
    g = model.generator
    data = h.SyntheticVideos(4, channels=g.channels, frames=g.frames, resolution=g.resolution)
    result = train(
        "tgan", dataset=data, out=str(tmp_path / "run"), steps=1, batch_size=2, recipe="alternate",
        model_overrides=SMALL, progress=False, tensorboard=False, sample_every=0, device="cpu",
    )  # fmt: skip
    saved = (result.run_dir / "config.json").read_text()
    assert '"loop": "alternate"' in saved and '"name": "alternate"' in saved
    with pytest.raises(InvalidConfigError, match="no recipe 'fastest'"):
        train("tgan", dataset=data, out=str(tmp_path / "other"), steps=1, recipe="fastest", device="cpu")


@pytest.mark.parametrize("name", ["tiny-g-first-gan", "tiny-d-first-gan"])
def test_shared_forward_loops_resume_to_the_same_weights(tmp_path, name):
    """The shared-forward loops draw every role's real batch per micro-batch: the data plan and the
    per-iteration reseeding still make a resumed run equal an uninterrupted one."""

    def fit(out, steps, resume=False):
        torch.manual_seed(0)
        model = vganzoo.create(name)  # tiny-mask-gan's networks and regularisers on that loop
        data = h.SyntheticVideos(10, frames=4, resolution=8)
        config = TrainConfig(steps=steps, out_dir=str(out), resume=resume, grad_accum=2, **QUIET)
        trainer = Trainer(model, data, config)
        trainer.fit()
        return trainer

    full = fit(tmp_path / "full", 4)
    fit(tmp_path / "part", 2)
    resumed = fit(tmp_path / "part", 4, resume=True)
    h.assert_same_weights(h.weights(full.model), h.weights(resumed.model))
    assert full.stream.state() == resumed.stream.state() == {"epoch": 3, "offset": 2}  # 4 x 2 x 4 clips


def test_info_of_a_model_with_a_recipe_the_trainer_refuses_still_prints(capsys, monkeypatch):
    from vganzoo.cli import main

    monkeypatch.setitem(registry.get_model_spec("vgan").recipes, "odd", {"loop": "sideways"})
    assert main(["info", "vgan"]) == 0
    out = capsys.readouterr().out
    assert "recipe odd: recipe['loop']: expected one of" in out and "paper: [loop d-first-reuse-fakes]" in out
