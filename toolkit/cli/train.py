"""`edgecls train`: fit a zoo model, or a model for your own image folder (transfer learning by default)."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from . import exit_codes
from .root import DataDirOption, OptPath, WorkspaceOption, app, err_console, say


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
    from ..api import train as run_train
    from ..errors import EdgeclsError
    from .extras import require

    require("train")

    if data is None and (from_model or scratch or arch):
        flag = "--from" if from_model else "--scratch" if scratch else "--arch"
        raise EdgeclsError(f"{flag} needs --data (a zoo model trains from scratch on its own data set)")
    if from_model is not None and (scratch or arch):
        raise EdgeclsError("--from starts from a trained model; --scratch/--arch train from random weights: "
                           "give one or the other")
    if data is not None and not (scratch or arch) and (train_limit or image_size or channels):
        raise EdgeclsError("--train-limit, --image-size and --channels apply to zoo and --scratch runs; transfer "
                           "learning uses the backbone's input (images are resized to it)")
    result = run_train(name, data=data, from_model=from_model, scratch=scratch, arch=arch,
                       image_size=_parse_size(image_size) if image_size else None, channels=channels, epochs=epochs,
                       batch_size=batch_size, lr=lr, patience=patience, val_split=val_split, seed=seed,
                       train_limit=train_limit, fresh=fresh, data_dir=data_dir, workspace=workspace,
                       verbose=1 if sys.stdout.isatty() else 2, on_log=lambda msg: say(msg, target=err_console))
    test = result.card.test
    say(("done ", "bold green"), f"{name}: test accuracy {test.accuracy * 100:.2f}% on "
        f"{test.num_samples} images, {result.card.training['train_seconds']:.0f}s training")
    if result.skipped:  # trained, but not on every image given: scripts should know
        raise typer.Exit(exit_codes.INPUTS_SKIPPED)
