"""``train()``: model name + data spec -> a finished run folder (what ``vganzoo train`` calls)."""

from __future__ import annotations

import errno
import json
import logging
import os
import shlex
import time
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from .. import hub, registry
from ..errors import InvalidConfigError, VganzooError, short_repr
from ..files import read_json_file
from . import checkpoint as ckpt
from . import distributed
from .config import MAX_STEPS, TrainConfig, apply_overrides
from .trainer import Trainer, TrainResult, check_cuda_graphs

__all__ = ["RunStoppedError", "default_run_dir", "train"]

logger = logging.getLogger(__name__)

# Errors of writing into the run folder that stop a run (it keeps its last checkpoint)
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}


class RunStoppedError(VganzooError, OSError):
    """The run folder could not be written (disk full, quota, read-only): the run stopped, its last
    checkpoint intact; the message names the file, that checkpoint and the command to resume."""


def _stopped_message(exc: OSError, trainer: Any, command: str | None) -> str:
    where = exc.filename or f"the run folder {str(trainer.run_dir)!r}"
    last = str(trainer.last_checkpoint) if trainer.last_checkpoint else "none (no checkpoint was written)"
    run_dir = str(trainer.run_dir)
    if command:
        words = shlex.split(command)
        words += [] if "--out" in words else ["--out", run_dir]
        words += [] if "--resume" in words else ["--resume"]
        resume = " ".join(map(shlex.quote, words))
    else:
        resume = f"train(..., out={run_dir!r}, resume=True)"
    return (
        f"{exc.strerror or exc} while writing {where}; the run stopped at iteration {trainer.step}. "
        f"The last good checkpoint is {last}. Free some space, then continue with: {resume}"
    )


def default_run_dir(model_name: str, device: torch.device) -> str:
    """``runs/<model>-<UTC time>``; under torchrun every rank gets rank 0's name."""
    stamp = torch.tensor([int(time.time())], dtype=torch.int64, device=device)
    if distributed.is_distributed():
        torch.distributed.broadcast(stamp, src=0)
    text = time.strftime("%Y%m%d-%H%M%S", time.gmtime(int(stamp.item())))
    return str(Path("runs") / f"{model_name.replace('::', '-')}-{text}")


def _model_size(model: Any, key: str) -> int | None:
    value = getattr(model.generator, key, None)
    if value is None:
        value = model.config.get(key)
    return int(value) if value is not None else None


def _model_from_weights(model: str, init_from: str, overrides: Mapping[str, Any]) -> Any:
    """``model`` built with weight set ``init_from``'s config plus ``overrides`` (weights not loaded yet)."""
    if not isinstance(init_from, str) or not init_from:
        raise ValueError(
            "init_from: expected a weight-set name (arch.tag, hf-hub:org/repo, local-dir:/path), got "
            f"{init_from!r}"
        )
    config = hub.pretrained_config(init_from, check_size=True)
    trained_as = config.pop("model")
    if registry.get_model_spec(trained_as) is not registry.get_model_spec(model):
        raise InvalidConfigError(
            f"init_from: {init_from!r} holds weights of {trained_as!r}, not of {model!r}; "
            f"train {trained_as!r} to fine-tune them"
        )
    if overrides:
        hub.check_model_memory(model, {**config, **overrides}, advice="choose smaller model settings")
    return registry.create(model, **{**config, **overrides})


def _has_checkpoint(resume: bool | str, out: str | None) -> bool:
    """Whether ``resume`` will load a checkpoint (which then replaces any initial weights)."""
    if not resume:
        return False
    if not isinstance(resume, bool):
        return True
    return out is not None and bool(ckpt.list_checkpoints(Path(out) / "checkpoints"))


def _init_weights(gan: Any, init_from: str) -> Any:
    """Load ``init_from`` into ``gan`` where it fits (the fine-tuning start); returns the report."""
    return hub.load_weights(gan, init_from, components="all", strict=False)


