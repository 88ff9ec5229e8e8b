"""Transfer learning from the zoo's own backbones on a tiny real folder (CIFAR-10 JPEG pixels, 3 classes):
the backbone's weights are really loaded, BatchNorm stays in inference mode, the head has the user's classes,
the card says where the features came from, a bad --from is one clear line, and the result exports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecls.keras_files import load_keras_model
from edgecls.runtime.store import ModelFolder

CLASSES = ("airplane", "automobile", "bird")
REPO = Path(__file__).resolve().parent.parent


def _write(folder: Path, x: np.ndarray, y: np.ndarray, classes, per_class: int) -> None:
    for label, name in enumerate(classes):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in np.flatnonzero(y == label)[:per_class]:
            Image.fromarray(x[i].squeeze()).save(folder / name / f"{i:05d}.png")


@pytest.fixture(scope="module")
def folder(tmp_path_factory, data_dir) -> Path:
    """train/<class>/ 40 training images and test/<class>/ 30 official test images per class."""
    from edgecls.data import load_dataset

    cifar = load_dataset("cifar10", data_dir)
    root = tmp_path_factory.mktemp("small") / "three"
    _write(root / "train", cifar.train.x, cifar.train.y, CLASSES, 40)
    _write(root / "test", cifar.test.x, cifar.test.y, CLASSES, 30)
    return root


def _backbone(name: str):
    from edgecls.training.backbones import find_backbone
    from edgecls.training.transfer import Backbone
    from edgecls.zoo import get_model_spec

    keras_path, card = find_backbone(name)
    return Backbone(get_model_spec(name), keras_path, card, "test")


def _train(folder: Path, out: Path, snapshots: dict | None = None, **recipe_changes):
    from dataclasses import replace

    from edgecls.data import load_image_folder
    from edgecls.training.recipe import transfer_recipe
    from edgecls.training.transfer import train_transfer

    backbone = _backbone("cifar10")
    dataset = load_image_folder(folder, backbone.input_spec(), pipeline=backbone.pipeline())
    recipe = replace(transfer_recipe(len(dataset.train), dataset.num_classes), head_epochs=2, finetune_epochs=2,
                     **recipe_changes)

    def snapshot(phase, model):
        if snapshots is not None:
            snapshots[phase] = [w.copy() for w in model.get_weights()]

    result = train_transfer("three", backbone, dataset, ModelFolder("three", out / "three"), recipe, verbose=0,
                            on_log=lambda m: None, on_phase_end=snapshot)
    return result, backbone


@pytest.fixture(scope="module")
def trained(folder, tmp_path_factory):
    snapshots: dict = {}
    result, backbone = _train(folder, tmp_path_factory.mktemp("art"), snapshots)
    return result, backbone, snapshots


def _feature_weights(model) -> list[np.ndarray]:
    from edgecls.training.backbones import head_layer

    head = head_layer(model)
    return [w for layer in model.layers if layer is not head for w in layer.get_weights()]


def test_frozen_phase_keeps_the_zoo_features_and_trains_a_new_head(trained):
    import keras

    result, backbone, snapshots = trained
    zoo = load_keras_model(backbone.keras_path)
    shipped = load_keras_model(result.folder.keras_path)
    n_features = len(_feature_weights(zoo))
    after_frozen = snapshots["frozen"]
    # get_weights order: every feature layer's weights, then the head's kernel and bias
    for mine, theirs in zip(after_frozen[:n_features], _feature_weights(zoo)):
        np.testing.assert_array_equal(mine, theirs)  # loaded, and not touched while frozen
    assert after_frozen[-1].shape == (len(CLASSES),)  # a new 3-class head, not CIFAR-10's 10
    # fine-tuning moved the convolutions but not BatchNorm's statistics (inference mode)
    bn = [layer for layer in shipped.layers if isinstance(layer, keras.layers.BatchNormalization)]
    zoo_bn = {layer.name: layer for layer in zoo.layers if isinstance(layer, keras.layers.BatchNormalization)}
    assert bn
    for layer in bn:
        np.testing.assert_array_equal(layer.moving_mean.numpy(), zoo_bn[layer.name].moving_mean.numpy())
        np.testing.assert_array_equal(layer.moving_variance.numpy(), zoo_bn[layer.name].moving_variance.numpy())
    convs = [(a, b) for a, b in zip(shipped.layers, zoo.layers) if isinstance(a, keras.layers.Conv2D)]
    assert any(not np.array_equal(a.kernel.numpy(), b.kernel.numpy()) for a, b in convs)
    assert shipped.output_shape == (None, len(CLASSES))


def test_card_records_backbone_recipe_and_time(trained):
    result, backbone, _ = trained
    card = json.loads(result.folder.card_path.read_text())
    assert card["classes"] == list(CLASSES) and card["role"] == "custom"
    assert card["transfer"]["backbone"] == "cifar10" and card["transfer"]["layers_loaded"] == 16
    assert card["transfer"]["backbone_sha256"] == backbone.card.sha256
    assert card["preprocess"] == backbone.pipeline().to_list() == [{"op": "resize", "mode": "center_crop", "fill": 0.0}]
    assert card["input_spec"] == backbone.card.input_spec.to_dict()
    recipe = card["training"]["recipe"]
    assert recipe["kind"] == "transfer" and recipe["finetune_lr"] == pytest.approx(recipe["head_lr"] / 10)
    assert card["transfer"]["frozen_epochs_run"] == 2 and card["transfer"]["finetune_epochs_run"] == 2
    assert card["training"]["train_seconds"] > 0 and card["training"]["wall_seconds"] >= card["training"]["train_seconds"]
    assert card["test"]["num_samples"] == 90
    assert card["test"]["accuracy"] > 0.7  # 108 training images, 4 epochs; chance is 0.33


def test_transfer_training_is_seeded(trained, folder, tmp_path):
    again, _ = _train(folder, tmp_path)
    first = trained[0].history
    assert again.history["val_loss"] == pytest.approx(first["val_loss"], rel=1e-5)
    assert again.card.test.accuracy == trained[0].card.test.accuracy


def test_recipe_scales_with_the_data_set():
    from edgecls.training.recipe import Overrides, scratch_config, transfer_recipe
    from edgecls.zoo import get_model_spec

    small, large = transfer_recipe(900, 3), transfer_recipe(20000, 10)
    assert small.batch_size == 32 and large.batch_size == 128
    assert 900 * 0.9 / small.batch_size >= 20  # no 3-step epochs
    assert small.head_epochs > large.head_epochs and small.head_lr < large.head_lr
    cifar = get_model_spec("cifar10").train
    scratch = scratch_config(cifar, 900, 3)
    assert scratch.batch_size == 32 and scratch.learning_rate == pytest.approx(0.1 * 32 / 256)  # not 0.1
    assert scratch.early_stopping_patience and not scratch.use_official_val
    fixed = transfer_recipe(900, 3, Overrides(batch_size=8, learning_rate=0.01, epochs=4, patience=0, val_split=0.2))
    assert (fixed.batch_size, fixed.head_lr, fixed.head_epochs, fixed.finetune_epochs, fixed.patience,
            fixed.val_split) == (8, 0.01, 4, 4, 0, 0.2)


def _write_arrays(root: Path, x: np.ndarray, y: np.ndarray) -> Path:
    _write(root, x, y, [str(i) for i in range(3)], 8)
    return root


def test_backbone_is_chosen_by_the_images_look(tmp_path, folder, data_dir):
    from edgecls.data import load_dataset
    from edgecls.training.backbones import choose_backbone, look_at

    mnist = load_dataset("mnist", data_dir)
    fashion = load_dataset("fashion_mnist", data_dir)
    fer = load_dataset("fer2013", data_dir)
    assert choose_backbone(look_at(folder)).name == "cifar10"
    assert choose_backbone(look_at(_write_arrays(tmp_path / "d", mnist.train.x, mnist.train.y))).name == "mnist"
    paper = _write_arrays(tmp_path / "p", 255 - mnist.train.x, mnist.train.y)  # dark ink on white paper
    assert choose_backbone(look_at(paper)).name == "mnist"
    assert choose_backbone(look_at(_write_arrays(tmp_path / "f", fashion.train.x, fashion.train.y))).name == "fashion"
    assert choose_backbone(look_at(_write_arrays(tmp_path / "e", fer.train.x, fer.train.y))).name == "emotion"


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    from edgecls.cli import main

    monkeypatch.setattr("sys.argv", ["edgecls", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


def test_bad_from_is_one_clear_line(folder, tmp_path, monkeypatch, capsys):
    code, out, err = run_cli(monkeypatch, capsys, "train", "x", "--data", str(folder), "--from", "resnet50",
                             "--workspace", str(tmp_path))
    assert code == 1 and "--from 'resnet50': not a zoo model; backbones: cifar10, emotion, mnist, fashion" in err
    assert "Traceback" not in out + err and not (tmp_path / "x").exists()
    code, out, err = run_cli(monkeypatch, capsys, "train", "x", "--data", str(folder), "--from", "cifar10",
                             "--scratch", "--workspace", str(tmp_path))
    assert code == 1 and "give one or the other" in err
    monkeypatch.setattr("edgecls.runtime.store.zoo_dir", lambda: None)  # no zoo models anywhere
    monkeypatch.setenv("EDGECLS_WORKSPACE", str(tmp_path / "empty"))
    code, out, err = run_cli(monkeypatch, capsys, "train", "x", "--data", str(folder), "--from", "emotion")
    assert code == 1 and "--from 'emotion': no trained model" in err and "--scratch" in err


def test_backbones_come_from_the_shipped_models_when_the_workspace_has_none(tmp_path, monkeypatch):
    from edgecls.runtime.store import zoo_dir
    from edgecls.training.backbones import find_backbone

    monkeypatch.setenv("EDGECLS_WORKSPACE", str(tmp_path / "workspace"))  # a user's own models folder
    keras_path, card = find_backbone("cifar10", tmp_path / "workspace")
    assert keras_path == zoo_dir() / "cifar10" / "model.keras" and card.name == "cifar10"


def test_transferred_model_exports_and_validates(trained, folder, monkeypatch, capsys):
    result, _, _ = trained
    root = str(result.folder.directory.parent)
    code, out, err = run_cli(monkeypatch, capsys, "export", "three", "--workspace", root,
                             "--calib-data", str(folder / "train"), "--eval-data", str(folder / "test"))
    assert code == 0, out + err
    report = json.loads((result.folder.directory / "three.export.json").read_text())
    fp32 = {v["variant"]: v for v in report["variants"]}["fp32"]
    assert fp32["passed"] and fp32["validation"]["samples"] == 90
    assert fp32["validation"]["keras_accuracy"] == pytest.approx(result.card.test.accuracy)
    assert report["preprocess"] == [dict(s) for s in result.card.preprocess]
    code, out, err = run_cli(monkeypatch, capsys, "validate", str(result.folder.directory / "three.onnx"),
                             "--keras", str(result.folder.keras_path), "--eval-data", str(folder / "test"),
                             "--json")
    assert code == 0, out + err
    assert json.loads(out)["passed"]
