"""Ray engine benchmark: what Ray costs on one machine, what one actor does, and a projection for N nodes.

    python tests/benchmarks/bench_ray.py [--data-dir DIR] [--images 10000] [--out artifacts/benchmarks/ray.md]

Measures on this machine, over a folder of MNIST test PNGs (shipped mnist fp32) and CIFAR-10 test JPEGs
(shipped cifar10 int8):
  1. whole process: `edgecls infer DIR -o x.csv` vs `edgecls infer DIR --engine ray -o out/` (which starts
     a local Ray instance): the end-to-end overhead a user sees.
  2. in a running Ray session (start-up excluded): throughput with 1 actor and with one actor per core,
     each actor 1 onnxruntime thread. Per-actor throughput is the steady rate of the 1-actor run (first
     batch to last, so actor start-up is excluded).
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


def ray_rates(folder: Path, model: str, variant: str, actor_counts: list[int], runs: int) -> dict[int, dict]:
    """Steady throughput in one running local Ray instance (start-up of Ray excluded)."""
    import ray

    from edgecls.distributed import classify_dataset
    from edgecls.distributed.cluster import quiet_ray_data
    from edgecls.distributed.sources import image_dataset, resolve_sources

    sources = resolve_sources([str(folder)])
    out: dict[int, dict] = {}
    ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        quiet_ray_data()
        for actors in actor_counts:
            totals, steadies = [], []
            for _ in range(runs):
                ds = classify_dataset(image_dataset(sources, 256), model, variant=variant, device="cpu",
                                      actors=actors, threads=1, batch_size=256)
                start = time.perf_counter()
                first = None
                n = n_after_first = 0
                for table in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
                    n += table.num_rows
                    if first is None:
                        first = time.perf_counter()
                    else:
                        n_after_first += table.num_rows
                end = time.perf_counter()
                totals.append(n / (end - start))
                steadies.append(n_after_first / (end - first) if end > first else float("nan"))
            out[actors] = {"total_img_s": statistics.median(totals), "steady_img_s": statistics.median(steadies)}
    finally:
        ray.shutdown()
    return out


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
            rows.append({"model": f"{model} {variant}", "kind": kind, "n": n, "local_s": local_s, "ray_s": ray_s,
                         "rates": rates})
            print(f"{model}: local {n / local_s:,.0f} img/s ({local_s:.2f} s), ray CLI {n / ray_s:,.0f} img/s "
                  f"({ray_s:.2f} s), in-session {rates}", flush=True)

    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    nodes = [int(v) for v in args.nodes.split(",")]
    lines = ["# Ray engine benchmark", "",
             f"Measured {stamp} by `tests/benchmarks/bench_ray.py` on: {describe_machine()}; "
             f"{args.runs} runs each, median.", "",
             "## Measured on this machine", "",
             "| model | images | `infer` (local), whole process | `infer --engine ray`, whole process "
             f"| Ray session: 1 actor | Ray session: {cores} actors | per-actor steady |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        one, many = r["rates"][1], r["rates"][cores]
        lines.append(f"| {r['model']} | {r['kind']} x {r['n']:,} | {r['n'] / r['local_s']:,.0f} img/s "
                     f"({r['local_s']:.2f} s) | {r['n'] / r['ray_s']:,.0f} img/s ({r['ray_s']:.2f} s) "
                     f"| {one['total_img_s']:,.0f} img/s | {many['total_img_s']:,.0f} img/s "
                     f"| {one['steady_img_s']:,.0f} img/s |")
    lines += ["", f"## Projection (not measured): N nodes x {args.cores_per_node} actors x per-actor steady rate",
              "", "| model | " + " | ".join(f"{k} node{'s' * (k != 1)}" for k in nodes) + " |",
              "| --- |" + " ---: |" * len(nodes)]
    for r in rows:
        per_actor = r["rates"][1]["steady_img_s"]
        lines.append(f"| {r['model']} | " + " | ".join(
            f"{k * args.cores_per_node * per_actor:,.0f} img/s" for k in nodes) + " |")
    lines += ["", "Assumes linear scaling: storage and network keep up, actors get whole cores, per-actor rate as "
              "measured here. Ray's own start-up (seconds) and scheduling are not in the projection."]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