def _drop_ema(gan: Any, report: Any) -> None:
    """No EMA in this run's recipe: a loaded one would be exported unchanged beside the trained generator."""
    gan.generator_ema = None
    if "generator_ema" in report.loaded:
        report.loaded.remove("generator_ema")
        report.partial.pop("generator_ema", None)
        report.skipped.append("generator_ema")


_INHERITED_ON_RESUME = ("seed", "grad_accum")


def _check_resume_matches(
    saved: Mapping[str, Any],
    saved_name: str,
    model: str,
    data: str | None,
    out: str,
    options: Mapping[str, Any],
) -> None:
    """Resuming continues the run in ``out``: another model is an error; other data or another seed /
    grad_accum is allowed but makes the run differ from an uninterrupted one, so it is said."""
    if registry.get_model_spec(model) is not registry.get_model_spec(saved_name):
        raise InvalidConfigError(
            f"resume: the run in {out!r} trains {saved_name!r}, not {model!r}; resume it as {saved_name!r} "
            "or give another --out"
        )
    changed = []
    if data is not None and saved.get("data") is not None and data != saved["data"]:
        changed.append(f"data {saved['data']!r} -> {data!r}")
    before = saved.get("train") or {}
    for key in _INHERITED_ON_RESUME:
        if key in options and key in before and options[key] != before[key]:
            changed.append(f"{key} {before[key]!r} -> {options[key]!r}")
    if changed:
        warnings.warn(
            f"resume: changing {', '.join(changed)} makes this run differ from an uninterrupted one",
            stacklevel=3,
        )


