"""Reference pages built from the code itself, so they cannot drift from it: the CLI (from the Typer app), the
ONNX metadata keys, the preprocessing steps and presets, the export gates, the exit codes, the model zoo and the
shipped exports (from the model cards and export reports, through the same commands users run).

Pure functions returning Markdown; docs/gen_pages.py writes them into the site at build time."""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any

from gen_markdown import table

REPO = Path(__file__).resolve().parent.parent



# --- Markdown helpers ------------------------------------------------------------------------------------------

def md_text(text: str) -> str:
    """Plain help text as Markdown: code spans kept, everything else escaped (`<workspace>` is not an HTML tag,
    `*` and `_` in file patterns are not emphasis, `|` does not end a table cell)."""
    text = text.replace("\\[", "[")  # rich markup escapes in Typer help
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # even parts are outside code spans
        parts[i] = (parts[i].replace("\\", "\\\\").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                    .replace("*", "\\*").replace("_", "\\_"))
    return "`".join(parts).replace("|", "\\|")


def code(text: Any) -> str:
    """An inline code span that survives a table cell."""
    return "`" + str(text).replace("|", "\\|") + "`"


def paragraphs(text: str) -> str:
    """Docstring-style help as Markdown paragraphs: lines joined, blank lines kept."""
    blocks = [" ".join(line.strip() for line in block.splitlines()) for block in re.split(r"\n\s*\n", text.strip())]
    return "\n\n".join(md_text(b) for b in blocks if b)


# --- CLI ------------------------------------------------------------------------------------------------------

def _cli_context():
    """The root click group of the Typer app, and a context set up as `typer ... utils docs` sets it up."""
    import typer
    from typer.core import MARKUP_MODE_KEY

    from edgecls.cli import app

    group = typer.main.get_command(app)
    return group, typer.Context(group, info_name="edgecls", obj={MARKUP_MODE_KEY: app.rich_markup_mode})


def cli_pages() -> dict[str, str]:
    """`reference/cli/...`: an index of every command with the global options, and one page per command written by
    Typer's own Markdown generator (the one behind `typer MODULE utils docs`)."""
    from typer.cli import get_docs_for_click

    group, ctx = _cli_context()
    commands = {n: group.get_command(ctx, n) for n in group.list_commands(ctx)}
    commands = {n: c for n, c in commands.items() if not c.hidden}
    pages = {f"{n}.md": get_docs_for_click(obj=c, ctx=ctx, call_prefix="edgecls") for n, c in commands.items()}
    options = [p.get_help_record(ctx) for p in group.params]
    pages["index.md"] = "\n".join([
        "# Command line", "", paragraphs(group.help or ""), "",
        "```text", "edgecls [OPTIONS] COMMAND [ARGS]...", "```", "",
        "Every page in this section is generated from the command's own definition when the documentation is "
        "built; `edgecls COMMAND --help` prints the same.", "",
        "## Global options", "",
        table(["option", "description"], [[code(name), md_text(text)] for name, text in filter(None, options)]), "",
        "## Commands", "",
        table(["command", "what it does"],
              [[f"[`edgecls {n}`]({n}.md)", md_text(c.get_short_help_str(limit=300))] for n, c in commands.items()]),
        ""])
    pages["SUMMARY.md"] = "\n".join(["- [Overview](index.md)"] + [f"- [edgecls {n}]({n}.md)" for n in commands]) + "\n"
    return pages


# --- ONNX metadata, transforms, gates, exit codes ---------------------------------------------------------------

def metadata_page() -> str:
    from edgecls.runtime.metadata import FORMAT_VERSION, KEYS, PREFIX

    rows = [[code(PREFIX + key), md_text(meaning)] for key, meaning in KEYS.items()]
    return "\n".join([
        "# ONNX metadata", "",
        "Every exported model describes itself in its ONNX `metadata_props`, so any application can use it without "
        "edgecls. All values are strings; structured values are JSON. Generated from "
        "`edgecls.runtime.metadata.KEYS`, the table the exporters write from and the runtime reads from.", "",
        f"Metadata layout version: `{FORMAT_VERSION}`.", "",
        table(["key", "value"], rows), "",
        "To feed a model without edgecls: decode the image, apply its EXIF orientation, convert it to grey (ITU-R 601 "
        "luma) or RGB, run the declared `edgecls.preprocess` steps ([transforms](transforms.md); without them: resize "
        "to `height` x `width`, bilinear), then pass float32 pixels in 0-255 in the `layout` order. There is no "
        "mean/std step: normalisation is inside the model.", ""])


