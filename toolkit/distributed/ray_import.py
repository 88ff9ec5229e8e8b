"""Ray is an optional extra: import it on demand, with a one-line error when it is missing."""

from __future__ import annotations

from types import ModuleType

from ..runtime.errors import EdgeclsError

INSTALL_HINT = "pip install 'edgecls[ray]'"


def require_ray() -> ModuleType:
    """The `ray` module with Ray Data loaded; EdgeclsError naming the extra when it is not installed."""
    try:
        import ray
        import ray.data  # noqa: F401 - ray without the [data] extra lacks pyarrow/pandas
    except ImportError as exc:
        raise EdgeclsError(f"the Ray engine needs Ray Data ({exc.name or exc} is not installed); "
                           f"install it with: {INSTALL_HINT}") from None
    return ray
