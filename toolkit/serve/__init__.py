"""edgecls.serve: the models behind the Open Inference Protocol (KServe v2): REST with JSON or binary tensors,
and gRPC.

Needs the `serve` extra (Starlette, uvicorn, prometheus_client, python-multipart; grpcio and tritonclient's
generated protocol code for gRPC). Imports only edgecls.runtime from edgecls, never TensorFlow, so a server
starts in well under a second."""

from .app import ServeApp, create_app
from .config import ServeConfig
from .registry import ServedModel, load_models
from .server import serve
from .service import InferenceService

__all__ = ["InferenceService", "ServeApp", "ServeConfig", "ServedModel", "create_app", "load_models", "serve"]