def _rule(spec: tuple[type, Any, Any, str]) -> tuple[str, str, str]:
    kind, default, _check, rule = spec
    return kind.__name__, code(default), md_text(rule)


def transforms_page() -> str:
    from edgecls.runtime.transforms import PRESETS, TRANSFORMS

    steps = []
    for name, transform in TRANSFORMS.items():
        params = "<br>".join(f"{code(p)} ({kind}, default {default}: {rule})"
                             for p, (kind, default, rule) in ((p, _rule(s)) for p, s in transform.params.items()))
        role = "resamples to the model input (last)" if transform.terminal else (
            "also after resampling" if transform.after else "before resampling")
        steps.append([code(name), params or "none", role, md_text(transform.doc)])
    presets = [[code(name), " -> ".join(
        step["op"] + ("(" + ", ".join(f"{k}={v}" for k, v in step.items() if k != "op") + ")"
                      if len(step) > 1 else "") for step in preset)] for name, preset in PRESETS.items()]
    return "\n".join([
        "# Preprocessing steps", "",
        "The steps a model may declare in its `edgecls.preprocess` metadata, with their parameters, defaults and "
        "allowed values, generated from the registry in `edgecls.runtime.transforms` (the one registry that "
        "training, export validation, inference and the web bundle's port follow). Decoding, EXIF orientation and "
        "grey/RGB conversion always run first. See [Preprocessing and the unsure flag]"
        "(../guides/preprocessing.md) for when to use which.", "",
        "## Steps", "", table(["step", "parameters", "runs", "what it does"], steps), "",
        "## Presets", "",
        "`edgecls export MODEL --preprocess NAME` takes a preset name, or a JSON list of steps such as "
        "`'[{\"op\": \"resize\", \"mode\": \"letterbox\", \"fill\": 114}]'`.", "",
        table(["preset", "steps"], presets), ""])


def _gate_value(name: str, value: float) -> str:
    if "agreement" in name or "saving" in name:
        return f"{value * 100:g}%"
    if "drop" in name:
        return f"{value:g} accuracy points"
    return f"{value:g}"


def gates_page() -> str:
    from edgecls.exporters.gates import Gates

    defaults = Gates()
    rows = [[code(f.name), _gate_value(f.name, getattr(defaults, f.name))] for f in fields(Gates)]
    return "\n".join([
        "# Export gates", "",
        "The default thresholds every exported variant is checked against before it is written, read from "
        "`edgecls.exporters.gates.Gates` when this page is built. `edgecls export` and `edgecls quantize` "
        "options override them (see the [CLI reference](cli/export.md)); every export report and every model's "
        "`edgecls.validation` metadata records the gates it passed. What each gate means: "
        "[int8 and the gates](../guides/int8.md).", "",
        table(["gate", "default"], rows), ""])


def formats_page() -> str:
    from edgecls.exporters.formats import FORMATS

    stages = {"variant": "built from fp32, validated against the reference",
              "package": "made from the written files, checked against them"}
    def file(f) -> str:
        folder = f"{f.variant.folder}/" if f.variant.folder else ""
        return folder + (f"NAME{f.variant.suffix}" if f.variant.suffix else "")

    rows = [[code(f.name), code(file(f)), stages[f.stage], f.gate if f.stage == "variant" else "its .onnx", ", ".join(f.devices),
             ", ".join(code("--" + o.replace("_", "-")) for o in f.options) or "-", md_text(f.summary)]
            for f in FORMATS.values()]
    return "\n".join([
        "# Export formats", "",
        "Every output `edgecls export` can make, read from the format table `edgecls.exporters.formats.FORMATS` when "
        "this page is built: the file it takes, how it is made and checked, the [gates](gates.md) that judge it, "
        "where it is worth running, and the options it reads. `--int8` asks for `int8` (static; with `--quant auto` "
        "`int8-dynamic` takes its place when static int8 fails its gates, `--quant dynamic` asks for it directly), "
        "`--fp16` for `fp16`, `--mobile` for `ort` and `--web` for `web`.", "",
        table(["format", "file", "made", "gate", "runs on", "options", "what it is"], rows), ""])


