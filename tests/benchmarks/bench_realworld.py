"""Real-world inputs: accuracy on digits drawn the way users draw them, and how often `unsure` fires.

    python tests/benchmarks/bench_realworld.py [--data-dir DIR] [--per-variant 200] [--out artifacts/benchmarks/realworld.md]

1. Realistic digits: TEST_FONTS (handwriting fonts never used in training) rendered as ink on paper,
   big canvases, RGB photos, grey noisy paper, white on black, PNG and JPEG; written to files and
   classified the way `edgecls infer` does (classify_stream over the folder). Reported per variant,
   for the shipped mnist model fp32 and int8, next to the stretch-only preprocessing of earlier versions.
2. The unsure flag on in-distribution test sets and on inputs the model was never meant to see
   (CIFAR-10 photos fed to the digit and garment models, digits fed to the photo and garment models).
3. A before/after figure: user images, what stretch-only fed the model, what the declared pipeline feeds it.
Not a test: figures are printed and written, not asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from publish import publish  # noqa: E402  (tests/benchmarks/publish.py)

REPO = Path(__file__).resolve().parents[2]


def write_realistic(folder: Path, per_variant: int, seed: int) -> list[tuple[Path, str, int]]:
    from edgecls.data.realistic import font_digit_images, test_fonts

    rows = []
    for i, (variant, digit, image) in enumerate(font_digit_images(test_fonts(), per_variant, seed)):
        path = folder / f"{variant}-{i:05d}-{digit}.{'jpg' if image.format == 'JPEG' else 'png'}"
        if image.format == "JPEG":
            image.save(path, quality=95)
        else:
            image.save(path)
        rows.append((path, variant, digit))
    return rows


def realistic_accuracy(rows, variant: str, pipeline_override=None) -> dict[str, object]:
    from edgecls.runtime import Classifier
    from edgecls.runtime.stream import classify_stream

    clf = Classifier("mnist", variant=variant, device="cpu")
    if pipeline_override is not None:
        clf.pipeline = pipeline_override
    by_variant: dict[str, list[bool]] = defaultdict(list)
    unsure: list[bool] = []
    results = classify_stream(clf, [str(p) for p, _, _ in rows], batch_size=256, workers=os.cpu_count() or 1)
    for (path, name, digit), result in zip(rows, results):
        by_variant[name].append(result.prediction.label == str(digit))
        unsure.append(result.prediction.unsure)
    everything = [ok for oks in by_variant.values() for ok in oks]
    return {"overall": float(np.mean(everything)), "unsure": float(np.mean(unsure)),
            "per_variant": {k: float(np.mean(v)) for k, v in by_variant.items()}, "images": len(everything),
            "pipeline": str(clf.pipeline)}


def unsure_rates(data_dir: Path, limit: int) -> list[tuple[str, str, float, int]]:
    """(model, data, flagged fraction, images) through each shipped model's own preprocessing."""
    from edgecls.data import load_dataset
    from edgecls.runtime import Classifier

    def grey(x):
        return np.clip(np.rint(x.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)), 0, 255
                       ).astype(np.uint8)[..., None]

    mnist = load_dataset("mnist", data_dir).test.x[:limit]
    fashion = load_dataset("fashion_mnist", data_dir).test.x[:limit]
    cifar = load_dataset("cifar10", data_dir).test.x[:limit]
    cases = [("mnist", "MNIST test digits", mnist), ("mnist", "CIFAR-10 test photos (grey)", grey(cifar)),
             ("mnist", "Fashion-MNIST test garments", fashion),
             ("fashion", "Fashion-MNIST test garments", fashion), ("fashion", "MNIST test digits", mnist),
             ("fashion", "CIFAR-10 test photos (grey)", grey(cifar)),
             ("cifar10", "CIFAR-10 test photos", cifar), ("cifar10", "MNIST test digits (RGB)", np.repeat(mnist, 3, -1))]
    out = []
    for model, what, x in cases:
        clf = Classifier(model, device="cpu")
        flags = []
        for i in range(0, len(x), 512):
            flags += [p.unsure for p in clf.predict(list(x[i : i + 512]))]
        out.append((model, what, float(np.mean(flags)), len(flags)))
    return out


