"""Reading and decoding a chunk of image sources into model-ready pixels: the work of the decoding workers.

Kept apart from the model code (no onnxruntime here), so that worker processes start with only numpy, Pillow
and the declared preprocessing loaded.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from .errors import ImageError
from .preprocess import ImageSource, load_pixels, prepare_with_stats, working_pixels
from .spec import InputSpec
from .transforms import Pipeline


def _decode_one(source: ImageSource, spec: InputSpec, pipeline: Optional[Pipeline]):
    try:
        if pipeline is not None and pipeline.declared:
            return working_pixels(source, spec)
        return load_pixels(source, spec)
    except ImageError as exc:
        return exc.reason
    except MemoryError:
        return "out of memory while decoding"
    except Exception as exc:  # noqa: BLE001 - a broken file must never stop the run
        return f"unreadable: {type(exc).__name__}: {exc}"


def decode_chunk(sources: Sequence[Any], spec: InputSpec, pipeline: Optional[Pipeline] = None
                 ) -> tuple[Optional[np.ndarray], list[int], dict[int, str], dict[str, np.ndarray]]:
    """Decode a chunk: (model-ready pixels of the good ones, their positions, {position: error},
    statistics the preprocessing measured for the good ones)."""
    good, positions, errors = [], [], {}
    for i, source in enumerate(sources):
        out = _decode_one(source, spec, pipeline)
        if isinstance(out, np.ndarray):
            good.append(out)
            positions.append(i)
        else:
            errors[i] = out
    if not good:
        return None, positions, errors, {}
    if pipeline is not None and pipeline.declared:
        pixels, stats = prepare_with_stats(good, spec, pipeline)
        return pixels, positions, errors, stats
    return np.stack(good), positions, errors, {}


def worker_init() -> None:
    import signal
    import warnings

    # Ctrl-C reaches the whole process group: the parent stops the run and shuts the pool down; a worker
    # dying of KeyboardInterrupt would only print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    from PIL import Image

    # Our own processes: a huge image is already an ImageError, keep Pillow's warning off stderr.
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
