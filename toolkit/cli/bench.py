"""`edgecls bench`: one table of format x device x batch size, with accuracy and agreement."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Optional

import typer

from ..formatting import percent
from .app import ArtifactsOption, DataDirOption, JsonOption, OptPath, app, err_console, print_table, say


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
    target: str = typer.Argument(..., help="Zoo model in artifacts/ (e.g. mnist) or a path to a .keras file."),
    device: str = typer.Option("auto", "--device", help="auto (CPU, plus CUDA when present) | cpu | cuda."),
    batch_sizes: str = typer.Option("1,32,256", "--batch-sizes", help="Comma-separated batch sizes."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Threads for every engine (default: all cores)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Score accuracy on a stratified sample of N test images."),
    repeats: int = typer.Option(5, "--repeats", min=1, help="Timed windows per measurement (median reported)."),
    peers: bool = typer.Option(True, "--peers/--no-peers", help="Also run edgecls against Keras, TFLite fp32/int8 and "
                               "Keras's own ONNX export in one process, taking turns (CPU), with ratios."),
    as_json: bool = JsonOption,
    data_dir: OptPath = DataDirOption,
    artifacts: OptPath = ArtifactsOption,
) -> None:
    """Benchmark Keras, TFLite fp32 and the ONNX variants: size, accuracy, agreement, speed, memory; then edgecls
    against its peers (TFLite int8, Keras->ONNX, ...) in one process, taking turns, with edgecls/best-peer ratios.
    Exit code 0: every row ran; 2: some rows could not run (each says why); 1: none could (nothing saved)."""
    import os

    from ..bench.runner import (BenchConfig, cuda_available, failed_rows, markdown, outcomes_to_json, plan_rows,
                                run_bench)
    from ..data.types import limit_split, preprocess_split
    from ..machine import describe_machine
    from ..runtime.atomic import write_bytes_atomic, write_json_atomic
    from ..runtime.errors import EdgeclsError

    if device not in ("auto", "cpu", "cuda"):
        raise EdgeclsError(f"unknown device {device!r}; choose auto, cpu or cuda")
    has_cuda = cuda_available()
    if device == "cuda" and not has_cuda:
        raise EdgeclsError("device cuda requested but onnxruntime has no CUDA provider here (install edgecls[gpu])")
    devices = ("cpu", "cuda") if device == "auto" and has_cuda else (("cpu",) if device == "auto" else (device,))

    from ..artifacts import resolve_source

    source = resolve_source(target, artifacts)
    keras_path, name, card, out_dir = source.keras_path, source.name, source.card, source.directory
    onnx_files = source.variant_files()
    onnx_files = {v: p for v, p in onnx_files.items() if p.is_file() and (v != "fp16" or "cuda" in devices)}
    if card is not None:
        from ..data import load_dataset

        from ..exporting import declared_pipeline
        from ..runtime.spec import InputSpec

        test = limit_split(load_dataset(card["dataset"], data_dir).test, limit, 1337)
        # accuracy as users get it: through the model's declared preprocessing
        test = preprocess_split(test, InputSpec.from_dict(card["input_spec"]), declared_pipeline(name, card, None))
        x, y, dataset = test.x, test.y, f"{card['dataset']} {card['test']['split']}"
        calibration = _training_pixels(card, name, data_dir) if peers and "cpu" in devices else None
    else:
        import numpy as np

        from ..exporters.convert import image_input_spec
        from ..artifacts import load_keras_model

        spec = image_input_spec(load_keras_model(keras_path))
        x = np.random.default_rng(0).integers(0, 256, (limit or 1000, *spec.shape), dtype=np.uint8)
        y, dataset = None, "random pixels (no labels: agreement only)"
        calibration = x  # no training set known: TFLite int8 is calibrated on the same random pixels
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
    if peers and "cpu" in devices:
        _add_head_to_head(report, keras_path, source.variant_files(), x, y, calibration, cfg.threads, repeats, as_json)
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


def _training_pixels(card: dict, name: str, data_dir: OptPath):
    """512 training images through the declared preprocessing: TFLite int8's representative data."""
    from ..data import load_dataset
    from ..data.types import limit_split, preprocess_split
    from ..exporting import declared_pipeline
    from ..runtime.spec import InputSpec

    train = limit_split(load_dataset(card["dataset"], data_dir).train, 512, 1337)
    return preprocess_split(train, InputSpec.from_dict(card["input_spec"]), declared_pipeline(name, card, None)).x


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
    from rich.table import Table
    from rich.text import Text

    bs = report["batch_sizes"]
    table = Table(title=Text(f"{report['name']}: {report['samples']} test images, {report['threads']} threads"),
                  title_justify="left", show_edge=False, pad_edge=False)
    for col in ["format", "device", "size", "acc", "agree"] + [f"img/s @{b}" for b in bs] + ["p50 ms", "p99 ms", "RSS"]:
        table.add_column(col, justify="left" if col in ("format", "device") else "right")
    for r in report["rows"]:
        if r.get("error"):
            table.add_row(r["label"], r["device"], Text(f"could not run: {r['error']}", style="yellow"))
            continue
        table.add_row(r["label"], r["device"], f"{r['size_bytes'] / 1024:,.0f} KiB", percent(r.get("accuracy")),
                      percent(r.get("agreement")), *[f"{r['throughput'][str(b)]:,.0f}" for b in bs],
                      f"{r['latency_p50_ms']:.3f}", f"{r['latency_p99_ms']:.3f}", f"{r['peak_rss_mb']:.0f} MB")
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
    name: str = typer.Argument(..., help="A trained model in artifacts/ (e.g. emotion)."),
    data_dir: OptPath = DataDirOption,
    artifacts: OptPath = ArtifactsOption,
) -> None:
    """Write artifacts/NAME/report.html (self-contained) and its PNG figures."""
    from ..report.build import build_report

    path = build_report(name, artifacts, data_dir)
    say(("wrote ", "green"), f"{path} (figures in {path.parent / 'figures'})")