def train(
    model: str,
    *,
    data: str | None = None,
    dataset: Any = None,
    out: str | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    model_overrides: Mapping[str, Any] | None = None,
    recipe_overrides: Iterable[str] = (),
    resume: bool | str = False,
    init_from: str | None = None,
    dataset_kwargs: Mapping[str, Any] | None = None,
    command: str | None = None,
    recipe: str | None = None,
    **train_options: Any,
) -> TrainResult:
    """Build ``model``, its dataset and a :class:`Trainer`, and train.

    Args:
        model: a registered model name (``vganzoo list``).
        data: a dataset spec for ``vganzoo.data.build_dataset`` ("moving-digits",
            "moving-shapes" or a folder); or pass ``dataset`` directly.
        out: the run folder (default ``runs/<model>-<time>``).
        steps: total iterations (default: a resumed run's total, else 1000).
        batch_size: sets the recipe's ``batch_size`` for every discriminator (and drops the
            recipe's per-role ``discriminator_batch_size``).
        model_overrides: keywords for ``vganzoo.create`` (resolution, frames, width,
            num_classes...; None values are ignored).
        recipe_overrides: ``KEY=VALUE`` strings (``optimizers.generator.lr=1e-4``, ``d_steps=2``).
        recipe: a named recipe of the model (``vganzoo info MODEL`` lists them; default: the
            family's ``paper`` recipe, or the recipe a resumed run or ``init_from`` weight set has);
            ``batch_size`` and ``recipe_overrides`` apply on top.
        resume: True continues the newest checkpoint in ``out`` (with the model config and
            recipe saved there); a path continues that checkpoint file.
        init_from: fine-tune: start from weight set ``init_from`` (anything ``vganzoo.load`` takes:
            ``arch.tag``, ``hf-hub:org/repo``, ``local-dir:/path``) instead of random weights.
            The model is built with the weight set's config (``model_overrides`` on top, e.g. another
            ``num_classes``) and trained with its recipe when it has one (else the model's);
            generator, EMA and discriminators are loaded where their tensors fit, the rest keep
            their fresh initialisation (logged, and recorded in the run's config.json). ``model``
            must name the same architecture. When ``resume`` finds a checkpoint, that wins.
        command: the command line, recorded in the run's config and the model card.
        train_options: any other :class:`TrainConfig` field (device, amp, seed, ...).
    """
    _check_arguments(data, dataset, batch_size, recipe_overrides, out, resume)
    recipe_name = recipe
    model_overrides = {k: v for k, v in dict(model_overrides or {}).items() if v is not None}
    group_existed = torch.distributed.is_available() and torch.distributed.is_initialized()
    if train_options.get("cuda_graphs") is True:  # refused before a process group waits for its peers
        check_cuda_graphs(train_options.get("device"))
    device = distributed.init_from_env(train_options.pop("device", None))
    try:
        saved = _saved_run(resume, out)
        if data is None and dataset is None:
            data = _resumed_data(saved, out)
        _inherit_options(train_options, saved)
        seed = int(train_options.get("seed", 0))
        torch.manual_seed(seed)  # the initial weights
        if saved is not None:
            gan, recipe, report = _model_to_resume(saved, model, data, out, model_overrides, train_options)
        elif init_from is not None:
            gan, recipe, report = _model_to_fine_tune(model, init_from, model_overrides)
        else:
            if dataset is None:
                model_overrides = _with_data_defaults(model, data, model_overrides, seed, dataset_kwargs)
            hub.check_model_memory(model, model_overrides, advice="choose smaller model settings")
            gan = registry.create(model, **model_overrides)
            recipe, report = dict(gan.recipe), None
        if recipe_name is not None:
            recipe = _named_recipe(model, recipe_name, saved)
        gan.recipe = _final_recipe(recipe, batch_size, recipe_overrides, saved)
        _check_batch_memory(gan)
        if report is None and not _has_checkpoint(resume, out):
            # a resumed run that has no checkpoint yet starts where the run was to start
            start = init_from if init_from is not None else _saved_init_from(saved, out)
            if start is not None:
                report = _init_weights(gan, start)
        run_info = _run_info(gan, data, dataset, report, saved, command)
        if dataset is None:
            dataset = _build_dataset(gan, data, seed, dataset_kwargs)
        config = TrainConfig(
            steps=_total_steps(steps, saved, out),
            out_dir=str(out if out is not None else default_run_dir(gan.name, device)),
            resume=resume,
            device=str(device),
            **train_options,
        )
        trainer = Trainer(gan, dataset, config, run_info=run_info)
        try:
            return trainer.fit()
        except OSError as exc:
            if exc.errno not in WRITE_ERRNOS:
                raise
            raise RunStoppedError(_stopped_message(exc, trainer, run_info.get("command"))) from exc
    finally:
        if not group_existed:  # leave a caller's process group alone
            distributed.shutdown()


def _named_recipe(model: str, name: Any, saved: Mapping[str, Any] | None) -> dict[str, Any]:
    """Recipe ``name`` of ``model``; a resumed run keeps the recipe it started with."""
    if not isinstance(name, str) or not name:
        raise InvalidConfigError(f"recipe: expected a recipe name, got {name!r}")
    recipe = registry.get_recipe(model, name)
    if saved is not None and saved["recipe"].get("name") != name:
        raise InvalidConfigError(
            f"resume: the run was started with recipe {saved['recipe'].get('name')!r}, not {name!r}; "
            "resume without --recipe, or start a new run (--out) with it"
        )
    return saved["recipe"] if saved is not None else recipe


