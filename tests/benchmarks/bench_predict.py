"""Single-image `Classifier.predict([path])`, step by step, for every shipped model.

    python tests/benchmarks/bench_predict.py [--data-dir DIR] [--calls 3000] [--variant auto] [--baseline CHECKOUT]

For one image file per model (an MNIST / Fashion-MNIST test digit as PNG, a CIFAR-10 test JPEG, a FER-2013
face PNG: what users hand the model), and for mnist also a digit as users photograph it ("mnist-photo": ink on
paper, a few hundred pixels, from edgecls.data.realistic's test fonts), the median time of each step, the steps
taking turns call after call:
  decode       file -> pixels (read, Pillow decode, mode conversion): `working_pixels`
  preprocess   the model's declared preprocessing on those pixels (and the statistics the unsure flag uses)
  run          `Classifier.run` on the model-ready pixels (layout change + onnxruntime)
  outputs      scores -> Prediction (label, top-k, unsure flag)
  decode+run   decode then `run` in one call: the least a caller does for an answer from a file (the baseline)
  predict      `Classifier.predict([path])`, all of the above as users call it
and predict / (decode+run), the cost of everything that is not decoding or the model itself (goal: <= 1.2).
Steps timed alone run hotter than in sequence (caches and branch predictors stay warm), so the baseline is
timed as a sequence, like predict; the ratio to the sum of the two alone is printed beside it.
With --baseline (another edgecls checkout, e.g. a worktree of an earlier commit), that checkout's runtime/ is
loaded in the same process beside this one's, and `predict` on the same file is timed for both, taking turns,
with the ratio new/baseline (same labels, scores and unsure flags are checked first).
Prints the load average before and after. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

MODELS = ("mnist", "mnist-photo", "fashion", "cifar10", "emotion")


def sample_image(model: str, data_dir: Path, folder: Path) -> Path:
    """One real test image of the model's data set, as a file in the format users have it."""
    if model == "mnist-photo":
        from edgecls.data.realistic import font_digit_images, test_fonts

        _, _, image = next(font_digit_images(test_fonts(), 1, seed=0))
        path = folder / "mnist-photo.png"
        image.save(path)
        return path
    if model in ("mnist", "fashion"):
        x = np.load(data_dir / ("mnist.npz" if model == "mnist" else "fashion_mnist.npz"))["x_test"]
        path = folder / f"{model}.png"
        Image.fromarray(x[0]).save(path)
        return path
    archive = data_dir / ("cifar10.tar.gz" if model == "cifar10" else "fer2013.tar.gz")
    with tarfile.open(archive) as tar:
        member = next(m for m in tar if m.isfile() and "test" in m.name and m.name.endswith((".jpg", ".png")))
        data = tar.extractfile(member).read()
    path = folder / f"{model}{Path(member.name).suffix}"
    path.write_bytes(data)
    Image.open(io.BytesIO(data)).load()
    return path


def take_steps(steps: dict, calls: int) -> dict[str, float]:
    """Median seconds per call of each step, the steps called in turn so load hits them alike (the runtime's
    own timing loop, runtime/timing.py)."""
    from edgecls.runtime.timing import seconds, take_turns

    for fn in steps.values():
        for _ in range(50):
            fn()
    times = take_turns({name: (lambda fn=fn: [seconds(fn)]) for name, fn in steps.items()}, budget_s=0.0,
                       min_rounds=calls, max_rounds=calls)
    return {name: statistics.median(t) for name, t in times.items()}


