"""The KServe peer of bench_serve.py: what a user would write instead of `edgecls serve`, a KServe ModelServer
with one onnxruntime session, serving the same .onnx file under the same v2 request format.

    python kserve_peer.py --onnx FILE --name NAME --port PORT [--threads N]

Runs in its own virtual environment (KServe pins packages edgecls's environment does not share; bench_serve.py
creates it), so it imports nothing from edgecls: the pixel handling (UINT8 NHWC in, float32 in the model's
layout) is written out here as a KServe user would. Listens on 127.0.0.1 only. Not a test.
"""

from __future__ import annotations

import argparse
import logging
import sys

import numpy as np
import onnxruntime as ort
import uvicorn


class LoopbackConfig(uvicorn.Config):
    """KServe's REST server binds 0.0.0.0; the benchmark's servers stay on the loopback interface."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs["host"] = "127.0.0.1"
        super().__init__(*args, **kwargs)


uvicorn.Config = LoopbackConfig  # before kserve imports its server

import kserve  # noqa: E402
from kserve import InferOutput, InferRequest, InferResponse  # noqa: E402
from kserve.utils.utils import generate_uuid  # noqa: E402


class OnnxClassifier(kserve.Model):
    """v2 `pixels` (UINT8 or FP32, N x H x W x C, 0-255) -> `probabilities` (FP32, N x classes)."""

    def __init__(self, name: str, onnx_file: str, threads: int) -> None:
        super().__init__(name)
        self.onnx_file, self.threads = onnx_file, threads
        self.load()

    def load(self) -> bool:
        options = ort.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = self.threads
        self.session = ort.InferenceSession(self.onnx_file, options, providers=["CPUExecutionProvider"])
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        self.channels_first = model_input.shape[1] in (1, 3)  # NCHW models take (N, C, H, W)
        self.ready = True
        return self.ready

    def predict(self, payload: InferRequest, headers=None) -> InferResponse:
        pixels = payload.inputs[0].as_numpy().astype(np.float32)
        if pixels.ndim == 3:
            pixels = pixels[..., None]
        if self.channels_first:
            pixels = np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))
        probabilities = self.session.run(None, {self.input_name: pixels})[0]
        output = InferOutput(name="probabilities", shape=list(probabilities.shape), datatype="FP32")
        output.set_data_from_numpy(probabilities, binary_data=payload.use_binary_outputs)
        return InferResponse(model_name=self.name, infer_outputs=[output], response_id=payload.id or generate_uuid(),
                             use_binary_outputs=payload.use_binary_outputs, requested_outputs=payload.request_outputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: its default)")
    args, _ = parser.parse_known_args()
    server = kserve.ModelServer(http_port=args.port, enable_grpc=False, enable_latency_logging=False)
    for name in ("kserve", "kserve.trace", "uvicorn", "uvicorn.access", "uvicorn.error"):  # no per-request log lines
        logging.getLogger(name).setLevel(logging.WARNING)
    server.start([OnnxClassifier(args.name, args.onnx, args.threads)])


if __name__ == "__main__":
    sys.exit(main())
