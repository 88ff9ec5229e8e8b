"""edgecls.api: what the `edgecls` commands do, as functions that return result dataclasses, for notebooks and
other apps. The commands only parse their flags, call these, print the results and map them to exit codes.

    from edgecls import api
    result = api.infer(["photos/"], "mnist", output="preds.csv")   # InferResult: choice, engine, tally, output
    api.evaluate("mnist").accuracy                                 # Evaluation
    api.tune("mnist").rows()                                       # TuneReport: what this machine runs, and why
    api.load_server(["mnist"]).run()                               # Server: variants chosen, engines tuned

Export, quantize and validate: edgecls.api.export (the exporters' functions, same conventions).
"""

from .bench import BenchResult, bench
from .evaluate import Evaluation, Evaluations, evaluate, evaluate_all
from .infer import InferResult, infer
from .infer_ray import RayInferResult, infer_ray
from .models import list_models
from .serve import Server, load_server, serve
from .train import TrainResult, train
from .tune import TuneReport, tune

__all__ = ["BenchResult", "Evaluation", "Evaluations", "InferResult", "RayInferResult", "Server", "TrainResult",
           "TuneReport", "bench", "evaluate", "evaluate_all", "infer", "infer_ray", "list_models", "load_server",
           "serve", "train", "tune"]
