"""The report's figures as PNG bytes (matplotlib, headless Agg backend)."""

from __future__ import annotations

import io
from typing import Any, Optional, Sequence

import numpy as np

from .data import Mistake


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def training_curves(history: dict[str, list[float]]) -> bytes:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, key, title in ((axes[0], "loss", "loss"), (axes[1], "accuracy", "accuracy")):
        ax.plot(epochs, history[key], marker="o", ms=3, label="train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], marker="o", ms=3, label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    return _png(fig)


def confusion(matrix: np.ndarray, classes: Sequence[str], title: str) -> bytes:
    plt = _plt()
    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * k, 0.8 + 0.5 * k))
    im = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), classes, rotation=45, ha="right")
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(k):
        for j in range(k):
            if matrix[i, j] >= 0.005:
                ax.text(j, i, f"{matrix[i, j] * 100:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if matrix[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _png(fig)


def per_class_bars(reports: dict[str, dict[str, Any]], classes: Sequence[str]) -> bytes:
    plt = _plt()
    metrics = ("precision", "recall", "f1")
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4), sharey=True)
    width = 0.8 / max(len(reports), 1)
    x = np.arange(len(classes))
    for ax, metric in zip(axes, metrics):
        for i, (name, rep) in enumerate(reports.items()):
            ax.bar(x + i * width, [rep["per_class"][c][metric] for c in classes], width, label=name)
        ax.set_xticks(x + width * (len(reports) - 1) / 2, classes, rotation=45, ha="right")
        ax.set_title(metric)
        ax.set_ylim(max(0.0, min(min(r["per_class"][c][metric] for c in classes) for r in reports.values()) - 0.05), 1.0)
        ax.grid(axis="y", alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper center", ncol=len(names), bbox_to_anchor=(0.5, 1.06), frameon=False)
    return _png(fig)


def image_grid(images: np.ndarray, titles: Sequence[str], correct: Sequence[bool], cols: int = 10) -> bytes:
    plt = _plt()
    rows = max(1, int(np.ceil(len(images) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.25, rows * 1.45))
    for ax in np.atleast_1d(axes).ravel():
        ax.axis("off")
    for ax, img, title, ok in zip(np.atleast_1d(axes).ravel(), images, titles, correct):
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None,
                  vmin=0, vmax=255)
        ax.set_title(title, fontsize=7, color="green" if ok else "red")
    return _png(fig)


def mistakes_grid(images: np.ndarray, mistakes: Sequence[Mistake], classes: Sequence[str]) -> bytes:
    titles = [f"{classes[m.predicted]} {m.confidence:.2f}\n(true {classes[m.true]})" for m in mistakes]
    return image_grid(images[[m.index for m in mistakes]], titles, [False] * len(mistakes), cols=8)


def bench_chart(bench: Optional[dict[str, Any]]) -> Optional[bytes]:
    if not bench:
        return None
    rows = [r for r in bench["rows"] if not r.get("error")]
    if not rows:
        return None
    plt = _plt()
    bs = bench["batch_sizes"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    labels = [f"{r['label']}\n{r['device']}" for r in rows]
    largest = str(max(bs))
    axes[0].barh(labels, [r["throughput"][largest] for r in rows], color="tab:blue")
    axes[0].set_xlabel(f"images/s at batch {largest}")
    axes[1].barh(labels, [r["latency_p50_ms"] for r in rows], color="tab:orange",
                 xerr=[[0] * len(rows), [r["latency_p99_ms"] - r["latency_p50_ms"] for r in rows]])
    axes[1].set_xlabel("batch-1 latency, ms (p50, bar to p99)")
    for ax in axes:
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    return _png(fig)
