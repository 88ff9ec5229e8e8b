"""Read an ONNX file's metadata_props without loading its graph or building an inference session.

A model's labels, input spec and preprocessing sit in `ModelProto.metadata_props` (field 14), a few hundred
bytes after megabytes of weights. Building an onnxruntime session to read them costs the whole graph
optimisation; this walks the protobuf wire format of the top-level message instead, skipping every other
field by its length (the file is memory-mapped, so skipped weights are never read from disk).
"""

from __future__ import annotations

import mmap
import os
from typing import BinaryIO

GRAPH = 7  # ModelProto.graph: every ONNX model has one
METADATA_PROPS = 14  # ModelProto.metadata_props: repeated StringStringEntryProto {key = 1; value = 2}
VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


class NotOnnx(ValueError):
    """The bytes are not a protobuf-encoded ONNX ModelProto."""


def _varint(buf, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise NotOnnx("truncated or malformed varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(buf, pos: int, end: int):
    """(field number, wire type, payload start, payload end) of each field in buf[pos:end]."""
    while pos < end:
        tag, pos = _varint(buf, pos, end)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise NotOnnx("field number 0")
        if wire == VARINT:
            _, after = _varint(buf, pos, end)
        elif wire == LENGTH:
            size, pos = _varint(buf, pos, end)
            after = pos + size
        elif wire in (FIXED64, FIXED32):
            after = pos + (8 if wire == FIXED64 else 4)
        else:
            raise NotOnnx(f"unsupported wire type {wire}")
        if after > end:
            raise NotOnnx("a field runs past the end of the file")
        yield number, wire, pos, after
        pos = after


def _entry(buf, start: int, end: int) -> tuple[str, str]:
    key = value = ""
    for number, wire, a, b in _fields(buf, start, end):
        if wire == LENGTH and number in (1, 2):
            text = bytes(buf[a:b]).decode("utf-8", "replace")
            key, value = (text, value) if number == 1 else (key, text)
    return key, value


def parse_metadata(buf) -> dict[str, str]:
    """metadata_props of a serialized ModelProto (bytes, memoryview or mmap)."""
    props: dict[str, str] = {}
    graph = False
    for number, wire, start, end in _fields(buf, 0, len(buf)):
        graph = graph or (number == GRAPH and wire == LENGTH)
        if number == METADATA_PROPS:
            if wire != LENGTH:
                raise NotOnnx("metadata_props is not a message")
            key, value = _entry(buf, start, end)
            props[key] = value
    if not graph:
        raise NotOnnx("no graph")
    return props


def parse_metadata_file(fh: BinaryIO) -> dict[str, str]:
    """metadata_props of an open ONNX file (memory-mapped: the weights it skips are never read)."""
    if os.fstat(fh.fileno()).st_size == 0:
        raise NotOnnx("empty file")
    with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        return parse_metadata(buf)
