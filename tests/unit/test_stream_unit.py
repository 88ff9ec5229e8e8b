"""Decoding for `classify_stream`: one bad source, whatever it raises, is reported and never stops the run."""

from __future__ import annotations

import numpy as np
import pytest

from edgecls.runtime import stream
from edgecls.runtime.spec import InputSpec

SPEC = InputSpec(4, 4, 1)


def test_good_and_bad_sources_are_separated():
    good = np.full((4, 4), 9, np.uint8)
    pixels, positions, errors = stream.decode_chunk([good, b"not an image", good], SPEC)
    assert positions == [0, 2] and pixels.shape == (2, 4, 4, 1) and (pixels == 9).all()
    assert errors == {1: "not an image (unknown or unsupported format)"}


def test_nothing_decodable_gives_no_batch():
    pixels, positions, errors = stream.decode_chunk([b"x", b"y"], SPEC)
    assert pixels is None and positions == [] and set(errors) == {0, 1}


@pytest.mark.parametrize("exc, reason", [
    (RuntimeError("decoder bug"), "unreadable: RuntimeError: decoder bug"),
    (MemoryError(), "out of memory while decoding"),
])
def test_any_decoder_exception_becomes_a_reason(monkeypatch, exc, reason):
    """The catch-all: an unexpected exception from a decoder plugin skips that file, with the reason."""
    def load_pixels(source, spec):
        if source == "bad":
            raise exc
        return np.zeros((4, 4, 1), np.uint8)

    monkeypatch.setattr(stream, "load_pixels", load_pixels)
    pixels, positions, errors = stream.decode_chunk(["ok", "bad", "ok"], SPEC)
    assert positions == [0, 2] and errors == {1: reason}
