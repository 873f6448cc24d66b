"""Losses and regularisers of the zoo's GANs, registered as ``loss`` components.

Adversarial losses are objects with two methods, ``d_loss(real_logits, fake_logits)`` and
``g_loss(fake_logits)``; logits may have any shape with a leading batch dimension (patch
discriminators give a map) and every loss is a mean over all elements. Regularisers are objects
with a ``stage`` telling the trainer where they act:

* ``"d_loss"``: a term added to the discriminator loss (``gradient_penalty``, ``r1``);
* ``"d_after_step"``: an in-place change of the discriminator after its optimiser step on a
  schedule (``singular_value_clipping``);
* ``"g_loss"``: a term added to the generator loss from its auxiliary outputs (``mask_l1``).

Build them by name with :func:`adversarial_loss` and :func:`regularizer` (or
``vganzoo.get_component("loss", name)``); the plain functions below are the same maths for use
outside the trainer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .errors import InvalidConfigError
from .registry import register_component

__all__ = [
    "ADVERSARIAL_LOSSES",
    "REGULARIZERS",
    "AdversarialLoss",
    "BCELoss",
    "GradientPenalty",
    "HingeLoss",
    "MaskL1",
    "R1Penalty",
    "Regularizer",
    "SingularValueClipping",
    "WassersteinLoss",
    "adversarial_loss",
    "category_loss",
    "content_l1",
    "d_loss_bce",
    "d_loss_hinge",
    "d_loss_wasserstein",
    "g_loss_bce",
    "g_loss_hinge",
    "g_loss_wasserstein",
    "gradient_penalty",
    "mask_l1",
    "r1_penalty",
    "regularizer",
    "singular_value_clip_",
]

# A discriminator as the regularisers see it: video (N, C, T, H, W) -> logits with batch dim N.
Critic = Callable[[torch.Tensor], torch.Tensor]


# ----------------------------------------------------------------------------------------------
# Adversarial losses (plain functions)
# ----------------------------------------------------------------------------------------------
def d_loss_bce(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy discriminator loss (real -> 1, fake -> 0).

    ``L_D = mean(-log sigmoid(D(x))) + mean(-log(1 - sigmoid(D(G(z)))))
          = mean(softplus(-D(x))) + mean(softplus(D(G(z))))``
    """
    return F.softplus(-real_logits.float()).mean() + F.softplus(fake_logits.float()).mean()


