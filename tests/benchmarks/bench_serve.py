"""Load test of `edgecls serve`: micro-batching vs batch-1 serving, loopback only, bounded in time and count.

    python tests/benchmarks/bench_serve.py [--model cifar10] [--variant int8] [--clients 32] [--rounds 3] [--seconds 5]

One server process per mode on a free loopback port (`edgecls serve MODEL ...`); the modes take turns
(`--rounds`), so a shared machine's changing load hits them alike. In each turn N concurrent clients
(asyncio + aiohttp, keep-alive connections, one request in flight each) send v2 infer requests of one
UINT8 image each for a fixed time after a warm-up; then the servers are stopped. Reports
requests/s, p50/p99 latency, errors, the mean merged batch size (from the server's /metrics) and the
server's CPU time per request. The clients share the cores with the server, so they must be cheap: aiohttp
spends ~0.15 ms of CPU per request here, httpx ~3.5 ms (which would make the client the bottleneck).
Issue 13's goal: on cifar10, micro-batching >= 3x the requests/s of batch-1 serving at p99 < 100 ms on 2 cores.
Not a test: figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/serving.py
from serving import ServerProcess, metric_samples  # noqa: E402

from edgecls.machine import describe_machine  # noqa: E402
from edgecls.runtime import Classifier  # noqa: E402

MODES = {
    "micro-batching": ["--max-batch-size", "32", "--max-wait-ms", "2"],
    "batch-1": ["--max-batch-size", "1", "--max-wait-ms", "0"],
}


def request_bodies(model: str, variant: str, count: int = 64) -> list[bytes]:
    """Pre-encoded one-image requests (random pixels: speed does not depend on content)."""
    spec = Classifier(model, variant=variant).spec
    rng = np.random.default_rng(0)
    bodies = []
    for _ in range(count):
        pixels = rng.integers(0, 256, (1, spec.height, spec.width, spec.channels), dtype=np.uint8)
        bodies.append(json.dumps({"inputs": [{"name": "pixels", "shape": list(pixels.shape), "datatype": "UINT8",
                                              "data": pixels.ravel().tolist()}],
                                  "outputs": [{"name": "labels"}, {"name": "scores"}]}).encode())
    return bodies


async def load(url: str, bodies: list[bytes], clients: int, warmup_s: float, seconds: float,
               max_requests: int) -> dict:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    state = {"measuring": False, "stop": False, "sent": 0}
    headers = {"content-type": "application/json"}

    async def client(index: int, http: aiohttp.ClientSession) -> None:
        i = index
        while not state["stop"]:
            body = bodies[i % len(bodies)]
            i += clients
            start = time.perf_counter()
            try:
                async with http.post(url, data=body, headers=headers) as response:
                    await response.read()
                    ok, key = response.status == 200, str(response.status)
            except aiohttp.ClientError as exc:
                ok, key = False, type(exc).__name__
            if state["measuring"]:
                if ok:
                    latencies.append(time.perf_counter() - start)
                else:
                    errors[key] = errors.get(key, 0) + 1
                state["sent"] += 1
                if state["sent"] >= max_requests:
                    state["stop"] = True

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as http:
        tasks = [asyncio.create_task(client(i, http)) for i in range(clients)]
        await asyncio.sleep(warmup_s)
        state["measuring"] = True
        started = time.perf_counter()
        deadline = started + seconds
        while not state["stop"] and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        state["stop"] = True
        elapsed = time.perf_counter() - started
        await asyncio.gather(*tasks)
    return {"latencies": latencies, "seconds": elapsed, "errors": errors}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_servers(args, log_dir: Path) -> dict[str, ServerProcess]:
    extra = ["--int8"] if args.variant == "int8" else []
    if args.threads:
        extra += ["--threads", str(args.threads)]
    servers = {}
    for name in args.modes.split(","):
        servers[name] = ServerProcess([args.model], [*MODES[name], *extra, "--no-access-log", "--log-level", "warning"],
                                      log_dir / f"{name}.log").wait_ready()
    return servers


def measure(servers: dict[str, ServerProcess], args, bodies: list[bytes]) -> dict[str, dict]:
    """Alternate the modes for `rounds` rounds so that a shared machine's changing load hits them alike."""
    runs: dict[str, list[dict]] = {name: [] for name in servers}
    cpu = {name: 0.0 for name in servers}
    for _ in range(args.rounds):
        for name, server in servers.items():
            before = cpu_seconds(server.proc.pid)
            runs[name].append(asyncio.run(load(f"{server.url}/v2/models/{args.model}/infer", bodies, args.clients,
                                               args.warmup, args.seconds, args.max_requests)))
            cpu[name] += cpu_seconds(server.proc.pid) - before
    results = {}
    for name, server in servers.items():
        text = httpx.get(server.url + "/metrics").text
        answered = sum(metric_samples(text, "edgecls_requests", route="infer").values())  # warm-ups included
        batches = metric_samples(text, "edgecls_batch_size", model=args.model)
        lat = np.array([x for run in runs[name] for x in run["latencies"]]) * 1000
        errors: dict[str, int] = {}
        for run in runs[name]:
            for key, count in run["errors"].items():
                errors[key] = errors.get(key, 0) + count
        results[name] = {
            "requests": len(lat), "rps": len(lat) / sum(run["seconds"] for run in runs[name]),
            "rounds_rps": [len(run["latencies"]) / run["seconds"] for run in runs[name]],
            "p50_ms": float(np.percentile(lat, 50)) if len(lat) else float("nan"),
            "p99_ms": float(np.percentile(lat, 99)) if len(lat) else float("nan"),
            "mean_batch": batches["edgecls_batch_size_sum"] / max(batches["edgecls_batch_size_count"], 1),
            "cpu_ms": cpu[name] * 1000 / max(answered, 1), "errors": errors}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cifar10")
    parser.add_argument("--variant", default="fp32", choices=["fp32", "int8"])
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients, one request in flight each")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured time per mode and round")
    parser.add_argument("--rounds", type=int, default=3, help="the modes take turns this many times")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each measurement")
    parser.add_argument("--max-requests", type=int, default=50_000, help="end a measurement early after this many")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime threads in the server")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated: " + ", ".join(MODES))
    args = parser.parse_args()

    bodies = request_bodies(args.model, args.variant)
    print(f"# edgecls serve load test: {args.model} {args.variant}, {args.clients} clients, {args.rounds} rounds x "
          f"{args.seconds:g} s per mode, loopback, {len(bodies[0]):,} B per request")
    print(f"# {describe_machine()} (server and clients share the cores)")
    with tempfile.TemporaryDirectory() as tmp:
        servers = start_servers(args, Path(tmp))
        try:
            results = measure(servers, args, bodies)
        finally:
            for server in servers.values():
                server.stop()
    print("| mode | requests | requests/s (per round) | p50 ms | p99 ms | mean batch | server CPU/request | errors |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, r in results.items():
        rounds = ", ".join(f"{x:,.0f}" for x in r["rounds_rps"])
        print(f"| {name} | {r['requests']:,} | {r['rps']:,.0f} ({rounds}) | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
              f"{r['mean_batch']:.1f} | {r['cpu_ms']:.2f} ms | {r['errors'] or 'none'} |")
    if {"micro-batching", "batch-1"} <= set(results):
        a, b = results["micro-batching"], results["batch-1"]
        print(f"micro-batching / batch-1 throughput: {a['rps'] / b['rps']:.2f}x "
              f"(goal >= 3x at p99 < 100 ms; p99 {a['p99_ms']:.1f} ms)")


if __name__ == "__main__":
    main()
