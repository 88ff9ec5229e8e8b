"""Which pip extra brings each optional library, so a command run without it says what to install in one line."""

from __future__ import annotations

import sys
from typing import Optional

from ..runtime.errors import EdgeclsError

# top-level module -> the extra that installs it (pyproject.toml's optional-dependencies)
EXTRA_OF: dict[str, str] = {
    **dict.fromkeys(("tensorflow", "keras", "tf2onnx", "onnx", "sympy", "matplotlib", "h5py"), "train"),
    **dict.fromkeys(("starlette", "uvicorn", "orjson", "prometheus_client", "multipart", "python_multipart", "grpc",
                     "tritonclient", "httptools", "uvloop"), "serve"),
    **dict.fromkeys(("ray", "pyarrow"), "ray"),
    "onnxruntime": "cpu",
}


def missing_extra(exc: BaseException) -> Optional[EdgeclsError]:
    """The one-line error for an ImportError of an optional library (None for anything else, a bug to report)."""
    if not isinstance(exc, ImportError) or not exc.name:
        return None
    top = exc.name.split(".")[0]
    extra = EXTRA_OF.get(top)
    if extra is None:
        return None
    hint = "'edgecls[cpu]' (or 'edgecls[gpu]' for CUDA)" if extra == "cpu" else f"'edgecls[{extra}]'"
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    what = f"edgecls {command}" if command and not command.startswith("-") else "this command"
    return EdgeclsError(f"{what} needs the {extra} extra ({top} is not installed): pip install {hint}")


REQUIRED: dict[str, tuple[str, ...]] = {"train": ("tensorflow", "keras", "tf2onnx", "onnx")}


def require(extra: str) -> None:
    """Fail at once, in one line, when `extra` is not installed (before any data is read or work is done)."""
    from importlib.util import find_spec

    for module in REQUIRED[extra]:
        if find_spec(module) is None:
            raise missing_extra(ModuleNotFoundError(f"No module named {module!r}", name=module))
