"""The model store's pieces that need no TensorFlow: the variant table, the metadata reader, name lookup."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgecls.runtime import store, variants
from edgecls.runtime.errors import EdgeclsError, ModelNotFoundError
from edgecls.runtime.metadata import ModelInfo, read_info
from edgecls.runtime.onnx_props import NotOnnx, parse_metadata

REPO = Path(__file__).resolve().parents[2]
ZOO = REPO / "artifacts"


def test_every_variant_file_name_parses_back_to_its_variant():
    for variant in variants.LOADABLE:
        path = variants.variant_file("/m", "my.model", variant)
        assert variants.split_name(path.name) == ("my.model", variant)
    assert variants.variant_file("/m", "x", "int8-dynamic") == variants.variant_file("/m", "x", "int8")
    assert variants.variant_file("/m", "x", "ort") == Path("/m/mobile/x.ort")
    assert variants.split_name("model.keras") is None and variants.split_name(".onnx") is None
    with pytest.raises(EdgeclsError, match="unknown variant 'int4'"):
        variants.get("int4")


@pytest.mark.parametrize("path", sorted(ZOO.glob("*/*.onnx")), ids=lambda p: p.name)
def test_metadata_reader_matches_onnx_itself(path):
    onnx = pytest.importorskip("onnx")
    proto = onnx.load(str(path), load_external_data=False)
    expected = {p.key: p.value for p in proto.metadata_props}
    assert read_info(path) == ModelInfo.from_metadata(expected, str(path))


def test_metadata_reader_refuses_what_is_not_onnx(tmp_path):
    for name, data in (("empty.onnx", b""), ("text.onnx", b"hello, not a model\n"), ("png.onnx", b"\x89PNG\r\n\x1a\n"),
                       ("cut.onnx", (ZOO / "mnist" / "mnist.onnx").read_bytes()[:5000])):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(EdgeclsError) as err:
            read_info(tmp_path / name)
        assert str(err.value).startswith(f"{tmp_path / name}: not an ONNX model")
    with pytest.raises(EdgeclsError, match="no such model file"):
        read_info(tmp_path / "missing.onnx")
    with pytest.raises(EdgeclsError, match="not a regular file"):
        read_info(tmp_path)


def test_metadata_parser_survives_random_bytes():
    rng = np.random.default_rng(0)
    for _ in range(300):
        blob = rng.integers(0, 256, int(rng.integers(1, 200)), dtype=np.uint8).tobytes()
        try:
            parse_metadata(blob)
        except NotOnnx:
            pass  # the only failure allowed: never IndexError, never a hang


def test_known_models_and_close_names(tmp_path):
    names = store.known_models(tmp_path)
    assert {"mnist", "fashion", "cifar10", "emotion"} <= set(names) and "benchmarks" not in names
    with pytest.raises(ModelNotFoundError, match=r"did you mean 'emotion'\?"):
        store.locate("emotoin", tmp_path)
    with pytest.raises(ModelNotFoundError, match="no such model"):
        store.locate("zzzz", tmp_path)


def test_a_shipped_model_writes_to_the_workspace(tmp_path):
    folder = store.model_folder("mnist", tmp_path)
    assert folder.shipped and folder.output_dir(tmp_path) == tmp_path / "mnist"
    mine = store.ModelFolder("mine", tmp_path / "mine")
    assert not mine.shipped and mine.output_dir(tmp_path / "elsewhere") == tmp_path / "mine"
