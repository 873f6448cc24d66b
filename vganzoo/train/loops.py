"""One training iteration: the order of updates and which fake batches each step sees.

The recipe's ``loop`` picks one (:data:`vganzoo.train.config.LOOPS`); each family's ``paper``
recipe names its original's:

``alternate`` (MoCoGAN, DVD-GAN, StyleGAN-V; the only loop before issue 20)
    ``d_steps`` rounds of discriminator updates, every role in turn on its own real batch and
    freshly generated fakes, then one generator update on fresh fakes against every discriminator:
    one fake batch cut to each role's batch size (``g_fake_batches: "shared"``) or a separate batch
    per discriminator, drawn in role order (``"per-discriminator"``, MoCoGAN's ``train_generator``).
    ``d_category_loss`` is the class cross-entropy of the D step: on real clips with their labels
    only (``"real"``, MoCoGAN's ``train_discriminator``) or on the fakes' drawn labels as well.
``g-first-shared-forward`` (TGAN's updater)
    One forward pass: fakes ``G(z)``, then ``D(fake)`` and ``D(real)``; the generator's update
    from ``-D(fake)`` first, then the critic's from the same fakes and outputs.
``d-first-reuse-fakes`` (VGAN's ``main.lua``)
    ``D(real)``, then ``D(fake)`` on one fake batch; the discriminator is updated, then the
    generator from that fake batch and that D output, computed before the D update. (The Torch code
    back-propagates that output through D's *updated* weights; autograd keeps the weights of the
    forward pass, so here both gradients come from the pre-update D, and the updates are applied
    D first.)

In the shared-forward loops both gradients are computed from the one forward pass before either
optimiser steps (each backward reaches only its own network's parameters), then the optimisers
step in the loop's order: the same numbers as the originals' backward, step, backward, step.
Those loops take one D step per iteration and use the largest role batch for the fakes.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import torch

from .. import losses
from . import distributed, frame_times

if TYPE_CHECKING:
    from .trainer import Trainer

__all__ = ["run_updates"]


def _as_float(x: torch.Tensor | float) -> float:
    return float(x.detach().float().item()) if isinstance(x, torch.Tensor) else float(x)


def run_updates(t: Trainer, iteration: int) -> dict[str, float]:
    """The updates of iteration ``iteration`` as the recipe's ``loop`` orders them; their metrics.
    Regularisers that act after D's update run between the D and G updates when D goes first, else
    after the critic's update."""
    loop = t.recipe["loop"]
    if loop == "g-first-shared-forward":
        metrics = _shared_forward(t, iteration, generator_first=True)
        _after_d_step(t, iteration)
        return metrics
    if loop == "d-first-reuse-fakes":
        return _shared_forward(t, iteration, generator_first=False)
    metrics: dict[str, float] = {}
    for _ in range(t.d_steps):
        for role in t.roles:
            d_loss = discriminator_update(t, role, iteration)
            metrics[f"d_loss/{role}"] = metrics.get(f"d_loss/{role}", 0.0) + d_loss / t.d_steps
    _after_d_step(t, iteration)
    metrics.update(generator_update(t, iteration))
    return metrics


def _after_d_step(t: Trainer, iteration: int) -> None:
    """Regularisers with stage ``d_after_step`` (singular value clipping) due at ``iteration``."""
    after_step = [r for r in t.regularizers if r.stage == "d_after_step" and r.active(iteration)]
    if after_step and distributed.is_distributed():
        # clipping reads BN statistics: use the same on every rank
        distributed.broadcast_buffers(t.model.discriminators.values())
    for reg in after_step:
        for role in t.roles:
            if reg.applies_to(role):
                reg(t.model.discriminators[role])


def category_terms(
    t: Trainer,
    real_class: torch.Tensor | None,
    real_labels: torch.Tensor | None,
    fake_class: torch.Tensor | None,
    fake_labels: torch.Tensor | None,
) -> torch.Tensor | float:
    """InfoGAN category CE on the fakes' drawn labels and on real labels (each where given)."""
    if t.category_weight == 0:
        return 0.0
    total: torch.Tensor | float = 0.0
    if fake_class is not None and fake_labels is not None:
        total = total + losses.category_loss(fake_class, fake_labels)
    if real_class is not None and real_labels is not None:
        total = total + losses.category_loss(real_class, real_labels)
    return t.category_weight * total


def _d_category(t: Trainer, out_real: Any, real_labels: Any, out_fake: Any, fake_labels: Any) -> Any:
    """The D step's category terms: real clips only, or the fakes too (``d_category_loss``)."""
    on_fakes = t.recipe["d_category_loss"] == "real-and-fake"
    return category_terms(
        t,
        out_real.class_logits,
        real_labels,
        out_fake.class_logits if on_fakes else None,
        fake_labels if on_fakes else None,
    )