def figure(rows, path: Path) -> None:
    """Rows: user image | stretch-only model input | declared-pipeline model input."""
    from PIL import Image

    from edgecls.runtime import Classifier, InputSpec
    from edgecls.runtime.preprocess import load_pixels

    clf = Classifier("mnist", device="cpu")
    picks = []
    seen = set()
    for p, variant, _ in rows:
        if variant not in seen:
            seen.add(variant)
            picks.append(p)
    cell = 96
    sheet = Image.new("RGB", (cell * len(picks), cell * 3 + 4), (255, 255, 255))
    for i, p in enumerate(picks):
        user = Image.open(p).convert("RGB")
        user.thumbnail((cell, cell))
        sheet.paste(user, (i * cell, 0))
        stretch = load_pixels(p, InputSpec(28, 28, 1))[..., 0]
        declared = clf.load(p)[..., 0]
        for row, arr in ((1, stretch), (2, declared)):
            sheet.paste(Image.fromarray(arr).resize((cell - 4, cell - 4), Image.Resampling.NEAREST).convert("RGB"),
                        (i * cell + 2, row * cell + 2))
    sheet.save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=os.environ.get("EDGECLS_DATA") or REPO.parent / "shared" / "datasets")
    ap.add_argument("--per-variant", type=int, default=200)
    ap.add_argument("--unsure-limit", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", type=Path, default=REPO / "artifacts" / "benchmarks" / "realworld.md")
    args = ap.parse_args()

    from edgecls.data.realistic import VARIANTS, test_fonts
    from edgecls.machine import describe_machine
    from edgecls.runtime.transforms import Pipeline

    lines = [f"# Real-world inputs\n",
             f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by `tests/benchmarks/bench_realworld.py` "
             f"on: {describe_machine()}.\n",
             f"Realistic digits: {len(test_fonts())} handwriting fonts that training never saw "
             f"({', '.join(sorted(p.name for p in test_fonts()))}), {args.per_variant} images per variant, "
             "written to PNG/JPEG files and classified as `edgecls infer` does.\n"]
    with tempfile.TemporaryDirectory(prefix="edgecls-realworld-") as tmp:
        rows = write_realistic(Path(tmp), args.per_variant, args.seed)
        results = {
            "fp32": realistic_accuracy(rows, "fp32"),
            "int8": realistic_accuracy(rows, "int8"),
            "fp32, stretch only (before)": realistic_accuracy(rows, "fp32", Pipeline()),
        }
        figure(rows, args.out.with_suffix(".png"))
    names = [v.name for v in VARIANTS]
    lines.append("| mnist model | overall | " + " | ".join(names) + " | unsure |")
    lines.append("| --- | ---: | " + " | ".join("---:" for _ in names) + " | ---: |")
    for label, r in results.items():
        cells = " | ".join(f"{r['per_variant'][n] * 100:.1f}%" for n in names)
        lines.append(f"| {label} | {r['overall'] * 100:.1f}% | {cells} | {r['unsure'] * 100:.1f}% |")
    lines.append(f"\nDeclared pipeline: `{results['fp32']['pipeline']}`.\n")
    lines.append(f"Figure: [{args.out.with_suffix('.png').name}]({args.out.with_suffix('.png').name}) "
                 "(top: the user's image; middle: what stretch-only fed the model; bottom: what the declared "
                 "pipeline feeds it).\n")
    lines.append("## The unsure flag\n")
    lines.append("Thresholds calibrated at export on each model's held-out validation images (1% target). "
                 "Rates through each model's own declared preprocessing:\n")
    lines.append("| model | images fed | flagged unsure | images |")
    lines.append("| --- | --- | ---: | ---: |")
    for model, what, rate, n in unsure_rates(args.data_dir, args.unsure_limit):
        lines.append(f"| {model} | {what} | {rate * 100:.1f}% | {n:,} |")
    publish(args.out, "\n".join(lines))
    print(f"figure: {args.out.with_suffix('.png')}", file=sys.stderr)


if __name__ == "__main__":
    main()
