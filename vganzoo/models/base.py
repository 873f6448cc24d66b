"""The core model types every family builds: :class:`VideoGAN` and the component protocols.

Protocols (duck-typed; the built-in families and plugins follow them):

Generator (``nn.Module``)
    * ``num_classes: int`` (0 when unconditional), ``channels``, ``frames``, ``resolution``.
    * ``sample_latents(n, *, generator: torch.Generator, labels: Tensor | None) -> dict[str, Tensor]``
      draws every random input on the CPU from ``generator`` (so a seed gives the same videos on
      every device). ``labels`` is a validated ``(n,)`` int64 tensor or None (then a conditional
      generator draws labels itself and returns them under ``"labels"``).
    * ``forward(**latents) -> Tensor`` of shape ``(N, C, T, H, W)`` in [-1, 1]. Generators with
      auxiliary outputs (VGAN's mask) also accept ``return_aux=True`` and then return
      ``(video, dict)``.
    * Optional, sparse frames (StyleGAN-V): a generator that renders only some frames of a clip in
      training returns their times as the latent ``"frame_times"`` ``(N, T)``.

Discriminator (``nn.Module``)
    * ``forward(video, labels=None) -> DiscriminatorOutput``; ``video`` is always the whole clip
      ``(N, C, T, H, W)``: an image discriminator picks its own frames. ``logits`` has a leading
      batch dimension; ``class_logits`` is ``(N, num_classes)`` for categorical discriminators.
    * Discriminators of sparse-frame generators also take ``frame_times=`` (the fakes' times; real
      clips come whole, without it) (:mod:`vganzoo.train.frame_times`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from ..errors import InvalidConfigError, short_repr
from ..nn.graphs import host_reads_allowed
from ..resources import as_device

__all__ = [
    "DiscriminatorOutput",
    "VideoGAN",
    "check_labels",
    "draw_labels",
    "make_generator",
    "sampling_generator",
]

# the output batch and the clamped copy sample() returns, float32
OUTPUT_BYTES_PER_ELEMENT = 8


class DiscriminatorOutput(NamedTuple):
    logits: torch.Tensor
    class_logits: torch.Tensor | None = None


def make_generator(seed: int | None) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (or from torch's global RNG when None)."""
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,)).item())
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
    if not -(2**63) <= seed < 2**64:  # what torch.Generator.manual_seed takes
        raise ValueError(f"seed must be in [-2**63, 2**64), got {seed}")
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    return gen


def check_labels(
    labels: Any,
    n: int,
    num_classes: int,
    *,
    owner: str | None = None,
    required: bool = False,
    device: torch.device | str | None = None,
) -> torch.Tensor | None:
    """Validate ``labels`` for ``n`` samples; returns an int64 tensor of shape (n,) or None.

    An int is broadcast to every sample. The result is on ``device`` (default the CPU). Raises
    ValueError / TypeError naming ``labels`` (after ``owner``, the module checking, when given) on a
    wrong shape, dtype or range, when the model is unconditional, or, with ``required`` (a module's
    forward), when a conditional model gets none.
    """
    where = f"{owner}: " if owner else ""
    if labels is None:
        if required and num_classes > 0:
            raise ValueError(
                f"{where}labels are required (an int64 tensor of shape ({n},), num_classes={num_classes})"
            )
        return None
    if num_classes <= 0:
        raise ValueError(f"labels: {owner or 'this model'} is unconditional (num_classes=0); give no labels")
    labels = _as_label_tensor(labels, n, where, device)
    if labels.shape != (n,):
        raise ValueError(f"{where}labels must have shape ({n},) for n={n}, got {tuple(labels.shape)}")
    # The range check reads the values: not possible while torch.compile / torch.export trace or a
    # CUDA graph records (out-of-range labels are then left to the embedding's own index error).
    if n and host_reads_allowed() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"{where}labels must be in [0, {num_classes - 1}], got values from {int(labels.min())} to "
            f"{int(labels.max())}"
        )
    return labels


