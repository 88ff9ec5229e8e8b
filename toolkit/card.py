"""The model card (`metrics.json` beside `model.keras`): what a trained model is, what it was trained on and how
well it did, as one typed, versioned record.

A card is read in one place (`read_card`) and checked there: a hand-edited or truncated card gives one line
naming the file and the field, never a KeyError deep in a command. Cards written before the format had a
version (version 1) still load; writing always produces the current version. Reading needs no TensorFlow.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping, Optional

from . import config
from .runtime.atomic import write_json_atomic
from .runtime.errors import EdgeclsError
from .runtime.spec import InputSpec

CARD_VERSION = 2  # 1: no version field (read as is); 2: `card_version` written, fields checked on read


class CardError(EdgeclsError):
    """A model card that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class DataRecord:
    """Where the training data came from: a reference data set by name, or a user's folder with the exact
    held-out test files and validation files per class (a file list survives new images being added; a seed
    would not)."""

    kind: str  # dataset | folder
    name: str = ""  # kind dataset: the data set's name
    path: str = ""  # kind folder: its absolute path
    classes: tuple[str, ...] = ()
    val_fraction: Optional[float] = None
    test_files: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    val_files: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # empty on older cards: seed and fraction

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "dataset":
            return {"kind": "dataset", "name": self.name}
        return {"kind": "folder", "path": self.path, "classes": list(self.classes), "val_fraction": self.val_fraction,
                "test_files": {c: list(files) for c, files in self.test_files.items()},
                "val_files": {c: list(files) for c, files in self.val_files.items()}}


@dataclass(frozen=True)
class TestResult:
    """The one test-set evaluation training made (classification_report's fields)."""

    split: str
    accuracy: float
    num_samples: int = 0
    per_class: Mapping[str, Any] = field(default_factory=dict)
    macro_avg: Mapping[str, float] = field(default_factory=dict)
    weighted_avg: Mapping[str, float] = field(default_factory=dict)
    confusion_matrix: tuple = ()

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return {**out, "per_class": dict(self.per_class), "macro_avg": dict(self.macro_avg),
                "weighted_avg": dict(self.weighted_avg), "confusion_matrix": [list(r) for r in self.confusion_matrix]}


@dataclass(frozen=True)
class ModelCard:
    """A trained model's card. `training` and `transfer` keep the recipe as it was run (free-form: recipes gain
    fields over time); everything commands rely on is a typed field."""

    name: str
    classes: tuple[str, ...]
    input_spec: InputSpec
    dataset: str
    test: TestResult
    role: str = "custom"  # edge | baseline (the zoo's) | custom (the user's)
    architecture: str = ""
    dataset_source: str = ""
    data: Optional[DataRecord] = None  # None on cards older than the record: the data set named by `dataset`
    preprocess: Optional[tuple[Mapping[str, Any], ...]] = None  # None: not recorded (the zoo's declaration applies)
    unsure_statistic: Optional[str] = None
    params: int = 0
    macs: int = 0
    validation: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)
    transfer: Optional[Mapping[str, Any]] = None
    source_claim: str = ""
    caveat: str = ""
    created: str = ""
    sha256: str = ""  # of model.keras: ties exports to the model they came from
    card_version: int = CARD_VERSION
    source: Optional[Path] = field(default=None, compare=False)  # the file it was read from

    @property
    def seed(self) -> int:
        return int(self.training.get("seed", config.DEFAULT_SEED))

    @property
    def val_fraction(self) -> Optional[float]:
        """The share of the training split training held out for model selection (None: an official split)."""
        if self.data is not None and self.data.val_fraction is not None:
            return self.data.val_fraction
        return self.training.get("val_fraction")

    @property
    def described_source(self) -> str:
        """The training data as people name it: the data set, or the user's folder."""
        return self.data.path if self.data is not None and self.data.kind == "folder" else self.dataset

    def training_note(self) -> str:
        """One sentence on how the model was trained, from what the card recorded."""
        t = self.training
        seconds = t.get("train_seconds")
        took = f" in {seconds:.0f} s" if isinstance(seconds, (int, float)) else ""
        best = f" (best {t['best_epoch']})" if "best_epoch" in t else ""
        where = f" on {t['device']}" if t.get("device") else ""
        return f"Trained {t.get('epochs_run', '?')} epochs{best}{took}{where}, seed {self.seed}."

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"card_version": CARD_VERSION}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("source", "card_version") or value is None:  # None: not recorded
                continue
            out[f.name] = _plain(value)
        return out

    def write(self, path: Path) -> None:
        """Atomically: readers see the old card or the complete new one."""
        write_json_atomic(path, self.to_dict())

    def with_updates(self, **changes: Any) -> "ModelCard":
        return replace(self, **changes)