def _d_regularizers(t: Trainer, role: str, iteration: int, real: Any, real_labels: Any, fake: Any) -> Any:
    """The recipe's D-loss regularisers for ``role`` due at ``iteration`` (R1, gradient penalty), through
    the uncompiled discriminator (they differentiate it twice, which compiled modules cannot)."""
    disc = t.d_eager[role]
    total: torch.Tensor | float = 0.0
    for reg in t.regularizers:
        if reg.stage == "d_loss" and reg.active(iteration) and reg.applies_to(role):
            critic = lambda x, lab=real_labels: disc(x, labels=lab).logits
            total = total + reg(critic, real, fake.detach(), generator=t.latent_generator)
    return total


def discriminator_update(t: Trainer, role: str, iteration: int) -> float:
    """One update of discriminator ``role`` on its own real batch and freshly generated fakes."""
    accum = t.config.grad_accum
    disc, opt, scaler = t.d_run[role], t.opt_d[role], t.scalers[f"discriminator.{role}"]
    batch_size = t.batch_sizes[role]
    opt.zero_grad(set_to_none=True)
    total = 0.0
    for micro in range(accum):
        real, real_labels = t._real_batch(batch_size)
        with torch.no_grad(), t._autocast():
            fake, fake_labels, _, fake_inputs = t._generate(batch_size)
        if not t._shape_checked:
            t._check_shapes(real, fake, sparse=bool(fake_inputs))
        with distributed.no_sync(disc, last=micro == accum - 1):
            with t._autocast():
                out_real = disc(real, labels=real_labels)
                out_fake = disc(fake.detach(), labels=fake_labels, **fake_inputs)
                loss = t.adversarial.d_loss(out_real.logits, out_fake.logits)
                loss = loss + _d_category(t, out_real, real_labels, out_fake, fake_labels)
            loss = loss + _d_regularizers(t, role, iteration, real, real_labels, fake)
            t._check_finite(loss, f"discriminator loss ({role})")
            scaler.scale(loss / accum).backward()
        total += _as_float(loss) / accum
    scaler.step(opt)
    scaler.update()
    return total


@contextlib.contextmanager
def _frozen_discriminators(t: Trainer) -> Any:
    """The G step needs gradients through D, not for D's weights."""
    raw = [t.model.discriminators[r] for r in t.roles]
    for d in raw:
        d.requires_grad_(False)
    try:
        yield
    finally:
        for d in raw:
            d.requires_grad_(True)


def generator_update(t: Trainer, iteration: int) -> dict[str, float]:
    """One generator update on fresh fakes against every discriminator (``g_fake_batches``)."""
    accum = t.config.grad_accum
    scaler = t.scalers["generator"]
    t.opt_g.zero_grad(set_to_none=True)
    g_regs = [r for r in t.regularizers if r.stage == "g_loss" and r.active(iteration)]
    per_discriminator = t.recipe["g_fake_batches"] == "per-discriminator"
    metrics: dict[str, float] = {"g_loss": 0.0}
    with _frozen_discriminators(t):
        for micro in range(accum):
            with contextlib.ExitStack() as stack:
                stack.enter_context(distributed.no_sync(t.g_run, last=micro == accum - 1))
                for role in t.roles:  # D's gradients are not wanted here: no DDP reduction
                    stack.enter_context(distributed.no_sync(t.d_run[role], last=False))
                with t._autocast():
                    loss = torch.zeros((), device=t.device)
                    aux: dict[str, torch.Tensor] = {}
                    shared = None
                    if not per_discriminator:
                        shared = t._generate(max(t.batch_sizes.values()), grad=True, aux=bool(g_regs))
                        aux = shared[2]
                    for role in t.roles:
                        n = t.batch_sizes[role]
                        if shared is None:  # a batch of this role's size for this discriminator alone
                            fake, labels, extras, inputs = t._generate(
                                n, grad=True, aux=bool(g_regs) and not aux
                            )
                            aux = aux or extras
                        else:
                            fake, labels, _, inputs = shared
                            fake, labels = fake[:n], (labels[:n] if labels is not None else None)
                            inputs = frame_times.take(inputs, n)
                        out = t.d_run[role](fake, labels=labels, **inputs)
                        adv = t.adversarial.g_loss(out.logits)
                        metrics[f"g_adv/{role}"] = metrics.get(f"g_adv/{role}", 0.0) + _as_float(adv) / accum
                        loss = loss + adv + category_terms(t, None, None, out.class_logits, labels)
                for reg in g_regs:
                    loss = loss + reg(aux)
                t._check_finite(loss, "generator loss")
                scaler.scale(loss / accum).backward()
            metrics["g_loss"] += _as_float(loss) / accum
    scaler.step(t.opt_g)
    scaler.update()
    return metrics


