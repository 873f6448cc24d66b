"""Training: the recipe-driven adversarial loop, checkpoints, resume and DistributedDataParallel.

    >>> import vganzoo
    >>> from vganzoo.train import Trainer, TrainConfig
    >>> model = vganzoo.create("mocogan-rnn", resolution=32)
    >>> dataset = vganzoo.data.build_dataset("moving-digits", resolution=32, frames=16)
    >>> Trainer(model, dataset, TrainConfig(steps=50, out_dir="runs/digits")).fit()

or from the command line, ``vganzoo train mocogan-rnn --data moving-digits --resolution 32 --steps 50``
(prefix ``torchrun --nproc_per_node K -m`` for several processes). The recipe format is described in
:mod:`vganzoo.train.config`; checkpoints in :mod:`vganzoo.train.checkpoint`.

Modules: ``trainer`` (the loop and the D/G updates), ``run`` (``train()``: name + data -> a run),
``config`` (TrainConfig, recipes), ``optim`` (optimisers, mixed precision, EMA), ``state`` (what a
checkpoint holds, RNG reseeding), ``checkpoint`` (the file), ``rundir`` (the run folder, logs,
samples, export, signals), ``batches`` (data order and loading), ``distributed`` (torchrun),
``export`` (checkpoint -> weight set).
"""

from .checkpoint import CheckpointError, latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint
from .config import DEFAULT_RECIPE, TrainConfig, apply_overrides, resolve_recipe
from .export import export_checkpoint, export_model, model_from_checkpoint
from .optim import build_optimizer
from .run import train
from .trainer import Trainer, TrainingDiverged, TrainResult

__all__ = [
    "DEFAULT_RECIPE",
    "CheckpointError",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingDiverged",
    "apply_overrides",
    "build_optimizer",
    "export_checkpoint",
    "export_model",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "model_from_checkpoint",
    "resolve_recipe",
    "save_checkpoint",
    "train",
]
