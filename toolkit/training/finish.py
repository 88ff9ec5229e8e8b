"""The end every training run shares (from scratch or by transfer): ship a float32 inference copy, test it
once, and write the model, its history and its card into the model folder."""

from __future__ import annotations

import platform
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from ..card import ModelCard, TestResult
from ..data.types import Dataset, Split
from ..keras_files import save_keras_atomic, sha256_file
from ..runtime.atomic import write_json_atomic
from ..runtime.metrics import classification_report
from ..runtime.store import ModelFolder
from ..zoo.registry import ModelSpec


@dataclass
class TrainResult:
    folder: ModelFolder
    card: ModelCard
    history: dict[str, list[float]]


@dataclass
class TrainFacts:
    """How the run went, for the card: seed, epochs planned, training images, device, precision, and
    recipe-specific entries of `training` (recipe, resumed, ...). Wall time runs from `started` (perf_counter)
    plus `prior_wall` seconds of earlier processes of a resumed run, up to the card being written."""

    seed: int
    epochs: int
    train_n: int
    device: str
    precision: str
    training: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    prior_wall: float = 0.0


def finish_training(spec: ModelSpec, dataset: Dataset, model: Any, folder: ModelFolder,
                    history: dict[str, list[float]], best_epoch: int, test_split: Split, val_split: Split,
                    facts: TrainFacts, transfer: Optional[dict[str, Any]] = None,
                    on_log: Callable[[str], None] = print) -> TrainResult:
    """Save `model`'s weights as a float32 copy without optimizer state (what ships; metrics are measured on
    this copy, so they describe exactly what is shipped), then its history and card."""
    from ..exporters.reference import keras_probabilities

    shipped = spec.build(dataset.input_spec, dataset.num_classes)
    shipped.set_weights(model.get_weights())
    probs = keras_probabilities(shipped, test_split.x)
    report = classification_report(test_split.y, probs.argmax(axis=1), dataset.classes)
    val_acc = float((keras_probabilities(shipped, val_split.x).argmax(axis=1) == val_split.y).mean())
    save_keras_atomic(shipped, folder.keras_path)
    card = build_card(spec, dataset, shipped, report, val_acc, history, best_epoch, facts, val_split)
    wall = round(facts.prior_wall + time.perf_counter() - facts.started, 1)
    card = card.with_updates(sha256=sha256_file(folder.keras_path), transfer=transfer,
                             training={**card.training, **facts.training, "wall_seconds": wall})
    write_json_atomic(folder.history_path, {key: history[key] for key in sorted(history)})
    card.write(folder.card_path)
    phase = f", {transfer['best_phase']} phase" if transfer else ""
    on_log(f"{spec.name}: test accuracy {report['accuracy']:.4f} (best epoch {best_epoch + 1}{phase}); "
           f"saved {folder.keras_path}")
    return TrainResult(folder, card, history)


def _fonts_used(spec: ModelSpec) -> dict[str, Any]:
    """The augmentation fonts come from the system: record which, so a rerun can be compared."""
    if not spec.realistic or not spec.realistic.font_renderings:
        return {}
    from ..data.realistic import augment_fonts

    return {"augment_fonts": [p.name for p in augment_fonts()]}


def build_card(spec: ModelSpec, dataset: Dataset, model: Any, report: dict[str, Any], val_acc: float,
               history: dict[str, list[float]], best_epoch: int, facts: TrainFacts, val_split: Split) -> ModelCard:
    import keras
    import tensorflow as tf

    from ..data.catalog import DATASETS
    from ..data.plan import data_record, portable_source
    from ..zoo.stats import model_stats

    info = DATASETS.get(dataset.name)
    cfg = spec.train
    record = data_record(dataset, cfg.val_fraction, val_split)
    return ModelCard(
        name=spec.name, role=spec.role, architecture=spec.summary, dataset=dataset.name,
        dataset_source=portable_source(dataset),
        # Where the data came from and its held-out test split, so export/eval/bench/report need no flags.
        data=record,
        classes=tuple(dataset.classes), input_spec=dataset.input_spec,
        # Declared preprocessing, applied to every split here and written into every export.
        preprocess=tuple(spec.preprocess), unsure_statistic=spec.unsure_statistic,
        **model_stats(model),
        test=TestResult(split=info.test_split_note if info else "held-out test split", **report),
        validation={"accuracy": val_acc, "num_samples": len(val_split)},
        training={
            "seed": facts.seed, "epochs_planned": facts.epochs, "epochs_run": len(history["val_accuracy"]),
            "best_epoch": best_epoch + 1, "train_samples": facts.train_n,
            "train_seconds": round(float(sum(history.get("epoch_seconds", []))), 1),
            "batch_size": cfg.batch_size, "optimizer": cfg.optimizer, "learning_rate": cfg.learning_rate,
            "schedule": cfg.schedule, "label_smoothing": cfg.label_smoothing,
            "val_fraction": None if cfg.use_official_val and dataset.val is not None else cfg.val_fraction,
            "early_stopping_patience": cfg.early_stopping_patience,
            "augment": None if cfg.augment is None else asdict(cfg.augment),
            "realistic": None if spec.realistic is None else {**asdict(spec.realistic), **_fonts_used(spec)},
            "device": facts.device, "precision": facts.precision,
            "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                         "python": platform.python_version()},
        },
        source_claim=spec.source_claim, caveat=info.caveat if info else "",
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