def exit_codes_page() -> str:
    from edgecls.cli import exit_codes

    rows = [[code(value), md_text(text)] for value, text in sorted(exit_codes.DESCRIPTIONS.items())]
    return "\n".join([
        "# Exit codes", "",
        "Every command uses the same codes (`edgecls.cli.exit_codes`), so scripts can tell what happened without "
        "reading messages. Errors are one line on stderr naming the file and the problem.", "",
        table(["code", "meaning"], rows, "rl"), "",
        "Code 2 comes from `infer` (unreadable or skipped inputs), `train --data` (skipped images), `bench` (rows that "
        "could not run) and `eval all` (models that could not be evaluated).", ""])


# --- model zoo and exports, through the commands users run -------------------------------------------------------

def command_markdown(*args: str) -> str:
    """The Markdown a listing command prints for the shipped zoo (an empty workspace, so only shipped models)."""
    from typer.testing import CliRunner

    from edgecls.cli import app

    with tempfile.TemporaryDirectory() as empty:
        env = {"EDGECLS_WORKSPACE": empty, "EDGECLS_ARTIFACTS": empty}
        result = CliRunner().invoke(app, [*args, "--markdown"], env=env)
    if result.exit_code != 0:
        raise RuntimeError(f"edgecls {' '.join(args)} --markdown failed ({result.exit_code}): {result.output}")
    return "\n".join(line for line in result.output.splitlines() if line.startswith("|"))


def training_table(artifacts: Path = REPO / "artifacts") -> str:
    """How each shipped model was trained, from its model card."""
    rows = []
    for path in sorted(artifacts.glob("*/metrics.json")):
        card = json.loads(path.read_text())
        t = card.get("training", {})
        seconds = t.get("wall_seconds") or t.get("train_seconds")
        rows.append([code(card["name"]), f"{t.get('best_epoch', '')} of {t.get('epochs_run', '')}",
                     str(t.get("batch_size", "")), f"{t.get('optimizer', '')} {t.get('learning_rate', '')}",
                     str(t.get("schedule", "")), str(t.get("precision") or "not recorded"), str(t.get("device", "")),
                     "" if seconds is None else f"{seconds / 60:,.1f} min", str(card.get("created", ""))[:10]])
    return table(["model", "best epoch", "batch", "optimizer, learning rate", "schedule", "precision", "device",
                  "training time", "trained"], rows, "lrrllllrl")


def zoo_page() -> str:
    return "\n".join([
        "# Model zoo", "",
        "The shipped models: test accuracy on each data set's full official test split, measured when the model was "
        "trained and recorded in its model card (`metrics.json`). Generated with `edgecls models --markdown`.", "",
        command_markdown("models"), "",
        "- *edge* models are the ones to deploy; *baseline* models reproduce the architectures of well-known "
        "reference studies exactly (parameter counts are checked by the test suite), for comparison.",
        "- CIFAR-10 figures are on the JPEG copy of the data set (quality 75, 4:2:0), which runs about a point below "
        "the PNG original. FER-2013 reports PrivateTest; PublicTest selects the epoch. Class order is alphabetical.",
        "- Every model takes raw 0-255 pixels; normalisation is the model's first layer.", "",
        "## How they were trained", "",
        "From each model card (`training` in `metrics.json`, which also records the seed, augmentation and library "
        "versions). Training time: the whole run where the card records it (`wall_seconds`, every process of a "
        "resumed run), else the fitting time (`train_seconds`).", "",
        training_table(), "",
        "## Shipped exports", "",
        "Each ONNX variant validated against its Keras model on the full official test set (int8: on the test images "
        "not used for calibration). Generated with `edgecls exports --markdown`.", "",
        command_markdown("exports"), ""])


def all_pages() -> dict[str, str]:
    pages = {f"reference/cli/{path}": text for path, text in cli_pages().items()}
    pages.update({
        "reference/metadata.md": metadata_page(),
        "reference/transforms.md": transforms_page(),
        "reference/gates.md": gates_page(),
        "reference/formats.md": formats_page(),
        "reference/exit-codes.md": exit_codes_page(),
        "reference/zoo.md": zoo_page(),
    })
    return pages


if __name__ == "__main__":  # preview: python docs/gen_reference.py PAGE
    import sys

    print(all_pages()[sys.argv[1] if len(sys.argv) > 1 else "reference/cli/index.md"])
