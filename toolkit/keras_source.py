"""The Keras model a command works on (`export`, `bench`, `report`): the store finds it, its card says what
it is, and what the command writes goes to the workspace, never into the shipped zoo."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .card import ModelCard, read_card
from .errors import ModelNotFoundError
from .runtime.store import ModelFolder, ModelRef, PathLike, locate, looks_like_path, model_folder, not_found_message
from .runtime.variants import LOADABLE


@dataclass(frozen=True)
class KerasSource:
    """A model the user named: its .keras file, export name and card (None for a bare .keras file), the folder
    it was read from and the folder this run writes to."""

    ref: ModelRef
    keras_path: Path
    card: Optional[ModelCard]
    output_dir: Path

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def directory(self) -> Path:
        return self.ref.folder.directory

    def variant_files(self) -> dict[str, Path]:
        """Where each exported variant lives: in the output folder when exported there, else beside the model."""
        mine, beside = ModelFolder(self.name, self.output_dir), self.ref.folder
        return {v: mine.variant_path(v) if mine.variant_path(v).is_file() or mine == beside else
                beside.variant_path(v) for v in LOADABLE}


def resolve_source(target: PathLike, workspace: Optional[PathLike] = None) -> KerasSource:
    """A model name (its folder's model.keras + card, workspace first, then the zoo) or a path to a .keras file
    (with the card beside it when it is an edgecls model folder's model.keras)."""
    ref = locate(target, workspace) if looks_like_path(target) else ModelRef(model_folder(str(target), workspace))
    if ref.file is not None and not ref.is_keras:
        raise ModelNotFoundError(f"{ref.file}: expected a Keras model (.keras) or a model name")
    keras_path = ref.file or ref.folder.keras_path
    card_beside = ref.folder.has_card() and keras_path == ref.folder.keras_path
    if not keras_path.is_file():
        if ref.file is None and not ref.folder.has_card():
            raise ModelNotFoundError(not_found_message(ref.name, workspace, "trained model", _train_hint(ref.name)))
        raise ModelNotFoundError(f"{keras_path}: no such Keras model file" +
                                 ("" if ref.file is not None else f" (model {ref.name!r} has exported files only)"))
    card = read_card(ref.folder.card_path) if card_beside else None
    out = ref.folder.output_dir(workspace) if card is not None or ref.file is None else ref.folder.directory
    return KerasSource(ref, keras_path, card, out)


def _train_hint(name: str) -> str:
    return (f" and no such .keras file; train it first (`edgecls train {name}`, or `edgecls train {name} --data folder/` for your own "
            "images)")
