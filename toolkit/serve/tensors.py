"""Open Inference Protocol tensor datatypes and their raw encoding (little-endian, row-major), shared by the REST
binary tensor extension and gRPC's raw contents. BYTES elements are each a 4-byte little-endian length, then
the bytes."""

from __future__ import annotations

import math
import struct
from typing import Sequence, Union

import numpy as np

from .errors import ApiError

# v2 datatype -> numpy dtype of its raw encoding (BYTES is variable-length: see to_raw)
DTYPES: dict[str, np.dtype] = {name: np.dtype(code).newbyteorder("<") for name, code in {
    "BOOL": "?", "UINT8": "u1", "UINT16": "u2", "UINT32": "u4", "UINT64": "u8", "INT8": "i1", "INT16": "i2",
    "INT32": "i4", "INT64": "i8", "FP16": "f2", "FP32": "f4", "FP64": "f8"}.items()}

Buffer = Union[bytes, bytearray, memoryview]


def from_raw(name: str, datatype: str, shape: Sequence[int], raw: Buffer) -> np.ndarray:
    """Raw tensor bytes -> a read-only array of `shape`, or a 400 when the byte count does not fit."""
    dtype = DTYPES[datatype]
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        raise ApiError(400, f"input {name!r}: {len(raw)} bytes of binary data, but shape {list(shape)} of "
                            f"{datatype} needs {expected}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def to_raw(datatype: str, values: Union[np.ndarray, Sequence[str]]) -> bytes:
    """An output's values -> its raw bytes."""
    if datatype == "BYTES":
        encoded = [v.encode() for v in values]
        return b"".join(struct.pack("<I", len(e)) + e for e in encoded)
    return np.ascontiguousarray(values, dtype=DTYPES[datatype]).tobytes()
