"""Training recipes scaled to the data set's size.

A zoo recipe is tuned for 50,000 images: batch 256 and learning rate 0.1 give a 900-image folder 3 steps
per epoch and a loss that explodes. Here batch size follows the data (about STEPS_PER_EPOCH steps per
epoch), the learning rate follows the batch size (linearly for SGD, by its square root for Adam, as in
Goyal et al. 2017 and Malladi et al. 2022), and epochs follow a step budget, with early stopping on the
validation split ending a run that has stopped improving.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Optional

from ..errors import EdgeclsError
from ..zoo.registry import TrainConfig

STEPS_PER_EPOCH = 25  # the batch size aims for about this many steps per epoch
MIN_BATCH, MAX_BATCH = 16, 128
HEAD_STEPS = 250  # frozen phase: a linear classifier on good features converges in a few hundred steps
FINETUNE_STEPS = 500  # fine-tuning phase
SCRATCH_STEPS = 2000
MAX_EPOCHS = 60
HEAD_LR = 1e-3  # Adam, batch 32
FINETUNE_FACTOR = 0.1  # fine-tuning learning rate = head rate x this: small steps keep the features


@dataclass(frozen=True)
class Overrides:
    """What the user fixed on the command line; None: the recipe decides."""

    batch_size: Optional[int] = None
    learning_rate: Optional[float] = None
    epochs: Optional[int] = None
    patience: Optional[int] = None
    val_split: Optional[float] = None

    def check(self) -> None:
        if self.batch_size is not None and self.batch_size < 1:
            raise EdgeclsError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise EdgeclsError(f"--lr must be positive, got {self.learning_rate}")
        if self.epochs is not None and self.epochs < 1:
            raise EdgeclsError(f"--epochs must be at least 1, got {self.epochs}")
        if self.patience is not None and self.patience < 0:
            raise EdgeclsError(f"--patience must be 0 (off) or more, got {self.patience}")
        if self.val_split is not None and not 0.0 < self.val_split < 0.9:
            raise EdgeclsError(f"--val-split must be between 0 and 0.9 (a fraction of the training images), "
                               f"got {self.val_split}")


@dataclass(frozen=True)
class TransferRecipe:
    """Two phases: the new head alone on frozen features, then everything but BatchNorm at a lower rate."""

    batch_size: int
    head_lr: float
    head_epochs: int
    finetune_lr: float
    finetune_epochs: int
    patience: int  # epochs without a better validation score before a phase stops (0: never)
    val_split: float
    label_smoothing: float = 0.1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_val_split(n_images: int, num_classes: int) -> float:
    """10% of the images, but at least 10 per class when that leaves most for training."""
    return min(0.3, max(0.1, 10 * num_classes / max(n_images, 1)))


def scaled_batch(n_train: int) -> int:
    """The power of two giving about STEPS_PER_EPOCH steps per epoch, within [MIN_BATCH, MAX_BATCH]."""
    target = max(n_train / STEPS_PER_EPOCH, 1)
    return int(min(MAX_BATCH, max(MIN_BATCH, 2 ** math.floor(math.log2(target)))))


def epochs_for(steps: int, n_train: int, batch: int, least: int = 3) -> int:
    per_epoch = max(math.ceil(n_train / batch), 1)
    return int(min(MAX_EPOCHS, max(least, math.ceil(steps / per_epoch))))


def transfer_recipe(n_images: int, num_classes: int, overrides: Overrides = Overrides()) -> TransferRecipe:
    """The recipe for `n_images` labelled training images (before the validation split)."""
    overrides.check()
    val = overrides.val_split or default_val_split(n_images, num_classes)
    n_train = max(int(n_images * (1 - val)), 1)
    batch = overrides.batch_size or scaled_batch(n_train)
    head_lr = overrides.learning_rate or HEAD_LR * math.sqrt(batch / 32)
    head_epochs = overrides.epochs or epochs_for(HEAD_STEPS, n_train, batch)
    finetune_epochs = overrides.epochs or epochs_for(FINETUNE_STEPS, n_train, batch)
    patience = overrides.patience if overrides.patience is not None else max(3, finetune_epochs // 4)
    return TransferRecipe(batch, head_lr, head_epochs, head_lr * FINETUNE_FACTOR, finetune_epochs, patience, val)


def scratch_config(base: TrainConfig, n_images: int, num_classes: int, overrides: Overrides = Overrides()
                   ) -> TrainConfig:
    """A zoo architecture's recipe (`--scratch`) rescaled from its data set's size to this one's."""
    overrides.check()
    val = overrides.val_split or default_val_split(n_images, num_classes)
    n_train = max(int(n_images * (1 - val)), 1)
    batch = overrides.batch_size or min(base.batch_size, scaled_batch(n_train))
    ratio = batch / base.batch_size
    lr = overrides.learning_rate or base.learning_rate * (ratio if base.optimizer == "sgd" else math.sqrt(ratio))
    epochs = overrides.epochs or max(base.epochs, epochs_for(SCRATCH_STEPS, n_train, batch))
    patience = overrides.patience if overrides.patience is not None else max(5, epochs // 5)
    return replace(base, batch_size=batch, learning_rate=lr, epochs=epochs, val_fraction=val,
                   use_official_val=False, early_stopping_patience=patience or None)
