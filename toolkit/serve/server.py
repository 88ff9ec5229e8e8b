"""Run the app under uvicorn: graceful shutdown drains in-flight requests before the batchers stop."""

from __future__ import annotations

import copy
from typing import Optional, Sequence

from .app import create_app
from .config import ServeConfig
from .registry import ServedModel


def serve(models: Sequence[ServedModel], config: Optional[ServeConfig] = None, *, host: str = "127.0.0.1",
          port: int = 8000, log_level: str = "info", access_log: bool = True) -> None:
    """Serve until SIGINT/SIGTERM. Then: stop accepting, let requests in flight finish (up to config.drain_s),
    answer whatever the batchers still hold, and return."""
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    config = config or ServeConfig()
    logging_config = copy.deepcopy(LOGGING_CONFIG)
    logging_config["loggers"]["edgecls.serve"] = {"handlers": ["default"], "level": log_level.upper(),
                                                  "propagate": False}
    uv_config = uvicorn.Config(create_app(models, config), host=host, port=port, log_level=log_level,
                               access_log=access_log, log_config=logging_config, lifespan="on",
                               timeout_graceful_shutdown=config.drain_s, server_header=False)
    uvicorn.Server(uv_config).run()
