"""Decoding for `classify_stream` (runtime/decoding.py): one bad source, whatever it raises, is reported and
never stops the run.

Since declared preprocessing, decode_chunk returns a 4-tuple: (pixels, positions, errors, statistics the
pipeline measured for the good sources, used by the unsure flag; empty without a declared pipeline)."""

from __future__ import annotations

import numpy as np
import pytest

from edgecls.runtime import decoding
from edgecls.runtime.spec import InputSpec
from edgecls.runtime.transforms import PRESETS, Pipeline

SPEC = InputSpec(4, 4, 1)


def test_good_and_bad_sources_are_separated():
    good = np.full((4, 4), 9, np.uint8)
    pixels, positions, errors, stats = decoding.decode_chunk([good, b"not an image", good], SPEC)
    assert positions == [0, 2] and pixels.shape == (2, 4, 4, 1) and (pixels == 9).all()
    assert errors == {1: "not an image (unknown or unsupported format)"}
    assert stats == {}  # no declared pipeline: nothing measured


def test_declared_pipeline_measures_statistics_for_the_good_sources_only():
    digit = np.zeros((40, 40), np.uint8)
    digit[10:30, 18:22] = 255  # a clean white stroke on black: no midtones
    grey = np.full((40, 40), 128, np.uint8)
    grey[:, :20] = 0  # half midtone
    pixels, positions, errors, stats = decoding.decode_chunk([digit, b"not an image", grey], InputSpec(28, 28, 1),
                                                           Pipeline.parse(PRESETS["digits"]))
    assert positions == [0, 2] and pixels.shape == (2, 28, 28, 1) and pixels.dtype == np.uint8
    assert errors == {1: "not an image (unknown or unsupported format)"}
    assert list(stats) == ["midtone_fraction"] and stats["midtone_fraction"].shape == (2,)
    assert stats["midtone_fraction"][0] == 0.0 and stats["midtone_fraction"][1] > 0.0


def test_nothing_decodable_gives_no_batch():
    pixels, positions, errors, stats = decoding.decode_chunk([b"x", b"y"], SPEC)
    assert pixels is None and positions == [] and set(errors) == {0, 1} and stats == {}


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

    monkeypatch.setattr(decoding, "load_pixels", load_pixels)
    pixels, positions, errors, stats = decoding.decode_chunk(["ok", "bad", "ok"], SPEC)
    assert positions == [0, 2] and errors == {1: reason} and pixels.shape == (2, 4, 4, 1) and stats == {}
