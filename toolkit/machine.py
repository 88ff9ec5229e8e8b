"""One line describing the machine a number was measured on."""

from __future__ import annotations

import os
import platform


def _cpuinfo(key: str) -> str | None:
    """The first /proc/cpuinfo value for `key` (Linux); None elsewhere."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                name, _, value = line.partition(":")
                if name.strip() == key:
                    return value.strip()
    except OSError:
        pass
    return None


def cpu_name() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: bfloat16 math is fast here (elsewhere it is emulated and slower than float32)."""
    return bool(set((_cpuinfo("flags") or "").split()) & {"avx512_bf16", "amx_bf16"})


def describe_machine() -> str:
    parts = [f"{cpu_name()}, {os.cpu_count()} cores", f"Python {platform.python_version()}"]
    try:
        import onnxruntime

        parts.append(f"onnxruntime {onnxruntime.__version__} ({', '.join(onnxruntime.get_available_providers())})")
    except ImportError:
        pass
    return "; ".join(parts)