def _check_arguments(
    data: str | None,
    dataset: Any,
    batch_size: int | None,
    recipe_overrides: Any,
    out: str | None,
    resume: bool | str,
) -> None:
    """The argument errors ``train`` reports before it starts anything (nothing is written yet)."""
    if data is None and dataset is None and not resume:
        raise ValueError("data: pass a dataset spec (moving-digits, moving-shapes or a folder) or a dataset")
    if data is not None and (not isinstance(data, (str, os.PathLike)) or not str(os.fspath(data)).strip()):
        raise ValueError(f"data: expected a dataset name or a folder, got {data!r}")
    if out is not None and (not isinstance(out, (str, os.PathLike)) or not str(os.fspath(out)).strip()):
        raise ValueError(
            f"out: expected a folder path, got {out!r} (an empty path would be the current folder)"
        )
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    if isinstance(recipe_overrides, str):
        raise TypeError(
            f"recipe_overrides: expected a list of 'KEY=VALUE' strings, got the string {recipe_overrides!r}"
        )
    if isinstance(resume, (str, os.PathLike)) and not os.path.isfile(resume):
        raise ckpt.CheckpointError(
            f"resume: {str(resume)!r} is not a checkpoint file (give one, or --resume alone for the newest "
            "in --out)"
        )
    if out is not None and os.path.exists(out) and not os.path.isdir(out):
        raise NotADirectoryError(
            f"out: {str(out)!r} is a file; the run folder (--out) must be a folder or a new path"
        )


def _saved_run(resume: bool | str, out: str | None) -> dict[str, Any] | None:
    """The ``config.json`` of the run being resumed in ``out`` (None when not resuming one), checked:
    its model config must not build far more than the checkpoint to resume holds."""
    path = Path(out) / "config.json" if out is not None else None
    if not resume or path is None or not path.is_file():
        return None
    try:
        saved = read_json_file(path)
    except (OSError, ValueError) as exc:
        raise InvalidConfigError(
            f"resume: cannot read {str(path)!r} ({exc}); is it a vganzoo run folder?"
        ) from None
    if not isinstance(saved, dict) or not isinstance(saved.get("model"), dict) or "recipe" not in saved:
        raise InvalidConfigError(f"resume: {str(path)!r} is not the config.json of a vganzoo run")
    checkpoint = Path(resume) if isinstance(resume, str) else None
    if checkpoint is None:
        found = ckpt.list_checkpoints(Path(out) / "checkpoints")
        checkpoint = found[-1][1] if found else None
    stored = {"model": checkpoint.stat().st_size} if checkpoint is not None and checkpoint.is_file() else {}
    hub.check_config_size(saved["model"], f"resume: {str(path)!r}", stored)
    return saved


def _resumed_data(saved: Mapping[str, Any] | None, out: str | None) -> str:
    """The data spec of the run being resumed, for a resume that names none."""
    if saved is None:
        raise ValueError(
            f"data: --resume found no run to continue in {out!r}, so the data must be given "
            "(moving-digits, moving-shapes or a folder)"
        )
    spec = saved.get("data_spec", saved.get("data")) if "data_spec" in saved or "data" in saved else None
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(
            "data: the run being resumed was trained on a dataset object, not a dataset spec; pass it again"
        )
    return spec


def _saved_init_from(saved: Mapping[str, Any] | None, out: str | None) -> str | None:
    """The weight set a resumed run started from (config.json ``init_from.name``), checked."""
    entry = (saved or {}).get("init_from")
    if entry is None:
        return None
    name = entry.get("name") if isinstance(entry, Mapping) else None
    if not isinstance(name, str) or not name.strip():
        raise InvalidConfigError(
            f"resume: {str(Path(str(out)) / 'config.json')!r} has init_from {short_repr(entry)}, not "
            "{'name': WEIGHT_SET, ...}"
        )
    return name


def _total_steps(steps: int | None, saved: Mapping[str, Any] | None, out: str | None) -> int:
    """The iterations to reach: ``steps`` when given, else the resumed run's total, else 1000."""
    if steps is not None:
        return steps
    if saved is None:
        return 1000
    train = saved.get("train")
    saved_steps = train.get("steps") if isinstance(train, Mapping) else None
    if isinstance(saved_steps, bool) or not isinstance(saved_steps, int) or not 0 <= saved_steps <= MAX_STEPS:
        raise InvalidConfigError(
            f"resume: {str(Path(str(out)) / 'config.json')!r} has train.steps {short_repr(saved_steps)}, "
            f"not an int from 0 to {MAX_STEPS}; give --steps (steps=)"
        )
    return saved_steps


