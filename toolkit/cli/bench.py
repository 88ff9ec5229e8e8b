"""`edgecls bench`: one table of format x device x batch size, with accuracy and agreement."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer

from ..formatting import percent
from .root import WorkspaceOption, DataDirOption, JsonOption, OptPath, app, err_console, print_table, say


def _batch_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise typer.BadParameter("batch sizes must be positive")
    return sizes


@app.command()
def bench(
    target: str = typer.Argument(..., help="A model name (e.g. mnist), a .keras file, or an exported .onnx file."),
    device: str = typer.Option("auto", "--device", help="auto (CPU, plus CUDA when present) | cpu | cuda."),
    batch_sizes: str = typer.Option("1,32,256", "--batch-sizes", help="Comma-separated batch sizes."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Threads for every engine (default: all cores)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Score accuracy on a stratified sample of N test images."),
    repeats: int = typer.Option(5, "--repeats", min=1, help="Timed windows per measurement (median reported)."),
    peers: bool = typer.Option(True, "--peers/--no-peers", help="Also run edgecls against Keras, TFLite fp32/int8 and "
                               "Keras's own ONNX export in one process, taking turns (CPU), with ratios."),
    as_json: bool = JsonOption,
    data: OptPath = typer.Option(None, "--data", help="Score accuracy on this labelled folder (<class>/ sub-folders) "
                                 "instead of the model's own test split; needed for a bare .onnx file."),
    data_dir: OptPath = DataDirOption,
    workspace: OptPath = WorkspaceOption,
) -> None:
    """Benchmark Keras, TFLite fp32 and the ONNX variants: size, accuracy, agreement, speed, memory; then edgecls
    against its peers (TFLite int8, Keras->ONNX, ...) in one process, taking turns, with edgecls/best-peer ratios.
    Exit code 0: every row ran; 2: some rows could not run (each says why); 1: none could (nothing saved)."""
    import os

    from ..bench.runner import (BenchConfig, cuda_available, failed_rows, markdown, outcomes_to_json, plan_rows,
                                run_bench)
    from ..machine import describe_machine
    from ..runtime.atomic import write_bytes_atomic, write_json_atomic
    from ..runtime.errors import EdgeclsError

    if device not in ("auto", "cpu", "cuda"):
        raise EdgeclsError(f"unknown device {device!r}; choose auto, cpu or cuda")
    has_cuda = cuda_available()
    if device == "cuda" and not has_cuda:
        raise EdgeclsError("device cuda requested but onnxruntime has no CUDA provider here (install edgecls[gpu])")
    devices = ("cpu", "cuda") if device == "auto" and has_cuda else (("cpu",) if device == "auto" else (device,))

    from ..runtime.store import locate

    folder = Path(data) if data else None
    if locate(target, workspace).is_onnx:
        keras_path, name, onnx_files, x, y, dataset, out_dir = _bare_onnx(Path(target), folder, limit, data_dir,
                                                                         workspace)
        calibration, all_variants = None, onnx_files
    else:
        from ..keras_source import resolve_source
        from .extras import require

        require("train")  # the Keras rows, before any data is read
        source = resolve_source(target, workspace)
        plan = _keras_plan(source, folder, data_dir)
        keras_path, name, onnx_files, x, y, dataset, out_dir = _keras_source(source, plan, limit, devices)
        all_variants = source.variant_files()
        calibration = _calibration_pixels(plan, x, y) if peers and "cpu" in devices else None
    cfg = BenchConfig(batch_sizes=_batch_sizes(batch_sizes), devices=devices, threads=threads or os.cpu_count() or 1,
                      repeats=repeats)
    rows = plan_rows(keras_path, onnx_files, devices)
    log = (lambda o: None) if as_json else (lambda o: say(
        (f"{o.row.label} on {o.row.device}: {'done' if o.error is None else 'could not run: ' + o.error}", "dim"),
        target=err_console))
    outcomes = run_bench(rows, x, y, cfg, on_row=log)
    report = outcomes_to_json(outcomes, cfg, {
        "name": name, "dataset": dataset, "samples": int(len(x)), "machine": describe_machine(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    if peers and "cpu" in devices and keras_path is not None:
        _add_head_to_head(report, keras_path, all_variants, x, y, calibration, cfg.threads, repeats, as_json)
    from ..bench.runner import int8_speed_note

    report["int8_note"] = int8_speed_note(report)
    stem = "bench-" + "+".join(devices)
    failed, total = failed_rows(report)
    if failed == total:  # keep the previous, measured results rather than replace them with a table of errors
        if not as_json:
            _print(report)
        else:
            print(json.dumps(report, indent=2))
        raise EdgeclsError(f"{name}: none of the {total} benchmark rows could run; nothing saved")
    write_json_atomic(out_dir / f"{stem}.json", report)
    write_bytes_atomic(out_dir / f"{stem}.md", markdown(report).encode())
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
        if report["int8_note"]:
            say((report["int8_note"], "yellow"))
        say(f"saved {out_dir / (stem + '.md')} and .json")
    if failed:
        say((f"{failed} of {total} rows could not run", "yellow"), target=err_console)
        raise typer.Exit(2)


def _keras_plan(source, folder, data_dir):
    """The data plan of a named model (None for a bare .keras file without a card and without --data)."""
    from ..data.plan import DataPlan

    if source.card is not None:
        return DataPlan.for_card(source.card, folder=folder, data_dir=data_dir)
    if folder is None:
        return None
    from ..exporters.convert import image_input_spec
    from ..keras_files import load_keras_model
    from ..runtime.transforms import Pipeline

    return DataPlan(None, image_input_spec(load_keras_model(source.keras_path)), Pipeline(), folder=folder)


def _keras_source(source, plan, limit, devices):
    """A resolved model name or .keras file: its Keras model, its exported variants, and its own test split (or
    --data), through its declared preprocessing; results are written to the workspace."""
    onnx_files = {v: p for v, p in source.variant_files().items() if p.is_file() and (v != "fp16" or "cuda" in devices)}
    if plan is not None:
        test = plan.test(limit)
        x, y, dataset = test.x, test.y, test.description
    else:
        import numpy as np

        from ..exporters.convert import image_input_spec
        from ..keras_files import load_keras_model

        spec = image_input_spec(load_keras_model(source.keras_path))
        x = np.random.default_rng(0).integers(0, 256, (limit or 1000, *spec.shape), dtype=np.uint8)
        y, dataset = None, "random pixels (no labels: agreement only)"
    return source.keras_path, source.name, onnx_files, x, y, dataset, source.output_dir


def _bare_onnx(path: Path, folder, limit, data_dir, workspace):
    """An exported .onnx file without its Keras source: its one ONNX row, scored on --data (or the test split
    its model card records); results go to the workspace folder of its model name."""
    from ..data.plan import plan_for_onnx
    from ..runtime.metadata import read_info
    from ..runtime.store import workspace_folder

    info = read_info(path)
    test = plan_for_onnx(path, info, folder=folder, data_dir=data_dir, workspace=workspace).test(limit)
    name = info.name or path.stem.split(".")[0]
    variant = info.variant if info.variant in ("fp32", "int8", "fp16", "int8-dynamic") else "fp32"
    return None, name, {variant: path}, test.x, test.y, test.description, workspace_folder(name, workspace).directory


def _calibration_pixels(plan, x, y):
    """TFLite int8's representative data: 512 of the model's own training images through its declared
    preprocessing; with no training data known, the pixels the rows are scored on."""
    from ..runtime.errors import EdgeclsError

    if y is None or plan is None or plan.card is None:
        return x
    try:
        return plan.calibration(512).x
    except EdgeclsError:
        return x  # the training data is gone: calibrate on the test pixels rather than not compare at all


def _add_head_to_head(report: dict, keras_path, files: dict, x, y, calibration, threads: int, repeats: int,
                      quiet: bool) -> None:
    from ..bench.headtohead import ratio_lines
    from ..bench.runner import run_head_to_head

    files = {v: p for v, p in files.items() if p.is_file()}
    if not quiet:
        say(("edgecls vs peers in one process, taking turns ...", "dim"), target=err_console)
    try:
        report["head_to_head"] = run_head_to_head(keras_path if keras_path.is_file() else None, files, x, y,
                                                  calibration, threads, rounds=repeats)
    except Exception as exc:  # noqa: BLE001 - the per-format rows stand on their own; say why this part is missing
        report["head_to_head"] = {"error": str(exc)}
    report["head_to_head_summary"] = ratio_lines(report["head_to_head"]) if "rows" in report["head_to_head"] else []


def _print(report: dict) -> None:
    """Compact enough for an 80-column pipe: one device goes in the title, units in the headers."""
    from rich.table import Table
    from rich.text import Text

    bs = report["batch_sizes"]
    devices = sorted({r["device"] for r in report["rows"]})
    many = len(devices) > 1
    title = (f"{report['name']}: {report['samples']} test images, {report['threads']} threads"
             + ("" if many else f", {devices[0]}") + f"; img/s at batch {', '.join(map(str, bs))}")
    table = Table(title=Text(title), title_justify="left", show_edge=False, pad_edge=False)
    cols = ["format"] + (["device"] if many else []) + ["KiB", "acc", "agree"] + [f"@{b}" for b in bs] + \
        ["p50/p99 ms", "RSS MB"]
    for col in cols:
        table.add_column(col, justify="left" if col in ("format", "device") else "right")
    for r in report["rows"]:
        head = [r["label"]] + ([r["device"]] if many else [])
        if r.get("error"):
            table.add_row(*head, Text(f"could not run: {r['error']}", style="yellow"))
            continue
        table.add_row(*head, f"{r['size_bytes'] / 1024:,.0f}", percent(r.get("accuracy")),
                      percent(r.get("agreement")), *[f"{r['throughput'][str(b)]:,.0f}" for b in bs],
                      f"{r['latency_p50_ms']:.3f}/{r['latency_p99_ms']:.3f}", f"{r['peak_rss_mb']:.0f}")
    print_table(table)
    h2h = report.get("head_to_head")
    if h2h:
        _print_head_to_head(h2h, report.get("head_to_head_summary", []))


def _print_head_to_head(h2h: dict, summary: list) -> None:
    from rich.table import Table
    from rich.text import Text

    if h2h.get("error"):
        say((f"edgecls vs peers could not run: {h2h['error']}", "yellow"), target=err_console)
        return
    table = Table(title=Text(f"edgecls vs peers: one process, taking turns, batch {h2h['batch']}, {h2h['threads']} threads"),
                  title_justify="left", show_edge=False, pad_edge=False)
    for col in ("engine", "size", "acc", "agree", "img/s", "p50 ms @1", "p99 ms @1"):
        table.add_column(col, justify="left" if col == "engine" else "right")
    for r in h2h["rows"]:
        if r.get("error"):
            table.add_row(r["label"], Text(f"could not run: {r['error']}", style="yellow"))
            continue
        table.add_row(r["label"], f"{r['size_bytes'] / 1024:,.0f} KiB", percent(r.get("accuracy")),
                      percent(r.get("agreement")), f"{r['throughput']:,.0f}", f"{r['latency_p50_ms']:.3f}",
                      f"{r['latency_p99_ms']:.3f}")
    print_table(table)
    for line in summary:
        say((line, "yellow" if line.startswith("int8 is not faster") else ""))


@app.command()
def report(
    name: str = typer.Argument(..., help="A trained model (e.g. emotion, or your own)."),
    data: OptPath = typer.Option(None, "--data", help="Score on this labelled folder instead of the model's own "
                                 "held-out test split."),
    data_dir: OptPath = DataDirOption,
    workspace: OptPath = WorkspaceOption,
) -> None:
    """Write <workspace>/NAME/report.html (self-contained) and its PNG figures."""
    from ..report.build import build_report
    from .extras import require

    require("train")
    path = build_report(name, workspace, data_dir, Path(data) if data else None)
    say(("wrote ", "green"), f"{path} (figures in {path.parent / 'figures'})")
