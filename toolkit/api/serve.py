"""`edgecls.api.serve`: models behind the Open Inference Protocol (edgecls.serve), loaded and tuned first.

    server = load_server(["mnist", "photos=cifar10"])   # variants chosen, engines tuned: nothing left for requests
    server.describe()                                   # what each name serves, and how
    server.run()                                        # until SIGINT/SIGTERM; in-flight requests finish
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

PathLike = Union[str, os.PathLike]


@dataclass
class Server:
    models: list  # edgecls.serve.ServedModel: name, Classifier
    config: Any  # edgecls.serve.ServeConfig
    host: str = "127.0.0.1"
    port: int = 8000

    def describe(self) -> list[dict[str, Any]]:
        """Per served name: the file, its variant and why, and the engine that runs it."""
        return [{"name": m.name, **m.classifier.choice.to_dict(), "engine": m.classifier.engine.to_dict()}
                for m in self.models]

    def run(self, **options: Any) -> "Server":
        """Serve until SIGINT/SIGTERM (`options`: edgecls.serve.serve's: grpc_port, log_level, access_log)."""
        from ..serve import serve as run_server

        run_server(self.models, self.config, host=self.host, port=self.port, **options)
        return self


def load_server(models: Sequence[str] = ("mnist",), *, variant: str = "auto", device: str = "auto",
                threads: Optional[int] = None, workspace: Optional[PathLike] = None, tune: str = "auto",
                config: Any = None, host: str = "127.0.0.1", port: int = 8000) -> Server:
    """Open `models` (names, .onnx paths, or NAME=MODEL), each with the variant `choose_variant` picks and its
    engine tuned; EdgeclsError naming the model when one cannot be served."""
    from ..serve import ServeConfig, load_models

    served = load_models(list(models), variant=variant, device=device, threads=threads, workspace=workspace,
                         tune=tune)
    return Server(served, config or ServeConfig(), host, port)


def serve(models: Sequence[str] = ("mnist",), **options: Any) -> Server:
    """`load_server(models, **options)`, then `run()` until stopped; returns the server that ran."""
    run_options = {k: options.pop(k) for k in ("grpc_port", "log_level", "access_log") if k in options}
    return load_server(models, **options).run(**run_options)
