"""edgecls.serve: the models behind HTTP, speaking the Open Inference Protocol (KServe v2 REST).

Needs the `serve` extra (Starlette, uvicorn, prometheus_client, python-multipart). Imports only
edgecls.runtime from edgecls, never TensorFlow, so a server starts in well under a second."""

from .app import create_app
from .config import ServeConfig
from .registry import ServedModel, load_models
from .server import serve

__all__ = ["ServeConfig", "ServedModel", "create_app", "load_models", "serve"]
