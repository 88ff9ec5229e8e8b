"""Which images do which job, checked on the images themselves (a digest of each model-ready image), never on
counts: a model is scored only on images it neither fitted on nor selected its best epoch with; int8 calibrates
on images it fitted on; the unsure flag calibrates on the validation images training held out. Checked for a
shipped model on its reference data set (the data plan, what export hands to the exporter) and for a model
trained on a user's folder (what training used, its card's test file list, the plan, export_data, prepare_job)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecls.card import read_card
from edgecls.data import load_dataset
from edgecls.data.plan import DataPlan, declared_pipeline, plan_for_onnx
from edgecls.exporters.quantize import QuantOptions
from edgecls.exporting import export_data
from edgecls.runtime.metadata import read_info
from edgecls.runtime.preprocess import load_pixels
from edgecls.runtime.store import model_folder
from edgecls.training.trainer import _split_validation
from edgecls.zoo import get_model_spec


def digests(pixels: np.ndarray) -> set[bytes]:
    """One digest per model-ready image; the set must not lose an image to a duplicate."""
    found = {hashlib.blake2b(np.ascontiguousarray(row).tobytes(), digest_size=16).digest() for row in pixels}
    assert len(found) == len(pixels), "duplicate images: digests cannot tell them apart"
    return found


def assert_disjoint(**parts: set[bytes]) -> None:
    names = list(parts)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            shared = len(parts[a] & parts[b])
            assert shared == 0, f"{shared} images are both {a} and {b} images"


def assert_within(part: set[bytes], whole: set[bytes], what: str) -> None:
    assert part <= whole, f"{len(part - whole)} of {len(part)} {what}"


class Parts:
    """What training did with a reference data set, as model-ready digests: fitted on, held out, tested on."""

    def __init__(self, name: str, data_dir: Path) -> None:
        self.card = read_card(model_folder(name).card_path)
        dataset = load_dataset(self.card.dataset, data_dir)
        fitted, held = _split_validation(dataset, get_model_spec(name).train, self.card.seed)  # what training does
        self.pipeline = declared_pipeline(name, self.card)
        size = (self.card.input_spec.height, self.card.input_spec.width)
        self.fitted, self.held, self.test = (digests(self.pipeline(split.x, size))
                                             for split in (fitted, held, dataset.test))
        assert_disjoint(fitted=self.fitted, held_out=self.held, test=self.test)  # the data set itself


@pytest.fixture(scope="module", params=["mnist", "cifar10"])
def shipped(request, data_dir) -> Parts:
    return Parts(request.param, data_dir)


def test_the_plan_tests_on_the_test_split_and_calibrates_on_fitted_images(shipped, data_dir):
    plan = DataPlan.for_card(shipped.card, data_dir=data_dir)
    calibration = digests(plan.calibration(512, seed=1337).x)
    held, test = digests(plan.heldout().x), digests(plan.test().x)
    assert test == shipped.test
    assert held == shipped.held  # the very images training picked its best epoch with
    assert len(calibration) == 512
    assert_within(calibration, shipped.fitted, "calibration images are not images training fitted on")
    assert_disjoint(calibration=calibration, held_out=held, test=test)
    assert_within(digests(plan.test(limit=300).x), shipped.test, "sampled test images are not test images")


def test_export_hands_the_exporter_disjoint_images(shipped, data_dir):
    card = shipped.card
    data = export_data(card, card.input_spec, shipped.pipeline, card.classes, QuantOptions(calib_size=256),
                       wants_static=True, calib_data=None, eval_data=None, eval_limit=1000, data_dir=data_dir)
    validation, calibration, unsure = digests(data.evaluation.x), digests(data.calibration.x), digests(data.unsure.x)
    assert len(validation) == 1000 and len(calibration) == 256
    assert_within(validation, shipped.test, "validation images are not test images")
    assert_within(calibration, shipped.fitted, "calibration images are not images training fitted on")
    assert unsure == shipped.held
    assert_disjoint(validation=validation, calibration=calibration, unsure_calibration=unsure)


def test_an_exported_file_is_scored_on_its_models_test_split(shipped, data_dir):
    onnx = model_folder(shipped.card.name).variant_path("fp32")
    plan = plan_for_onnx(onnx, read_info(onnx), data_dir=data_dir)
    assert_within(digests(plan.test(limit=500).x), shipped.test, "images it is scored on are not test images")


# --- a model trained on a user's folder ----------------------------------------------------------------------

CLASSES = {"zero": 0, "one": 1, "two": 2}
PER_CLASS = 40


def make_digit_folder(root: Path, mnist) -> None:
    """40 MNIST training digits per class as PNG files, class by class (as users sort them)."""
    for name, digit in CLASSES.items():
        (root / name).mkdir(parents=True)
        for i, index in enumerate(np.flatnonzero(mnist.train.y == digit)[:PER_CLASS]):
            Image.fromarray(mnist.train.x[index, ..., 0]).save(root / name / f"{i:03d}.png")


class Spy:
    """What training really fitted on, selected with and tested on (the splits it handed to Keras and to the
    card), as model-ready digests."""

    def __init__(self, monkeypatch) -> None:
        from edgecls.training import pipeline, trainer

        self.fitted: set[bytes] = set()
        make_dataset, finish = pipeline.make_dataset, trainer.finish_training

        def spy_make_dataset(split, *args, shuffle=False, **kw):
            if shuffle:  # the training split (the validation split is not shuffled)
                self.fitted = digests(split.x)
            return make_dataset(split, *args, shuffle=shuffle, **kw)

        def spy_finish(spec, dataset, model, folder, history, best_epoch, test_split, val_split, *args, **kw):
            self.test, self.held = digests(test_split.x), digests(val_split.x)
            return finish(spec, dataset, model, folder, history, best_epoch, test_split, val_split, *args, **kw)

        monkeypatch.setattr(pipeline, "make_dataset", spy_make_dataset)
        monkeypatch.setattr(trainer, "finish_training", spy_finish)


@pytest.mark.slow
def test_a_folder_model_keeps_its_splits_apart_in_every_job(tmp_path, monkeypatch, mnist):
    pytest.importorskip("tensorflow")
    from typer.testing import CliRunner

    from edgecls.cli import app
    from edgecls.exporting import prepare_job

    folder, workspace = tmp_path / "digits", tmp_path / "workspace"
    make_digit_folder(folder, mnist)
    spy = Spy(monkeypatch)
    result = CliRunner().invoke(app, ["train", "digits", "--data", str(folder), "--arch", "mnist", "--epochs", "1",
                                      "--workspace", str(workspace)])
    assert result.exit_code == 0, result.output
    assert_disjoint(fitted=spy.fitted, held_out=spy.held, test=spy.test)
    assert len(spy.fitted | spy.held | spy.test) == PER_CLASS * len(CLASSES)  # every image had one job

    card = read_card(workspace / "digits" / "metrics.json")
    pipeline = declared_pipeline(card.name, card)
    by_file = {p: digests(load_pixels(p, card.input_spec, pipeline)[None]).pop()
               for p in sorted(folder.rglob("*.png"))}
    recorded = {folder / f for files in card.data.test_files.values() for f in files}
    assert {by_file[p] for p in recorded} == spy.test  # the card names exactly the files training tested on
    assert all(p.parent.name == cls for cls, files in card.data.test_files.items() for p in
               (folder / f for f in files))

    plan = DataPlan.for_card(card)
    assert digests(plan.test().x) == spy.test
    assert digests(plan.heldout().x) == spy.held
    assert_within(digests(plan.calibration(512).x), spy.fitted, "calibration images were not fitted on")

    data = export_data(card, card.input_spec, pipeline, card.classes, QuantOptions(), wants_static=True,
                       calib_data=None, eval_data=None, eval_limit=None, data_dir=None)
    assert digests(data.evaluation.x) == spy.test
    assert_within(digests(data.calibration.x), spy.fitted, "calibration images were not fitted on")
    assert digests(data.unsure.x) == spy.held

    job, _ = prepare_job("digits", variants=("fp32", "int8"), workspace=workspace)
    assert digests(job.eval_data.x) == spy.test
    assert_within(digests(job.calib_pixels), spy.fitted, "calibration images were not fitted on")
    assert digests(job.unsure.pixels) == spy.held

    # images added to the folder later (sorted in among the others) move neither the test nor the held-out split
    added = set()
    for name, digit in CLASSES.items():
        for i, index in enumerate(np.flatnonzero(mnist.train.y == digit)[PER_CLASS:PER_CLASS + 5]):
            Image.fromarray(mnist.train.x[index, ..., 0]).save(folder / name / f"{i:03d}a.png")
            added |= digests(load_pixels(folder / name / f"{i:03d}a.png", card.input_spec, pipeline)[None])
    grown = DataPlan.for_card(card)
    assert digests(grown.test().x) == spy.test and digests(grown.heldout().x) == spy.held
    assert_within(digests(grown.calibration(512).x), spy.fitted | added, "calibration images were tested or held out")
