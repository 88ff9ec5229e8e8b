"""Every way to run one Keras model on the CPU, in one process, each as `predict(uint8 NHWC) -> scores`.

The peers a user could pick instead of edgecls: Keras itself, TensorFlow Lite fp32 and full-integer int8
(XNNPACK; the stock converter on the same model.keras), and Keras 3's own ONNX export on a default
onnxruntime session. Every engine takes the same uint8 pixels and pays for its own conversion to what it
reads, as a caller would. All of them get the same number of intra-op threads, so TensorFlow being loaded
in the process does not change what onnxruntime gets (and vice versa).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]

# TFLite full-int8 I/O: uint8 pixels in (the shipped models read 0-255, so the input scale is ~1 and no
# float conversion happens), uint8 scores out, dequantized in `predict` (counted in its time).
TFLITE_INT8_IO = "uint8 input, uint8 output (dequantized to float in the timed call)"
CALIBRATION_IMAGES = 512  # TFLite's representative data set, as edgecls's int8 calibration uses


@dataclass
class Engine:
    label: str  # e.g. "TFLite int8"
    kind: str  # "peer" | "edgecls"
    variant: str  # fp32 | fp16 | int8
    predict: Predict
    size_bytes: int
    detail: str  # engine and version, I/O types


def _tf(threads: int):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.config.set_visible_devices([], "GPU")
    try:  # only possible before TensorFlow runs its first op
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass
    return tf


def _load_keras(path: Path):
    import keras

    return keras.saving.load_model(path, compile=False, safe_mode=True)


def keras_engine(model, path: Path, threads: int) -> Engine:
    tf = _tf(threads)
    return Engine("Keras", "peer", "fp32", lambda x: np.asarray(model.predict_on_batch(x.astype(np.float32))),
                  path.stat().st_size, f"TensorFlow {tf.__version__}, predict_on_batch")


def _interpreter(blob: bytes, threads: int):
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice (LiteRT)
        return tf.lite.Interpreter(model_content=blob, num_threads=threads)


def _tflite_predict(interpreter) -> Predict:
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    in_scale, in_zero = inp["quantization"]
    out_scale, out_zero = out["quantization"]
    in_dtype = inp["dtype"]
    identity_input = in_dtype == np.uint8 and abs(in_scale - 1.0) < 1e-6 and in_zero == 0
    shape = [None]

    def predict(x: np.ndarray) -> np.ndarray:
        if shape[0] != x.shape:
            interpreter.resize_tensor_input(inp["index"], x.shape)
            interpreter.allocate_tensors()
            shape[0] = x.shape
        if in_dtype == np.float32:
            x = x.astype(np.float32)
        elif not identity_input:  # quantize to the interpreter's input scale
            x = np.clip(np.rint(x / in_scale + in_zero), 0, 255).astype(in_dtype)
        interpreter.set_tensor(inp["index"], np.ascontiguousarray(x))
        interpreter.invoke()
        y = interpreter.get_tensor(out["index"])
        if out["dtype"] != np.float32:
            return (y.astype(np.float32) - out_zero) * out_scale
        return y.copy()

    return predict


def tflite_blobs(model, calibration: Optional[np.ndarray], threads: int) -> dict[str, bytes]:
    """fp32 and (when calibration pixels are given) full-integer int8 flatbuffers from the stock converter.
    Keras 3 -> SavedModel -> TFLiteConverter: from_concrete_functions on a traced Keras 3 model lost its weights."""
    tf = _tf(threads)
    blobs = {}
    with tempfile.TemporaryDirectory(prefix="edgecls-tflite-") as tmp:
        model.export(tmp, format="tf_saved_model", verbose=False)
        blobs["fp32"] = tf.lite.TFLiteConverter.from_saved_model(tmp).convert()
        if calibration is not None:
            conv = tf.lite.TFLiteConverter.from_saved_model(tmp)
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            images = calibration[:CALIBRATION_IMAGES].astype(np.float32)
            conv.representative_dataset = lambda: ([img[None]] for img in images)
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type = tf.uint8
            conv.inference_output_type = tf.uint8
            blobs["int8"] = conv.convert()
    return blobs


def tflite_engines(model, calibration: Optional[np.ndarray], threads: int) -> list[Engine]:
    import tensorflow as tf

    engines = []
    for variant, blob in tflite_blobs(model, calibration, threads).items():
        io = "float32 I/O" if variant == "fp32" else TFLITE_INT8_IO
        engines.append(Engine(f"TFLite {variant}", "peer", variant, _tflite_predict(_interpreter(blob, threads)),
                              len(blob), f"TensorFlow Lite {tf.__version__} (XNNPACK), {io}"))
    return engines


def keras_onnx_engine(model, threads: int) -> Engine:
    """Keras 3's own `model.export(format="onnx")` on an onnxruntime session with default options
    (only the thread count set, to the same value as every other engine)."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="edgecls-kerasonnx-") as tmp:
        path = Path(tmp) / "model.onnx"
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.export(str(path), format="onnx", verbose=False)
        blob = path.read_bytes()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return Engine("Keras->ONNX fp32", "peer", "fp32",
                  lambda x: session.run(None, {name: x.astype(np.float32)})[0], len(blob),
                  f"keras.Model.export(format='onnx'), onnxruntime {ort.__version__} default session")


def edgecls_engines(files: dict[str, Path], threads: int, spin: bool = True) -> list[Engine]:
    """edgecls's own variants through `Classifier.run` on uint8 pixels (what an embedding app calls)."""
    import onnxruntime as ort

    from ..runtime.classifier import Classifier

    engines = []
    for variant, path in files.items():
        clf = Classifier(path, device="cpu", threads=threads, spin=spin)
        engines.append(Engine(f"edgecls {variant}", "edgecls", variant, clf.run, path.stat().st_size,
                              f"onnxruntime {ort.__version__}, {clf.provider}, Classifier.run on uint8"))
    return engines


def build_engines(keras_path: Optional[Path], files: dict[str, Path], threads: int,
                  calibration: Optional[np.ndarray], on_error: Callable[[str, str], None],
                  spin: bool = True) -> list[Engine]:
    """Peers first (when a Keras model is given), then edgecls's variants. An engine that cannot be built is
    reported through on_error(label, reason) and left out; the others go on."""
    engines: list[Engine] = []
    if keras_path is not None:
        try:
            _tf(threads)
            model = _load_keras(keras_path)
        except Exception as exc:  # noqa: BLE001 - any load failure: the peers are skipped, edgecls still runs
            on_error("Keras", _reason(exc))
            model = None
        if model is not None:
            for label, build in (("Keras", lambda: [keras_engine(model, keras_path, threads)]),
                                 ("TFLite", lambda: tflite_engines(model, calibration, threads)),
                                 ("Keras->ONNX fp32", lambda: [keras_onnx_engine(model, threads)])):
                try:
                    engines.extend(build())
                except Exception as exc:  # noqa: BLE001 - converters raise anything; report and go on
                    on_error(label, _reason(exc))
    for variant, path in files.items():
        try:
            engines.extend(edgecls_engines({variant: path}, threads, spin))
        except Exception as exc:  # noqa: BLE001
            on_error(f"edgecls {variant}", _reason(exc))
    return engines


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__
