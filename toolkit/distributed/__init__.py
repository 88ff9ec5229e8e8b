"""edgecls.distributed: batch inference on a Ray cluster with Ray Data.

Importing this package is cheap: Ray is imported only by the functions that use it, and a missing
`ray` install raises one clear error naming `pip install 'edgecls[ray]'`. Inference itself goes
through `edgecls.runtime.Classifier` (same decoding and preprocessing as local `edgecls infer`).
"""

from .columns import prediction_columns, prediction_schema
from .dataset import classify_dataset
from .predictor import Predictor
from .ray_import import require_ray

__all__ = ["Predictor", "classify_dataset", "prediction_columns", "prediction_schema", "require_ray"]
