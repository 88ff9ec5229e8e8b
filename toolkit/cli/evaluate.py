"""`edgecls eval`: test-set accuracy with per-class precision, recall and F1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from .root import WorkspaceOption, DataDirOption, JsonOption, OptPath, app, console, err_console, print_table, say


@app.command("eval")
def evaluate(
    name: str = typer.Argument(..., help="A trained model (e.g. mnist), an exported .onnx file, or `all`."),
    data: OptPath = typer.Option(None, "--data", help="Evaluate on this labelled folder (<class>/ sub-folders; its "
                                 "test/ part if it has train/ and test/) instead of the model's own test split."),
    as_json: bool = JsonOption,
    data_dir: OptPath = DataDirOption,
    workspace: OptPath = WorkspaceOption,
) -> None:
    """Evaluate a model on the test split its card records (never on its training images).

    `all` evaluates every model in the workspace and the shipped zoo; exit code 0 if every one could be
    evaluated, 2 if some could not (each named on stderr), 1 if none could."""
    from ..evaluation import evaluate_model, evaluate_onnx
    from ..runtime.errors import EdgeclsError
    from ..runtime.store import ModelFolder, looks_like_path, model_folder, search_dirs

    folder = Path(data) if data else None
    if name != "all":
        if looks_like_path(name):
            path = Path(name)
            if path.suffix != ".onnx":
                raise EdgeclsError(f"{path}: eval takes a model name or an exported .onnx file")
            if not path.is_file():
                raise EdgeclsError(f"{path}: no such model file")
            result = evaluate_onnx(path, folder, data_dir, workspace)
        else:
            result = evaluate_model(model_folder(name, workspace), data_dir, folder)
        if as_json:
            print(json.dumps(result, indent=2))
        else:
            _print_report(result)
        return
    seen: dict[str, Path] = {}
    for root in search_dirs(workspace):  # the workspace shadows the shipped zoo
        for card in sorted(root.glob("*/metrics.json")):
            seen.setdefault(card.parent.name, card.parent)
    results, failed = [], []
    for model, directory in sorted(seen.items()):
        try:
            results.append(evaluate_model(ModelFolder(model, directory), data_dir, folder))
        except (EdgeclsError, KeyError, ValueError, OSError) as exc:  # a broken card is named, never fatal
            failed.append(f"{model}: {exc if isinstance(exc, EdgeclsError) else f'{type(exc).__name__}: {exc}'}")
            continue
        if not as_json:
            _print_report(results[-1])
    if as_json:
        print(json.dumps(results, indent=2))
    for line in failed:
        say(("could not evaluate ", "yellow"), line, target=err_console)
    if not seen:
        raise EdgeclsError(f"no trained models in {' or '.join(str(r) for r in search_dirs(workspace))}")
    if failed:
        say((f"{len(results)} of {len(seen)} models evaluated", "yellow"), target=err_console)
        raise typer.Exit(1 if not results else 2)


def _print_report(r: dict[str, Any]) -> None:
    recorded = r.get("recorded_accuracy")
    note = f" (recorded {recorded * 100:.2f}%)" if recorded is not None else ""
    say((r["model"], "bold"), f" on {r['dataset']} [{r['split']}]: accuracy ",
        (f"{r['accuracy'] * 100:.2f}%", "bold"), f" over {r['num_samples']} images{note}")
    from rich.table import Table
    from rich.text import Text

    table = Table(show_edge=False, pad_edge=False)
    for col in ("class", "precision", "recall", "f1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for cls, m in r["per_class"].items():
        table.add_row(Text(cls), f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", str(m["support"]))
    macro = r["macro_avg"]
    table.add_row(Text("macro avg", style="dim"), f"{macro['precision']:.3f}", f"{macro['recall']:.3f}", f"{macro['f1']:.3f}",
                  str(r["num_samples"]))
    print_table(table)
    console.print()
