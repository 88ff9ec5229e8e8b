"""Train a registry model on a data set, seeded and resumable, and save its artifacts.

Resume: the epoch, weights and optimizer state are backed up every epoch under
<workspace>/<name>/.train/, so a killed run (or a session that ends) continues where it stopped.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..machine import cpu_has_native_bf16, cpu_name
from ..runtime.atomic import write_json_atomic
from ..runtime.store import ModelFolder
from ..data.types import Dataset, Split, preprocess_split, stratified_holdout
from ..runtime.transforms import Pipeline
from ..zoo.registry import ModelSpec, TrainConfig
from .finish import TrainFacts, TrainResult, finish_training
from .prepare import realistic_extras


def _tensorflow_gpus() -> list:
    """GPUs TensorFlow will train on; empty on CPU or under another Keras backend."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return []
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def select_device() -> str:
    """Report the accelerator Keras will use; training runs on GPU when one is visible."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        gpus = _tensorflow_gpus()
        return f"GPU ({gpus[0].name})" if gpus else f"CPU ({cpu_name()}, {os.cpu_count()} cores)"
    if backend == "jax":
        import jax

        return str(jax.devices()[0])
    return backend


def precision_policy(cfg: TrainConfig) -> str:
    """The Keras dtype policy for training: mixed only where the hardware makes it pay."""
    if not cfg.mixed_precision:
        return "float32"
    if _tensorflow_gpus():
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_native_bf16() else "float32"


def _optimizer(cfg: TrainConfig, steps_per_epoch: int, epochs: int):
    import keras

    lr: Any = cfg.learning_rate
    if cfg.schedule == "cosine":
        warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
        total = steps_per_epoch * epochs
        lr = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else cfg.learning_rate,
            decay_steps=max(total - warmup, 1),
            warmup_target=cfg.learning_rate if warmup else None,
            warmup_steps=warmup,
        )
    elif cfg.schedule != "constant":
        raise ValueError(f"unknown schedule {cfg.schedule!r}")
    if cfg.optimizer == "adam":
        return keras.optimizers.Adam(lr)
    if cfg.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(
            lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay or None
        )
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


def _split_validation(dataset: Dataset, cfg: TrainConfig, seed: int) -> tuple[Split, Split]:
    if cfg.use_official_val and dataset.val is not None:
        return dataset.train, dataset.val
    keep, hold = stratified_holdout(dataset.train.y, cfg.val_fraction, seed)
    return dataset.train.take(keep), dataset.train.take(hold)


def _prior_wall_seconds(clock_path) -> float:
    """Wall seconds the interrupted runs spent up to their last completed epoch (0 for a fresh run)."""
    import json

    try:
        return float(json.loads(clock_path.read_text())["wall_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


def _epoch_clock(clock_path, started: float, prior_wall: float):
    """Adds wall seconds and learning rate to each epoch's logs (so CSVLogger records them), and keeps the
    run's wall clock up to the last completed epoch in `clock_path`, so a resumed run's card counts every
    process that produced the epochs it kept (time lost in an epoch cut short is redone, not counted twice)."""
    import keras

    class EpochClock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                logs["epoch_seconds"] = time.perf_counter() - self._start
                lr = self.model.optimizer.learning_rate
                logs["learning_rate"] = float(keras.ops.convert_to_numpy(lr))
            write_json_atomic(clock_path, {"epochs": epoch + 1,
                                           "wall_seconds": prior_wall + time.perf_counter() - started})

    return EpochClock()


def _read_history(path) -> dict[str, list[float]]:
    import csv

    if not path.is_file():
        return {}
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    history: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            history.setdefault(key, []).append(float(value))
    return history


def train_model(
    spec: ModelSpec,
    dataset: Dataset,
    folder: ModelFolder,
    *,
    seed: int = 1337,
    epochs: Optional[int] = None,
    train_limit: Optional[int] = None,
    fresh: bool = False,
    verbose: int | str = "auto",
    extra_callbacks: Sequence[Any] = (),
    on_log: Callable[[str], None] = print,
    recipe: Optional[dict[str, Any]] = None,
) -> TrainResult:
    """Fit `spec` on `dataset`, pick the best epoch on validation, test once, save everything.

    recipe: how spec.train was derived (training.recipe.scratch_config), recorded on the card."""
    import keras
    import tensorflow as tf

    from .pipeline import make_dataset

    started = time.perf_counter()
    cfg = spec.train
    epochs = epochs or cfg.epochs
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()

    train_split, val_split = _split_validation(dataset, cfg, seed)
    if train_limit:
        keep, _ = stratified_holdout(train_split.y, 1 - min(train_limit / len(train_split), 0.999), seed)
        train_split = train_split.take(keep)
    # What the model will see at run time: every split through its declared preprocessing.
    pipeline = Pipeline.parse(spec.preprocess or None, spec.name)
    test_split = preprocess_split(dataset.test, dataset.input_spec, pipeline)
    val_split = preprocess_split(val_split, dataset.input_spec, pipeline)
    extras = None
    if spec.realistic is not None and not train_limit:
        extras = realistic_extras(spec.realistic, train_split, dataset.input_spec, pipeline, seed, on_log)
    train_split = preprocess_split(train_split, dataset.input_spec, pipeline)
    if extras is not None:
        train_split = Split(np.concatenate([train_split.x, extras.x]), np.concatenate([train_split.y, extras.y]))
    k = dataset.num_classes
    train_ds = make_dataset(train_split, k, cfg.batch_size, shuffle=True, seed=seed, augment=cfg.augment)
    val_ds = make_dataset(val_split, k, 512, shuffle=False, seed=seed)

    work = folder.train_dir
    resuming = (work / "backup").is_dir() and not fresh
    if not resuming and work.exists():
        shutil.rmtree(work)  # a finished or abandoned run: start clean, keep no stale history
    work.mkdir(parents=True, exist_ok=True)
    history_csv = work / "history.csv"
    best_weights = work / "best.weights.h5"
    best_so_far = max(_read_history(history_csv).get("val_accuracy", [float("-inf")]))
    clock_path = work / "clock.json"
    prior_wall = _prior_wall_seconds(clock_path) if resuming else 0.0

    policy = precision_policy(cfg)
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = spec.build(dataset.input_spec, k)
    finally:  # only the training graph is mixed; everything built later is float32
        keras.mixed_precision.set_global_policy("float32")
    steps = math.ceil(len(train_split) / cfg.batch_size)
    model.compile(
        optimizer=_optimizer(cfg, steps, epochs),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
        metrics=["accuracy"],
    )
    callbacks = [
        _epoch_clock(clock_path, started, prior_wall),  # before the backup: a kill between the two over-counts
        keras.callbacks.BackupAndRestore(str(work / "backup")),
        keras.callbacks.ModelCheckpoint(
            str(best_weights), monitor="val_accuracy", mode="max", save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=best_so_far if math.isfinite(best_so_far) else None,
        ),
        keras.callbacks.CSVLogger(str(history_csv), append=True),
        keras.callbacks.TerminateOnNaN(),
    ]
    if cfg.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_accuracy", mode="max", patience=cfg.early_stopping_patience))

    callbacks.extend(extra_callbacks)

    device = select_device()
    if resuming:
        on_log(f"resuming {spec.name} from {work / 'backup'}")
    on_log(f"training {spec.name} on {dataset.name}: {len(train_split)} train / {len(val_split)} val images, "
           f"{epochs} epochs, device {device}, precision {policy}")
    model.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=callbacks, verbose=verbose,
              shuffle=False)  # the tf.data pipeline shuffles, seeded

    history = _read_history(history_csv)
    if not history.get("val_accuracy"):
        raise RuntimeError("training produced no completed epoch")
    if best_weights.is_file():
        model.load_weights(best_weights)
    best_epoch = int(np.argmax(history["val_accuracy"]))

    # wall time: data prep to saved model, summed over the processes of a resumed run (each counted to its last
    # full epoch)
    training = {**({"recipe": recipe} if recipe is not None else {}), "resumed": resuming}
    facts = TrainFacts(seed, epochs, len(train_split), device, policy, training, started, prior_wall)
    result = finish_training(spec, dataset, model, folder, history, best_epoch, test_split, val_split, facts,
                             on_log=on_log)
    best_weights.unlink(missing_ok=True)
    return result
