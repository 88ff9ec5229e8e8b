"""`edgecls models`: the zoo with size, cost and the measured accuracy of what is shipped."""

from __future__ import annotations

import json
from typing import Any

import typer

from .root import ArtifactsOption, JsonOption, OptPath, app, console, print_table


def zoo_rows(artifacts_root: OptPath = None) -> list[dict[str, Any]]:
    from ..artifacts import ModelArtifacts
    from ..data import dataset_info
    from ..zoo import MODELS

    rows = []
    for spec in MODELS.values():
        card = ModelArtifacts.for_name(spec.name, artifacts_root).read_card()
        if card is None:  # not trained here: build it to count (needs Keras)
            from ..zoo.stats import model_stats

            info = dataset_info(spec.dataset)
            stats = model_stats(spec.build(info.input_spec, len(info.classes)))
        else:
            stats = {"params": card["params"], "macs": card["macs"]}
        rows.append({
            "name": spec.name, "role": spec.role, "dataset": spec.dataset, "architecture": spec.summary,
            **stats,
            "test_accuracy": card["test"]["accuracy"] if card else None,
            "source_claim": spec.source_claim,
        })
    known = {r["name"] for r in rows}
    from ..runtime.paths import search_dirs

    for path in [p for root in search_dirs(artifacts_root) for p in sorted(root.glob("*/metrics.json"))]:
        card = json.loads(path.read_text())
        if card["name"] not in known:  # a user's own model trained with --data
            known.add(card["name"])
            rows.append({"name": card["name"], "role": "custom", "dataset": card["dataset"],
                         "architecture": card["architecture"], "params": card["params"], "macs": card["macs"],
                         "test_accuracy": card["test"]["accuracy"], "source_claim": ""})
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | role | data set | params | MACs/image | test accuracy | architecture |",
             "| --- | --- | --- | ---: | ---: | ---: | --- |"]
    for r in rows:
        acc = f"{r['test_accuracy'] * 100:.2f}%" if r["test_accuracy"] is not None else "not trained"
        lines.append(f"| `{r['name']}` | {r['role']} | {r['dataset']} | {r['params']:,} | {r['macs'] / 1e6:.2f}M "
                     f"| {acc} | {r['architecture']} |")
    return "\n".join(lines)


@app.command()
def models(
    as_json: bool = JsonOption,
    markdown: bool = typer.Option(False, "--markdown", help="Print a Markdown table (as in README)."),
    artifacts: OptPath = ArtifactsOption,
) -> None:
    """List the model zoo: data set, parameters, MACs per image, shipped test accuracy."""
    rows = zoo_rows(artifacts)
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
        table.add_row(Text(r["name"]), Text(r["role"]), Text(r["dataset"]), f"{r['params']:,}",
                      f"{r['macs'] / 1e6:.2f}M", acc, *([Text(r["architecture"])] if wide else []))
    print_table(table)