def measure(model: str, image: Path, variant: str, calls: int) -> dict[str, float]:
    from edgecls.runtime import Classifier
    from edgecls.runtime.preprocess import prepare_with_stats, working_pixels

    clf = Classifier(model.split("-")[0], variant=variant, device="cpu")
    spec = clf.spec
    working = working_pixels(image, spec)
    pixels, stats = prepare_with_stats([working], spec, clf.pipeline) if clf.pipeline.declared else \
        (clf.load_many([image]), {})
    scores = clf.run(pixels)
    steps = {
        "decode": lambda: working_pixels(image, spec),
        "preprocess": (lambda: prepare_with_stats([working], spec, clf.pipeline)) if clf.pipeline.declared
        else (lambda: None),
        "run": lambda: clf.run(pixels),
        "outputs": lambda: clf.decode(scores, 1, pixels, stats),
        "decode+run": lambda: (working_pixels(image, spec), clf.run(pixels)),
        "predict": lambda: clf.predict([image]),
    }
    result = {k: v * 1e6 for k, v in take_steps(steps, calls).items()}
    result["variant"] = clf.info.variant  # type: ignore[assignment]
    return result


def load_baseline_runtime(checkout: Path):
    """The baseline checkout's runtime package, imported under another name (it imports only itself)."""
    import importlib.util
    import sys

    folder = checkout / "runtime"
    spec = importlib.util.spec_from_file_location("edgecls_baseline_runtime", folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def compare_predict(baseline, model: str, image: Path, variant: str, calls: int) -> tuple[float, float]:
    """Median `predict([image])` seconds of the baseline's Classifier and this one's, taking turns."""
    from edgecls.runtime import Classifier

    old = baseline.Classifier(model.split("-")[0], variant=variant, device="cpu")
    new = Classifier(model.split("-")[0], variant=variant, device="cpu")
    a, b = old.predict([image])[0], new.predict([image])[0]
    if (a.label, a.score, a.unsure) != (b.label, b.score, b.unsure):
        raise SystemExit(f"{model}: the baseline answers {a.label} {a.score} {a.unsure}, this checkout "
                         f"{b.label} {b.score} {b.unsure}")
    times = take_steps({"baseline": lambda: old.predict([image]), "new": lambda: new.predict([image])}, calls)
    return times["baseline"], times["new"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path,
                    default=os.environ.get("EDGECLS_DATA") or Path(__file__).resolve().parents[3] / "shared" / "datasets")
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--variant", default="auto")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--baseline", type=Path, help="another edgecls checkout to compare predict against")
    args = ap.parse_args()
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    header = f"{'model':12s} {'variant':8s} {'decode':>8s} {'preproc':>8s} {'run':>8s} {'outputs':>8s} " \
             f"{'dec+run':>8s} {'predict':>8s} {'predict/(decode+run)':>21s} {'/(decode alone+run alone)':>26s}"
    print(header + "\n" + "-" * len(header) + "   (us, medians)")
    with tempfile.TemporaryDirectory(prefix="edgecls-bench-predict-") as tmp:
        for model in args.models.split(","):
            try:
                image = sample_image(model, args.data_dir, Path(tmp))
            except FileNotFoundError as exc:  # no test fonts installed: the photo row is left out
                print(f"{model:12s} skipped: {exc}")
                continue
            r = measure(model, image, args.variant, args.calls)
            ratio, alone = r["predict"] / r["decode+run"], r["predict"] / (r["decode"] + r["run"])
            print(f"{model:12s} {r['variant']:8s} {r['decode']:8.1f} {r['preprocess']:8.1f} {r['run']:8.1f} "
                  f"{r['outputs']:8.1f} {r['decode+run']:8.1f} {r['predict']:8.1f} {ratio:21.2f} {alone:26.2f}")
        if args.baseline:
            baseline = load_baseline_runtime(args.baseline.resolve())
            print(f"\npredict, {args.baseline} vs this checkout, in one process, taking turns (us, medians)")
            for model in args.models.split(","):
                try:
                    image = sample_image(model, args.data_dir, Path(tmp))
                except FileNotFoundError:
                    continue
                old, new = compare_predict(baseline, model, image, args.variant, args.calls)
                print(f"{model:12s} baseline {old * 1e6:8.1f}  new {new * 1e6:8.1f}  new/baseline {new / old:5.2f}")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
