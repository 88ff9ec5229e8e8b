"""edgecls.api: what the `edgecls` commands do, as functions that return result dataclasses, for notebooks and
other apps. The commands only parse their flags, call these, print the results and map them to exit codes.

    from edgecls import api
    result = api.infer(["photos/"], "mnist", output="preds.csv")   # InferResult: choice, engine, tally, output
    api.evaluate("mnist").accuracy                                 # Evaluation
    api.tune("mnist").rows()                                       # TuneReport: what this machine runs, and why
    api.load_server(["mnist"]).run()                               # Server: variants chosen, engines tuned
    api.export("mnist", int8=True, fp16=True).written              # ExportResult: report, files, failure
    api.quantize("model.onnx", calib_data="photos/").passed        # QuantizeResult
    api.validate("mnist.int8.onnx").row                            # ValidationResult: figures, failures, notes

A gate failure is a result (`passed` False, `failure` says which gate, by how much, on how many images), not an
exception. Heavy libraries (TensorFlow, onnxruntime) load only inside the calls that need them.
"""

from .bench import BenchResult, bench
from .evaluate import Evaluation, Evaluations, evaluate, evaluate_all
from .export import (ExportResult, ExportRow, QuantizeResult, ValidationResult, export, exports, package, quantize,
                     validate)
from .infer import InferResult, infer
from .infer_ray import RayInferResult, infer_ray
from .models import list_models
from .serve import Server, load_server, serve
from .train import TrainResult, train
from .tune import TuneReport, tune

__all__ = ["BenchResult", "Evaluation", "Evaluations", "ExportResult", "ExportRow", "InferResult", "QuantizeResult",
           "RayInferResult", "Server", "TrainResult", "TuneReport", "ValidationResult", "bench", "evaluate",
           "evaluate_all", "export", "exports", "infer", "infer_ray", "list_models", "load_server", "package",
           "quantize", "serve", "train", "tune", "validate"]
