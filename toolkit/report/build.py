"""Build artifacts/<name>/report.html and artifacts/<name>/figures/*.png for a trained model."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .. import config
from ..keras_files import load_keras_model
from ..errors import ModelNotFoundError
from ..runtime.atomic import write_bytes_atomic
from . import data, figures, int8_layers, page


def _latest_bench(directory: Path) -> Optional[dict[str, Any]]:
    files = sorted(directory.glob("bench-*.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(files[-1].read_text()) if files else None


def build_report(name: str, workspace: Optional[config.PathLike] = None,
                 data_dir: Optional[config.PathLike] = None, folder: Optional[Path] = None) -> Path:
    """Write <workspace>/<name>/report.html and figures/ for a model (a shipped one is read, never written);
    scored on the model's own held-out test split, or on `folder` (--data)."""
    from ..data.plan import DataPlan
    from ..exporters.reference import keras_probabilities
    from ..keras_source import resolve_source
    from ..runtime.classifier import Classifier

    source = resolve_source(name, workspace)
    card = source.card
    if card is None:
        raise ModelNotFoundError(f"{source.keras_path}: no model card (metrics.json) beside it; a report needs a "
                                 "model trained by `edgecls train`")
    folder_read, out_dir = source.ref.folder, source.output_dir
    classes = list(card.classes)
    # figures and accuracy as users get them: through the declared preprocessing
    test = DataPlan.for_card(card, folder=folder, data_dir=data_dir).test()
    keras_probs = keras_probabilities(load_keras_model(source.keras_path), test.x)
    predictions = {"Keras": keras_probs}
    int8_path = source.variant_files()["int8"]
    if int8_path.is_file():
        clf = Classifier(int8_path, device="cpu")
        predictions["ONNX int8"] = np.concatenate([clf.run(test.x[i : i + 512]) for i in range(0, len(test.x), 512)])
    reports = {k: data.per_class_table(test.y, p.argmax(1), classes) for k, p in predictions.items()}
    shown = "ONNX int8" if "ONNX int8" in predictions else "Keras"

    pngs: dict[str, bytes] = {}
    history = json.loads(folder_read.history_path.read_text()) if folder_read.history_path.is_file() else None
    if history:
        pngs["training_curves"] = figures.training_curves(history)
    for k, p in predictions.items():
        cm = data.normalized_confusion(test.y, p.argmax(1), len(classes))
        pngs[f"confusion_{k.lower().replace(' ', '_')}"] = figures.confusion(
            cm, classes, f"{k}: confusion (row-normalised, %), accuracy {reports[k]['accuracy'] * 100:.2f}%")
    pngs["per_class"] = figures.per_class_bars(reports, classes)
    grid = data.sample_grid(test.y, per_class=max(1, 40 // len(classes)))
    pred = predictions[shown].argmax(1)
    pngs["predictions"] = figures.image_grid(
        test.x[grid], [f"{classes[pred[i]]} / {classes[test.y[i]]}" for i in grid], [pred[i] == test.y[i] for i in grid])
    mistakes = data.worst_mistakes(predictions[shown], test.y, 24)
    if mistakes:
        pngs["worst_mistakes"] = figures.mistakes_grid(test.x, mistakes, classes)
    bench = _latest_bench(out_dir) or _latest_bench(folder_read.directory)
    chart = figures.bench_chart(bench)
    if chart:
        pngs["benchmark"] = chart

    fig_dir = out_dir / "figures"
    for key, png in pngs.items():
        write_bytes_atomic(fig_dir / f"{key}.png", png)
    evidence = int8_layers.read_evidence((out_dir, folder_read.directory), card.name)
    page_html = _html(card, reports, pngs, shown, bench, len(test), evidence)
    write_bytes_atomic(out_dir / "report.html", page_html.encode())
    return out_dir / "report.html"


def _html(card, reports, pngs, shown, bench, n_test, evidence=None) -> str:
    rows = [[k, f"{r['accuracy'] * 100:.2f}%", f"{r['macro_avg']['f1']:.3f}"] for k, r in reports.items()]
    sections = [
        ("Summary", page.table(["model", "test accuracy", "macro F1"], rows) +
         f"<p class=\"note\">{card.params:,} parameters, {card.macs / 1e6:.2f} M multiply-accumulates per image. "
         f"{card.training_note()} {card.caveat}</p>"),
    ]
    if "training_curves" in pngs:
        sections.append(("Training curves", page.figure(pngs["training_curves"], "loss and accuracy per epoch")))
    conf = "".join(page.figure(v, k) for k, v in pngs.items() if k.startswith("confusion_"))
    sections.append(("Confusion matrices", conf))
    classes = card.classes
    per_rows = [[c] + [f"{r['per_class'][c][m]:.3f}" for r in reports.values() for m in ("precision", "recall", "f1")]
                + [next(iter(reports.values()))["per_class"][c]["support"]] for c in classes]
    header = ["class"] + [f"{k} {m}" for k in reports for m in ("P", "R", "F1")] + ["support"]
    sections.append(("Per-class precision, recall, F1", page.figure(pngs["per_class"], "per-class metrics") +
                     page.table(header, per_rows)))
    sections.append((f"Test images ({shown}: predicted / true; red = wrong)",
                     page.figure(pngs["predictions"], "sample predictions")))
    if "worst_mistakes" in pngs:
        sections.append((f"Most confident mistakes ({shown})", page.figure(pngs["worst_mistakes"], "worst mistakes")))
    if evidence:
        sections.append(("int8 layers", int8_layers.int8_section(evidence)))
    if "benchmark" in pngs:
        sections.append(("Speed", page.figure(pngs["benchmark"], "benchmark") +
                         f"<p class=\"note\">{bench['machine']}; measured {bench['created']}.</p>"))
    subtitle = (f"{card.architecture} on {card.dataset} ({n_test} test images, {card.test.split}). "
                f"Generated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by edgecls.")
    return page.page(f"edgecls report: {card.name}", subtitle, sections)