def _plain(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def read_card(path: Path) -> ModelCard:
    """The card at `path`, checked; CardError naming the file and field when it is unusable."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise CardError(f"{path}: no model card here") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CardError(f"{path}: unreadable model card ({getattr(exc, 'strerror', None) or exc})") from None
    except json.JSONDecodeError as exc:
        raise CardError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg}); the card is damaged or "
                        "truncated") from None
    return card_from_dict(raw, path)


def card_from_dict(raw: Any, path: Path) -> ModelCard:
    """A ModelCard from a card's JSON document (see read_card)."""
    check = _Checker(raw, path)
    version = check.optional("card_version", int, 1)
    if version > CARD_VERSION:
        raise CardError(f"{path}: card_version {version} is newer than this edgecls reads ({CARD_VERSION}); "
                        "upgrade edgecls")
    test = check.mapping("test")
    return ModelCard(
        name=check.text("name"), classes=check.labels("classes"), input_spec=check.input_spec("input_spec"),
        dataset=check.text("dataset"),
        test=TestResult(split=check.text("test.split", test), accuracy=check.fraction("test.accuracy", test),
                        num_samples=check.optional("test.num_samples", int, 0, test),
                        per_class=check.optional("test.per_class", dict, {}, test),
                        macro_avg=check.optional("test.macro_avg", dict, {}, test),
                        weighted_avg=check.optional("test.weighted_avg", dict, {}, test),
                        confusion_matrix=tuple(tuple(r) for r in check.optional("test.confusion_matrix", list, [], test))),
        role=check.optional("role", str, "custom"), architecture=check.optional("architecture", str, ""),
        dataset_source=check.optional("dataset_source", str, ""), data=check.data_record("data"),
        preprocess=check.steps("preprocess"), unsure_statistic=check.optional("unsure_statistic", str, None),
        params=check.optional("params", int, 0), macs=check.optional("macs", int, 0),
        validation=check.optional("validation", dict, {}), training=check.optional("training", dict, {}),
        transfer=check.optional("transfer", dict, None), source_claim=check.optional("source_claim", str, ""),
        caveat=check.optional("caveat", str, ""), created=check.optional("created", str, ""),
        sha256=check.optional("sha256", str, ""), card_version=CARD_VERSION, source=path,
    )


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", dict: "an object", list: "a list"}


class _Checker:
    """Reads fields of a card's JSON, each problem one CardError naming the file and the field."""

    def __init__(self, raw: Any, path: Path) -> None:
        if not isinstance(raw, dict):
            raise CardError(f"{path}: a model card is a JSON object, this holds {type(raw).__name__}")
        self.raw, self.path = raw, path

    def fail(self, key: str, problem: str) -> CardError:
        return CardError(f"{self.path}: field {key!r} {problem}")

    def _get(self, key: str, within: Optional[Mapping[str, Any]]) -> Any:
        return (self.raw if within is None else within).get(key.rsplit(".", 1)[-1])

    def _typed(self, key: str, value: Any, kind: type) -> Any:
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok, value = True, float(value)
        if not ok:
            raise self.fail(key, f"must be {_TYPE_NAMES[kind]}, got {json.dumps(value)[:40]}")
        return value

    def required(self, key: str, kind: type, within: Optional[Mapping[str, Any]] = None) -> Any:
        value = self._get(key, within)
        if value is None:
            raise self.fail(key, "is missing")
        return self._typed(key, value, kind)

    def optional(self, key: str, kind: type, default: Any, within: Optional[Mapping[str, Any]] = None) -> Any:
        value = self._get(key, within)
        return default if value is None else self._typed(key, value, kind)

    def text(self, key: str, within: Optional[Mapping[str, Any]] = None) -> str:
        value = self.required(key, str, within)
        if not value.strip():
            raise self.fail(key, "is empty")
        return value

    def mapping(self, key: str) -> Mapping[str, Any]:
        return self.required(key, dict)

    def fraction(self, key: str, within: Optional[Mapping[str, Any]] = None) -> float:
        value = self.required(key, float, within)
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise self.fail(key, f"must be a fraction between 0 and 1, got {value}")
        return value

    def labels(self, key: str) -> tuple[str, ...]:
        value = self.required(key, list)
        if not value or not all(isinstance(c, str) and c for c in value):
            raise self.fail(key, "must be a non-empty list of class names")
        if len(set(value)) != len(value):
            raise self.fail(key, "holds the same class name twice")
        return tuple(value)

    def input_spec(self, key: str) -> InputSpec:
        value = self.required(key, dict)
        try:
            return InputSpec.from_dict(value)
        except (TypeError, ValueError) as exc:
            raise self.fail(key, f"is not a valid input spec ({exc})") from None

    def steps(self, key: str) -> Optional[tuple[Mapping[str, Any], ...]]:
        value = self.optional(key, list, None)
        if value is None:
            return None
        if not all(isinstance(s, dict) and isinstance(s.get("op"), str) for s in value):
            raise self.fail(key, 'must be a list of steps like {"op": "fit", ...}')
        return tuple(value)

    def data_record(self, key: str) -> Optional[DataRecord]:
        value = self.optional(key, dict, None)
        if value is None:
            return None
        kind = self.required(f"{key}.kind", str, value)
        if kind == "dataset":
            return DataRecord("dataset", name=self.text(f"{key}.name", value))
        if kind != "folder":
            raise self.fail(f"{key}.kind", f"must be 'dataset' or 'folder', got {kind!r}")
        return DataRecord("folder", path=self.text(f"{key}.path", value),
                          classes=tuple(self.optional(f"{key}.classes", list, [], value)),
                          val_fraction=self.optional(f"{key}.val_fraction", float, None, value),
                          test_files=self.files_by_class(f"{key}.test_files", self.required(f"{key}.test_files", dict,
                                                                                                  value)),
                          val_files=self.files_by_class(f"{key}.val_files", self.optional(f"{key}.val_files", dict,
                                                                                                {}, value)))

    def files_by_class(self, key: str, files: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
        if not all(isinstance(v, list) and all(isinstance(f, str) for f in v) for v in files.values()):
            raise self.fail(key, "must map each class to a list of file paths")
        return {c: tuple(v) for c, v in files.items()}
