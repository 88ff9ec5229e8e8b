"""Run the app under uvicorn, with the gRPC server in the same event loop when asked: graceful shutdown drains
in-flight requests of both before the batchers stop."""

from __future__ import annotations

import copy
from typing import Optional, Sequence

from .app import ServeApp
from .config import ServeConfig
from .registry import ServedModel
from .service import InferenceService


def serve(models: Sequence[ServedModel], config: Optional[ServeConfig] = None, *, host: str = "127.0.0.1",
          port: int = 8000, grpc_port: Optional[int] = None, log_level: str = "info", access_log: bool = True) -> None:
    """Serve until SIGINT/SIGTERM. Then: stop accepting, let requests in flight finish (up to config.drain_s),
    answer whatever the batchers still hold, and return. `grpc_port`: also serve the v2 gRPC API there."""
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    service = InferenceService(models, config)
    companions = []
    if grpc_port is not None:
        from .grpc_api import GrpcServer  # grpcio and the generated protocol code load only when asked for

        companions.append(GrpcServer(service, host, grpc_port))
    logging_config = copy.deepcopy(LOGGING_CONFIG)
    logging_config["loggers"]["edgecls.serve"] = {"handlers": ["default"], "level": log_level.upper(),
                                                  "propagate": False}
    uv_config = uvicorn.Config(ServeApp(service, companions), host=host, port=port, log_level=log_level,
                               access_log=access_log, log_config=logging_config, lifespan="on",
                               timeout_graceful_shutdown=service.config.drain_s, server_header=False)
    uvicorn.Server(uv_config).run()
