"""One line describing the machine a number was measured on."""

from __future__ import annotations

import os
import platform


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_machine() -> str:
    parts = [f"{cpu_name()}, {os.cpu_count()} cores", f"Python {platform.python_version()}"]
    try:
        import onnxruntime

        parts.append(f"onnxruntime {onnxruntime.__version__} ({', '.join(onnxruntime.get_available_providers())})")
    except ImportError:
        pass
    return "; ".join(parts)
