"""What declared preprocessing costs: this checkout against a baseline checkout, interleaved.

    python tests/benchmarks/bench_preprocess_speed.py --baseline-python ../base/.venv/bin/python [--runs 5]

The baseline is any other edgecls install (for example a worktree of the commit before declared
preprocessing, with its own venv). Both run the same work, alternating run by run so that machine drift
cancels:
  1. `edgecls infer` on a folder of 10,000 MNIST test PNGs (int8, CSV output), whole process: wall clock,
     and images per CPU second of the process and its decoding workers (steadier on a shared machine);
  2. `Classifier.run` on a uint8 batch of 256 already model-ready images (the embedded fast path);
  3. batch-1 `Classifier.predict` on one in-memory 28x28 image (load + preprocess + run + decode).
Medians are printed with the ratio new/baseline. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]

IN_PROCESS = r"""
import sys, time, numpy as np
from edgecls.runtime import Classifier
x = np.load(sys.argv[1])
clf = Classifier("mnist", variant="int8", device="cpu")  # the workspace: from the environment
batch = x[:256]
for _ in range(30): clf.run(batch)
rates = []
for _ in range(5):
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < 0.5:
        clf.run(batch); n += 256
    rates.append(n / (time.perf_counter() - t))
one = x[0]
for _ in range(200): clf.predict(one)
lat = []
for i in range(2000):
    t = time.perf_counter(); clf.predict(x[i % len(x)]); lat.append(time.perf_counter() - t)
print(sorted(rates)[2], float(np.median(lat)))
"""


def _adopt_orphans() -> None:
    """Become the reaper of descendants whose parent exits (Linux): decoding workers that fork from a
    forkserver are its children, not the CLI's, and the forkserver outlives the CLI by a moment. Reaping them
    here puts their CPU time into RUSAGE_CHILDREN."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _reap_all() -> None:
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds, and CPU seconds (user + system) of the process and all its descendants (decoding
    workers included): on a shared machine the CPU figure moves far less than the wall clock."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    wall = time.perf_counter() - start
    _reap_all()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline-python", required=True, type=Path, help="python of the baseline install")
    ap.add_argument("--baseline-artifacts", type=Path, default=None,
                    help="artifacts/ of the baseline (default: the baseline checkout's own)")
    ap.add_argument("--data-dir", type=Path, default=os.environ.get("EDGECLS_DATA") or REPO.parent / "shared" / "datasets")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    _adopt_orphans()

    from PIL import Image

    base_repo = Path(subprocess.run([str(args.baseline_python), "-c", "import edgecls, pathlib; "
                                     "print(pathlib.Path(edgecls.__file__).resolve().parents[1])"],
                                    capture_output=True, text=True, check=True).stdout.strip())
    installs = {"new": (Path(sys.executable), REPO / "artifacts"),
                "baseline": (args.baseline_python, args.baseline_artifacts or base_repo / "artifacts")}
    x = np.load(args.data_dir / "mnist.npz")["x_test"][..., None]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    with tempfile.TemporaryDirectory(prefix="edgecls-prep-speed-") as tmp:
        folder = Path(tmp, "digits")
        folder.mkdir()
        for i, img in enumerate(x):
            Image.fromarray(img[..., 0]).save(folder / f"{i:05d}.png")
        npy = Path(tmp, "x.npy")
        np.save(npy, x[:4096])
        folder_s: dict[str, list[float]] = {k: [] for k in installs}
        folder_cpu: dict[str, list[float]] = {k: [] for k in installs}
        run_rate: dict[str, list[float]] = {k: [] for k in installs}
        one_lat: dict[str, list[float]] = {k: [] for k in installs}
        for r in range(args.runs):
            for name, (python, artifacts) in installs.items():
                out = Path(tmp, f"{name}-{r}.csv")
                edgecls = [str(python), "-m", "edgecls", "infer", str(folder), "--int8", "-o", str(out)]
                # both names of the workspace variable: older installs read EDGECLS_ARTIFACTS
                where = {**env, "EDGECLS_WORKSPACE": str(artifacts), "EDGECLS_ARTIFACTS": str(artifacts)}
                wall, cpu = timed(edgecls, where)
                folder_s[name].append(wall)
                folder_cpu[name].append(cpu)
                rate, lat = subprocess.run([str(python), "-c", IN_PROCESS, str(npy)], env=where,
                                           capture_output=True, text=True, check=True).stdout.split()
                run_rate[name].append(float(rate))
                one_lat[name].append(float(lat))
    med = {k: {"folder": statistics.median(folder_s[k]), "cpu": statistics.median(folder_cpu[k]),
               "run": statistics.median(run_rate[k]),
               "one": statistics.median(one_lat[k])} for k in installs}
    print(f"{'measurement':52s} {'new':>14s} {'baseline':>14s} {'new/base':>9s}")
    rows = [("`edgecls infer` 10,000 MNIST PNGs, img/s", 10000 / med["new"]["folder"], 10000 / med["baseline"]["folder"]),
            ("  same, img per CPU second (all processes)", 10000 / med["new"]["cpu"], 10000 / med["baseline"]["cpu"]),
            ("Classifier.run, int8, uint8 batch 256, img/s", med["new"]["run"], med["baseline"]["run"]),
            ("Classifier.predict, one 28x28 array, p50 us", med["new"]["one"] * 1e6, med["baseline"]["one"] * 1e6)]
    for label, new, base in rows:
        print(f"{label:52s} {new:14,.0f} {base:14,.0f} {new / base:9.2f}")
    print(f"({args.runs} interleaved runs each; medians)")


if __name__ == "__main__":
    main()
