"""onnxruntime sessions: pick the device, keep ONNX Runtime quiet, report what actually runs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

from .cores import usable_cores
from .errors import EdgeclsError

DEVICES = ("auto", "cpu", "cuda")

# QDQ propagation moves an int8 model's QuantizeLinear back above a float MaxPool, which then runs as
# a slow plain-NCHW uint8 pool: mnist int8 measured 45k img/s with it, 113k img/s without (README).
DISABLED_OPTIMIZERS = ["QDQPropagationTransformer"]


def _ort():
    try:
        import onnxruntime as ort
    except ImportError:
        raise EdgeclsError("onnxruntime is not installed: pip install 'edgecls[cpu]' (or 'edgecls[gpu]' for CUDA)") from None
    return ort


def available_providers() -> list[str]:
    return list(_ort().get_available_providers())


def create_session(
    model: Union[str, os.PathLike, bytes],
    device: str = "auto",
    threads: Optional[int] = None,
    spin: bool = True,
):
    """An InferenceSession on `device`. `auto` uses CUDA when onnxruntime-gpu sees a GPU, else CPU. `threads`
    defaults to the cores this process may use (runtime/cores.py), not the host's count.

    spin=False stops idle onnxruntime threads from busy-waiting, which matters when other work
    (image decoding) shares the cores between batches."""
    ort = _ort()
    if device not in DEVICES:
        raise EdgeclsError(f"unknown device {device!r}; choose from {', '.join(DEVICES)}")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: no provider fallback spew on CPU-only machines
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = usable_cores(threads)
    options.inter_op_num_threads = 1
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if device == "cuda" and not has_cuda:
        raise EdgeclsError("device cuda requested but this onnxruntime has no CUDA support "
                           "(install edgecls[gpu] on a machine with an NVIDIA GPU)")
    providers = ["CPUExecutionProvider"]
    if device in ("cuda", "auto") and has_cuda:
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    name = str(model) if not isinstance(model, bytes) else "<model bytes>"
    if not isinstance(model, bytes):
        path = Path(model)
        if not path.is_file():
            raise EdgeclsError(f"{path}: no such model file")
        model = str(path)
    try:
        session = ort.InferenceSession(model, options, providers=providers, disabled_optimizers=DISABLED_OPTIMIZERS)
    except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
        if device == "auto" and providers[0] == "CUDAExecutionProvider":
            return create_session(model, "cpu", threads, spin)  # CUDA present but unusable: fall back quietly
        raise EdgeclsError(f"{name}: cannot load ONNX model ({str(exc).splitlines()[0][:300]})") from None
    if device == "cuda" and session.get_providers()[0] != "CUDAExecutionProvider":
        raise EdgeclsError(f"{name}: CUDA provider failed to initialise (is a GPU visible and CUDA 12/13 installed?)")
    return session


def session_provider(session) -> str:
    """The provider that actually runs the graph (first of those ORT kept)."""
    return session.get_providers()[0]
