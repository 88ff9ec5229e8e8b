"""Validate a loaded model against everything the runtime relies on, so a bad model fails at load with one
error naming the file and the field, instead of a traceback at the first batch (or, worse, wrong labels).

Checked: the labels (a non-empty JSON list of distinct strings), the input spec (channels 1 or 3, layout,
dtype, bounded height and width), and the graph itself (one float32 rank-4 input matching the spec in its
layout with a dynamic batch, one rank-2 float output whose width equals the number of labels).
"""

from __future__ import annotations

import numbers
from typing import Any, Optional, Sequence

from .errors import EdgeclsError
from .spec import InputSpec

MAX_SIDE = 4096  # pixels per side: a classifier input beyond this is a corrupt or hostile spec
RUNTIME_INPUT_DTYPES = {"float32": "tensor(float)"}  # what Classifier.run feeds (to_batch gives float32)
OUTPUT_TYPES = ("tensor(float)", "tensor(float16)", "tensor(double)")


class ModelCheckError(EdgeclsError):
    """A model file that edgecls cannot run correctly; the message names the file and the field."""

    def __init__(self, source: str, field: str, problem: str) -> None:
        super().__init__(f"{source}: invalid model: {field} {problem}")
        self.source, self.field, self.problem = source, field, problem


def check_labels(labels: Any, source: str, field: str = "metadata edgecls.labels") -> tuple[str, ...]:
    """Labels must be a non-empty list of distinct strings: index i names output column i."""
    if not isinstance(labels, list):
        raise ModelCheckError(source, field, f"must be a JSON list of class names, got {type(labels).__name__}")
    if not labels:
        raise ModelCheckError(source, field, "is empty")
    bad = [i for i, label in enumerate(labels) if not isinstance(label, str)]
    if bad:
        raise ModelCheckError(source, field, f"must hold strings only; item {bad[0]} is {labels[bad[0]]!r}")
    if len(set(labels)) != len(labels):
        dupes = sorted({label for label in labels if labels.count(label) > 1})
        raise ModelCheckError(source, field, f"has duplicate class names: {', '.join(map(repr, dupes[:5]))}")
    return tuple(labels)


def check_input_spec(data: Any, source: str, field: str = "metadata edgecls.input") -> InputSpec:
    """The input spec as the runtime needs it: sane types and bounds before anything is allocated."""
    if not isinstance(data, dict):
        raise ModelCheckError(source, field, f"must be a JSON object, got {type(data).__name__}")
    for key in ("height", "width", "channels"):
        value = data.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ModelCheckError(source, f"{field}.{key}", f"must be an integer, got {value!r}")
    for key in ("height", "width"):
        if not 1 <= data[key] <= MAX_SIDE:
            raise ModelCheckError(source, f"{field}.{key}", f"is {data[key]}; must be 1-{MAX_SIDE} pixels")
    if data["channels"] not in (1, 3):
        raise ModelCheckError(source, f"{field}.channels", f"is {data['channels']}; must be 1 (grey) or 3 (RGB)")
    layout = data.get("layout", "NHWC")
    if layout not in ("NHWC", "NCHW"):
        raise ModelCheckError(source, f"{field}.layout", f"is {layout!r}; must be NHWC or NCHW")
    dtype = data.get("dtype", "float32")
    if dtype not in RUNTIME_INPUT_DTYPES:
        raise ModelCheckError(source, f"{field}.dtype", f"is {dtype!r}; edgecls feeds {', '.join(RUNTIME_INPUT_DTYPES)}")
    for key in ("pixel_min", "pixel_max"):
        if key in data and (not isinstance(data[key], numbers.Real) or isinstance(data[key], bool)):
            raise ModelCheckError(source, f"{field}.{key}", f"must be a number, got {data[key]!r}")
    try:
        return InputSpec.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise ModelCheckError(source, field, str(exc)) from None


def _dims(shape: Sequence[Any]) -> str:
    return "[" + ", ".join(str(d) if isinstance(d, int) else (d or "?") for d in shape) + "]"


def check_session(session: Any, labels: Sequence[str], spec: InputSpec, source: str,
                  output_width: Optional[int] = None) -> None:
    """The graph matches its metadata: one input the runtime can feed, one (batch, classes) output."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs)
        raise ModelCheckError(source, "graph inputs", f"are {len(inputs)} ({names}); edgecls models take exactly one image input")
    if len(outputs) != 1:
        names = ", ".join(o.name for o in outputs)
        raise ModelCheckError(source, "graph outputs", f"are {len(outputs)} ({names}); edgecls models have exactly one output")
    inp, out = inputs[0], outputs[0]
    want_type = RUNTIME_INPUT_DTYPES[spec.dtype]
    if inp.type != want_type:
        raise ModelCheckError(source, f"input {inp.name!r} type", f"is {inp.type}; the metadata declares {spec.dtype} ({want_type})")
    shape = list(inp.shape)
    if len(shape) != 4:
        raise ModelCheckError(source, f"input {inp.name!r} shape", f"is {_dims(shape)} (rank {len(shape)}); "
                              f"expected rank 4 (batch, {', '.join(spec.layout[1:])}) as the metadata's layout says")
    expected = spec.shape
    for axis, (have, want) in enumerate(zip(shape[1:], expected), start=1):
        if isinstance(have, int) and have > 0 and have != want:
            raise ModelCheckError(source, f"input {inp.name!r} shape", f"is {_dims(shape)}; the metadata declares "
                                  f"{spec.height}x{spec.width}x{spec.channels} in {spec.layout} (axis {axis} should be {want})")
    if isinstance(shape[0], int) and shape[0] > 0:
        raise ModelCheckError(source, f"input {inp.name!r} shape", f"is {_dims(shape)}: the batch size is fixed at "
                              f"{shape[0]}; edgecls needs a dynamic batch axis (export with a dynamic batch)")
    oshape = list(out.shape)
    if len(oshape) != 2:
        raise ModelCheckError(source, f"output {out.name!r} shape", f"is {_dims(oshape)} (rank {len(oshape)}); "
                              "expected (batch, classes)")
    if out.type not in OUTPUT_TYPES:
        raise ModelCheckError(source, f"output {out.name!r} type", f"is {out.type}; expected float scores")
    width, want_width = oshape[1], len(labels) if output_width is None else output_width
    if isinstance(width, int) and width > 0 and width != want_width:
        raise ModelCheckError(source, "metadata edgecls.labels", f"has {len(labels)} class names but output "
                              f"{out.name!r} has {width} columns; each column needs exactly one label")
