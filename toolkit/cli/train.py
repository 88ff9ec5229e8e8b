"""`edgecls train`: fit a zoo model (or a zoo architecture on your own image folder)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer

from .app import ArtifactsOption, DataDirOption, OptPath, app, err_console, say


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
    arch: str = typer.Option("cifar10", "--arch", help="Zoo architecture and recipe to use with --data."),
    image_size: Optional[str] = typer.Option(None, "--image-size", help="HxW for --data (default: the architecture's)."),
    channels: Optional[int] = typer.Option(None, "--channels", help="1 (grey) or 3 (RGB) for --data."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Override the recipe's epoch count."),
    seed: int = typer.Option(1337, "--seed", help="Seeds data splits, init, shuffling and augmentation."),
    train_limit: Optional[int] = typer.Option(None, "--train-limit", help="Train on a stratified subset of this size."),
    fresh: bool = typer.Option(False, "--fresh", help="Ignore resume checkpoints and start over."),
    data_dir: OptPath = DataDirOption,
    artifacts: OptPath = ArtifactsOption,
) -> None:
    """Train, keep the best validation epoch, test once, save model + metrics + history to <workspace>/NAME/.

    Interrupted runs resume from their last finished epoch when started again."""
    from ..artifacts import ModelArtifacts
    from ..data import dataset_info, load_dataset, load_image_folder
    from ..runtime.spec import InputSpec
    from ..zoo import MODELS, get_model_spec

    if data is not None:
        template = get_model_spec(arch)
        base = dataset_info(template.dataset).input_spec
        h, w = _parse_size(image_size) if image_size else (base.height, base.width)
        spec_in = InputSpec(h, w, channels or base.channels)
        dataset = load_image_folder(Path(data), spec_in)
        # realistic=None: the zoo's digit renderings carry digit labels, which are not the user's classes
        spec = replace(template, name=name, dataset=dataset.name, role="custom", realistic=None,
                       summary=f"{template.summary} (architecture of `{arch}`)")
        for line in dataset.skipped:
            say(("skipped ", "yellow"), line, target=err_console)
    else:
        if name not in MODELS:
            get_model_spec(name)  # raises with the list of known models
        spec = get_model_spec(name)
        dataset = load_dataset(spec.dataset, data_dir)

    from ..training.trainer import train_model

    result = train_model(
        spec, dataset, ModelArtifacts.in_workspace(name, artifacts), seed=seed, epochs=epochs,
        train_limit=train_limit, fresh=fresh, verbose=1 if sys.stdout.isatty() else 2,
        on_log=lambda msg: say(msg),
    )
    test = result.card["test"]
    say(("done ", "bold green"), f"{name}: test accuracy {test['accuracy'] * 100:.2f}% on "
        f"{test['num_samples']} images, {result.card['training']['train_seconds']:.0f}s training")
    if getattr(dataset, "skipped", None):  # trained, but not on every image given: scripts should know
        raise typer.Exit(2)
