"""The Typer app and the options several commands share."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

app = typer.Typer(
    name="edgecls",
    help="Train, export and run small image classifiers at the edge.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(soft_wrap=True)  # messages carry paths: never break them
err_console = Console(stderr=True, soft_wrap=True)

# Both read their environment variable themselves (edgecls.config, edgecls.runtime.store), so a relative value
# means the folder the command started in.
DataDirOption = typer.Option(
    None, "--data-dir", help="Folder holding the data set files (mnist.npz, cifar10.tar.gz, ...) "
                             "[default: $EDGECLS_DATA, else ~/.edgecls/datasets]."
)
WorkspaceOption = typer.Option(
    None, "--workspace", metavar="DIR",
    help="Your models' folder: models are read from it, then from the shipped zoo; everything written goes here "
         "[default: $EDGECLS_WORKSPACE, else ./workspace].")
# Older spellings of --workspace, still accepted (main() rewrites them before parsing).
WORKSPACE_ALIASES = ("--project", "--artifacts")
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables.")
# One variant policy for every command that runs a model (edgecls.runtime.variant_policy), one set of flags.
VariantOption = typer.Option(
    "auto", "--variant", metavar="auto|fp32|int8|fp16",
    help="Which exported variant runs: auto = the fastest that passed its export gate on this machine (measured "
         "once, cached; fp16 is a candidate only on a GPU; `edgecls tune MODEL` shows the choice).")
Int8Option = typer.Option(False, "--int8", help="Same as --variant int8.")
Fp16Option = typer.Option(False, "--fp16", help="Same as --variant fp16.")
Fp32Option = typer.Option(False, "--fp32", help="Same as --variant fp32.")
TuneOption = typer.Option("auto", "--tune", metavar="auto|cached|off",
                          help="Per-machine tuning: auto measures what is not cached yet, cached only reads what "
                               "an earlier run measured, off uses defaults.")

OptPath = Optional[Path]


def variant_from(variant: str, int8: bool = False, fp16: bool = False, fp32: bool = False) -> str:
    """--variant and its shortcuts --int8/--fp16/--fp32 -> one variant; naming two different ones is an error."""
    from ..runtime.errors import EdgeclsError
    from ..runtime.variant_policy import VARIANT_CHOICES

    named = [v for v, on in (("int8", int8), ("fp16", fp16), ("fp32", fp32)) if on]
    if variant not in VARIANT_CHOICES:
        raise EdgeclsError(f"--variant {variant}: choose {', '.join(VARIANT_CHOICES)}")
    if len(named) > 1 or (named and variant not in ("auto", named[0])):
        raise EdgeclsError("choose one variant: --variant, --int8, --fp16 and --fp32 name different ones")
    return named[0] if named else variant


def say(*parts, target: Optional[Console] = None) -> None:
    """Print one message literally: plain str parts are user data and never read as markup (a path may hold
    `[/b]` or `[gpu]`); (text, style) tuples carry the styling."""
    from rich.text import Text

    (target or console).print(Text.assemble(*parts), highlight=False)


def print_table(table, target: Optional[Console] = None) -> None:
    """Print a rich Table; when the output is not a terminal (a pipe, a file) lay it out at its natural
    width as plain space-separated columns, so no cell is ever truncated or wrapped: scripts grep these lines."""
    target = target or console
    if target.is_terminal:
        target.print(table)
        return
    # plain columns: no box drawing (cut/awk/grep see words and two-space gaps)
    table.box, table.padding, table.show_edge = None, (0, 1), False
    wide = Console(file=target.file, width=100_000, soft_wrap=True, no_color=True, highlight=False)
    wide.print(table)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        console.print(f"edgecls {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
    verbose: bool = typer.Option(False, "--verbose", help="Show TensorFlow's own start-up and retracing logs, and the quantization tools' output."),
) -> None:
    """Train, export and run small image classifiers at the edge."""
    from ..quiet import quiet_tensorflow

    quiet_tensorflow(verbose)
