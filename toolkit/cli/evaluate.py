"""`edgecls eval`: test-set accuracy with per-class precision, recall and F1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from .app import ArtifactsOption, DataDirOption, JsonOption, OptPath, app, console, print_table, say


@app.command("eval")
def evaluate(
    name: str = typer.Argument(..., help="A trained model in artifacts/ (e.g. mnist), or `all` for every shipped one."),
    data: OptPath = typer.Option(None, "--data", help="Evaluate on your own labelled folder (<class>/ sub-folders)."),
    as_json: bool = JsonOption,
    data_dir: OptPath = DataDirOption,
    artifacts: OptPath = ArtifactsOption,
) -> None:
    """Evaluate a trained model on its data set's official test split."""
    from .. import config
    from ..artifacts import ModelArtifacts
    from ..evaluation import evaluate_artifact

    if name == "all":
        root = config.artifacts_dir(artifacts)
        targets = [ModelArtifacts(p.parent) for p in sorted(root.glob("*/metrics.json"))]
    else:
        targets = [ModelArtifacts.for_name(name, artifacts)]
    results = [evaluate_artifact(t, data_dir, Path(data) if data else None) for t in targets]
    if as_json:
        console.print_json(json.dumps(results[0] if name != "all" else results))
        return
    for result in results:
        _print_report(result)


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
