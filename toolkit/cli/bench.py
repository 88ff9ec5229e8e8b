"""`edgecls bench`: one table of format x device x batch size, with accuracy and agreement."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer

from ..formatting import percent
from .root import ArtifactsOption, DataDirOption, JsonOption, OptPath, app, err_console, print_table, say


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
    artifacts: OptPath = ArtifactsOption,
) -> None:
    """Benchmark Keras, TFLite fp32 and the ONNX variants: size, accuracy, agreement, speed, memory; then edgecls
    against its peers (TFLite int8, Keras->ONNX, ...) in one process, taking turns, with edgecls/best-peer ratios.
    Exit code 0: every row ran; 2: some rows could not run (each says why); 1: none could (nothing saved)."""
    import os

    from ..bench.runner import (BenchConfig, cuda_available, failed_rows, markdown, outcomes_to_json, plan_rows,
                                run_bench)
    from ..data.types import Split, limit_split
    from ..machine import describe_machine
    from ..runtime.atomic import write_bytes_atomic, write_json_atomic
    from ..runtime.errors import EdgeclsError

    if device not in ("auto", "cpu", "cuda"):
        raise EdgeclsError(f"unknown device {device!r}; choose auto, cpu or cuda")
    has_cuda = cuda_available()
    if device == "cuda" and not has_cuda:
        raise EdgeclsError("device cuda requested but onnxruntime has no CUDA provider here (install edgecls[gpu])")
    devices = ("cpu", "cuda") if device == "auto" and has_cuda else (("cpu",) if device == "auto" else (device,))

    from ..runtime.paths import looks_like_path

    folder = Path(data) if data else None
    if target.endswith(".onnx") or (looks_like_path(target) and Path(target).suffix == ".onnx"):
        keras_path, name, onnx_files, x, y, dataset, out_dir = _bare_onnx(Path(target), folder, data_dir, artifacts)
        calibration, all_variants = None, onnx_files
    else:
        from ..artifacts import resolve_source

        source = resolve_source(target, artifacts)
        keras_path, name, onnx_files, x, y, dataset, out_dir = _keras_source(source, folder, limit, devices, data_dir)
        all_variants = source.variant_files()
        calibration = _calibration_pixels(source, x, y, data_dir) if peers and "cpu" in devices else None
    if y is not None and limit and limit < len(y):
        test = limit_split(Split(x, y), limit, 1337)
        x, y = test.x, test.y
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


def _keras_source(source, folder, limit, devices, data_dir):
    """A resolved model name or .keras file: its Keras model, its exported variants, and its own test split (or
    --data), through its declared preprocessing; results are written to the workspace."""
    from ..data.types import preprocess_split

    keras_path, name, card = source.keras_path, source.name, source.card
    onnx_files = {v: p for v, p in source.variant_files().items() if p.is_file() and (v != "fp16" or "cuda" in devices)}
    if card is not None:
        from ..data.recorded import card_test_split, folder_test_split
        from ..exporting import declared_pipeline
        from ..runtime.spec import InputSpec

        spec, pipeline = InputSpec.from_dict(card["input_spec"]), declared_pipeline(name, card, None)
        if folder is not None:
            test, dataset = folder_test_split(folder, list(card["classes"]), spec, pipeline), str(folder)
        else:
            raw, dataset = card_test_split(card, data_dir, pipeline)
            # accuracy as users get it: through the model's declared preprocessing
            test = preprocess_split(raw, spec, pipeline)
        x, y = test.x, test.y
    else:
        import numpy as np

        from ..artifacts import load_keras_model
        from ..exporters.convert import image_input_spec

        spec = image_input_spec(load_keras_model(keras_path))
        x = np.random.default_rng(0).integers(0, 256, (limit or 1000, *spec.shape), dtype=np.uint8)
        y, dataset = None, "random pixels (no labels: agreement only)"
    return keras_path, name, onnx_files, x, y, dataset, source.output_dir


def _bare_onnx(path: Path, folder, data_dir, artifacts):
    """An exported .onnx file without its Keras source: its one ONNX row, scored on --data (or the test split
    its model card records); results go to the workspace folder of its model name."""
    from ..data.recorded import folder_test_split
    from ..data.types import preprocess_split
    from ..runtime.classifier import Classifier
    from ..runtime.errors import EdgeclsError
    from ..runtime.paths import workspace_dir
    from ..runtime.spec import InputSpec
    from ..runtime.transforms import Pipeline

    if not path.is_file():
        raise EdgeclsError(f"{path}: no such model file")
    info = Classifier(path, device="cpu").info
    spec = InputSpec(info.input_spec.height, info.input_spec.width, info.input_spec.channels)
    pipeline = Pipeline.parse(info.preprocess or None, str(path))
    if folder is not None:
        test, dataset = folder_test_split(folder, list(info.labels), spec, pipeline), str(folder)
    else:
        from ..data.recorded import card_test_split
        from ..exporting import _card_for

        card = _card_for(path, info.name, artifacts)
        if card is None or card.get("dataset") != info.dataset:
            raise EdgeclsError(f"{path}: no model card says which data it was trained on; give --data folder/ "
                               "(one sub-folder per class)")
        raw, dataset = card_test_split(card, data_dir, pipeline)
        test = preprocess_split(raw, spec, pipeline)
    name = info.name or path.stem.split(".")[0]
    variant = info.variant if info.variant in ("fp32", "int8", "fp16", "int8-dynamic") else "fp32"
    return None, name, {variant: path}, test.x, test.y, dataset, workspace_dir(artifacts) / name


def _calibration_pixels(source, x, y, data_dir):
    """TFLite int8's representative data: 512 of the model's own training images through its declared
    preprocessing; with no labelled data known (y is None), the same random pixels the rows are scored on."""
    if y is None:
        return x
    from ..data.recorded import card_dataset
    from ..data.types import limit_split, preprocess_split
    from ..exporting import declared_pipeline
    from ..runtime.errors import EdgeclsError
    from ..runtime.spec import InputSpec

    card, name = source.card, source.name
    pipeline = declared_pipeline(name, card, None)
    try:
        train = limit_split(card_dataset(card, data_dir, pipeline).train, 512, 1337)
    except EdgeclsError:
        return x  # the training data is gone: calibrate on the test pixels rather than not compare at all
    return preprocess_split(train, InputSpec.from_dict(card["input_spec"]), pipeline).x


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
    artifacts: OptPath = ArtifactsOption,
) -> None:
    """Write <workspace>/NAME/report.html (self-contained) and its PNG figures."""
    from ..report.build import build_report

    path = build_report(name, artifacts, data_dir, Path(data) if data else None)
    say(("wrote ", "green"), f"{path} (figures in {path.parent / 'figures'})")
