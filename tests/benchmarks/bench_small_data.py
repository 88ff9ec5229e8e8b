"""Small data that works: 3 CIFAR-10 classes x 300 training JPEGs -> `edgecls train` -> int8 export.

    EDGECLS_DATA=../shared/datasets python tests/benchmarks/bench_small_data.py [--classes airplane,cat,ship]
        [--per-class 300] [--scratch] [--keep DIR]

Writes the chosen classes' first N training JPEGs (bytes copied from the data set archive, not re-encoded)
to a temp folder as train/<class>/, and all their official test images as test/<class>/; trains with the
default command (transfer learning from the shipped cifar10 model, recipe scaled to the data), then
exports int8 calibrated on the training folder and validated on the test folder. Prints test accuracy,
training seconds (whole command and the card's fit time) and the int8 gate figures. --unseen trains and
tests on disjoint parts of the official test split instead, images the backbone never saw; --scratch trains
the architecture from random weights (with the scaled recipe) for comparison.

Caveat printed with the figures: the cifar10 backbone was trained on the full CIFAR-10 training split,
which includes these training images, so its features have seen them (not its new head).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def write_subset(archive: Path, classes: list[str], per_class: int, out: Path, unseen: bool = False) -> dict[str, int]:
    """Copy train/<class>/ (first `per_class` by file name) and test/<class>/ (all) JPEGs out of the archive.

    unseen: both folders come from the official test split (its first `per_class` images per class train,
    the rest test), images the shipped cifar10 model never trained on."""
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
    counts = {"train": 0, "test": 0}
    with tarfile.open(archive) as tar:
        for cls in classes:
            train = sorted((m for m in members if m.name.startswith(f"{'test' if unseen else 'train'}/{cls}/")),
                           key=lambda m: m.name)
            test = sorted((m for m in members if m.name.startswith(f"test/{cls}/")), key=lambda m: m.name)
            if unseen:
                train, test = train[:per_class], test[per_class:]
            else:
                train = train[:per_class]
            if len(train) < per_class or not test:
                raise SystemExit(f"{archive}: not enough images of class {cls!r}")
            for split, picked in (("train", train), ("test", test)):
                folder = out / split / cls
                folder.mkdir(parents=True, exist_ok=True)
                for m in picked:
                    (folder / Path(m.name).name).write_bytes(tar.extractfile(m).read())
                counts[split] += len(picked)
    return counts


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}")
    return seconds, proc


def _phases(card: dict) -> str:
    t = card.get("transfer")
    return f" ({t['frozen_epochs_run']} frozen + {t['finetune_epochs_run']} fine-tuning)" if t else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", default="airplane,automobile,bird")
    parser.add_argument("--per-class", type=int, default=300)
    parser.add_argument("--scratch", action="store_true", help="train from scratch (the old default) instead")
    parser.add_argument("--unseen", action="store_true",
                        help="train and test on disjoint parts of the official test split (never seen by the backbone)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temp folder)")
    args = parser.parse_args()
    data_root = Path(os.environ.get("EDGECLS_DATA") or REPO.parent / "shared" / "datasets")
    archive = data_root / "cifar10.tar.gz"
    if not archive.is_file():
        raise SystemExit(f"{archive}: not found (set EDGECLS_DATA)")
    classes = args.classes.split(",")
    edgecls = [sys.executable, "-m", "edgecls.cli"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        data, arts = work / "small3", work / "artifacts"
        counts = write_subset(archive, classes, args.per_class, data, args.unseen)
        train_cmd = [*edgecls, "train", "small3", "--data", str(data), "--workspace", str(arts)]
        if args.scratch:
            train_cmd.append("--scratch")
        train_s, proc = run(train_cmd, env)
        card = json.loads((arts / "small3" / "metrics.json").read_text())
        export_s, _ = run([*edgecls, "export", "small3", "--workspace", str(arts), "--int8",
                           "--calib-data", str(data / "train"), "--eval-data", str(data / "test")], env)
        report = json.loads((arts / "small3" / "small3.export.json").read_text())

    variants = {v["variant"]: v for v in report.get("variants", [])} if isinstance(report.get("variants"), list) \
        else report.get("variants", {})
    training = card["training"]
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average {load} "
          "at the end (other jobs share this machine: timings move with them)")
    source = "official test split, disjoint parts" if args.unseen else "training split; test: official test images"
    print(f"data: CIFAR-10 {', '.join(classes)}: {counts['train']} training JPEGs ({args.per_class}/class), "
          f"{counts['test']} test images ({source})")
    how = "from scratch" if args.scratch else f"transfer from {card.get('transfer', {}).get('backbone')}"
    print(f"train ({how}): test accuracy {card['test']['accuracy'] * 100:.2f}%, "
          f"`edgecls train` {train_s:.0f} s wall (fit {training['train_seconds']:.0f} s), "
          f"epochs run {training['epochs_run']}{_phases(card)}, recipe {json.dumps(training.get('recipe', {}))}")
    for name in ("fp32", "int8"):
        v = variants.get(name)
        if not v:
            print(f"{name}: not in the export report ({sorted(variants)})")
            continue
        val = v.get("validation", v)
        print(f"{name}: Keras acc {val.get('keras_accuracy', float('nan')) * 100:.2f}%, "
              f"ONNX acc {val.get('accuracy', float('nan')) * 100:.2f}%, "
              f"top-1 agreement {val.get('top1_agreement', float('nan')) * 100:.2f}%, "
              f"gate {'pass' if v.get('passed', v.get('status') == 'ok') else 'FAIL'}")
    print(f"export --int8: {export_s:.0f} s wall")
    if not args.scratch and not args.unseen:
        print("caveat: the cifar10 backbone's features were trained on all of CIFAR-10's training split, "
              "these images included")


if __name__ == "__main__":
    main()
