"""The model card: every shipped card round-trips, a damaged card is one line naming the file and the field."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from edgecls.card import CARD_VERSION, CardError, DataRecord, ModelCard, card_from_dict, read_card
from edgecls.card import TestResult as Scored  # (a name pytest would try to collect)

REPO = Path(__file__).resolve().parents[2]
CARDS = sorted((REPO / "artifacts").glob("*/metrics.json"))


@pytest.mark.parametrize("path", CARDS, ids=lambda p: p.parent.name)
def test_shipped_cards_read_and_write_back_unchanged(path, tmp_path):
    raw = json.loads(path.read_text())
    card = read_card(path)
    assert card.name == raw["name"] and card.test.accuracy == raw["test"]["accuracy"]
    assert list(card.classes) == raw["classes"] and card.input_spec.to_dict() == raw["input_spec"]
    written = tmp_path / "metrics.json"
    card.write(written)
    again = json.loads(written.read_text())
    assert again.pop("card_version") == CARD_VERSION
    assert again == {k: v for k, v in raw.items() if v is not None}  # a version 1 card loses nothing rewritten
    assert read_card(written) == card


FOLDER = {"kind": "folder", "path": "/photos", "classes": ["cat", "dog"], "val_fraction": 0.2,
          "test_files": {"cat": ["cat/1.png"], "dog": ["dog/2.png"]}, "val_files": {"cat": ["cat/3.png"], "dog": []}}


def test_a_folder_record_round_trips_and_older_ones_have_no_validation_files(tmp_path):
    raw = {**_good(), "data": FOLDER}
    card = card_from_dict(raw, tmp_path / "metrics.json")
    assert card.data.val_files == {"cat": ("cat/3.png",), "dog": ()} and card.data.test_files["dog"] == ("dog/2.png",)
    assert card.data.classes == ("cat", "dog") and card.data.val_fraction == 0.2 and card.described_source == "/photos"
    card.write(tmp_path / "metrics.json")
    assert read_card(tmp_path / "metrics.json") == card
    assert json.loads((tmp_path / "metrics.json").read_text())["data"] == FOLDER
    older = {k: v for k, v in FOLDER.items() if k not in ("val_files", "val_fraction", "classes")}
    card = card_from_dict({**_good(), "data": older}, tmp_path / "metrics.json")
    assert card.data.val_files == {} and card.data.val_fraction is None and card.data.classes == ()


def _good() -> dict:
    return json.loads((REPO / "artifacts" / "mnist" / "metrics.json").read_text())


@pytest.mark.parametrize("field, change, message", [
    ("name", lambda c: c.pop("name"), "field 'name' is missing"),
    ("classes", lambda c: c.update(classes=["a", "a"]), "field 'classes' holds the same class name twice"),
    ("classes", lambda c: c.update(classes=[]), "field 'classes' must be a non-empty list"),
    ("test.accuracy", lambda c: c["test"].update(accuracy="99%"), "field 'test.accuracy' must be a number"),
    ("test.accuracy", lambda c: c["test"].update(accuracy=99.4), "must be a fraction between 0 and 1"),
    ("input_spec", lambda c: c["input_spec"].update(channels=4), "field 'input_spec' is not a valid input spec"),
    ("params", lambda c: c.update(params="many"), "field 'params' must be an integer"),
    ("data.kind", lambda c: c.update(data={"kind": "s3"}), "field 'data.kind' must be 'dataset' or 'folder'"),
    ("data.kind", lambda c: c.update(data={"kind": "cloud"}), "field 'data.kind' must be 'dataset' or 'folder'"),
    ("params", lambda c: c.update(params=True), "field 'params' must be an integer, got true"),
    ("classes", lambda c: c.update(classes=["a", ""]), "field 'classes' must be a non-empty list of class names"),
    ("classes", lambda c: c.update(classes=[1, 2]), "field 'classes' must be a non-empty list of class names"),
    ("test.accuracy", lambda c: c["test"].update(accuracy=-0.5), "must be a fraction between 0 and 1, got -0.5"),
    ("card_version", lambda c: c.update(card_version=3), "card_version 3 is newer than this edgecls reads (2)"),
    ("data.test_files", lambda c: c.update(data={**FOLDER, "test_files": {"cat": "a.png"}}),
     "field 'data.test_files' must map each class to a list of file paths"),
    ("data.val_files", lambda c: c.update(data={**FOLDER, "val_files": {"cat": [1]}}),
     "field 'data.val_files' must map each class to a list of file paths"),
    ("data.path", lambda c: c.update(data={**FOLDER, "path": " "}), "field 'data.path' is empty"),
    ("preprocess", lambda c: c.update(preprocess=["fit"]), "field 'preprocess' must be a list of steps"),
    ("card_version", lambda c: c.update(card_version=CARD_VERSION + 1), "newer than this edgecls reads"),
])
def test_a_bad_field_is_named(tmp_path, field, change, message):
    raw = _good()
    change(raw)
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(CardError) as err:
        read_card(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)
    assert "\n" not in str(err.value)


def test_truncated_and_non_object_cards(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text((REPO / "artifacts" / "mnist" / "metrics.json").read_text()[:300])
    with pytest.raises(CardError, match=r"not valid JSON .* damaged or truncated"):
        read_card(path)
    path.write_text("[1, 2]")
    with pytest.raises(CardError, match="a model card is a JSON object"):
        read_card(path)
    with pytest.raises(CardError, match="no model card here"):
        read_card(tmp_path / "none.json")


def test_an_old_card_without_a_data_record_reads_as_its_data_set():
    raw = _good()
    raw.pop("data", None)
    raw.pop("preprocess")
    card = card_from_dict(raw, Path("old.json"))
    assert card.data is None and card.preprocess is None and card.described_source == "mnist"
    assert card.seed == raw["training"]["seed"] and "epochs" in card.training_note()


def test_numbers_at_their_edges(tmp_path):
    """Whole numbers are fine where a fraction is asked for; 0 and 1 are fractions, anything past 1 is not; a
    card that does not record its size says 0 (unknown); hundreds of classes are fine."""
    raw = _good()
    raw.pop("params"), raw.pop("macs")
    for accuracy in (0, 1, 0.0, 1.0):
        card = card_from_dict({**raw, "test": {**raw["test"], "accuracy": accuracy}}, tmp_path / "m.json")
        assert card.test.accuracy == accuracy and isinstance(card.test.accuracy, float)
        assert card.params == 0 and card.macs == 0
    with pytest.raises(CardError, match="must be a fraction between 0 and 1, got 1.0001"):
        card_from_dict({**raw, "test": {**raw["test"], "accuracy": 1.0001}}, tmp_path / "m.json")
    many = [f"class {i}" for i in range(300)]
    assert card_from_dict({**raw, "classes": many}, tmp_path / "m.json").classes == tuple(many)
    base = card_from_dict(raw, tmp_path / "m.json")
    bare = ModelCard(name="x", classes=("a",), input_spec=base.input_spec, dataset="d", test=base.test)
    assert bare.params == 0 and bare.macs == 0


def test_the_validation_share_comes_from_the_data_record_first(tmp_path):
    raw = _good()
    old = card_from_dict({**raw, "training": {**raw["training"], "val_fraction": 0.2}}, tmp_path / "m.json")
    assert old.data is None and old.val_fraction == 0.2  # a card from before the data record
    mine = card_from_dict({**raw, "data": FOLDER, "training": {"val_fraction": 0.05}}, tmp_path / "m.json")
    assert mine.val_fraction == 0.2  # the record's
    unrecorded = card_from_dict({**raw, "data": {**FOLDER, "val_fraction": None}, "training": {"val_fraction": 0.05}},
                                tmp_path / "m.json")
    assert unrecorded.val_fraction == 0.05
    assert card_from_dict({**raw, "training": {}}, tmp_path / "m.json").val_fraction is None


def test_written_cards_are_version_2_and_every_part_is_a_frozen_value(tmp_path):
    card = read_card(REPO / "artifacts" / "cifar10" / "metrics.json")
    card.write(tmp_path / "metrics.json")
    assert json.loads((tmp_path / "metrics.json").read_text())["card_version"] == 2
    for part, attribute in ((card, "name"), (card.test, "accuracy"), (card.data, "kind")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(part, attribute, None)
    assert Scored("test split", 0.5).num_samples == 0
    raw = _good()
    raw["test"].pop("num_samples")
    assert card_from_dict(raw, tmp_path / "m.json").test.num_samples == 0


def test_records_and_notes_built_from_run_time_strings(tmp_path):
    """Kinds and training facts come from JSON and from callers: compared by value, said as recorded."""
    dataset, folder = "".join(["data", "set"]), "".join(["fol", "der"])
    assert DataRecord(dataset, name="mnist").to_dict() == {"kind": "dataset", "name": "mnist"}
    photos = DataRecord(folder, path="/photos", test_files={"a": ("a/1.png",)})
    base = read_card(REPO / "artifacts" / "cifar10" / "metrics.json")
    assert dataclasses.replace(base, data=photos).described_source == "/photos"
    assert base.described_source == "cifar10"  # a reference data set: its name
    noted = dataclasses.replace(base, training={"epochs_run": 12, "best_epoch": 9, "train_seconds": 61.4,
                                                "device": "GPU:0", "seed": 7})
    assert noted.training_note() == "Trained 12 epochs (best 9) in 61 s on GPU:0, seed 7."
    bare = dataclasses.replace(base, training={"train_seconds": "n/a"})
    assert bare.training_note() == "Trained ? epochs, seed 1337."


def test_an_unreadable_card_says_why(tmp_path):
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(CardError, match=r"dir.json: unreadable model card \(Is a directory\)$"):
        read_card(tmp_path / "dir.json")
    (tmp_path / "latin1.json").write_bytes(b'{"name": "caf\xe9"}')
    with pytest.raises(CardError, match=r"latin1.json: unreadable model card \('utf-8' codec can't decode"):
        read_card(tmp_path / "latin1.json")


def test_a_long_bad_value_is_cut_to_40_characters(tmp_path):
    raw = {**_good(), "params": "x" * 100}
    with pytest.raises(CardError) as err:
        card_from_dict(raw, tmp_path / "m.json")
    cut = json.dumps("x" * 100)[:40]
    assert str(err.value) == f"{tmp_path / 'm.json'}: field 'params' must be an integer, got {cut}"
