"""Connect to a Ray cluster (or start a local one) with one clear error when that is impossible."""

from __future__ import annotations

import logging
import os
import socket
from contextlib import contextmanager
from typing import Iterator, Optional

from ..runtime.errors import EdgeclsError
from .ray_import import require_ray

DEFAULT_GCS_PORT = 6379
DEFAULT_CLIENT_PORT = 10001
CONNECT_TIMEOUT_S = 5.0


def cluster_address(explicit: Optional[str]) -> Optional[str]:
    """--ray-address, else $RAY_ADDRESS, else None (start a local instance)."""
    return explicit or os.environ.get("RAY_ADDRESS") or None


def check_reachable(address: str) -> None:
    """A TCP probe of the head, so a wrong address fails in seconds instead of Ray's long retry loop."""
    if address in ("auto", "local"):
        return
    client = address.startswith("ray://")
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host:
        host, port = hostport, ""
    try:
        port_number = int(port) if port else (DEFAULT_CLIENT_PORT if client else DEFAULT_GCS_PORT)
    except ValueError:
        raise EdgeclsError(f"bad Ray address {address!r}; expected host:port or ray://host:port") from None
    try:
        with socket.create_connection((host.strip("[]"), port_number), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise EdgeclsError(f"cannot reach the Ray cluster at {address} ({reason}); is its head node running?") \
            from None


# Ray Data passes every map actor its DataContext and map function by object reference and asks Ray to restart
# actors (max_restarts=-1); Ray core then logs "Actor ... has constructor arguments in the object store and
# max_restarts > 0 ..." from the driver's C++ core worker, once per actor pool, on every run (ray-project/ray
# issue 57733), though Ray Data keeps those objects alive for the whole job, so restarts work (a killed worker
# node's actor is restarted on a replacement node). Turning restarts off would silence it and lose that, so the
# driver's C++ log threshold is raised instead, for edgecls's own Ray session (a user's setting wins). Failures
# still arrive as Python exceptions, reported in one line.
DRIVER_LOG_ENV = "RAY_BACKEND_LOG_LEVEL"
DRIVER_LOG_LEVEL = "fatal"


def quiet_ray_data() -> None:
    """Our own progress line replaces Ray Data's bars and per-dataset INFO logs."""
    import ray.data
    from ray.util import log_once

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    log_once("ray_data_progress_manager_disabled")  # Ray's one-time "progress bars disabled" note: said
    logging.getLogger("ray.data").setLevel(logging.WARNING)


@contextmanager
def ray_cluster(address: Optional[str] = None, num_cpus: Optional[int] = None) -> Iterator[str]:
    """Connected for the duration of the block; yields a description of the cluster.

    address None starts a private local instance (no dashboard, no usage stats) that ends with the block;
    "auto" joins the cluster `ray start` runs on this machine.
    """
    ray = require_ray()
    if ray.is_initialized():  # a caller's own session (library use): leave it as it is
        yield "running Ray session"
        return
    if address:
        check_reachable(address)
        options: dict = {"address": address}
    else:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        options = {"address": "local", "num_cpus": num_cpus, "include_dashboard": False}
    previous = os.environ.get(DRIVER_LOG_ENV)
    os.environ.setdefault(DRIVER_LOG_ENV, DRIVER_LOG_LEVEL)
    try:
        ray.init(**options, logging_level=logging.ERROR, log_to_driver=False)
    except Exception as exc:  # noqa: BLE001 - ConnectionError, auth, version mismatch: all one line
        where = address or "a local Ray instance"
        raise EdgeclsError(f"cannot connect to {where}: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    finally:
        if previous is None:
            os.environ.pop(DRIVER_LOG_ENV, None)
    try:
        quiet_ray_data()
        resources = ray.cluster_resources()
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        kind = f"Ray cluster at {address}" if address else "local Ray instance"
        gpus = f", {resources['GPU']:g} GPUs" if resources.get("GPU") else ""
        yield f"{kind}: {nodes} node{'s' * (nodes != 1)}, {resources.get('CPU', 0):g} CPUs{gpus}"
    finally:
        ray.shutdown()
