"""`edgecls.api.list_models`: the zoo and the user's own models, with size, cost and measured accuracy."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, Optional, Union

PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class ModelRow:
    name: str
    role: str
    dataset: str
    architecture: str
    params: Optional[int]
    macs: Optional[int]
    test_accuracy: Optional[float]  # None: not trained (here or in the shipped zoo)
    source_claim: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_models(workspace: Optional[PathLike] = None) -> list[ModelRow]:
    """The zoo's registry (each with its card when trained: workspace first, then the shipped one), then every
    other model with a card in the workspace or the zoo (the user's own)."""
    from ..card import read_card
    from ..runtime.store import CARD_FILE, model_folder, search_dirs
    from ..zoo import MODELS

    rows, known = [], set()
    for spec in MODELS.values():
        folder = model_folder(spec.name, workspace)
        card = read_card(folder.card_path) if folder.has_card() else None
        stats = {"params": card.params, "macs": card.macs} if card else _untrained_stats(spec)
        rows.append(ModelRow(spec.name, spec.role, spec.dataset, spec.summary, **stats,
                             test_accuracy=card.test.accuracy if card else None, source_claim=spec.source_claim))
        known.add(spec.name)
    for path in [p for root in search_dirs(workspace) for p in sorted(root.glob(f"*/{CARD_FILE}"))]:
        card = read_card(path)
        if card.name not in known:  # a user's own model trained with --data
            known.add(card.name)
            rows.append(ModelRow(card.name, "custom", card.dataset, card.architecture, card.params, card.macs,
                                 card.test.accuracy))
    return rows


def _untrained_stats(spec) -> dict[str, Any]:
    """Size and cost of a zoo model not trained here: counted on the built architecture (needs Keras; without
    the train extra they are unknown)."""
    try:
        import keras  # noqa: F401
    except ImportError:
        return {"params": None, "macs": None}
    from ..data import dataset_info
    from ..zoo.stats import model_stats

    info = dataset_info(spec.dataset)
    return model_stats(spec.build(info.input_spec, len(info.classes)))