def _shared_forward(t: Trainer, iteration: int, *, generator_first: bool) -> dict[str, float]:
    """TGAN's (``generator_first``) or VGAN's loop: one fake batch and one D output per role serve
    both updates; see the module docstring."""
    accum = t.config.grad_accum
    g_regs = [r for r in t.regularizers if r.stage == "g_loss" and r.active(iteration)]
    g_params = [p for p in t.model.generator.parameters() if p.requires_grad]
    t.opt_g.zero_grad(set_to_none=True)
    for role in t.roles:
        t.opt_d[role].zero_grad(set_to_none=True)
    metrics: dict[str, float] = {"g_loss": 0.0}
    batch = max(t.batch_sizes.values())
    for micro in range(accum):
        reals = {role: t._real_batch(t.batch_sizes[role]) for role in t.roles}
        last = micro == accum - 1
        with contextlib.ExitStack() as stack:
            stack.enter_context(distributed.no_sync(t.g_run, last=last))
            for role in t.roles:
                stack.enter_context(distributed.no_sync(t.d_run[role], last=last))
            with t._autocast():
                fake, fake_labels, aux, fake_inputs = t._generate(batch, grad=True, aux=bool(g_regs))
            g_loss: torch.Tensor | float = 0.0
            d_losses: dict[str, torch.Tensor] = {}
            for role in t.roles:
                real, real_labels = reals[role]
                if not t._shape_checked:
                    t._check_shapes(real, fake, sparse=bool(fake_inputs))
                n = t.batch_sizes[role]
                labels = fake_labels[:n] if fake_labels is not None else None
                disc = t.d_run[role]
                with t._autocast():
                    if generator_first:  # TGAN: D(fake) then D(real), as its updater's forward
                        out_fake = disc(fake[:n], labels=labels, **frame_times.take(fake_inputs, n))
                        out_real = disc(real, labels=real_labels)
                    else:  # VGAN: real first, then fake
                        out_real = disc(real, labels=real_labels)
                        out_fake = disc(fake[:n], labels=labels, **frame_times.take(fake_inputs, n))
                    adv = t.adversarial.g_loss(out_fake.logits)
                    d_loss = t.adversarial.d_loss(out_real.logits, out_fake.logits)
                    d_loss = d_loss + _d_category(t, out_real, real_labels, out_fake, labels)
                d_loss = d_loss + _d_regularizers(t, role, iteration, real, real_labels, fake[:n])
                d_losses[role] = d_loss
                metrics[f"g_adv/{role}"] = metrics.get(f"g_adv/{role}", 0.0) + _as_float(adv) / accum
                g_loss = g_loss + adv + category_terms(t, None, None, out_fake.class_logits, labels)
            for reg in g_regs:
                g_loss = g_loss + reg(aux)
            t._check_finite(torch.as_tensor(g_loss), "generator loss")
            for role, d_loss in d_losses.items():
                t._check_finite(d_loss, f"discriminator loss ({role})")
            # both gradients from this one forward pass, each into its own network's parameters only
            t.scalers["generator"].scale(g_loss / accum).backward(inputs=g_params, retain_graph=True)
            for role, d_loss in d_losses.items():
                d_params = [p for p in t.model.discriminators[role].parameters() if p.requires_grad]
                t.scalers[f"discriminator.{role}"].scale(d_loss / accum).backward(
                    inputs=d_params, retain_graph=True
                )
        metrics["g_loss"] += _as_float(g_loss) / accum
        for role, d_loss in d_losses.items():
            metrics[f"d_loss/{role}"] = metrics.get(f"d_loss/{role}", 0.0) + _as_float(d_loss) / accum
    if generator_first:
        _step(t, "generator")
        for role in t.roles:
            _step(t, f"discriminator.{role}")
    else:
        for role in t.roles:
            _step(t, f"discriminator.{role}")
        _after_d_step(t, iteration)
        _step(t, "generator")
    return metrics


def _step(t: Trainer, name: str) -> None:
    """Step optimiser ``name`` (``generator`` / ``discriminator.<role>``) through its grad scaler."""
    optimizer = t.opt_g if name == "generator" else t.opt_d[name.partition(".")[2]]
    t.scalers[name].step(optimizer)
    t.scalers[name].update()
