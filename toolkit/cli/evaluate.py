"""`edgecls eval`: test-set accuracy with per-class precision, recall and F1."""

from __future__ import annotations

import json

import typer

from . import exit_codes
from .root import DataDirOption, JsonOption, OptPath, WorkspaceOption, app, console, err_console, print_table, say


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
    from ..api import evaluate as run_evaluate
    from ..api import evaluate_all

    if name != "all":
        result = run_evaluate(name, data=data, data_dir=data_dir, workspace=workspace)
        if as_json:
            print(json.dumps(result.to_dict(), indent=2))
        else:
            _print_report(result)
        return
    every = evaluate_all(data=data, data_dir=data_dir, workspace=workspace)
    if as_json:
        print(json.dumps([r.to_dict() for r in every.results], indent=2))
    else:
        for result in every.results:
            _print_report(result)
    for line in every.failed:
        say(("could not evaluate ", "yellow"), line, target=err_console)
    if every.failed:
        total = len(every.results) + len(every.failed)
        say((f"{len(every.results)} of {total} models evaluated", "yellow"), target=err_console)
        raise typer.Exit(exit_codes.ERROR if not every.results else exit_codes.INPUTS_SKIPPED)


def _print_report(r) -> None:
    recorded = r.recorded_accuracy
    note = f" (recorded {recorded * 100:.2f}%)" if recorded is not None else ""
    say((r.model, "bold"), f" on {r.dataset} [{r.split}]: accuracy ",
        (f"{r.accuracy * 100:.2f}%", "bold"), f" over {r.num_samples} images{note}")
    from rich.table import Table
    from rich.text import Text

    table = Table(show_edge=False, pad_edge=False)
    for col in ("class", "precision", "recall", "f1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for cls, m in r.per_class.items():
        table.add_row(Text(cls), f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", str(m["support"]))
    macro = r.macro_avg
    table.add_row(Text("macro avg", style="dim"), f"{macro['precision']:.3f}", f"{macro['recall']:.3f}", f"{macro['f1']:.3f}",
                  str(r.num_samples))
    print_table(table)
    console.print()
