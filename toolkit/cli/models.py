"""`edgecls models`: the zoo with size, cost and the measured accuracy of what is shipped."""

from __future__ import annotations

import json
from typing import Any

import typer

from .root import WorkspaceOption, JsonOption, OptPath, app, console, print_table


def zoo_rows(workspace: OptPath = None) -> list[dict[str, Any]]:
    """One row per model: the zoo's registry (its card when trained: workspace first, then the shipped one),
    then every other model with a card in the workspace or the zoo (the user's own)."""
    from ..card import read_card
    from ..runtime.store import model_folder, search_dirs
    from ..zoo import MODELS

    rows, known = [], set()
    for spec in MODELS.values():
        folder = model_folder(spec.name, workspace)
        card = read_card(folder.card_path) if folder.has_card() else None
        stats = {"params": card.params, "macs": card.macs} if card else _untrained_stats(spec)
        rows.append({"name": spec.name, "role": spec.role, "dataset": spec.dataset, "architecture": spec.summary,
                     **stats, "test_accuracy": card.test.accuracy if card else None,
                     "source_claim": spec.source_claim})
        known.add(spec.name)
    for path in [p for root in search_dirs(workspace) for p in sorted(root.glob("*/metrics.json"))]:
        card = read_card(path)
        if card.name not in known:  # a user's own model trained with --data
            known.add(card.name)
            rows.append({"name": card.name, "role": "custom", "dataset": card.dataset,
                         "architecture": card.architecture, "params": card.params, "macs": card.macs,
                         "test_accuracy": card.test.accuracy, "source_claim": ""})
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


def _count(value: Any, scale: float = 1, fmt: str = ",") -> str:
    """A count as the tables show it ("n/a" when unknown); scaled counts (MACs in millions) as floats."""
    return "n/a" if value is None else format(value if scale == 1 else value / scale, fmt)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | role | data set | params | MACs/image | test accuracy | architecture |",
             "| --- | --- | --- | ---: | ---: | ---: | --- |"]
    for r in rows:
        acc = f"{r['test_accuracy'] * 100:.2f}%" if r["test_accuracy"] is not None else "not trained"
        lines.append(f"| `{r['name']}` | {r['role']} | {r['dataset']} | {_count(r['params'])} | {_count(r['macs'], 1e6, '.2f')}M "
                     f"| {acc} | {r['architecture']} |")
    return "\n".join(lines)


@app.command()
def models(
    as_json: bool = JsonOption,
    markdown: bool = typer.Option(False, "--markdown", help="Print a Markdown table (as in README)."),
    workspace: OptPath = WorkspaceOption,
) -> None:
    """List the model zoo: data set, parameters, MACs per image, shipped test accuracy."""
    rows = zoo_rows(workspace)
    if as_json:
        console.print_json(json.dumps(rows))
        return
    if markdown:
        print(markdown_table(rows))
        return
    from rich.table import Table
    from rich.text import Text


    # in a pipe the long architecture descriptions would push every line past 80 columns: --json/--markdown have them
    wide = console.is_terminal
    table = Table(title="edgecls model zoo", show_lines=False)
    for col, just in (("name", "left"), ("role", "left"), ("data set", "left"), ("params", "right"),
                      ("MACs/img", "right"), ("test acc", "right")) + ((("architecture", "left"),) if wide else ()):
        table.add_column(col, justify=just, no_wrap=col == "name")  # scripts grep names: never cut or wrapped
    for r in rows:
        acc = Text(f"{r['test_accuracy'] * 100:.2f}%") if r["test_accuracy"] is not None else Text("not trained", "dim")
        table.add_row(Text(r["name"]), Text(r["role"]), Text(r["dataset"]), _count(r["params"]),
                      _count(r["macs"], 1e6, ".2f") + "M", acc, *([Text(r["architecture"])] if wide else []))
    print_table(table)
