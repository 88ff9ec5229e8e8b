"""`edgecls.api.train`: fit a zoo model on its own data set, or a model for a folder of your images (transfer
learning from a zoo model by default, or from scratch), and save it with its card in the workspace."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Union

if TYPE_CHECKING:
    from ..card import ModelCard
    from ..runtime.store import ModelFolder

PathLike = Union[str, os.PathLike]


@dataclass
class TrainResult:
    folder: "ModelFolder"  # model.keras, metrics.json, history.json
    card: "ModelCard"  # the test accuracy, the recipe, the data
    history: dict[str, list[float]]
    skipped: list[str] = field(default_factory=list)  # images of the folder that could not be read


def train(name: str, *, data: Optional[PathLike] = None, from_model: Optional[str] = None, scratch: bool = False,
          arch: Optional[str] = None, image_size: Optional[tuple[int, int]] = None, channels: Optional[int] = None,
          epochs: Optional[int] = None, batch_size: Optional[int] = None, lr: Optional[float] = None,
          patience: Optional[int] = None, val_split: Optional[float] = None, seed: int = 1337,
          train_limit: Optional[int] = None, fresh: bool = False, data_dir: Optional[PathLike] = None,
          workspace: Optional[PathLike] = None, verbose: Union[int, str] = "auto",
          on_log: Callable[[str], None] = print) -> TrainResult:
    """Zoo model `name` on its data set (data None), or model `name` for the class folders in `data`: transfer
    learning from `from_model` (default: chosen by the images' look) or, with `scratch`/`arch`, from random
    weights. Interrupted zoo runs resume from their last finished epoch unless `fresh`."""
    from ..errors import EdgeclsError
    from ..runtime.store import workspace_folder
    from ..training.recipe import Overrides

    overrides = Overrides(batch_size, lr, epochs, patience, val_split)
    overrides.check()
    out = workspace_folder(name, workspace)
    if data is None:
        for flag, value in (("from_model", from_model), ("scratch", scratch), ("arch", arch)):
            if value:
                raise EdgeclsError(f"{flag} needs your own data (a zoo model trains from scratch on its own data set)")
        result, dataset = _train_zoo(name, overrides, data_dir, out, seed, epochs, train_limit, fresh, verbose, on_log)
    elif from_model is not None and (scratch or arch):
        raise EdgeclsError("starting from a trained model and training from random weights exclude each other")
    elif scratch or arch:
        result, dataset = _train_scratch(name, Path(data), arch, image_size, channels, overrides, out, seed,
                                         train_limit, fresh, verbose, on_log)
    else:
        if train_limit:
            raise EdgeclsError("a training limit applies to zoo and from-scratch runs")
        if image_size or channels:
            raise EdgeclsError("image size and channels apply to from-scratch runs; transfer learning uses the "
                               "backbone's input (images are resized to it)")
        result, dataset = _train_transfer(name, Path(data), from_model, overrides, out, workspace, seed, verbose,
                                          on_log)
    return TrainResult(result.folder, result.card, result.history, list(getattr(dataset, "skipped", []) or []))


def _train_zoo(name, overrides, data_dir, out, seed, epochs, train_limit, fresh, verbose, on_log):
    from ..data import load_dataset
    from ..training.trainer import train_model
    from ..zoo import get_model_spec

    spec = get_model_spec(name)  # raises with the list of known models
    changes = {key: value for key, value in (
        ("batch_size", overrides.batch_size), ("learning_rate", overrides.learning_rate),
        ("val_fraction", overrides.val_split)) if value is not None}
    if overrides.patience is not None:
        changes["early_stopping_patience"] = overrides.patience or None  # 0: off
    if changes:
        spec = replace(spec, train=replace(spec.train, **changes))
    dataset = load_dataset(spec.dataset, data_dir)
    return train_model(spec, dataset, out, seed=seed, epochs=epochs, train_limit=train_limit, fresh=fresh,
                       verbose=verbose, on_log=on_log), dataset


def _report_skipped(dataset, on_log) -> None:
    for line in dataset.skipped:
        on_log(f"skipped {line}")


def _train_scratch(name, data, arch, image_size, channels, overrides, out, seed, train_limit, fresh, verbose,
                   on_log):
    from ..data import dataset_info, load_image_folder
    from ..runtime.spec import InputSpec
    from ..runtime.transforms import Pipeline
    from ..training.backbones import choose_backbone, look_at
    from ..training.recipe import scratch_config
    from ..training.trainer import train_model
    from ..zoo import get_model_spec

    arch = arch or choose_backbone(look_at(data, seed)).name
    template = get_model_spec(arch)
    base = dataset_info(template.dataset).input_spec
    h, w = image_size or (base.height, base.width)
    spec_in = InputSpec(h, w, channels or base.channels)
    pipeline = Pipeline.parse(template.preprocess or None, arch)
    dataset = load_image_folder(data, spec_in, seed=seed, pipeline=pipeline)
    _report_skipped(dataset, on_log)
    cfg = scratch_config(template.train, len(dataset.train), dataset.num_classes, overrides)
    spec = replace(template, name=name, dataset=dataset.name, role="custom", train=cfg, realistic=None,
                   summary=f"{template.summary} (architecture of `{arch}`, from scratch)")
    on_log(f"{name}: from scratch with the `{arch}` architecture; batch {cfg.batch_size}, lr {cfg.learning_rate:.3g}, "
           f"up to {cfg.epochs} epochs, patience {cfg.early_stopping_patience or 'off'}")
    recipe = {"kind": "scratch", "scaled_from": {"batch_size": template.train.batch_size,
                                                 "learning_rate": template.train.learning_rate,
                                                 "epochs": template.train.epochs},
              "overrides": {k: v for k, v in asdict(overrides).items() if v is not None}}
    return train_model(spec, dataset, out, seed=seed, epochs=cfg.epochs, train_limit=train_limit, fresh=fresh,
                       verbose=verbose, on_log=on_log, recipe=recipe), dataset


def _train_transfer(name, data, from_model, overrides, out, workspace, seed, verbose, on_log):
    from ..data import load_image_folder
    from ..training.backbones import choose_backbone, find_backbone, look_at
    from ..training.recipe import transfer_recipe
    from ..training.transfer import Backbone, train_transfer
    from ..zoo import get_model_spec

    if from_model is not None:
        choice_name, reason = from_model, "--from"
        keras_path, card = find_backbone(from_model, workspace)  # a bad name fails before any image is read
    else:
        if not Path(data).is_dir():
            from ..errors import DataError

            raise DataError(f"{data}: not a directory (expected one sub-folder per class)")
        choice = choose_backbone(look_at(data, seed))
        choice_name, reason = choice.name, choice.reason
        keras_path, card = find_backbone(choice_name, workspace)
    backbone = Backbone(get_model_spec(choice_name), keras_path, card, reason)
    dataset = load_image_folder(data, backbone.input_spec(), seed=seed, pipeline=backbone.pipeline())
    _report_skipped(dataset, on_log)
    recipe = transfer_recipe(len(dataset.train), dataset.num_classes, overrides)
    result = train_transfer(name, backbone, dataset, out, recipe, seed=seed, verbose=verbose,
                            on_log=on_log,
                            overrides={k: v for k, v in asdict(overrides).items() if v is not None})
    return result, dataset
