"""`edgecls serve`: models behind HTTP (Open Inference Protocol v2) with micro-batching and a web page."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .root import (Fp16Option, Fp32Option, Int8Option, TuneOption, VariantOption, WorkspaceOption, app,
                   err_console, say, variant_from)


@app.command()
def serve(
    models: list[str] = typer.Argument(None, help="Zoo names or .onnx paths, optionally NAME=MODEL (default: mnist)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0 for the whole network)."),
    port: int = typer.Option(8000, "--port", "-p", min=0, max=65535, help="TCP port (HTTP)."),
    grpc_port: Optional[int] = typer.Option(
        None, "--grpc-port", min=0, max=65535,
        help="Also serve the v2 gRPC API (inference.GRPCInferenceService) on this port; off unless given "
             "(Triton's and KServe's clients use 8001 and 8081)."),
    variant: str = VariantOption,
    int8: bool = Int8Option,
    fp16: bool = Fp16Option,
    fp32: bool = Fp32Option,
    tune: str = TuneOption,
    device: str = typer.Option("auto", "--device", help="auto (CUDA if available) | cpu | cuda."),
    threads: Optional[int] = typer.Option(
        None, "--threads", min=1, help="onnxruntime threads per model run (default 1)."),
    max_batch_size: int = typer.Option(32, "--max-batch-size", min=1, help="Images per merged model run; 1 disables batching."),
    max_wait_ms: float = typer.Option(2.0, "--max-wait-ms", min=0, help="How long a batch waits for more requests."),
    parallel_runs: Optional[int] = typer.Option(
        None, "--parallel-runs", min=1,
        help="Merged batches of one model computing at once (default: cores / --threads on the CPU, 1 on CUDA)."),
    max_queue: int = typer.Option(256, "--max-queue", min=1, help="Requests per model waiting or running before 503."),
    max_body_mb: float = typer.Option(16, "--max-body-mb", min=0.01, help="Larger request bodies get 413."),
    timeout: float = typer.Option(10, "--timeout", min=0.001, help="Seconds before an unanswered request gets 504."),
    top_k: int = typer.Option(3, "--topk", "-k", min=1, help="Labels returned when a request does not say."),
    drain: float = typer.Option(30, "--drain", min=0, help="Seconds in-flight requests may take to finish on shutdown."),
    log_level: str = typer.Option("info", "--log-level", help="critical | error | warning | info | debug."),
    access_log: bool = typer.Option(True, "--access-log/--no-access-log", help="Log one line per request."),
    workspace: Optional[Path] = WorkspaceOption,
) -> None:
    r"""Serve models over the Open Inference Protocol (HTTP, optionally gRPC) until Ctrl-C / SIGTERM (then
    in-flight requests finish). Each model's variant is chosen as `edgecls infer` chooses it, and its engine is
    tuned before the server reports ready. Needs `pip install edgecls\[serve]`."""
    from ..runtime.errors import EdgeclsError

    variant = variant_from(variant, int8, fp16, fp32)
    try:
        from ..serve import ServeConfig
        if grpc_port is not None:
            from ..serve import grpc_api  # noqa: F401 - grpcio and tritonclient's protocol code, checked up front
    except ImportError as exc:
        raise EdgeclsError(f"edgecls serve needs the serve extra ({exc.name} is missing): "
                           "pip install 'edgecls[serve]'") from None
    from ..api import load_server

    config = ServeConfig(max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, parallel_runs=parallel_runs,
                         max_queue=max_queue, max_body_bytes=int(max_body_mb * 1024 * 1024), timeout_s=timeout,
                         top_k=top_k, drain_s=drain)
    server = load_server(models or ["mnist"], variant=variant, device=device, threads=threads, workspace=workspace,
                         tune=tune, config=config, host=host, port=port)
    for m in server.models:
        say((f"{m.name}: ", "bold"), f"{m.classifier.speed_note}; engine: {m.classifier.engine}", target=err_console)
    server.run(grpc_port=grpc_port, log_level=log_level, access_log=access_log)
