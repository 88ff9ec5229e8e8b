"""`edgecls train`: fit a zoo model, or a model for your own image folder (transfer learning by default)."""

from __future__ import annotations

import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Optional

import typer

from .root import WorkspaceOption, DataDirOption, OptPath, app, err_console, say


def _parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
        return h, w
    except ValueError:
        raise typer.BadParameter(f"expected HEIGHTxWIDTH such as 32x32, got {text!r}") from None


@app.command()
def train(
    name: str = typer.Argument(..., help="Zoo model (see `edgecls models`) or a new name with --data."),
    data: OptPath = typer.Option(None, "--data", help="Your own images: one sub-folder per class."),
    from_model: Optional[str] = typer.Option(
        None, "--from", help="With --data: the zoo model whose trained features to start from "
                             "(default: chosen by the images' colour, size and look)."),
    scratch: bool = typer.Option(False, "--scratch", help="With --data: train from random weights, no transfer."),
    arch: Optional[str] = typer.Option(
        None, "--arch", help="With --data: zoo architecture to train from scratch (implies --scratch)."),
    image_size: Optional[str] = typer.Option(None, "--image-size", help="HxW for --scratch (default: the architecture's)."),
    channels: Optional[int] = typer.Option(None, "--channels", help="1 (grey) or 3 (RGB) for --scratch."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Most epochs (per phase with transfer); "
                                                                "early stopping may end sooner."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Default: scaled to the data set's size."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate (transfer: of the head; fine-tuning "
                                                          "uses a tenth). Default: scaled to the batch size."),
    patience: Optional[int] = typer.Option(None, "--patience", help="Stop after this many epochs without a "
                                                                    "better validation score (0: never)."),
    val_split: Optional[float] = typer.Option(None, "--val-split", help="Share of the training images held out "
                                                                        "to pick the best epoch (default ~0.1)."),
    seed: int = typer.Option(1337, "--seed", help="Seeds data splits, init, shuffling and augmentation."),
    train_limit: Optional[int] = typer.Option(None, "--train-limit", help="Train on a stratified subset of this size."),
    fresh: bool = typer.Option(False, "--fresh", help="Ignore resume checkpoints and start over."),
    data_dir: OptPath = DataDirOption,
    workspace: OptPath = WorkspaceOption,
) -> None:
    """Train, keep the best validation epoch, test once, save model + metrics + history to <workspace>/NAME/.

    With --data: transfer learning from a zoo model (new head, then fine-tuning), recipe scaled to the data.

    Interrupted zoo runs resume from their last finished epoch when started again."""
    from ..errors import EdgeclsError
    from ..runtime.store import workspace_folder
    from ..training.recipe import Overrides
    from .extras import require

    require("train")

    overrides = Overrides(batch_size, lr, epochs, patience, val_split)
    overrides.check()
    out = workspace_folder(name, workspace)
    verbose = 1 if sys.stdout.isatty() else 2
    if data is None:
        for flag, value in (("--from", from_model), ("--scratch", scratch), ("--arch", arch)):
            if value:
                raise EdgeclsError(f"{flag} needs --data (a zoo model trains from scratch on its own data set)")
        result, dataset = _train_zoo(name, overrides, data_dir, out, seed, epochs, train_limit, fresh, verbose)
    elif from_model is not None and (scratch or arch):
        raise EdgeclsError("--from starts from a trained model; --scratch/--arch train from random weights: "
                           "give one or the other")
    elif scratch or arch:
        result, dataset = _train_scratch(name, Path(data), arch, image_size, channels, overrides, out, seed,
                                         train_limit, fresh, verbose)
    else:
        if train_limit:
            raise EdgeclsError("--train-limit applies to zoo and --scratch runs")
        if image_size or channels:
            raise EdgeclsError("--image-size/--channels apply to --scratch; transfer learning uses the backbone's "
                               "input (images are resized to it)")
        result, dataset = _train_transfer(name, Path(data), from_model, overrides, out, workspace, seed, verbose)
    test = result.card.test
    say(("done ", "bold green"), f"{name}: test accuracy {test.accuracy * 100:.2f}% on "
        f"{test.num_samples} images, {result.card.training['train_seconds']:.0f}s training")
    if getattr(dataset, "skipped", None):  # trained, but not on every image given: scripts should know
        raise typer.Exit(2)


def _train_zoo(name, overrides, data_dir, out, seed, epochs, train_limit, fresh, verbose):
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
                       verbose=verbose, on_log=lambda msg: say(msg, target=err_console)), dataset


def _report_skipped(dataset) -> None:
    for line in dataset.skipped:
        say(("skipped ", "yellow"), line, target=err_console)


def _train_scratch(name, data, arch, image_size, channels, overrides, out, seed, train_limit, fresh, verbose):
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
    h, w = _parse_size(image_size) if image_size else (base.height, base.width)
    spec_in = InputSpec(h, w, channels or base.channels)
    pipeline = Pipeline.parse(template.preprocess or None, arch)
    dataset = load_image_folder(data, spec_in, seed=seed, pipeline=pipeline)
    _report_skipped(dataset)
    cfg = scratch_config(template.train, len(dataset.train), dataset.num_classes, overrides)
    spec = replace(template, name=name, dataset=dataset.name, role="custom", train=cfg, realistic=None,
                   summary=f"{template.summary} (architecture of `{arch}`, from scratch)")
    say(f"{name}: from scratch with the `{arch}` architecture; batch {cfg.batch_size}, lr {cfg.learning_rate:.3g}, "
        f"up to {cfg.epochs} epochs, patience {cfg.early_stopping_patience or 'off'}", target=err_console)
    recipe = {"kind": "scratch", "scaled_from": {"batch_size": template.train.batch_size,
                                                 "learning_rate": template.train.learning_rate,
                                                 "epochs": template.train.epochs},
              "overrides": {k: v for k, v in asdict(overrides).items() if v is not None}}
    return train_model(spec, dataset, out, seed=seed, epochs=cfg.epochs, train_limit=train_limit, fresh=fresh,
                       verbose=verbose, on_log=lambda msg: say(msg, target=err_console), recipe=recipe), dataset


def _train_transfer(name, data, from_model, overrides, out, workspace, seed, verbose):
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
    _report_skipped(dataset)
    recipe = transfer_recipe(len(dataset.train), dataset.num_classes, overrides)
    result = train_transfer(name, backbone, dataset, out, recipe, seed=seed, verbose=verbose,
                            on_log=lambda msg: say(msg, target=err_console),
                            overrides={k: v for k, v in asdict(overrides).items() if v is not None})
    return result, dataset