def _inherit_options(train_options: dict[str, Any], saved: Mapping[str, Any] | None) -> None:
    """Options given as None (not given) take the resumed run's value, else TrainConfig's default."""
    for key in _INHERITED_ON_RESUME:
        if key in train_options and train_options[key] is None:
            del train_options[key]
            if saved is not None and key in (saved.get("train") or {}):
                train_options[key] = saved["train"][key]


def _model_to_resume(
    saved: Mapping[str, Any],
    model: str,
    data: str | None,
    out: str | None,
    model_overrides: Mapping[str, Any],
    train_options: Mapping[str, Any],
) -> tuple[Any, dict[str, Any], None]:
    """The resumed run's model (built as saved) and recipe; overrides that change it are refused."""
    saved_model = dict(saved["model"])
    conflicts = {k: (v, saved_model.get(k)) for k, v in model_overrides.items() if saved_model.get(k) != v}
    if conflicts:
        raise InvalidConfigError(
            f"resume: the run in {out!r} was built with different settings: "
            + ", ".join(f"{k}={new!r} (run has {old!r})" for k, (new, old) in conflicts.items())
        )
    _check_resume_matches(saved, saved_model["model"], model, data, out, train_options)
    saved_model = registry.complete_saved_config(saved_model)  # a run saved before a key existed
    name = saved_model.pop("model")
    return registry.create(name, **saved_model), dict(saved["recipe"]), None


def _model_to_fine_tune(
    model: str, init_from: str, model_overrides: Mapping[str, Any]
) -> tuple[Any, dict[str, Any], Any]:
    """The model built for weight set ``init_from`` and loaded from it, its recipe, and the load report."""
    gan = _model_from_weights(model, init_from, model_overrides)
    report = _init_weights(gan, init_from)
    return gan, dict(report.recipe if report.recipe is not None else gan.recipe), report


