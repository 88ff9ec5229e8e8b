"""Load test of `edgecls serve` against a KServe peer (and batch-1 serving): loopback only, bounded in time and count.

    python tests/benchmarks/bench_serve.py [--model cifar10] [--variant fp32] [--encodings json,binary]
        [--servers edgecls,kserve,kserve-1-thread] [--clients 32] [--rounds 3] [--seconds 5]

Servers, one process each on a free loopback port:
  edgecls          `edgecls serve MODEL` with its defaults (plus --serve-options)
  edgecls-batch-1  the same with --max-batch-size 1 (no merging)
  kserve           what a user would write instead: a KServe ModelServer with one onnxruntime session serving the
                   same .onnx file (kserve_peer.py), onnxruntime's default threads. It runs in its own virtual
                   environment, created on first use under $EDGECLS_CACHE_DIR/bench-venvs (default
                   ~/.cache/edgecls), because KServe pins packages edgecls's environment does not share.
  kserve-1-thread  the same peer on a one-thread session (faster where the model is small or the cores are busy)
The ratios compare edgecls with the faster of the peers, per encoding.
Each round measures every server with every encoding in turn, so a shared machine's changing load hits them
alike. In each turn N concurrent clients (asyncio + aiohttp, keep-alive connections, one request in flight each)
send v2 infer requests of one UINT8 image asking for `probabilities`, for a fixed time after a warm-up:
  json    tensors as JSON
  binary  the binary tensor extension (pixels and probabilities as raw bytes after a JSON header), the default
          of Triton's and KServe's clients
Before measuring, one request per server is checked against a local Classifier on the same file. Reports
requests/s, p50/p99 latency, errors, the mean merged batch (edgecls's /metrics), server CPU time per request,
the load average during the turns, and per encoding edgecls's requests/s over the peer's. The clients share
the cores with the servers, so they must be cheap: aiohttp spends ~0.15 ms of CPU per request here, httpx
~3.5 ms. Goal: edgecls >= 2x the peer's requests/s at an equal or lower p99. Not a test: figures are printed
and saved (--out, default artifacts/benchmarks/serve_MODEL_VARIANT.md and .json), never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import aiohttp
import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/serving.py
sys.path.insert(0, str(Path(__file__).resolve().parent))  # publish.py
from publish import publish  # noqa: E402
from serving import ServerProcess, metric_samples  # noqa: E402

from edgecls.config import cache_dir  # noqa: E402
from edgecls.machine import describe_machine  # noqa: E402
from edgecls.runtime import Classifier  # noqa: E402

KSERVE = "0.21.0"
PEER_SCRIPT = Path(__file__).resolve().parent / "kserve_peer.py"
QUIET = ["--no-access-log", "--log-level", "warning"]
HEADER_LENGTH = "Inference-Header-Content-Length"


def peer_python() -> Path:
    """The KServe peer's interpreter: its own venv (kserve + the onnxruntime edgecls uses), made once."""
    import onnxruntime

    venv = cache_dir() / "bench-venvs" / f"kserve-{KSERVE}-ort-{onnxruntime.__version__}"
    python = venv / "bin" / "python"
    if not (venv / ".complete").is_file():
        print(f"# creating the KServe peer's environment in {venv} (once; a few minutes)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"kserve=={KSERVE}",
                        f"onnxruntime=={onnxruntime.__version__}"], check=True)
        (venv / ".complete").write_text("ok\n")
    return python


def edgecls_server(options: list[str]) -> Callable:
    def start(args, clf: Classifier, log: Path) -> ServerProcess:
        extra = [f"{args.model}={clf.path}", *options, *shlex.split(args.serve_options), *QUIET]
        return ServerProcess([], extra, log)
    return start


def kserve_server(threads: int) -> Callable:
    def start(args, clf: Classifier, log: Path) -> ServerProcess:
        command = [str(peer_python()), str(PEER_SCRIPT), "--onnx", str(clf.path), "--name", args.model,
                   "--threads", str(threads)]
        return ServerProcess([], [], log, command=command)
    return start


SERVERS: dict[str, Callable] = {
    "edgecls": edgecls_server([]),
    "edgecls-batch-1": edgecls_server(["--max-batch-size", "1", "--max-wait-ms", "0"]),
    "kserve": kserve_server(0),
    "kserve-1-thread": kserve_server(1),
}
PEERS = ("kserve", "kserve-1-thread")


