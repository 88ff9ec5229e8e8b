"""Benchmark one format on one device, in its own process, and print the result as JSON.

    python -m edgecls.bench.worker '{"format": "onnx", "model": "...", "device": "cpu", ...}'

Running each row in a fresh process gives each format a clean peak-memory figure (VmHWM) and keeps
TensorFlow's thread pools from skewing onnxruntime's timings and vice versa.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]


def _keras(args: dict[str, Any]) -> tuple[Predict, int, str]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    if args["device"] == "cpu":
        tf.config.set_visible_devices([], "GPU")
    elif not tf.config.list_physical_devices("GPU"):
        raise RuntimeError("TensorFlow sees no GPU")
    model = keras.saving.load_model(args["model"], compile=False, safe_mode=True)
    # predict_on_batch: Keras's own per-batch call, without predict()'s per-call dataset set-up.
    return (lambda x: np.asarray(model.predict_on_batch(x))), Path(args["model"]).stat().st_size, \
        f"TensorFlow {tf.__version__}, predict_on_batch"


def _tflite(args: dict[str, Any]) -> tuple[Predict, int, str]:
    if args["device"] != "cpu":
        raise RuntimeError("the pip TensorFlow Lite interpreter has no CUDA delegate")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    from .engines import _interpreter, _tflite_predict, tflite_blobs

    model = keras.saving.load_model(args["model"], compile=False, safe_mode=True)
    blob = tflite_blobs(model, None, args["threads"])["fp32"]  # the same converter path as the head-to-head
    predict = _tflite_predict(_interpreter(blob, args["threads"]))
    return predict, len(blob), f"TensorFlow Lite {tf.__version__} (XNNPACK), fp32"


def _onnx(args: dict[str, Any]) -> tuple[Predict, int, str]:
    import onnxruntime

    from ..runtime.classifier import Classifier

    clf = Classifier(args["model"], device=args["device"], threads=args["threads"])
    if args["device"] == "cuda" and clf.provider != "CUDAExecutionProvider":
        raise RuntimeError(f"CUDA requested, got {clf.provider}")
    return clf.run, Path(args["model"]).stat().st_size, f"onnxruntime {onnxruntime.__version__}, {clf.provider}"


BACKENDS: dict[str, Callable[[dict[str, Any]], tuple[Predict, int, str]]] = {
    "keras": _keras,
    "tflite": _tflite,
    "onnx": _onnx,
}


def _peak_rss_mb() -> float:
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def throughput(predict: Predict, x: np.ndarray, batch: int, min_seconds: float, repeats: int) -> float:
    """Median img/s over `repeats` timed windows of at least `min_seconds`, after warm-up."""
    from ..runtime.timing import window_rate

    data = np.ascontiguousarray(np.resize(x, (batch, *x.shape[1:])).astype(np.float32))
    for _ in range(3):
        predict(data)
    return statistics.median(window_rate(predict, data, items=batch, window_s=min_seconds) for _ in range(repeats))


def latency_ms(predict: Predict, x: np.ndarray, runs: int) -> tuple[float, float]:
    from ..runtime.timing import call_times

    one = np.ascontiguousarray(x[:1].astype(np.float32))
    for _ in range(20):
        predict(one)
    times = np.array(call_times(predict, [(one,)], runs)) * 1000
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def run(args: dict[str, Any]) -> dict[str, Any]:
    x = np.load(args["data"], allow_pickle=False)
    predict, size, engine = BACKENDS[args["format"]](args)
    probs = np.concatenate([predict(np.ascontiguousarray(x[i : i + 256].astype(np.float32)))
                            for i in range(0, len(x), 256)])
    np.save(args["probs_out"], probs.astype(np.float32), allow_pickle=False)
    result: dict[str, Any] = {"size_bytes": size, "engine": engine, "throughput": {}}
    for batch in args["batch_sizes"]:
        result["throughput"][str(batch)] = throughput(predict, x, batch, args["min_seconds"], args["repeats"])
    result["latency_p50_ms"], result["latency_p99_ms"] = latency_ms(predict, x, args["latency_runs"])
    result["peak_rss_mb"] = _peak_rss_mb()
    return result


def main() -> None:
    # Every format gets the same NHWC pixels; the ONNX row includes the runtime's layout change,
    # since that is what `Classifier.run` costs a caller.
    print(json.dumps(run(json.loads(sys.argv[1]))))


if __name__ == "__main__":
    main()