def _final_recipe(
    recipe: dict[str, Any],
    batch_size: int | None,
    recipe_overrides: Iterable[str],
    saved: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """``recipe`` with ``batch_size`` and the ``--set`` overrides applied; a resumed run's recipe
    that changes is said (the run then differs from an uninterrupted one)."""
    if batch_size is not None:
        recipe["batch_size"] = int(batch_size)
        recipe["discriminator_batch_size"] = None
    recipe = apply_overrides(recipe, recipe_overrides)
    if saved is not None:
        # Compare as saved (JSON: tuples become lists): repeating the run's own --set is no change.
        now, before = json.loads(json.dumps(recipe)), saved["recipe"]
        changed = sorted(k for k in set(now) | set(before) if now.get(k) != before.get(k))
        if changed:
            warnings.warn(
                f"resume: changing the recipe ({', '.join(changed)}) makes this run differ from an "
                "uninterrupted one",
                stacklevel=3,
            )
    return recipe


def _run_info(
    gan: Any,
    data: str | None,
    dataset: Any,
    report: Any,
    saved: Mapping[str, Any] | None,
    command: str | None,
) -> dict[str, Any]:
    """What the run's config.json records besides the configs: the data, where the weights started
    (the init_from report, which is also logged) and the command line."""
    run_info: dict[str, Any] = {
        "data": data if data is not None else type(dataset).__name__,
        "data_spec": data,  # what a resume without data rebuilds (None: a dataset object was given)
    }
    if report is not None:
        if gan.recipe.get("ema") is None and gan.generator_ema is not None:
            _drop_ema(gan, report)
        run_info["init_from"] = report.to_dict()
        if distributed.rank() == 0:
            logger.info("%s", report.summary())
    elif saved is not None and "init_from" in saved:
        run_info["init_from"] = saved["init_from"]  # where the resumed run started
    first = saved.get("command") if saved is not None else None
    if isinstance(first, str) and first:  # a resume: the command that started the run stays the command
        run_info["command"] = first
        earlier = saved.get("resume_commands") if saved is not None else None
        resumes = [c for c in earlier if isinstance(c, str)] if isinstance(earlier, list) else []
        if command:
            resumes.append(command)
        run_info["resume_commands"] = resumes[-MAX_RESUME_COMMANDS:]
    elif command:
        run_info["command"] = command
    return run_info


MAX_RESUME_COMMANDS = 50  # the newest resume command lines a run's config.json keeps


# Bytes per clip element a training step holds at least: the real batch, the fake batch, the
# generator's output kept for its backward pass and the gradient flowing into it (4 bytes each), and
# the loader's collated copy of the real batch.
TRAIN_BYTES_PER_ELEMENT = 20
# Per parameter byte, besides the weights themselves: gradients and two Adam moments.
OPTIMIZER_STATE_FACTOR = 3


def _check_batch_memory(gan: Any) -> None:
    """Refuse, before the run starts, batches that cannot fit in memory (a lower bound: what the
    batches themselves and the optimiser state take, before any activation)."""
    from ..resources import check_memory

    sizes = [_model_size(gan, key) for key in ("channels", "frames", "resolution")]
    if not all(isinstance(v, int) and v > 0 for v in sizes):
        return
    channels, frames, resolution = sizes
    per_role = gan.recipe.get("discriminator_batch_size") or {}
    batch = max([int(gan.recipe.get("batch_size") or 1), *(int(v) for v in per_role.values())])
    weights = sum(p.numel() * p.element_size() for p in gan.parameters())
    clip = channels * frames * resolution * resolution
    check_memory(
        batch * clip * TRAIN_BYTES_PER_ELEMENT + OPTIMIZER_STATE_FACTOR * weights,
        f"--batch-size {batch}: training on batches of {batch} clips of (C, T, H, W) = "
        f"{(channels, frames, resolution, resolution)}",
        advice="lower --batch-size (batch_size), or use --grad-accum to keep the effective batch",
    )


def _with_data_defaults(
    model: str,
    data: str | None,
    overrides: Mapping[str, Any],
    seed: int,
    dataset_kwargs: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """``overrides`` plus the data's ``channels`` and ``num_classes`` where the user set neither (and the
    model has them): grey 10-class digits train a 1-channel, 10-class model. Logged when they change
    the model's defaults."""
    from ..data import build_dataset

    defaults = registry.get_model_spec(model).default_config
    wanted = [k for k in ("channels", "num_classes") if k in defaults and k not in overrides]
    if data is None or not wanted:
        return dict(overrides)
    size = {k: int(overrides.get(k, defaults.get(k)) or 1) for k in ("resolution", "frames")}
    peek = build_dataset(data, **size, split="train", seed=seed, **dict(dataset_kwargs or {}))
    found = {k: getattr(peek, k, None) for k in wanted}
    found = {k: v for k, v in found.items() if isinstance(v, int) and not isinstance(v, bool)}
    changed = {k: v for k, v in found.items() if v != defaults[k]}
    if changed:
        logger.info(
            "data %s: %s; building %s with %s (set --channels / --num-classes to choose otherwise)",
            data,
            ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in found.items()),
            model,
            ", ".join(f"{k}={v}" for k, v in changed.items()),
        )
    return {**overrides, **changed}


def _build_dataset(gan: Any, data: str | None, seed: int, dataset_kwargs: Mapping[str, Any] | None) -> Any:
    """The training split of ``data`` at the model's resolution, frames and channels."""
    from ..data import build_dataset  # looked up when used: tests put a stand-in in its place

    dataset = build_dataset(
        data,
        resolution=_model_size(gan, "resolution"),
        frames=_model_size(gan, "frames"),
        frame_stride=int(gan.recipe.get("frame_stride", 1) or 1),
        channels=_model_size(gan, "channels"),
        split="train",
        seed=seed,
        **dict(dataset_kwargs or {}),
    )
    if len(dataset):
        dataset[0]  # a folder with no usable clip fails here, before the run folder is written
    return dataset
