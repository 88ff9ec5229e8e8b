"""The ONNX metadata contract: exact keys and encodings, and clear errors on bad metadata."""

from __future__ import annotations

import json

import pytest

from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.metadata import FORMAT_VERSION, KEYS, PREFIX, ModelInfo
from edgecls.runtime.spec import InputSpec

SPEC = InputSpec(48, 40, 3, layout="NCHW")
FULL = ModelInfo(name="faces", variant="int8", labels=("a", "b", "c"), input_spec=SPEC, dataset="fer2013",
                 source_sha256="ab" * 32, versions={"onnx": "1.17", "opset": 17},
                 quantization={"method": "static", "calibration_images": 512},
                 validation={"samples": 10, "accuracy": 0.9, "gates": {"int8_max_accuracy_drop": 0.5}},
                 # the two keys the declared-preprocessing merge added; to_metadata leaves them out when empty
                 preprocess=[{"op": "polarity", "background": "dark"}, {"op": "fit", "size": 20, "center": "mass"}],
                 unsure={"min_confidence": 0.6, "statistic": "midtone_fraction", "max_statistic": 0.25})


def test_format_version_and_prefix():
    assert PREFIX == "edgecls." and FORMAT_VERSION == "1"


def test_to_metadata_exact_strings():
    meta = FULL.to_metadata()
    assert sorted(meta) == sorted(PREFIX + k for k in KEYS)
    assert all(isinstance(v, str) for v in meta.values())  # ONNX metadata_props holds strings only
    assert meta["edgecls.format_version"] == "1"
    assert meta["edgecls.name"] == "faces" and meta["edgecls.variant"] == "int8"
    assert meta["edgecls.labels"] == '["a", "b", "c"]'
    assert json.loads(meta["edgecls.input"]) == {"height": 48, "width": 40, "channels": 3, "layout": "NCHW",
                                                 "dtype": "float32", "pixel_min": 0.0, "pixel_max": 255.0}
    assert meta["edgecls.output"] == "probabilities"  # a plain string, not JSON-quoted
    assert meta["edgecls.dataset"] == "fer2013" and meta["edgecls.source_sha256"] == "ab" * 32
    assert json.loads(meta["edgecls.versions"]) == {"onnx": "1.17", "opset": 17}
    assert json.loads(meta["edgecls.quantization"])["calibration_images"] == 512
    assert json.loads(meta["edgecls.validation"])["gates"] == {"int8_max_accuracy_drop": 0.5}
    assert meta["edgecls.preprocess"] == ('[{"op": "polarity", "background": "dark"}, '
                                          '{"op": "fit", "size": 20, "center": "mass"}]')
    assert json.loads(meta["edgecls.unsure"]) == {"min_confidence": 0.6, "statistic": "midtone_fraction",
                                                  "max_statistic": 0.25}


def test_models_without_declared_preprocessing_or_unsure_rule_omit_those_keys():
    """Absent keys are how older models (stretch resize, never unsure) are told apart; empty is not written."""
    minimal = ModelInfo(name="m", variant="fp32", labels=("x",), input_spec=InputSpec(8, 8, 1))
    meta = minimal.to_metadata()
    assert sorted(meta) == sorted(PREFIX + k for k in KEYS if k not in ("preprocess", "unsure"))
    assert minimal.preprocess == () and minimal.unsure == {}


def test_round_trip_is_exact():
    assert ModelInfo.from_metadata(FULL.to_metadata()) == FULL
    minimal = ModelInfo(name="m", variant="fp32", labels=("x",), input_spec=InputSpec(8, 8, 1))
    assert ModelInfo.from_metadata(minimal.to_metadata()) == minimal


def test_missing_optional_keys_take_defaults():
    meta = {"edgecls.labels": '["x", "y"]', "edgecls.input": json.dumps({"height": 4, "width": 5, "channels": 1})}
    info = ModelInfo.from_metadata(meta)
    assert info == ModelInfo(name="", variant="fp32", labels=("x", "y"), input_spec=InputSpec(4, 5, 1))
    assert info.output == "probabilities" and info.versions == {} and info.quantization == {} and info.validation == {}


def test_unknown_keys_are_ignored():
    meta = {**FULL.to_metadata(), "edgecls.future": "{", "other.key": "1"}
    assert ModelInfo.from_metadata(meta) == FULL


@pytest.mark.parametrize("missing", ["labels", "input"])
def test_not_an_edgecls_model(missing):
    meta = FULL.to_metadata()
    del meta[PREFIX + missing]
    with pytest.raises(EdgeclsError, match=r"^m\.onnx: not an edgecls model \(no edgecls\.labels / edgecls\.input "
                                           r"metadata\); export it with `edgecls export`$"):
        ModelInfo.from_metadata(meta, "m.onnx")


@pytest.mark.parametrize("key", ["labels", "input", "versions", "quantization", "validation", "preprocess", "unsure"])
def test_broken_json_names_the_file_and_key(key):
    meta = {**FULL.to_metadata(), PREFIX + key: "{not json"}
    with pytest.raises(EdgeclsError, match=rf"^m\.onnx: metadata edgecls\.{key} is not valid JSON$"):
        ModelInfo.from_metadata(meta, "m.onnx")


def test_plain_string_keys_are_not_parsed_as_json():
    meta = {**FULL.to_metadata(), "edgecls.name": "{not json", "edgecls.output": "logits"}
    info = ModelInfo.from_metadata(meta)
    assert info.name == "{not json" and info.output == "logits"
    # Issue 16: the output kind is checked, since the runtime turns it into per-label scores.
    with pytest.raises(EdgeclsError, match=r"edgecls.output '\[x' is unknown"):
        ModelInfo.from_metadata({**meta, "edgecls.output": "[x"})


def test_default_source_name_in_errors():
    with pytest.raises(EdgeclsError, match=r"^<model>: not an edgecls model"):
        ModelInfo.from_metadata({})


def test_bad_input_spec_is_refused():
    # Issue 12 (hardening) moved this check to runtime/model_check.py on purpose: a bad model is now a user-facing
    # EdgeclsError naming the file and the field (was a bare ValueError from InputSpec, i.e. a traceback).
    meta = {**FULL.to_metadata(), "edgecls.input": json.dumps({"height": 4, "width": 4, "channels": 2})}
    with pytest.raises(EdgeclsError, match=r"^m\.onnx: invalid model: metadata edgecls\.input\.channels is 2; "
                                           r"must be 1 \(grey\) or 3 \(RGB\)$"):
        ModelInfo.from_metadata(meta, "m.onnx")


def test_model_info_is_immutable():
    """What a model says about itself is read once and shared: it must not be changeable in place."""
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        FULL.variant = "fp32"  # type: ignore[misc]