def request_bodies(clf: Classifier, encoding: str, count: int = 64) -> tuple[list[bytes], dict[str, str]]:
    """Pre-encoded one-image requests (random pixels: speed does not depend on content) and their headers."""
    spec = clf.spec
    rng = np.random.default_rng(0)
    bodies, header_length = [], None
    for _ in range(count):
        pixels = rng.integers(0, 256, (1, spec.height, spec.width, spec.channels), dtype=np.uint8)
        tensor = {"name": "pixels", "shape": list(pixels.shape), "datatype": "UINT8"}
        if encoding == "json":
            bodies.append(json.dumps({"inputs": [{**tensor, "data": pixels.ravel().tolist()}],
                                      "outputs": [{"name": "probabilities"}]}).encode())
            continue
        header = json.dumps({"inputs": [{**tensor, "parameters": {"binary_data_size": pixels.size}}],
                             "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}]}).encode()
        header_length = len(header)  # the same for every body
        bodies.append(header + pixels.tobytes())
    headers = {"content-type": "application/json" if encoding == "json" else "application/octet-stream"}
    if header_length is not None:
        headers[HEADER_LENGTH] = str(header_length)
    return bodies, headers


def check_answer(server: ServerProcess, model: str, clf: Classifier) -> float:
    """Largest difference between the server's probabilities and the local Classifier's, one JSON request."""
    pixels = np.random.default_rng(1).integers(0, 256, (1, clf.spec.height, clf.spec.width, clf.spec.channels),
                                               dtype=np.uint8)
    body = {"inputs": [{"name": "pixels", "shape": list(pixels.shape), "datatype": "UINT8",
                        "data": pixels.ravel().tolist()}], "outputs": [{"name": "probabilities"}]}
    response = httpx.post(f"{server.url}/v2/models/{model}/infer", json=body, timeout=30)
    response.raise_for_status()
    got = np.array(response.json()["outputs"][0]["data"], np.float32)
    return float(np.abs(got - clf.run(pixels).ravel()).max())


async def load(url: str, bodies: list[bytes], headers: dict[str, str], clients: int, warmup_s: float,
               seconds: float, max_requests: int) -> dict:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    state = {"measuring": False, "stop": False, "sent": 0, "answered": 0}

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
            state["answered"] += 1
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
    return {"latencies": latencies, "seconds": elapsed, "errors": errors, "answered": state["answered"]}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def batch_totals(server: ServerProcess, model: str) -> Optional[tuple[float, float]]:
    """(images, runs) merged so far by an edgecls server; None for the peer (no such metric)."""
    samples = metric_samples(httpx.get(server.url + "/metrics").text, "edgecls_batch_size", model=model)
    if not samples:
        return None
    return samples.get("edgecls_batch_size_sum", 0.0), samples.get("edgecls_batch_size_count", 0.0)


def one_turn(server: ServerProcess, args, bodies: list[bytes], headers: dict[str, str]) -> dict:
    before_cpu, before_batches = cpu_seconds(server.proc.pid), batch_totals(server, args.model)
    time.sleep(0.2)  # the previous server's last answers and threads settle
    run = asyncio.run(load(f"{server.url}/v2/models/{args.model}/infer", bodies, headers, args.clients,
                           args.warmup, args.seconds, args.max_requests))
    run["cpu"] = cpu_seconds(server.proc.pid) - before_cpu
    run["load"] = os.getloadavg()[0]
    after = batch_totals(server, args.model)
    run["batches"] = None if after is None else (after[0] - before_batches[0], after[1] - before_batches[1])
    return run


def measure(servers: dict[str, ServerProcess], args, requests: dict[str, tuple]) -> dict[tuple[str, str], dict]:
    """Every (server, encoding) once per round, in turn."""
    runs: dict[tuple[str, str], list[dict]] = {(s, e): [] for s in servers for e in requests}
    for _ in range(args.rounds):
        for name, server in servers.items():
            for encoding, (bodies, headers) in requests.items():
                runs[(name, encoding)].append(one_turn(server, args, bodies, headers))
    return {key: summarise(turns) for key, turns in runs.items()}


def summarise(turns: list[dict]) -> dict:
    lat = np.array([x for run in turns for x in run["latencies"]]) * 1000
    errors: dict[str, int] = {}
    for run in turns:
        for key, count in run["errors"].items():
            errors[key] = errors.get(key, 0) + count
    batches = [run["batches"] for run in turns if run["batches"] is not None]
    return {"requests": len(lat), "rps": len(lat) / sum(run["seconds"] for run in turns),
            "rounds_rps": [len(run["latencies"]) / run["seconds"] for run in turns],
            "p50_ms": float(np.percentile(lat, 50)) if len(lat) else float("nan"),
            "p99_ms": float(np.percentile(lat, 99)) if len(lat) else float("nan"),
            "mean_batch": sum(b[0] for b in batches) / max(sum(b[1] for b in batches), 1) if batches else None,
            "cpu_ms": 1000 * sum(run["cpu"] for run in turns) / max(sum(run["answered"] for run in turns), 1),
            "load": float(np.mean([run["load"] for run in turns])), "errors": errors}


def rows(results: dict[tuple[str, str], dict]) -> list[dict]:
    return [{"server": name, "encoding": encoding, "requests": r["requests"], "requests_per_s": round(r["rps"], 1),
             "rounds_requests_per_s": [round(x, 1) for x in r["rounds_rps"]], "p50_ms": round(r["p50_ms"], 2),
             "p99_ms": round(r["p99_ms"], 2), "mean_batch": None if r["mean_batch"] is None else round(r["mean_batch"], 2),
             "server_cpu_ms_per_request": round(r["cpu_ms"], 3), "load_average": round(r["load"], 2),
             "errors": sum(r["errors"].values())} for (name, encoding), r in results.items()]


def ratios(results: dict[tuple[str, str], dict]) -> list[dict]:
    """Per encoding: edgecls against the faster peer."""
    out = []
    for encoding in sorted({e for _, e in results}):
        ours = results.get(("edgecls", encoding))
        peers = [(results[(p, encoding)]["rps"], p) for p in PEERS if (p, encoding) in results]
        if not ours or not peers:
            continue
        name = max(peers)[1]
        peer = results[(name, encoding)]
        ratio = ours["rps"] / peer["rps"]
        out.append({"encoding": encoding, "peer": name, "ratio": round(ratio, 2), "edgecls_p99_ms": round(ours["p99_ms"], 1),
                    "peer_p99_ms": round(peer["p99_ms"], 1), "goal_met": ratio >= 2 and ours["p99_ms"] <= peer["p99_ms"]})
    return out


def report(results: dict[tuple[str, str], dict], header: list[str]) -> tuple[str, dict]:
    lines = [*header, "", "| server | encoding | requests | requests/s (per round) | p50 ms | p99 ms | mean batch | "
             "server CPU/request | load avg | errors |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for (name, encoding), r in results.items():
        rounds = ", ".join(f"{x:,.0f}" for x in r["rounds_rps"])
        batch = "-" if r["mean_batch"] is None else f"{r['mean_batch']:.1f}"
        lines.append(f"| {name} | {encoding} | {r['requests']:,} | {r['rps']:,.0f} ({rounds}) | {r['p50_ms']:.1f} | "
                     f"{r['p99_ms']:.1f} | {batch} | {r['cpu_ms']:.2f} ms | {r['load']:.1f} | {r['errors'] or 'none'} |")
    lines.append("")
    found = ratios(results)
    for r in found:
        lines.append(f"- {r['encoding']}: edgecls / {r['peer']} (the faster peer) requests/s {r['ratio']:.2f}x, p99 "
                     f"{r['edgecls_p99_ms']:.1f} vs {r['peer_p99_ms']:.1f} ms (goal >= 2x at equal or lower p99: "
                     f"{'met' if r['goal_met'] else 'not met'})")
    if {("edgecls", "json"), ("edgecls-batch-1", "json")} <= set(results):
        a, b = results[("edgecls", "json")], results[("edgecls-batch-1", "json")]
        lines.append(f"- json: micro-batching / batch-1 requests/s {a['rps'] / b['rps']:.2f}x")
    return "\n".join(lines), {"rows": rows(results), "ratios": found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cifar10")
    parser.add_argument("--variant", default="fp32", choices=["fp32", "fp16", "int8"])
    parser.add_argument("--servers", default="edgecls,kserve,kserve-1-thread",
                        help="comma-separated: " + ", ".join(SERVERS))
    parser.add_argument("--encodings", default="json,binary", help="comma-separated: json, binary")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients, one request in flight each")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured time per server, encoding and round")
    parser.add_argument("--rounds", type=int, default=3, help="the servers take turns this many times")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each measurement")
    parser.add_argument("--max-requests", type=int, default=50_000, help="end a measurement early after this many")
    parser.add_argument("--out", type=Path, default=None,
                        help="where the Markdown and JSON results go (default artifacts/benchmarks/serve_MODEL_VARIANT.md)")
    parser.add_argument("--serve-options", default="", help="extra `edgecls serve` options, e.g. '--threads 2'")
    args = parser.parse_args()

    clf = Classifier(args.model, variant=args.variant)
    requests = {e: request_bodies(clf, e) for e in args.encodings.split(",")}
    header = [f"# edgecls serve against a KServe peer: {args.model} {args.variant}", "",
              f"`{clf.path.name}`, {args.clients} closed-loop clients on loopback, one image per request, {args.rounds} "
              f"rounds x {args.seconds:g} s per server and encoding, taking turns; {describe_machine()}, servers and "
              "clients sharing the cores; load average before: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()) + "."]
    print("\n".join(header))
    with tempfile.TemporaryDirectory() as tmp:
        servers = {}
        try:
            for name in args.servers.split(","):
                servers[name] = SERVERS[name](args, clf, Path(tmp) / f"{name}.log").wait_ready(timeout=120)
                print(f"{name}: answers within {check_answer(servers[name], args.model, clf):.1e} of the local "
                      "Classifier", file=sys.stderr)
            results = measure(servers, args, requests)
        finally:
            for server in servers.values():
                server.stop()
    text, data = report(results, header)
    out = args.out or Path(__file__).resolve().parents[2] / "artifacts" / "benchmarks" / f"serve_{args.model}_{args.variant}.md"
    publish(out, text, {**data, "settings": {k: v for k, v in vars(args).items() if k != "out"}})


if __name__ == "__main__":
    main()
