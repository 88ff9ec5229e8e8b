"""Transfer learning from a zoo model: its trained features, a new head for the user's classes.

Phase 1 trains the new head alone on frozen features; phase 2 fine-tunes every layer at a tenth of the
rate with BatchNorm layers frozen (inference mode: a few hundred images would otherwise overwrite the
statistics learned on 50,000). The best validation epoch of either phase is shipped. The backbone's
declared preprocessing and input size are kept, so the exported model declares the pipeline its
features were trained through. Not resumable (a run takes minutes): an interrupted run starts over.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..card import ModelCard
from ..data.types import Dataset, preprocess_split, stratified_holdout
from ..keras_files import sha256_file
from ..runtime.spec import InputSpec
from ..runtime.store import ModelFolder
from ..runtime.transforms import Pipeline
from ..zoo.registry import ModelSpec, TrainConfig
from .backbones import head_layer, load_backbone_weights
from .recipe import TransferRecipe
from .finish import TrainFacts, TrainResult, finish_training
from .trainer import precision_policy, select_device

PhaseHook = Callable[[str, Any], None]


@dataclass(frozen=True)
class Backbone:
    """A trained zoo model to start from: its registry entry, file and card."""

    spec: ModelSpec
    keras_path: Path
    card: ModelCard
    reason: str = ""  # why it was chosen (automatic choice) or "--from"

    @property
    def name(self) -> str:
        return self.spec.name

    def input_spec(self) -> InputSpec:
        """The input the backbone's features were trained at: the user's images are brought to it."""
        return self.card.input_spec

    def pipeline(self) -> Pipeline:
        """The preprocessing the backbone was trained through (its card, else its zoo declaration)."""
        steps = self.card.preprocess if self.card.preprocess is not None else self.spec.preprocess
        return Pipeline.parse(list(steps) or None, str(self.card.source or self.keras_path.parent / "metrics.json"))

    def custom_spec(self, name: str, dataset: Dataset, recipe: TransferRecipe) -> ModelSpec:
        """The user's model: the backbone's architecture, preprocessing and unsure statistic, this recipe."""
        train = TrainConfig(
            epochs=recipe.head_epochs + recipe.finetune_epochs, batch_size=recipe.batch_size, optimizer="adam",
            learning_rate=recipe.head_lr, schedule="constant+cosine", label_smoothing=recipe.label_smoothing,
            val_fraction=recipe.val_split, early_stopping_patience=recipe.patience or None,
            augment=self.spec.train.augment, mixed_precision=self.spec.train.mixed_precision,
        )
        return replace(self.spec, name=name, dataset=dataset.name, role="custom", train=train, realistic=None,
                       preprocess=tuple(self.pipeline().to_list()),
                       summary=f"{self.spec.summary}, transfer from `{self.name}` (new {dataset.num_classes}-class head)")


def _best_weights(patience: int):
    import keras

    class BestWeights(keras.callbacks.Callback):
        """Keeps the best epoch's weights across both phases (validation accuracy, then loss) and stops a
        phase after `patience` epochs without a better one."""

        def __init__(self):
            super().__init__()
            self.best: Optional[tuple[float, float]] = None
            self.weights: Optional[list] = None
            self.best_index = -1
            self.epochs_seen = 0
            self.wait = 0

        def on_train_begin(self, logs=None):
            self.wait = 0  # each phase gets its full patience

        def on_epoch_end(self, epoch, logs=None):
            score = (float(logs["val_accuracy"]), -float(logs["val_loss"]))
            if self.best is None or score > self.best:
                self.best, self.weights, self.best_index, self.wait = score, self.model.get_weights(), self.epochs_seen, 0
            else:
                self.wait += 1
                if patience and self.wait >= patience:
                    self.model.stop_training = True
            self.epochs_seen += 1

    return BestWeights()


def _history_recorder(history: dict[str, list[float]], phase: int):
    import keras

    class Record(keras.callbacks.Callback):
        """Per-epoch logs with wall seconds, learning rate and phase (0 frozen, 1 fine-tuning)."""

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            row = dict(logs or {})
            row["epoch_seconds"] = time.perf_counter() - self._start
            row["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            row["phase"] = phase
            for key, value in row.items():
                history.setdefault(key, []).append(float(value))

    return Record()


def _set_phase(model: Any, phase: int) -> None:
    """Phase 0: only the head learns. Phase 1: everything but BatchNorm (kept in inference mode)."""
    import keras

    head = head_layer(model)
    for layer in model.layers:
        if phase == 0:
            layer.trainable = layer is head
        else:
            layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)


def train_transfer(
    name: str,
    backbone: Backbone,
    dataset: Dataset,
    folder: ModelFolder,
    recipe: TransferRecipe,
    *,
    seed: int = 1337,
    verbose: int | str = "auto",
    on_log: Callable[[str], None] = print,
    on_phase_end: Optional[PhaseHook] = None,
    extra_callbacks: Sequence[Any] = (),
    overrides: Optional[dict[str, Any]] = None,
) -> TrainResult:
    """Fit a new head on the backbone's features, fine-tune, keep the best validation epoch, test, save.

    `dataset` must hold pixels at the backbone's input size; splits read through the backbone's pipeline
    (data.folders with `pipeline=`) are used as they are, others are run through it here. `overrides`: the
    recipe values the user fixed (recorded on the card)."""
    import keras
    import tensorflow as tf

    from .pipeline import make_dataset

    started = time.perf_counter()
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    spec = backbone.custom_spec(name, dataset, recipe)
    if dataset.input_spec != backbone.input_spec():
        raise ValueError(f"data are {dataset.input_spec}, backbone {backbone.name} takes {backbone.input_spec()}")

    keep, hold = stratified_holdout(dataset.train.y, recipe.val_split, seed)
    pipeline = backbone.pipeline()
    train_split = preprocess_split(dataset.train.take(keep), dataset.input_spec, pipeline)
    val_split = preprocess_split(dataset.train.take(hold), dataset.input_spec, pipeline)
    test_split = preprocess_split(dataset.test, dataset.input_spec, pipeline)
    k = dataset.num_classes
    train_ds = make_dataset(train_split, k, recipe.batch_size, shuffle=True, seed=seed, augment=spec.train.augment)
    val_ds = make_dataset(val_split, k, 512, shuffle=False, seed=seed)

    policy = precision_policy(spec.train)
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = spec.build(dataset.input_spec, k)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    loaded = load_backbone_weights(model, backbone.keras_path)
    device = select_device()
    on_log(f"{name}: transfer from {backbone.name} ({backbone.reason}); {len(loaded)} layers loaded from "
           f"{backbone.keras_path}")
    on_log(f"training {name} on {dataset.name}: {len(train_split)} train / {len(val_split)} val images, batch "
           f"{recipe.batch_size}, head {recipe.head_epochs} epochs at lr {recipe.head_lr:.2g}, fine-tuning "
           f"{recipe.finetune_epochs} epochs at lr {recipe.finetune_lr:.2g}, patience {recipe.patience}, "
           f"device {device}, precision {policy}")

    best = _best_weights(recipe.patience)
    history: dict[str, list[float]] = {}
    steps = int(np.ceil(len(train_split) / recipe.batch_size))
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing)
    phases = (("frozen", recipe.head_epochs, recipe.head_lr), ("fine-tune", recipe.finetune_epochs, None))
    for phase, (label, epochs, lr) in enumerate(phases):
        if epochs <= 0:
            continue
        if phase == 1:
            lr = keras.optimizers.schedules.CosineDecay(recipe.finetune_lr, decay_steps=max(steps * epochs, 1))
            if best.weights is not None:
                model.set_weights(best.weights)  # fine-tune from the best head, not the last
        _set_phase(model, phase)
        model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss, metrics=["accuracy"])
        model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=verbose, shuffle=False,
                  callbacks=[_history_recorder(history, phase), best, *extra_callbacks])
        if on_phase_end is not None:
            on_phase_end(label, model)
    if best.weights is None:
        raise RuntimeError("training produced no completed epoch")
    model.set_weights(best.weights)

    phase_of = history["phase"]
    transfer = {
        "backbone": backbone.name,
        "backbone_file": str(backbone.keras_path),
        "backbone_sha256": sha256_file(backbone.keras_path),
        "backbone_test_accuracy": backbone.card.test.accuracy,
        "why": backbone.reason,
        "layers_loaded": len(loaded),
        "best_phase": "frozen" if phase_of[best.best_index] == 0 else "fine-tune",
        "frozen_epochs_run": int(sum(1 for p in phase_of if p == 0)),
        "finetune_epochs_run": int(sum(1 for p in phase_of if p == 1)),
        "batchnorm": "inference mode (frozen) in both phases",
    }
    facts = TrainFacts(seed, recipe.head_epochs + recipe.finetune_epochs, len(train_split), device, policy,
                       {"recipe": {"kind": "transfer", **recipe.to_dict(), "overrides": overrides or {}}}, started)
    return finish_training(spec, dataset, model, folder, history, best.best_index, test_split, val_split, facts,
                           transfer, on_log)