def g_loss_bce(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: ``L_G = mean(-log sigmoid(D(G(z)))) = mean(softplus(-D(G(z))))``."""
    return F.softplus(-fake_logits.float()).mean()


def d_loss_hinge(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge discriminator loss: ``L_D = mean(relu(1 - D(x))) + mean(relu(1 + D(G(z))))``."""
    return F.relu(1.0 - real_logits.float()).mean() + F.relu(1.0 + fake_logits.float()).mean()


def g_loss_hinge(fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge generator loss: ``L_G = -mean(D(G(z)))``."""
    return -fake_logits.float().mean()


def d_loss_wasserstein(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Wasserstein critic loss: ``L_D = mean(D(G(z))) - mean(D(x))``."""
    return fake_logits.float().mean() - real_logits.float().mean()


def g_loss_wasserstein(fake_logits: torch.Tensor) -> torch.Tensor:
    """Wasserstein generator loss: ``L_G = -mean(D(G(z)))``."""
    return -fake_logits.float().mean()


# ----------------------------------------------------------------------------------------------
# Regularisers and auxiliary losses (plain functions)
# ----------------------------------------------------------------------------------------------
def _per_sample_grad_norm_sq(critic: Critic, inputs: torch.Tensor) -> torch.Tensor:
    """``||d sum(D(x_i)) / d x_i||^2`` for every sample i; differentiable (create_graph)."""
    inputs = inputs.detach().float().requires_grad_(True)
    logits = critic(inputs)
    (grad,) = torch.autograd.grad(logits.float().sum(), inputs, create_graph=True)
    return grad.flatten(1).pow(2).sum(dim=1)


def gradient_penalty(
    critic: Critic,
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    weight: float = 10.0,
    epsilon: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): ``weight * mean_i (||grad_x D(x_hat_i)|| - 1)^2``.

    ``x_hat_i = eps_i * real_i + (1 - eps_i) * fake_i`` with ``eps_i ~ U[0, 1]`` per sample.

    Args:
        critic: maps a video batch (N, C, T, H, W) to logits with leading dim N.
        real, fake: (N, C, T, H, W) videos (``fake`` is detached).
        epsilon: (N,) mixing weights; drawn from ``generator`` (CPU) when None.
    """
    if real.shape != fake.shape:
        raise ValueError(
            f"gradient_penalty: real and fake must have the same shape, got {tuple(real.shape)} and "
            f"{tuple(fake.shape)}"
        )
    n = real.shape[0]
    if epsilon is None:
        epsilon = torch.rand(n, generator=generator)
    epsilon = epsilon.to(device=real.device, dtype=torch.float32).view(n, *([1] * (real.ndim - 1)))
    mixed = epsilon * real.detach().float() + (1.0 - epsilon) * fake.detach().float()
    norms = _per_sample_grad_norm_sq(critic, mixed).add(1e-12).sqrt()
    return weight * (norms - 1.0).pow(2).mean()


def r1_penalty(critic: Critic, real: torch.Tensor, *, weight: float = 1.0) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): ``weight / 2 * mean_i ||grad_x D(x_i)||^2`` on real data."""
    return 0.5 * weight * _per_sample_grad_norm_sq(critic, real).mean()


def singular_value_clip_(module: nn.Module, max_value: float = 1.0) -> int:
    """Clip the singular values of ``module``'s conv weights to ``max_value`` in place (TGAN).

    The one implementation lives in :func:`vganzoo.nn.svc.singular_value_clip_`; this name keeps
    the regulariser beside the other losses.
    """
    from .nn.svc import singular_value_clip_ as clip_

    return clip_(module, max_value=max_value)


def content_l1(generated: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Content loss: ``mean |G(z) - y|`` over every element of (N, C, T, H, W)."""
    if generated.shape != target.shape:
        raise ValueError(
            f"content_l1: generated and target must have the same shape, got {tuple(generated.shape)} and "
            f"{tuple(target.shape)}"
        )
    return (generated.float() - target.float()).abs().mean()


def category_loss(class_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """InfoGAN / MoCoGAN category loss: ``mean_i -log softmax(class_logits_i)[labels_i]``.

    Args:
        class_logits: (N, K) unnormalised class scores.
        labels: (N,) int64 in [0, K).
    """
    return F.cross_entropy(class_logits.float().flatten(1), labels.long().flatten())


def mask_l1(mask: torch.Tensor, *, weight: float = 0.1) -> torch.Tensor:
    """VGAN's sparsity prior on the foreground mask: ``weight * mean |m|``."""
    return weight * mask.float().abs().mean()


# ----------------------------------------------------------------------------------------------
# Components (what the trainer builds from a recipe)
# ----------------------------------------------------------------------------------------------
class AdversarialLoss:
    """Base class: ``d_loss(real_logits, fake_logits)`` and ``g_loss(fake_logits)``, scalars."""

    name = "adversarial"

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


@register_component("loss", "bce")
class BCELoss(AdversarialLoss):
    """Cross-entropy D loss with the non-saturating G loss (see :func:`d_loss_bce`)."""

    name = "bce"

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return d_loss_bce(real_logits, fake_logits)

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return g_loss_bce(fake_logits)


@register_component("loss", "hinge")
class HingeLoss(AdversarialLoss):
    """Hinge loss (see :func:`d_loss_hinge`)."""

    name = "hinge"

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return d_loss_hinge(real_logits, fake_logits)

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return g_loss_hinge(fake_logits)


@register_component("loss", "wasserstein")
class WassersteinLoss(AdversarialLoss):
    """Wasserstein loss (see :func:`d_loss_wasserstein`); pair it with a Lipschitz regulariser."""

    name = "wasserstein"

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return d_loss_wasserstein(real_logits, fake_logits)

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return g_loss_wasserstein(fake_logits)


class Regularizer:
    """Base class of recipe regularisers; ``stage`` is "d_loss", "d_after_step" or "g_loss".

    ``every`` applies the regulariser on iterations ``i`` (0-based) with ``(i + 1) % every == 0``.
    ``roles`` (set from the recipe entry's ``"roles"``) limits a discriminator-side regulariser to
    those discriminators, e.g. R1 on the cheap image discriminator only; None = every one.
    """

    name = "regularizer"
    stage = "d_loss"
    roles: tuple[str, ...] | None = None

    def applies_to(self, role: str) -> bool:
        return self.roles is None or role in self.roles

    def __init__(self, *, weight: float = 1.0, every: int = 1) -> None:
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise InvalidConfigError(
                f"regularizer {self.name!r}: every must be a positive int, got {every!r}"
            )
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0:
            raise InvalidConfigError(
                f"regularizer {self.name!r}: weight must be a non-negative number, got {weight!r}"
            )
        self.weight = float(weight)
        self.every = every

    def active(self, iteration: int) -> bool:
        """Whether it applies on 0-based ``iteration``."""
        return (iteration + 1) % self.every == 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(weight={self.weight}, every={self.every})"


@register_component("loss", "gradient_penalty")
class GradientPenalty(Regularizer):
    """WGAN-GP term on the D loss (see :func:`gradient_penalty`)."""

    name = "gradient_penalty"
    stage = "d_loss"

    def __init__(self, *, weight: float = 10.0, every: int = 1) -> None:
        super().__init__(weight=weight, every=every)

    def __call__(
        self,
        critic: Critic,
        real: torch.Tensor,
        fake: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        return gradient_penalty(critic, real, fake, weight=self.weight, generator=generator)


@register_component("loss", "r1")
class R1Penalty(Regularizer):
    """R1 term on the D loss (see :func:`r1_penalty`)."""

    name = "r1"
    stage = "d_loss"

    def __call__(
        self,
        critic: Critic,
        real: torch.Tensor,
        fake: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        return r1_penalty(critic, real, weight=self.weight)


@register_component("loss", "singular_value_clipping")
class SingularValueClipping(Regularizer):
    """TGAN's clipping of every discriminator, after its update, every ``every`` iterations."""

    name = "singular_value_clipping"
    stage = "d_after_step"

    def __init__(self, *, every: int = 5, max_value: float = 1.0, weight: float = 1.0) -> None:
        super().__init__(weight=weight, every=every)
        self.max_value = float(max_value)

    def __call__(self, discriminator: nn.Module) -> None:
        singular_value_clip_(discriminator, max_value=self.max_value)


@register_component("loss", "mask_l1")
class MaskL1(Regularizer):
    """VGAN's L1 on the generator's mask (``generator(..., return_aux=True)`` gives it)."""

    name = "mask_l1"
    stage = "g_loss"
    aux_key = "mask"

    def __init__(self, *, weight: float = 0.1, every: int = 1) -> None:
        super().__init__(weight=weight, every=every)

    def __call__(self, aux: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if self.aux_key not in aux:
            raise InvalidConfigError(
                f"mask_l1: the generator's auxiliary outputs have no {self.aux_key!r} (got {sorted(aux)})"
            )
        return mask_l1(aux[self.aux_key], weight=self.weight)


@register_component("loss", "content_l1")
def _content_l1_component() -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The content loss as a component: returns :func:`content_l1`."""
    return content_l1


@register_component("loss", "category")
def _category_component() -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The InfoGAN category loss as a component: returns :func:`category_loss`."""
    return category_loss


ADVERSARIAL_LOSSES: dict[str, type[AdversarialLoss]] = {
    "bce": BCELoss,
    "non_saturating": BCELoss,
    "hinge": HingeLoss,
    "wasserstein": WassersteinLoss,
}
REGULARIZERS: dict[str, type[Regularizer]] = {
    "gradient_penalty": GradientPenalty,
    "r1": R1Penalty,
    "singular_value_clipping": SingularValueClipping,
    "mask_l1": MaskL1,
}


def adversarial_loss(name: str) -> AdversarialLoss:
    """Build the adversarial loss ``name`` ("bce", "hinge", "wasserstein" or a plugin's loss component).

    A plugin's loss is ``get_component("loss", name)()`` and must have ``d_loss`` and ``g_loss``.
    """
    if name in ADVERSARIAL_LOSSES:
        return ADVERSARIAL_LOSSES[name]()
    from .errors import UnknownComponentError
    from .registry import get_component

    try:
        loss = get_component("loss", name)()
    except UnknownComponentError:
        raise InvalidConfigError(
            f"adversarial_loss: unknown loss {name!r}; expected one of {sorted(ADVERSARIAL_LOSSES)} or a "
            "registered loss component"
        ) from None
    if not (callable(getattr(loss, "d_loss", None)) and callable(getattr(loss, "g_loss", None))):
        raise InvalidConfigError(f"adversarial_loss: loss component {name!r} has no d_loss/g_loss methods")
    return loss


def regularizer(spec: Mapping[str, Any]) -> Regularizer:
    """Build a regulariser from its recipe entry, e.g. ``{"name": "r1", "weight": 1.0}``."""
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise InvalidConfigError(f"regularizers: each entry must be a dict with a 'name', got {spec!r}")
    name = spec["name"]
    if name not in REGULARIZERS:
        raise InvalidConfigError(
            f"regularizers: unknown regularizer {name!r}; expected one of {sorted(REGULARIZERS)}"
        )
    kwargs = {k: v for k, v in spec.items() if k not in ("name", "roles")}
    roles = spec.get("roles")
    if roles is not None and (
        not isinstance(roles, (list, tuple)) or not roles or not all(isinstance(r, str) for r in roles)
    ):
        raise InvalidConfigError(
            f"regularizers: {name!r} roles must be a non-empty list of discriminator roles, got {roles!r}"
        )
    try:
        reg = REGULARIZERS[name](**kwargs)
    except TypeError as exc:
        raise InvalidConfigError(f"regularizers: bad settings for {name!r}: {exc}") from None
    if roles is not None:
        if reg.stage == "g_loss":
            raise InvalidConfigError(
                f"regularizers: {name!r} acts on the generator; roles apply to discriminator regularizers "
                "only"
            )
        reg.roles = tuple(roles)
    return reg
