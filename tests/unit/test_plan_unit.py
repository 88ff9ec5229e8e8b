"""The data plan (edgecls.data.plan) on tiny data made here: a reference data set file in MNIST's format, a user's
class-per-folder images, a card. Every image carries its own number, so each check says WHICH images a job gets:
the recorded test split, the held-out validation images the card's seed and fraction pick, calibration images only
from the images training fitted on. No TensorFlow, no real data set; well under a second."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecls.card import DataRecord, ModelCard, read_card
from edgecls.card import TestResult as Scored  # (a name pytest would try to collect)
from edgecls.data.folders import load_image_folder
from edgecls.data.plan import DataPlan, Images, card_of_onnx, data_record, declared_pipeline, plan_for_onnx, \
    portable_source
from edgecls.data.types import Dataset, Split, stratified_holdout
from edgecls.errors import DataError
from edgecls.exporters.quantize import stratified_sample
from edgecls.runtime.metadata import read_info
from edgecls.runtime.spec import InputSpec
from edgecls.runtime.transforms import PRESETS, Pipeline

REPO = Path(__file__).resolve().parents[2]
SPEC = InputSpec(28, 28, 1)
NONE = Pipeline()
N_TRAIN, N_TEST = 300, 60  # ten classes, class-sorted


def numbered(n: int, start: int = 0) -> np.ndarray:
    """Grey 28x28 images whose first two pixels spell their number (base 256): an image says which it is."""
    x = np.random.default_rng(start).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    number = np.arange(start, start + n)
    x[:, 0, 0], x[:, 0, 1] = number // 256, number % 256
    return x


def ids(pixels: np.ndarray) -> list[int]:
    return (pixels[:, 0, 0, 0].astype(int) * 256 + pixels[:, 0, 1, 0]).tolist()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """An MNIST-format file with numbered images: train 0..299, test 1000..1059."""
    root = tmp_path_factory.mktemp("data")
    np.savez(root / "mnist.npz", x_train=numbered(N_TRAIN), y_train=np.repeat(np.arange(10), N_TRAIN // 10),
             x_test=numbered(N_TEST, 1000), y_test=np.repeat(np.arange(10), N_TEST // 10))
    return root


def card(**changes) -> ModelCard:
    base = ModelCard(name="mnist", classes=tuple("0123456789"), input_spec=SPEC, dataset="mnist",
                     test=Scored("official test split", 0.9), data=DataRecord("dataset", name="mnist"),
                     preprocess=(), training={"seed": 5, "val_fraction": 0.2})
    return dataclasses.replace(base, **changes)


TRAIN_Y = np.repeat(np.arange(10), N_TRAIN // 10)


def test_reference_plan_scores_on_the_test_split(data_dir):
    plan = DataPlan.for_card(card(), data_dir=data_dir)
    test = plan.test()
    assert ids(test.x) == list(range(1000, 1000 + N_TEST)) and test.y.tolist() == np.repeat(np.arange(10), 6).tolist()
    assert test.description == "mnist official test split (60 images)" and len(test) == N_TEST
    sample = plan.test(limit=20, seed=4)
    assert ids(sample.x) == [1000 + i for i in stratified_sample(test.y, N_TEST, 20, 4)]
    assert sample.description == "mnist official test split, stratified sample (20 images)"
    assert plan.test(limit=N_TEST).description == test.description  # no smaller limit: the whole split


def test_reference_plan_holds_out_what_the_cards_seed_and_fraction_say(data_dir):
    keep, hold = stratified_holdout(TRAIN_Y, 0.2, 5)
    held = DataPlan.for_card(card(), data_dir=data_dir).heldout()
    assert ids(held.x) == hold.tolist() and held.y.tolist() == TRAIN_Y[hold].tolist()
    assert held.description == "mnist held-out validation images (60)"
    other_seed = DataPlan.for_card(card(training={"seed": 6, "val_fraction": 0.2}), data_dir=data_dir).heldout()
    assert ids(other_seed.x) == stratified_holdout(TRAIN_Y, 0.2, 6)[1].tolist()
    unrecorded = DataPlan.for_card(card(training={"seed": 5}), data_dir=data_dir).heldout()  # older cards: 10 %
    assert ids(unrecorded.x) == stratified_holdout(TRAIN_Y, 0.1, 5)[1].tolist()


def test_calibration_samples_only_images_training_fitted_on(data_dir):
    keep, _ = stratified_holdout(TRAIN_Y, 0.2, 5)
    calibration = DataPlan.for_card(card(), data_dir=data_dir).calibration(50, seed=3)
    assert ids(calibration.x) == keep[stratified_sample(TRAIN_Y[keep], len(keep), 50, 3)].tolist()
    assert calibration.y.tolist() == TRAIN_Y[ids(calibration.x)].tolist()
    assert calibration.description == "mnist training images (50, stratified)"


def test_without_a_card_the_whole_training_split_calibrates_and_nothing_is_held_out(data_dir):
    plan = DataPlan(None, SPEC, NONE, data_dir=data_dir, reference="mnist")
    assert ids(plan.calibration(N_TRAIN, seed=1).x) == list(range(N_TRAIN))
    assert plan.test().description == "mnist test (60 images)"
    with pytest.raises(DataError, match="no model card says which data"):
        plan.heldout()
    with pytest.raises(DataError, match="no model card says which data"):
        DataPlan(None, SPEC, NONE).test()


def test_an_official_validation_split_is_the_held_out_one(tmp_path):
    """FER-2013 ships train/val/test: val is what training held out, all of train what it fitted on."""
    for split, start in (("train", 0), ("val", 100), ("test", 200)):
        for c, cls in enumerate(("angry", "happy")):
            (tmp_path / "fer2013" / split / cls).mkdir(parents=True)
            for i, image in enumerate(numbered(3, start + 10 * c)):
                Image.fromarray(np.kron(image, np.ones((2, 2), np.uint8))[:48, :48]).save(
                    tmp_path / "fer2013" / split / cls / f"{i}.png")
    plan = DataPlan(None, InputSpec(48, 48, 1), NONE, data_dir=tmp_path, reference="fer2013")
    assert sorted(ids(plan.heldout().x[:, ::2, ::2])) == [100, 101, 102, 110, 111, 112]
    assert sorted(ids(plan.calibration(100).x[:, ::2, ::2])) == [0, 1, 2, 10, 11, 12]
    fer_card = card(name="emotion", dataset="fer2013", data=DataRecord("dataset", name="fer2013"),
                    input_spec=InputSpec(48, 48, 1), classes=("angry", "disgust", "fear", "happy", "neutral", "sad",
                                                              "surprise"))
    assert sorted(ids(DataPlan.for_card(fer_card, data_dir=tmp_path).heldout().x[:, ::2, ::2])) == \
        [100, 101, 102, 110, 111, 112]


def test_the_declared_pipeline_makes_every_split_model_ready(data_dir):
    steps = ({"op": "polarity", "background": "light"}, {"op": "measure"}, {"op": "resize", "mode": "stretch"})
    raw = DataPlan.for_card(card(), data_dir=data_dir)
    plan = DataPlan.for_card(card(preprocess=steps), data_dir=data_dir)
    pipeline = Pipeline.parse(list(steps))
    for part in ("test", "heldout"):
        want = getattr(raw, part)()
        got = getattr(plan, part)()
        x, stats = pipeline.apply(want.x, (28, 28))
        assert np.array_equal(got.x, x) and not np.array_equal(got.x, want.x)
        assert set(got.stats) == set(stats) and all(np.array_equal(got.stats[k], stats[k]) for k in stats)
        assert want.stats is None


def test_ready_keeps_pixels_that_went_through_the_pipeline_already():
    plan = DataPlan(None, SPEC, Pipeline.parse(list(PRESETS["digits"])))
    done = Split(numbered(4)[..., None], np.zeros(4, np.int64), {"midtone_fraction": np.ones(4)})
    assert plan._ready(done, "d").x is done.x
    empty = Split(np.zeros((0, 28, 28, 1), np.uint8), np.zeros(0, np.int64))
    assert len(plan._ready(empty, "e")) == 0
    assert Images(done.x, None, "d").stats is None and len(Images(done.x, None, "d")) == 4


def test_declared_pipeline_order_of_precedence():
    stretch = declared_pipeline("mnist", None, "stretch").to_list()
    assert [(s["op"], s["mode"]) for s in stretch] == [("resize", "stretch")]
    assert declared_pipeline("mnist", card(preprocess=())).declared is False  # recorded: none
    steps = ({"op": "resize", "mode": "letterbox"},)
    assert declared_pipeline("mnist", card(preprocess=steps)).to_list()[0]["mode"] == "letterbox"
    zoo = declared_pipeline("mnist", card(preprocess=None)).to_list()  # not recorded: the zoo's declaration
    assert [s["op"] for s in zoo] == [s["op"] for s in PRESETS["digits"]]
    assert declared_pipeline("my-own-model", None).declared is False


def test_source_names_where_the_images_come_from(data_dir, tmp_path):
    assert DataPlan(None, SPEC, NONE, folder=tmp_path).source == str(tmp_path)
    assert DataPlan.for_card(card()).source == "mnist"
    assert DataPlan(None, SPEC, NONE, reference="cifar10").source == "cifar10"
    assert DataPlan(None, SPEC, NONE).source == "no labelled data"
    assert DataPlan(None, SPEC, NONE).labels == () and DataPlan.for_card(card()).labels == tuple("0123456789")


# --- a user's folder ----------------------------------------------------------------------------------------

def make_folder(root: Path, per_class: int = 10, classes=("cat", "dog", "owl")) -> dict[str, Path]:
    """Numbered PNGs, class by class; returns number -> file."""
    files, number = {}, 0
    for cls in classes:
        (root / cls).mkdir(parents=True)
        for image in numbered(per_class, number):
            files[number] = root / cls / f"{number:03d}.png"
            Image.fromarray(image).save(files[number])
            number += 1
    return files


def folder_card(dataset: Dataset, seed: int = 7, val: float = 0.25, held: Split | None = None) -> ModelCard:
    """held: the validation images training held out (their files recorded); None: a card from before that record."""
    return ModelCard(name="pets", classes=dataset.classes, input_spec=SPEC, dataset=dataset.name,
                     test=Scored("held-out test split", 0.5), data=data_record(dataset, val, held), preprocess=(),
                     training={"seed": seed})


def test_a_folder_models_splits_are_the_recorded_files(tmp_path):
    make_folder(tmp_path / "pets")
    dataset = load_image_folder(tmp_path / "pets", SPEC, test_fraction=0.2, seed=1)
    plan = DataPlan.for_card(folder_card(dataset))
    test_ids, train_ids = ids(dataset.test.x), ids(dataset.train.x)
    assert ids(plan.test().x) == test_ids and plan.test().y.tolist() == dataset.test.y.tolist()
    keep, hold = stratified_holdout(dataset.train.y, 0.25, 7)
    assert ids(plan.heldout().x) == [train_ids[i] for i in hold]
    fitted = {train_ids[i] for i in keep}
    assert set(ids(plan.calibration(100).x)) == fitted
    assert plan.source == str((tmp_path / "pets").resolve())
    assert plan.test().description == f"{(tmp_path / 'pets').resolve()} held-out test split ({len(test_ids)} images)"


def test_a_folder_models_recorded_validation_files_stay_put_when_images_are_added(tmp_path):
    make_folder(tmp_path / "pets")
    dataset = load_image_folder(tmp_path / "pets", SPEC, test_fraction=0.2, seed=1)
    keep, hold = stratified_holdout(dataset.train.y, 0.25, 7)
    recorded = folder_card(dataset, held=dataset.train.take(hold))
    assert {f for fs in recorded.data.val_files.values() for f in fs} == {dataset.train.files[i] for i in hold}
    assert all(f.startswith(f"{c}/") for c, fs in recorded.data.val_files.items() for f in fs)
    train_ids = ids(dataset.train.x)
    for cls, number in (("cat", 900), ("dog", 901), ("cat", 902)):  # sorted in among the recorded files
        Image.fromarray(numbered(1, number)[0]).save(tmp_path / "pets" / cls / f"000{number}.png")
    plan = DataPlan.for_card(recorded)
    assert sorted(ids(plan.heldout().x)) == sorted(train_ids[i] for i in hold)
    assert sorted(ids(plan.test().x)) == sorted(ids(dataset.test.x))
    assert set(ids(plan.calibration(100).x)) == {train_ids[i] for i in keep} | {900, 901, 902}
    legacy = DataPlan.for_card(folder_card(dataset))  # no recorded files: the seed picks from the grown folder
    assert sorted(ids(legacy.heldout().x)) != sorted(train_ids[i] for i in hold)


def test_a_folder_split_into_train_and_test_keeps_its_parts(tmp_path):
    make_folder(tmp_path / "pets" / "train")
    shutil.copytree(tmp_path / "pets" / "train", tmp_path / "elsewhere")
    for cls in ("cat", "dog", "owl"):
        (tmp_path / "pets" / "test" / cls).mkdir(parents=True)
    for number, image in enumerate(numbered(6, 500)):
        Image.fromarray(image).save(tmp_path / "pets" / "test" / ("cat", "dog", "owl")[number % 3] / f"{number}.png")
    dataset = load_image_folder(tmp_path / "pets", SPEC, seed=1)
    plan = DataPlan.for_card(folder_card(dataset))
    assert sorted(ids(plan.test().x)) == list(range(500, 506))
    assert sorted(ids(plan.calibration(100).x) + ids(plan.heldout().x)) == list(range(30))
    given = DataPlan(None, SPEC, NONE, folder=tmp_path / "pets", labels=("owl", "dog", "cat")).test()
    assert sorted(ids(given.x)) == list(range(500, 506))  # --data folder/ with train/ and test/: its test part
    assert {i: y for i, y in zip(ids(given.x), given.y.tolist())}[500] == 2  # labelled in the model's order
    whole = DataPlan(None, SPEC, NONE, folder=tmp_path / "elsewhere").test()
    assert sorted(ids(whole.x)) == list(range(30))  # a plain class-per-folder: every image


def test_a_folder_model_whose_images_are_gone_says_so(tmp_path):
    files = make_folder(tmp_path / "pets")
    dataset = load_image_folder(tmp_path / "pets", SPEC, test_fraction=0.2, seed=1)
    record = folder_card(dataset)
    recorded = [tmp_path / "pets" / f for fs in record.data.test_files.values() for f in fs]
    recorded[1].unlink()
    with pytest.raises(DataError, match=rf"1 of the {len(recorded)} held-out test images .* are gone \(first: "
                                        rf"{recorded[1]}\)"):
        DataPlan.for_card(record).test()
    _, hold = stratified_holdout(dataset.train.y, 0.25, 7)
    with_val = folder_card(dataset, held=dataset.train.take(hold))
    with pytest.raises(DataError, match=rf"1 of the {len(recorded) + len(hold)} held-out test and validation images"):
        DataPlan.for_card(with_val).test()
    recorded[1].write_bytes(b"not a png")
    with pytest.raises(DataError, match="recorded images no longer readable: .*not an image"):
        DataPlan.for_card(record).test()
    shutil.rmtree(tmp_path / "pets")
    with pytest.raises(DataError, match="was trained on .*pets, which is gone"):
        DataPlan.for_card(record).test()
    old = dataclasses.replace(record, data=None)  # a card from before the data record
    with pytest.raises(DataError, match="trained on a folder"):
        DataPlan.for_card(old).test()
    assert files  # (the folder existed)


def test_data_record_and_portable_source(tmp_path):
    make_folder(tmp_path / "pets", per_class=5)
    dataset = load_image_folder(tmp_path / "pets", SPEC, test_fraction=0.4, seed=1)
    record = data_record(dataset, 0.3)
    assert record.kind == "folder" and record.path == str((tmp_path / "pets").resolve())
    assert record.classes == ("cat", "dog", "owl") and record.val_fraction == 0.3
    assert {c: len(f) for c, f in record.test_files.items()} == {"cat": 2, "dog": 2, "owl": 2}
    assert all(f.startswith(f"{c}/") for c, fs in record.test_files.items() for f in fs)
    assert portable_source(dataset) == str((tmp_path / "pets").resolve())
    reference = Dataset("mnist", tuple("0123456789"), SPEC, dataset.train, dataset.test, source="/data/sets/mnist.npz")
    assert data_record(reference, 0.1) == DataRecord("dataset", name="mnist")
    assert portable_source(reference) == "mnist.npz"
    assert portable_source(dataclasses.replace(reference, source="keras.datasets.mnist")) == "keras.datasets.mnist"


# --- an exported file ---------------------------------------------------------------------------------------

MNIST_ONNX = REPO / "artifacts" / "mnist" / "mnist.onnx"


def test_an_exported_file_finds_its_card_beside_it_or_by_name(tmp_path, data_dir):
    info = read_info(MNIST_ONNX)
    beside = card_of_onnx(MNIST_ONNX, info)
    assert beside is not None and beside.source == MNIST_ONNX.parent / "metrics.json"
    copy = tmp_path / "mnist.onnx"
    shutil.copy(MNIST_ONNX, copy)
    assert card_of_onnx(copy, info) == beside  # no card beside: the model name's
    plan = plan_for_onnx(copy, info, data_dir=data_dir)
    assert plan.card == beside and plan.reference is None and plan.labels == info.labels
    assert len(plan.test()) == N_TEST and plan.test().description == "mnist official test split (60 images)"


def test_a_card_of_another_model_is_not_used(tmp_path, data_dir):
    info = read_info(MNIST_ONNX)
    shutil.copy(MNIST_ONNX, tmp_path / "mnist.onnx")
    raw = json.loads((MNIST_ONNX.parent / "metrics.json").read_text())
    (tmp_path / "metrics.json").write_text(json.dumps({**raw, "sha256": "0" * 64}))
    assert card_of_onnx(tmp_path / "mnist.onnx", info) is None  # another model.keras
    (tmp_path / "metrics.json").write_text(json.dumps({**raw, "dataset": "fashion_mnist"}))
    assert card_of_onnx(tmp_path / "mnist.onnx", info) is None  # another data set
    (tmp_path / "metrics.json").write_text(json.dumps({**raw, "sha256": ""}))
    assert card_of_onnx(tmp_path / "mnist.onnx", info) == read_card(tmp_path / "metrics.json")  # nothing to compare
    unsigned = dataclasses.replace(info, source_sha256="")
    (tmp_path / "metrics.json").write_text(json.dumps({**raw, "sha256": "0" * 64}))
    assert card_of_onnx(tmp_path / "mnist.onnx", unsigned) is not None
    plan = plan_for_onnx(tmp_path / "mnist.onnx", dataclasses.replace(info, dataset="mnist", source_sha256="1" * 64),
                         data_dir=data_dir)
    assert plan.card is None and plan.reference == "mnist"  # its data set by name, no card's split
    assert len(plan.test()) == N_TEST and plan.test().description == "mnist test (60 images)"


def test_a_file_with_no_known_data_asks_for_a_folder(tmp_path):
    info = dataclasses.replace(read_info(MNIST_ONNX), name="nosuch", dataset="my-photos")
    with pytest.raises(DataError, match=r"no labelled data known for it \(trained on 'my-photos'"):
        plan_for_onnx(tmp_path / "x.onnx", info)
    make_folder(tmp_path / "photos", per_class=2, classes=tuple("0123456789")[:3])
    plan = plan_for_onnx(tmp_path / "x.onnx", info, folder=tmp_path / "photos")
    assert plan.folder == tmp_path / "photos" and len(plan.test()) == 6
    nameless = dataclasses.replace(info, name="")
    assert card_of_onnx(tmp_path / "x.onnx", nameless) is None


def test_plans_take_their_options_by_keyword_and_images_are_values(tmp_path):
    with pytest.raises(TypeError):
        DataPlan(None, SPEC, NONE, tmp_path)  # type: ignore[misc]
    with pytest.raises(TypeError):
        DataPlan.for_card(card(), tmp_path)  # type: ignore[misc]
    with pytest.raises(TypeError):
        plan_for_onnx(MNIST_ONNX, read_info(MNIST_ONNX), tmp_path)  # type: ignore[misc]
    images = Images(numbered(2)[..., None], None, "two")
    with pytest.raises(dataclasses.FrozenInstanceError):
        images.description = "three"  # type: ignore[misc]


def test_a_limit_above_the_split_is_the_whole_split(data_dir):
    plan = DataPlan.for_card(card(), data_dir=data_dir)
    assert plan.test(limit=1000).description == "mnist official test split (60 images)"


def test_class_folders_named_train_or_test_are_classes(tmp_path):
    """Only a folder with BOTH train/ and test/ is a split folder; a class may be called 'train'."""
    make_folder(tmp_path / "odd", per_class=4, classes=("cat", "train"))
    given = DataPlan(None, SPEC, NONE, folder=tmp_path / "odd", labels=("cat", "train")).test()
    assert sorted(ids(given.x)) == list(range(8))
    dataset = load_image_folder(tmp_path / "odd", SPEC, test_fraction=0.25, seed=1)
    plan = DataPlan.for_card(folder_card(dataset, val=0.34))
    assert sorted(ids(plan.calibration(100).x) + ids(plan.heldout().x) + ids(plan.test().x)) == list(range(8))


def test_an_exported_files_own_preprocessing_is_used():
    plan = plan_for_onnx(MNIST_ONNX, read_info(MNIST_ONNX))
    assert [s["op"] for s in plan.pipeline.to_list()] == [s["op"] for s in PRESETS["digits"]]


def test_a_card_with_a_later_checksum_is_another_models(tmp_path):
    info = read_info(MNIST_ONNX)
    shutil.copy(MNIST_ONNX, tmp_path / "mnist.onnx")
    raw = json.loads((MNIST_ONNX.parent / "metrics.json").read_text())
    (tmp_path / "metrics.json").write_text(json.dumps({**raw, "sha256": "f" * 64}))
    assert card_of_onnx(tmp_path / "mnist.onnx", info) is None
    (tmp_path / "metrics.json").write_text(json.dumps({**raw, "dataset": "svhn"}))  # another data set, named later
    assert card_of_onnx(tmp_path / "mnist.onnx", info) is None


def test_gone_and_unreadable_recorded_images_are_counted(tmp_path):
    make_folder(tmp_path / "pets")
    dataset = load_image_folder(tmp_path / "pets", SPEC, test_fraction=0.2, seed=1)
    record = folder_card(dataset)
    recorded = sorted(tmp_path / "pets" / f for fs in record.data.test_files.values() for f in fs)
    for count, suffix in ((1, r"[^)]*\)$"), (2, r".* \(and 1 more\)$"), (3, r".* \(and 2 more\)$")):
        recorded[count - 1].write_bytes(b"not a png")
        with pytest.raises(DataError, match=rf"no longer readable: {recorded[0]}: not an image{suffix}"):
            DataPlan.for_card(record).test()
    recorded[0].unlink()
    recorded[1].unlink()
    with pytest.raises(DataError, match=rf"2 of the {len(recorded)} held-out test images .* \(first: {recorded[0]}\)"):
        DataPlan.for_card(record).test()
    old = dataclasses.replace(record, data=None, dataset="pets", dataset_source="/home/me/pets")
    with pytest.raises(DataError, match=r"^model 'pets' was trained on a folder \(/home/me/pets\) its card does not"):
        DataPlan.for_card(old).test()


def test_a_users_folder_named_like_a_reference_data_set_is_still_a_folder(tmp_path):
    make_folder(tmp_path / "mnist", per_class=5)
    dataset = load_image_folder(tmp_path / "mnist", SPEC, test_fraction=0.4, seed=1)
    assert data_record(dataset, 0.2).kind == "folder"
    assert portable_source(dataset) == str((tmp_path / "mnist").resolve())
