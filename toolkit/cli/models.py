"""`edgecls models`: the zoo with size, cost and the measured accuracy of what is shipped."""

from __future__ import annotations

import json
from typing import Any

import typer

from .root import WorkspaceOption, JsonOption, OptPath, app, console, print_table


def _count(value: Any, scale: float = 1, fmt: str = ",") -> str:
    """A count as the tables show it ("n/a" when unknown); scaled counts (MACs in millions) as floats."""
    return "n/a" if value is None else format(value if scale == 1 else value / scale, fmt)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The table README and the docs show (a test compares it with the cards)."""
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
    from ..api import list_models

    rows = [row.to_dict() for row in list_models(workspace)]
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
