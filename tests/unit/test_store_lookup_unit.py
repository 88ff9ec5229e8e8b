"""How a name, a folder or a file becomes a model's files (edgecls.runtime.store), on model folders made here
beside the shipped zoo: which folder wins, which file name a variant takes, what a missing model or variant says.
No TensorFlow, no inference session; milliseconds."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pytest

from edgecls.runtime import store
from edgecls.runtime.errors import EdgeclsError, ModelNotFoundError
from edgecls.runtime.store import ModelFolder, ModelRef

REPO = Path(__file__).resolve().parents[2]
ZOO = store.zoo_dir()  # the package data folder: the repository's artifacts/ (checked below)
MNIST_ONNX = ZOO / "mnist" / "mnist.onnx"


@pytest.fixture()
def ws(tmp_path) -> Path:
    (tmp_path / "ws").mkdir()
    return tmp_path / "ws"


def model(root: Path, name: str, *, card: bool = False, keras: bool = False, variants: tuple[str, ...] = ()) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    if card:
        (folder / "metrics.json").write_text("{}")
    if keras:
        (folder / "model.keras").write_bytes(b"keras")
    for variant in variants:
        shutil.copy(MNIST_ONNX, ModelFolder(name, folder).variant_path(variant))
    return folder


def test_the_workspace_is_the_option_then_the_variables_then_dot_workspace(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "env_path", lambda *names: None)
    monkeypatch.chdir(tmp_path)
    assert store.workspace_dir() == tmp_path / "workspace"
    assert store.workspace_dir(tmp_path / "mine") == tmp_path / "mine"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert store.workspace_dir("~/models") == tmp_path / "home" / "models"
    seen = []
    monkeypatch.setattr(store, "env_path", lambda *names: seen.append(names) or tmp_path / "from-env")
    assert store.workspace_dir() == tmp_path / "from-env" and seen == [("EDGECLS_WORKSPACE", "EDGECLS_ARTIFACTS")]
    assert store.workspace_dir(tmp_path / "given") == tmp_path / "given"


def test_the_zoo_is_the_package_data_folder(monkeypatch):
    assert ZOO.resolve() == (REPO / "artifacts").resolve()
    assert store.is_shipped(MNIST_ONNX) and store.is_shipped(ZOO / "mnist") and not store.is_shipped(REPO / "tests")
    monkeypatch.setattr(store, "ZOO_PACKAGE", "edgecls.no_such_package")
    assert store.zoo_dir() is None and not store.is_shipped(MNIST_ONNX)


def test_search_dirs_are_the_workspace_then_the_zoo_once(ws, monkeypatch):
    assert store.search_dirs(ws) == [ws, ZOO]
    assert store.search_dirs(ZOO) == [ZOO]  # the workspace is the zoo folder itself
    (ws.parent / "link").symlink_to(ZOO)
    assert store.search_dirs(ws.parent / "link") == [ws.parent / "link"]  # the same folder by another path
    monkeypatch.setattr(store, "zoo_dir", lambda: None)
    assert store.search_dirs(ws) == [ws]


def test_same_is_false_when_a_path_cannot_be_resolved(tmp_path, monkeypatch):
    assert store._same(tmp_path, tmp_path / "." ) and not store._same(tmp_path, tmp_path / "x")

    def unresolvable(self, strict=False):
        raise OSError("gone")

    monkeypatch.setattr(Path, "resolve", unresolvable)
    assert not store._same(tmp_path, tmp_path)
    assert not store.is_shipped(MNIST_ONNX)


def test_a_model_folder_names_its_files(tmp_path):
    folder = ModelFolder("pets", tmp_path / "pets")
    assert (folder.card_path, folder.keras_path, folder.history_path, folder.train_dir) == (
        tmp_path / "pets" / "metrics.json", tmp_path / "pets" / "model.keras", tmp_path / "pets" / "history.json",
        tmp_path / "pets" / ".train")
    assert folder.variant_path("int8") == tmp_path / "pets" / "pets.int8.onnx"
    assert folder.variant_path("int8-dynamic") == folder.variant_path("int8")
    assert not folder.has_card() and not folder.trained() and folder.variants() == {}
    model(tmp_path, "pets", keras=True, variants=("int8", "fp32"))
    assert not folder.trained() and list(folder.variants()) == ["fp32", "int8"]  # fp32 first
    model(tmp_path, "pets", card=True)
    assert folder.has_card() and folder.trained()
    (tmp_path / "pets" / "model.keras").unlink()
    assert not folder.trained()
    with pytest.raises(dataclasses.FrozenInstanceError):
        folder.name = "other"  # type: ignore[misc]
    assert {folder, ModelFolder("pets", tmp_path / "pets")} == {folder}


def test_a_card_beats_exported_files_and_the_workspace_beats_the_zoo(ws):
    assert store.model_folder("mnist", ws).directory == ZOO / "mnist"
    model(ws, "mnist", variants=("fp32",))  # exported files only: the zoo's card still names the model
    assert store.model_folder("mnist", ws).directory == ZOO / "mnist"
    model(ws, "mnist", card=True)
    assert store.model_folder("mnist", ws).directory == ws / "mnist"
    model(ws, "onlyfiles", variants=("int8",))
    assert store.model_folder("onlyfiles", ws) == ModelFolder("onlyfiles", ws / "onlyfiles")
    (ws / "empty").mkdir()
    assert store.model_folder("empty", ws) == store.workspace_folder("empty", ws) == ModelFolder("empty", ws / "empty")
    assert store.model_folder("new", ws) == ModelFolder("new", ws / "new")  # where training would put it


def test_known_models_are_folders_with_a_card_or_variant_files(ws):
    model(ws, "carded", card=True)
    model(ws, "exported", variants=("fp16",))
    model(ws, "both", card=True, variants=("fp32",))
    model(ws, "neither", keras=True)
    (ws / "odd").mkdir()
    (ws / "odd" / ".onnx").write_bytes(b"")  # no model name before the suffix
    (ws / "loose.onnx").write_bytes(b"")
    names = store.known_models(ws)
    assert {"carded", "exported", "both", "mnist", "cifar10"} <= set(names) and names == sorted(names)
    assert not {"neither", "odd", "loose.onnx", "benchmarks"} & set(names)
    assert store.known_models(ws / "missing") == store.known_models(ws.parent / "also-missing")


def test_did_you_mean_lists_up_to_three_close_names_other_than_the_name_itself():
    assert store.did_you_mean("mnist", ["mnist", "fashion"]) == ""
    assert store.did_you_mean("mnsit", ["mnist"]) == " (did you mean 'mnist'?)"
    three = store.did_you_mean("pets", ["pets1", "pets2", "pets3", "pets4", "apets"])
    assert three.count("'") == 6 and three.count(" or ") == 2  # at most three
    assert store.did_you_mean("bbbb", ["bbbba", "abbbb"]) == " (did you mean 'bbbba' or 'abbbb'?)"


def test_what_looks_like_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for text in ("a.onnx", "m.keras", "x/y", "./mnist", Path("folder") / "m"):
        assert store.looks_like_path(text), text
    assert not store.looks_like_path("mnist") and not store.looks_like_path("mnist.int8")
    (tmp_path / "mnist").write_text("a file named like a model")
    assert store.looks_like_path("mnist")


def test_locate_a_name(ws):
    ref = store.locate("mnist", ws)
    assert ref == ModelRef(ModelFolder("mnist", ZOO / "mnist")) and ref.name == "mnist"
    assert ref.file is None and ref.variant is None and not ref.is_keras and not ref.is_onnx
    with pytest.raises(ModelNotFoundError, match=rf"^no model 'nosuch' in {ws} or {ZOO}; no such model"):
        store.locate("nosuch", ws)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.file = Path("x")  # type: ignore[misc]


def test_locate_a_folder_or_a_file(ws, tmp_path, monkeypatch):
    pets = model(ws, "pets", card=True, keras=True, variants=("fp32", "int8"))
    assert store.locate(pets) == ModelRef(ModelFolder("pets", pets))
    monkeypatch.chdir(pets)
    assert store.locate("./").folder.name == "pets"  # a relative folder is named by the folder it is
    int8 = store.locate(pets / "pets.int8.onnx")
    assert (int8.name, int8.variant, int8.file) == ("pets", "int8", pets / "pets.int8.onnx")
    assert int8.is_onnx and not int8.is_keras
    keras = store.locate(pets / "model.keras")
    assert (keras.name, keras.folder.directory, keras.is_keras, keras.is_onnx) == ("pets", pets, True, False)
    (pets / "metrics.json").unlink()
    assert store.locate(pets / "model.keras").name == "model"  # not an edgecls model folder: the file's stem
    (tmp_path / "resnet.keras").write_bytes(b"k")
    assert store.locate(tmp_path / "resnet.keras").name == "resnet"
    (tmp_path / "model.keras").write_bytes(b"k")
    assert store.locate(tmp_path / "model.keras").name == "model"
    shutil.copy(MNIST_ONNX, tmp_path / "my model.onnx")
    other = store.locate(tmp_path / "my model.onnx")
    assert (other.name, other.variant, other.is_onnx) == ("my model", "fp32", True)
    (tmp_path / "weights.bin.onnx").write_bytes(b"")
    assert store.locate(tmp_path / "weights.bin.onnx").variant == "fp32"
    with pytest.raises(ModelNotFoundError, match=r"nothere.onnx: no such model file$"):
        store.locate(tmp_path / "nothere.onnx")
    os.mkfifo(tmp_path / "pipe.onnx")
    with pytest.raises(ModelNotFoundError, match=r"pipe.onnx: not a regular file$"):
        store.locate(tmp_path / "pipe.onnx")


def test_find_onnx_takes_the_variant_from_the_workspace_first(ws):
    assert store.find_onnx("mnist", "int8", ws) == ZOO / "mnist" / "mnist.int8.onnx"
    assert store.find_onnx("mnist", workspace=ws) == ZOO / "mnist" / "mnist.onnx"
    model(ws, "mnist", variants=("int8",))  # re-exported into the workspace: shadows the shipped int8 only
    assert store.find_onnx("mnist", "int8", ws) == ws / "mnist" / "mnist.int8.onnx"
    assert store.find_onnx("mnist", "fp32", ws) == ZOO / "mnist" / "mnist.onnx"
    assert store.find_onnx(MNIST_ONNX, "int8", ws) == MNIST_ONNX  # a path is loaded as given
    with pytest.raises(EdgeclsError, match=r"model.keras: not an ONNX model file \(.onnx\)"):
        store.find_onnx(ZOO / "mnist" / "model.keras", workspace=ws)
    with pytest.raises(EdgeclsError, match=r"unknown variant 'int4'; choose fp32, fp16, int8$"):
        store.find_onnx("mnist", "int4", ws)


def test_a_missing_variant_says_what_there_is_or_how_to_make_it(ws):
    model(ws, "pets", card=True, keras=True, variants=("fp32", "fp16"))
    with pytest.raises(ModelNotFoundError, match=rf"^no int8 ONNX model 'pets' in {ws} or {ZOO} "
                                                 r"\(available: pets.onnx, pets.fp16.onnx\)$"):
        store.find_onnx("pets", "int8", ws)
    model(ws, "fresh", card=True, keras=True)
    with pytest.raises(ModelNotFoundError, match=r"'fresh' .*; export it with `edgecls export fresh --int8`$"):
        store.find_onnx("fresh", "int8", ws)
    with pytest.raises(ModelNotFoundError, match=r"'fresh' .*; export it with `edgecls export fresh`$"):
        store.find_onnx("fresh", "fp16", ws)
    (ws / "bare").mkdir()
    with pytest.raises(ModelNotFoundError, match=rf"^no fp32 ONNX model 'bare' in {ws} or {ZOO}$"):
        store.find_onnx(ws / "bare", "fp32", ws)


def test_not_found_message(ws):
    assert store.not_found_message("mnsit", ws) == f"no model 'mnsit' in {ws} or {ZOO} (did you mean 'mnist'?)"
    assert store.not_found_message("zzz", ws, what="backbone", otherwise="; train one first") == \
        f"no backbone 'zzz' in {ws} or {ZOO}; train one first"


def test_the_variant_table():
    from edgecls.runtime import variants

    assert variants.LOADABLE == ("fp32", "fp16", "int8")  # what the runtime loads by name, fp32 first
    assert [v for v in variants.VARIANTS if not variants.VARIANTS[v].loadable] == ["ort", "web"]
    assert variants.get("int8-dynamic").file_variant == "int8" and variants.get("fp16").file_variant == "fp16"
    assert variants.variant_file("/m", "x", "web") == Path("/m/web/x")
    assert variants.split_name("x.fp16.onnx") == ("x", "fp16") and variants.split_name("x.int8.onnx") == ("x", "int8")
    assert variants.split_name("x.ort") is None and variants.split_name("x") is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        variants.VARIANTS["fp32"].suffix = ".pb"  # type: ignore[misc]


def test_names_made_at_run_time_compare_by_value(ws, tmp_path):
    """Names arrive from argv, metadata and directory listings, never as the literals in the code."""
    mnist, int8 = "".join(["mn", "ist"]), "".join(["in", "t8"])
    assert store.did_you_mean(mnist, ["mnist", "mnist2"]) == " (did you mean 'mnist2'?)"
    model(ws, "fresh", card=True, keras=True)
    with pytest.raises(ModelNotFoundError, match=r"export it with `edgecls export fresh --int8`$"):
        store.find_onnx("fresh", int8, ws)
    pets = model(ws, "pets", card=True, keras=True)
    assert store.locate(Path(f"{pets}/{'model'}.keras")).name == "pets"


def test_only_model_keras_in_a_model_folder_takes_the_folders_name(ws):
    pets = model(ws, "pets", card=True, keras=True)
    for other in ("best.keras", "zeta.keras"):
        (pets / other).write_bytes(b"k")
        ref = store.locate(pets / other)
        assert (ref.name, ref.folder.directory, ref.is_keras) == (other.removesuffix(".keras"), pets, True)


def test_other_files_are_neither_keras_nor_onnx(tmp_path):
    for name in ("weights.h5", "graph.pb", "saved.tflite"):
        (tmp_path / name).write_bytes(b"x")
        ref = store.locate(tmp_path / name)
        assert (ref.is_keras, ref.is_onnx, ref.variant) == (False, False, None), name
        with pytest.raises(EdgeclsError, match=rf"{name}: not an ONNX model file"):
            store.find_onnx(tmp_path / name)