def one_hot(labels: torch.Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(N,) class indices -> (N, num_classes) one-hot rows in ``dtype``, reading no values on the host
    (F.one_hot checks the range with a host read on the CPU, which a CUDA graph cannot record; the
    range is :func:`check_labels`' job)."""
    classes = torch.arange(num_classes, device=labels.device)
    return (labels.unsqueeze(-1) == classes).to(dtype)


def draw_labels(n: int, num_classes: int, labels: Any, generator: torch.Generator) -> torch.Tensor | None:
    """A generator's ``labels`` latent: ``labels`` checked, or (n,) classes drawn uniformly from
    ``generator`` when None; None for an unconditional model (which must get no labels). A
    conditional model always draws, so the latents drawn after the labels do not depend on them."""
    if num_classes > 0:
        drawn = torch.randint(0, num_classes, (n,), generator=generator)
        return drawn if labels is None else check_labels(labels, n, num_classes)
    check_labels(labels, n, num_classes)  # raises unless None: unconditional
    return None


def sampling_generator(model: Any, use_ema: bool = True) -> nn.Module:
    """The generator that sampling runs: ``model.generator_ema`` when ``use_ema`` and the model has
    one (a plugin model may have no such attribute), else ``model.generator``."""
    ema = getattr(model, "generator_ema", None)
    return ema if (use_ema and ema is not None) else model.generator


def check_flags(**flags: Any) -> None:
    """Refuse a flag that is not True or False (``return_latents="no"`` would count as true)."""
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be True or False, got {short_repr(value)}")


def _as_label_tensor(labels: Any, n: int, where: str, device: torch.device | str | None) -> torch.Tensor:
    """An int, a sequence of ints or an integer tensor -> an int64 tensor on ``device`` (CPU if None)."""
    device = "cpu" if device is None else device
    if isinstance(labels, bool):
        raise TypeError(f"{where}labels must be an int, a sequence of ints or an integer tensor, not a bool")
    if isinstance(labels, int):
        return torch.full((n,), labels, dtype=torch.long, device=device)
    if isinstance(labels, torch.Tensor):
        if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
            raise TypeError(f"{where}labels must be an integer tensor, got dtype {labels.dtype}")
        labels = labels.detach().to(device, torch.long)
        return labels.expand(n).clone() if labels.ndim == 0 else labels
    if isinstance(labels, Sequence) and not isinstance(labels, (str, bytes)):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in labels):
            raise TypeError(f"{where}labels must contain ints only")
        if any(not -(2**63) <= v < 2**63 for v in labels):  # torch would say "Overflow when unpacking"
            raise ValueError(f"{where}labels must be class indices, got {short_repr(list(labels))}")
        return torch.tensor(list(labels), dtype=torch.long, device=device)
    raise TypeError(
        f"{where}labels must be an int, a sequence of ints or an integer tensor, got {type(labels).__name__}"
    )


class VideoGAN(nn.Module):
    """A generator with its discriminators, config and training recipe.

    Attributes:
        generator: the video generator (see the module docstring for its protocol).
        discriminators: ``nn.ModuleDict`` by role (``"image"``, ``"video"``, ...); may be empty
            when only the generator was loaded.
        generator_ema: an exponential moving average copy of the generator, or None.
        config: a JSON-able dict; ``vganzoo.create(config["model"], **rest)`` rebuilds this model.
        recipe: the family's training recipe (optimisers, losses, step ratio, regularisers, EMA).
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminators: Mapping[str, nn.Module] | None = None,
        *,
        generator_ema: nn.Module | None = None,
        config: Mapping[str, Any] | None = None,
        recipe: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.generator = generator
        self.discriminators = nn.ModuleDict(dict(discriminators or {}))
        self.generator_ema = generator_ema
        self.config: dict[str, Any] = dict(config or {})
        self.recipe: dict[str, Any] = dict(recipe or {})

    @property
    def name(self) -> str:
        return str(self.config.get("model", type(self).__name__))

    @property
    def num_classes(self) -> int:
        return int(getattr(self.generator, "num_classes", 0) or 0)

    def add_ema(self) -> nn.Module:
        """Create ``generator_ema`` as a frozen copy of the generator (if it does not exist yet)."""
        if self.generator_ema is None:
            self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)
        return self.generator_ema

    def discriminator(self, role: str) -> nn.Module:
        if role not in self.discriminators:
            have = ", ".join(self.discriminators) or "none (only the generator was loaded)"
            raise KeyError(f"no discriminator {role!r} in {self.name}; it has: {have}")
        return self.discriminators[role]

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        seed: int | None = None,
        labels: Any = None,
        device: torch.device | str | None = None,
        use_ema: bool = True,
        return_latents: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Draw ``n`` videos ``(n, C, T, H, W)`` in [-1, 1]; the same seed and ``n`` give the same videos.

        The latents are drawn as one batch, so with another ``n`` the first videos are not the same
        for every family (torch's CPU normal sampler depends on the batch size); to reproduce one
        video from a larger set, keep its latents (``return_latents=True``) and run the generator.

        Args:
            n: number of videos (0 gives an empty batch).
            seed: seeds a private CPU generator for every latent draw; None draws a seed from
                torch's global RNG.
            labels: class labels for a conditional model (int, sequence or (n,) tensor); None
                draws them at random.
            device: where to run (default: where the generator's parameters are).
            use_ema: use ``generator_ema`` when the model has one.
            return_latents: also return the latent codes (and labels) that were used.
        """
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        check_flags(use_ema=use_ema, return_latents=return_latents)
        gen_module, device, dtype = self._sampling_generator(use_ema, device)
        labels = check_labels(labels, n, self.num_classes)
        check_output_memory(gen_module, n, device)
        latents = gen_module.sample_latents(n, generator=make_generator(seed), labels=labels)
        # latents are drawn in float32 on the CPU (the same seed gives the same videos anywhere); a
        # model cast with .to(dtype) / load(dtype=...) gets them in its own dtype
        latents = {
            k: v.to(device=device, dtype=dtype if v.is_floating_point() else None)
            if isinstance(v, torch.Tensor)
            else v
            for k, v in latents.items()
        }
        videos = self._run_generator(gen_module, latents)
        return (videos, latents) if return_latents else videos

    def _sampling_generator(
        self, use_ema: bool, device: torch.device | str | None
    ) -> tuple[nn.Module, torch.device, torch.dtype | None]:
        """What :meth:`sample` runs: the generator (its EMA copy when asked and present), the device
        (default: where its weights are; refused: "meta", or one other than the weights') and its
        weights' floating-point dtype (None when it has none)."""
        gen_module = sampling_generator(self, use_ema)
        param = next(gen_module.parameters(), None)
        if device is None:
            device = param.device if param is not None else torch.device("cpu")
        device = as_device(device)  # refuses "meta" too
        if param is not None and param.device != device:
            raise ValueError(
                f"device: the generator's weights are on {param.device}, not {device}; call "
                f"model.to({str(device)!r}) first"
            )
        dtype = param.dtype if param is not None and param.is_floating_point() else None
        return gen_module, device, dtype

    @staticmethod
    def _run_generator(gen_module: nn.Module, latents: Mapping[str, Any], **kwargs: Any) -> torch.Tensor:
        """``gen_module(**latents, **kwargs)`` in eval mode (its mode restored after), clamped to [-1, 1]."""
        was_training = gen_module.training
        gen_module.eval()
        try:
            videos = gen_module(**latents, **kwargs)
        finally:
            gen_module.train(was_training)
        return videos.clamp(-1.0, 1.0)

    def extra_repr(self) -> str:
        return f"model={self.name!r}"


def check_output_memory(
    generator: nn.Module, n: int, device: torch.device, *, frames: int | None = None
) -> None:
    """Refuse ``n`` videos whose output alone (float32, one batch) cannot fit in memory (CPU only:
    a GPU reports its own out-of-memory error at once). ``frames``: the clip length, for generators
    that render any length (default: the generator's ``frames``)."""
    from ..resources import check_memory

    sizes = [getattr(generator, key, None) for key in ("channels", "frames", "resolution")]
    if frames is not None:
        sizes[1] = frames
    if device.type != "cpu" or not all(isinstance(v, int) and v > 0 for v in sizes):
        return
    channels, frames, resolution = sizes
    check_memory(
        n * channels * frames * resolution * resolution * OUTPUT_BYTES_PER_ELEMENT,
        f"sample: n={n} videos of (C, T, H, W) = {(channels, frames, resolution, resolution)}",
        advice="sample fewer at a time (vganzoo.sampling.sample_videos generates in chunks)",
    )


def require(condition: bool, message: str) -> None:
    """Raise InvalidConfigError(message) unless ``condition``; for factories' config checks."""
    if not condition:
        raise InvalidConfigError(message)
