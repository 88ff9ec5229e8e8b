"""The ONNX metadata reader (edgecls.runtime.onnx_props) on protobuf bytes written here field by field: every
wire type is skipped by its own length, only field 7 as a message counts as the graph, only field 14 holds the
metadata, and anything truncated or malformed is NotOnnx (never an IndexError, never a wrong value)."""

from __future__ import annotations

import pytest

from edgecls.runtime.onnx_props import NotOnnx, parse_metadata, parse_metadata_file

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, wire: int, payload: bytes | int = b"") -> bytes:
    tag = varint(number << 3 | wire)
    if wire == VARINT:
        return tag + varint(int(payload))
    if wire == LENGTH:
        return tag + varint(len(payload)) + payload
    return tag + payload  # FIXED64 / FIXED32: payload of 8 / 4 bytes


def entry(key: str, value: str) -> bytes:
    return field(1, LENGTH, key.encode()) + field(2, LENGTH, value.encode())


GRAPH = field(7, LENGTH, field(1, LENGTH, b"node"))


def test_every_wire_type_is_skipped_by_its_own_length():
    model = (field(1, VARINT, 300) + field(30, FIXED64, bytes(range(8))) + field(31, FIXED32, b"\x0e\x0e\x0e\x0e")
             + field(2, LENGTH, b"tf2onnx") + field(3, LENGTH, bytes(70_000)) + GRAPH
             + field(14, LENGTH, entry("edgecls.name", "mnist")) + field(32, FIXED32, b"\x70\x0a\x00\x00")
             + field(14, LENGTH, entry("edgecls.labels", '["0"]')) + field(33, FIXED64, b"\x72" * 8))
    assert parse_metadata(model) == {"edgecls.name": "mnist", "edgecls.labels": '["0"]'}
    assert parse_metadata(memoryview(model)) == parse_metadata(bytearray(model))


def test_only_field_7_as_a_message_is_the_graph():
    for no_graph in (field(2, LENGTH, b"producer"), field(6, LENGTH, b"domain"), field(7, VARINT, 1),
                     field(7, FIXED32, b"\0\0\0\0"), field(8, LENGTH, b"opset")):
        with pytest.raises(NotOnnx, match="no graph"):
            parse_metadata(no_graph + field(14, LENGTH, entry("k", "v")))
    assert parse_metadata(field(6, LENGTH, b"domain") + GRAPH) == {}


def test_only_field_14_holds_metadata_and_it_must_be_a_message():
    other = field(13, LENGTH, entry("not", "metadata")) + field(15, LENGTH, entry("nor", "this")) \
        + field(20, LENGTH, entry("training", "info"))
    assert parse_metadata(GRAPH + other + field(14, LENGTH, entry("k", "v"))) == {"k": "v"}
    for wire, payload in ((VARINT, 5), (FIXED32, b"abcd"), (FIXED64, b"abcdefgh")):
        with pytest.raises(NotOnnx, match="metadata_props is not a message"):
            parse_metadata(GRAPH + field(14, wire, payload))


def test_an_entry_takes_its_key_and_value_from_strings_1_and_2_only():
    out_of_order = field(2, LENGTH, b"v") + field(3, LENGTH, b"x") + field(1, LENGTH, b"k")
    assert parse_metadata(GRAPH + field(14, LENGTH, out_of_order)) == {"k": "v"}
    not_strings = entry("k", "v") + field(1, FIXED32, b"BBBB") + field(2, VARINT, 7) + field(1, FIXED64, b"C" * 8)
    assert parse_metadata(GRAPH + field(14, LENGTH, not_strings)) == {"k": "v"}
    assert parse_metadata(GRAPH + field(14, LENGTH, field(1, LENGTH, "é".encode() + b"\xff"))) == {"é\ufffd": ""}


def test_truncated_or_malformed_bytes_are_not_onnx():
    long = field(3, LENGTH, bytes(400))
    cases = {
        "truncated or malformed varint": long + b"\x80",  # a varint cut at the very end (past small ints)
        "runs past the end": GRAPH + field(14, LENGTH, entry("k", "v"))[:-1],
        "field number 0": GRAPH + b"\x02\x00",
        "unsupported wire type 3": GRAPH + varint(9 << 3 | 3),
        "unsupported wire type 4": GRAPH + varint(9 << 3 | 4),
    }
    for message, blob in cases.items():
        with pytest.raises(NotOnnx, match=message):
            parse_metadata(blob)
    with pytest.raises(NotOnnx, match="malformed varint"):
        parse_metadata(GRAPH + b"\x08" + b"\xff" * 10 + b"\x01")  # more than 64 bits
    assert parse_metadata(GRAPH + b"\x08" + b"\xff" * 9 + b"\x01") == {}  # exactly 64 bits
    with pytest.raises(NotOnnx, match="runs past the end"):
        parse_metadata(long[:-1])
    for fixed, size in ((FIXED64, 8), (FIXED32, 4)):
        with pytest.raises(NotOnnx, match="runs past the end"):
            parse_metadata(GRAPH + field(9, fixed, b"x" * (size - 1)))


def test_an_empty_file_is_not_onnx(tmp_path):
    (tmp_path / "empty.onnx").write_bytes(b"")
    with open(tmp_path / "empty.onnx", "rb") as fh, pytest.raises(NotOnnx, match="empty file"):
        parse_metadata_file(fh)
    (tmp_path / "m.onnx").write_bytes(GRAPH + field(14, LENGTH, entry("k", "v")))
    with open(tmp_path / "m.onnx", "rb") as fh:
        assert parse_metadata_file(fh) == {"k": "v"}
