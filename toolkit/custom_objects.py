"""The user's own Keras classes (custom layers, subclassed models), imported so their model can load.

`--custom-objects my_layers.py` (a file) or `--custom-objects my_package.layers` (an importable module).
Importing runs the user's own code, which they asked for by naming it; the .keras file itself still
loads with safe_mode on (no code from inside the file runs) unless they also pass --unsafe.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from .errors import EdgeclsError


def import_custom_objects(source: str) -> dict[str, Any]:
    """Classes and functions the module defines, by name (what keras.saving.load_model's custom_objects wants).
    Classes registered with @keras.saving.register_keras_serializable register themselves on import too."""
    path = Path(source)
    try:
        if source.endswith(".py") or path.is_file():
            if not path.is_file():
                raise EdgeclsError(f"{source}: --custom-objects file not found")
            name = f"edgecls_user_{path.stem}"
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise EdgeclsError(f"{source}: cannot import as a Python module")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(source)
    except EdgeclsError:
        raise
    except ModuleNotFoundError as exc:
        raise EdgeclsError(f"--custom-objects {source}: {exc} (give a .py file or an importable module name)") from None
    except Exception as exc:  # noqa: BLE001 - the user's module failed while importing
        raise EdgeclsError(f"--custom-objects {source}: importing it failed: {type(exc).__name__}: {exc}") from None
    return {n: obj for n, obj in vars(module).items()
            if not n.startswith("_") and (inspect.isclass(obj) or inspect.isfunction(obj))
            and getattr(obj, "__module__", None) == module.__name__}
