"""Ray engine benchmark: what Ray costs on one machine, what one actor does, and a projection for N nodes.

    python tests/benchmarks/bench_ray.py [--data-dir DIR] [--images 10000] [--out artifacts/benchmarks/ray.md]

Measures on this machine, over a folder of MNIST test PNGs (shipped mnist fp32) and CIFAR-10 test JPEGs
(shipped cifar10 int8):
  1. whole process: `edgecls infer DIR -o x.csv` vs `edgecls infer DIR --engine ray -o out/` (which starts
     a local Ray instance): the end-to-end overhead a user sees.
  2. in a running Ray session (Ray's start-up excluded): throughput with 1 actor and with one actor per
     core, each actor 1 onnxruntime thread; the steady per-actor rate (a 1-actor run on all files minus one
     on half: extra images / extra seconds, so actor start-up cancels out); and the same work without Ray
     (the Predictor called in-process), to show Ray's per-batch cost.
  3. a projection for N nodes = N x actors per node x per-actor throughput. Labelled as a projection:
     it assumes linear scaling and storage/network that keep up; it is not a measurement.
Not a test: figures are printed (and written to --out), never asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from edgecls.machine import describe_machine
from publish import publish  # noqa: E402  (tests/benchmarks/publish.py)

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
ENV.pop("RAY_ADDRESS", None)


def wall(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as out:
            target = Path(out) / ("x.csv" if "--engine" not in cmd else "preds")
            start = time.perf_counter()
            proc = subprocess.run([*cmd, "-o", str(target)], capture_output=True, text=True, env=ENV)
            times.append(time.perf_counter() - start)
            if proc.returncode != 0:
                raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    return statistics.median(times)


def write_mnist(folder: Path, data_dir: Path, n: int) -> None:
    x = np.load(data_dir / "mnist.npz")["x_test"]
    for i in range(n):
        Image.fromarray(x[i % len(x)]).save(folder / f"{i:05d}.png")


def write_cifar(folder: Path, data_dir: Path, n: int) -> None:
    with tarfile.open(data_dir / "cifar10.tar.gz") as tar:
        members = (m for m in tar if m.isfile() and m.name.startswith("test/"))
        for i, member in enumerate(members):
            if i >= n:
                break
            (folder / member.name.replace("/", "_")).write_bytes(tar.extractfile(member).read())


def _drain(ds) -> int:
    return sum(t.num_rows for t in ds.iter_batches(batch_size=None, batch_format="pyarrow"))


def ray_rates(folder: Path, model: str, variant: str, actor_counts: list[int], runs: int) -> dict:
    """Throughput in one running local Ray instance (Ray's start-up excluded, actor start-up included), and
    the steady per-actor rate: the extra images over the extra time when a 1-actor run gets twice the files
    (actor start-up and pipeline fill cancel out)."""
    import ray

    from edgecls.distributed import classify_dataset
    from edgecls.distributed.cluster import quiet_ray_data
    from edgecls.distributed.sources import ImageSources, resolve_sources

    every = resolve_sources([str(folder)]).paths
    half = ImageSources(every[: len(every) // 2], [])
    out: dict = {}

    def timed(paths: ImageSources, actors: int) -> tuple[int, float]:
        from edgecls.distributed.sources import image_dataset

        ds = classify_dataset(image_dataset(paths, 256), model, variant=variant, device="cpu", actors=actors,
                              threads=1, batch_size=256)
        start = time.perf_counter()
        n = _drain(ds)
        return n, time.perf_counter() - start

    ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        quiet_ray_data()
        for actors in actor_counts:
            out[actors] = statistics.median(n / t for n, t in (timed(ImageSources(every, []), actors)
                                                               for _ in range(runs)))
        steady = []
        for _ in range(runs):
            n_all, t_all = timed(ImageSources(every, []), 1)
            n_half, t_half = timed(half, 1)
            steady.append((n_all - n_half) / (t_all - t_half) if t_all > t_half else float("nan"))
        out["per_actor"] = statistics.median(steady)
    finally:
        ray.shutdown()
    return out


def predictor_alone(folder: Path, model: str, variant: str) -> float:
    """What one actor's work costs without Ray: the Predictor called in this process, 1 thread."""
    import pyarrow as pa

    from edgecls.distributed import Predictor
    from edgecls.runtime.store import find_onnx

    paths = sorted(str(p) for p in folder.iterdir())
    predictor = Predictor(find_onnx(model, variant).read_bytes(), device="cpu", threads=1)
    predictor(pa.table({"path": paths[:256]}))  # warm-up
    start = time.perf_counter()
    for i in range(0, len(paths), 256):
        predictor(pa.table({"path": paths[i : i + 256]}))
    return len(paths) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.environ.get("EDGECLS_DATA", str(REPO.parent / "shared" / "datasets")))
    parser.add_argument("--images", type=int, default=10_000, help="MNIST PNGs (CIFAR JPEGs: a fifth as many)")
    parser.add_argument("--runs", type=int, default=3, help="repeats per figure (median)")
    parser.add_argument("--nodes", default="1,4,16,64", help="node counts for the projection")
    parser.add_argument("--cores-per-node", type=int, default=16, help="actors per node in the projection")
    parser.add_argument("--out", default=str(REPO / "artifacts" / "benchmarks" / "ray.md"))
    args = parser.parse_args()
    data_dir = Path(args.data_dir)
    cores = os.cpu_count() or 1
    cases = [("mnist", "fp32", "MNIST PNG", args.images, write_mnist),
             ("cifar10", "int8", "CIFAR-10 JPEG", max(1, args.images // 5), write_cifar)]
    rows = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        for model, variant, kind, n, writer in cases:
            folder = Path(tmp) / model
            folder.mkdir()
            writer(folder, data_dir, n)
            n = len(list(folder.iterdir()))
            base = [sys.executable, "-m", "edgecls", "infer", str(folder), "--model", model]
            if variant != "fp32":
                base.append(f"--{variant}")
            local_s = wall(base, args.runs)
            ray_s = wall([*base, "--engine", "ray"], args.runs)
            rates = ray_rates(folder, model, variant, sorted({1, cores}), args.runs)
            alone = predictor_alone(folder, model, variant)
            rows.append({"model": f"{model} {variant}", "kind": kind, "n": n, "local_s": local_s, "ray_s": ray_s,
                         "rates": rates, "alone": alone})
            print(f"{model}: local {n / local_s:,.0f} img/s ({local_s:.2f} s), ray CLI {n / ray_s:,.0f} img/s "
                  f"({ray_s:.2f} s), in-session {rates}, predictor alone {alone:,.0f} img/s", flush=True)

    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    nodes = [int(v) for v in args.nodes.split(",")]
    lines = ["# Ray engine benchmark", "",
             f"Measured {stamp} by `tests/benchmarks/bench_ray.py` on: {describe_machine()}; "
             f"{args.runs} runs each, median. Load average (1 min) {load_before:.1f} before, "
             f"{os.getloadavg()[0]:.1f} after: above 0 means other work shared the cores.", "",
             "## Measured on this machine", "",
             "| model | images | `infer` (local), whole process | `infer --engine ray`, whole process "
             f"| Ray session: 1 actor | Ray session: {cores} actors | per actor, steady | Predictor alone, 1 thread |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        rates = r["rates"]
        lines.append(f"| {r['model']} | {r['kind']} x {r['n']:,} | {r['n'] / r['local_s']:,.0f} img/s "
                     f"({r['local_s']:.2f} s) | {r['n'] / r['ray_s']:,.0f} img/s ({r['ray_s']:.2f} s) "
                     f"| {rates[1]:,.0f} img/s | {rates[cores]:,.0f} img/s | {rates['per_actor']:,.0f} img/s "
                     f"| {r['alone']:,.0f} img/s |")
    lines += ["", f"## Projection (not measured): N nodes x {args.cores_per_node} actors x per-actor steady rate",
              "", "| model | " + " | ".join(f"{k} node{'s' * (k != 1)}" for k in nodes) + " |",
              "| --- |" + " ---: |" * len(nodes)]
    for r in rows:
        per_actor = r["rates"]["per_actor"]
        lines.append(f"| {r['model']} | " + " | ".join(
            f"{k * args.cores_per_node * per_actor:,.0f} img/s" for k in nodes) + " |")
    lines += ["", "Assumes linear scaling: storage and network keep up, actors get whole cores, per-actor rate as "
              "measured here. Ray's own start-up (seconds) and scheduling are not in the projection."]
    publish(Path(args.out), "\n".join(lines))


if __name__ == "__main__":
    main()
