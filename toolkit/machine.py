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


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: bfloat16 math is fast here (elsewhere it is emulated and slower than float32)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def describe_machine() -> str:
    parts = [f"{cpu_name()}, {os.cpu_count()} cores", f"Python {platform.python_version()}"]
    try:
        import onnxruntime

        parts.append(f"onnxruntime {onnxruntime.__version__} ({', '.join(onnxruntime.get_available_providers())})")
    except ImportError:
        pass
    return "; ".join(parts)
