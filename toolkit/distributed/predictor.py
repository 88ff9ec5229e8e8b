"""The Ray Data actor that classifies batches: one onnxruntime session per actor, loaded once."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import TYPE_CHECKING, Any, Optional, Union

from ..runtime.classifier import Classifier
from ..runtime.errors import ImageError
from ..runtime.predictions import cap_top_k
from ..runtime.decoding import decode_chunk
from .columns import prediction_columns, prediction_schema

if TYPE_CHECKING:
    import pyarrow as pa
    import ray


class Predictor:
    """Callable class for `Dataset.map_batches(Predictor, fn_constructor_kwargs=..., batch_format="pyarrow")`.

    Rows carry a `path` and, optionally, the file's `bytes` (as `ray.data.read_binary_files(...,
    include_paths=True)` gives them). Without bytes the actor reads the path itself (URIs such as `s3://...`
    through pyarrow's file systems). Decoding, preprocessing and the unsure flag are local `edgecls infer`'s
    (`decode_chunk`, `Classifier.decode`), so the answers are the same. Every row comes back
    with the prediction columns; a file that cannot be read or decoded gets its reason in `error`, so one bad
    file never fails the job.

    model: the .onnx file's bytes or a Ray object reference to them (what `classify_dataset` sends: worker
    nodes need no copy of the model and every actor runs the variant the driver chose), or a path or model
    name resolvable on every node (each actor then applies the variant policy on its own node). threads: onnxruntime threads (None: the cores this actor's
    process may use, runtime/cores.py).
    """

    def __init__(
        self,
        model: Union[str, bytes, "ray.ObjectRef"],
        *,
        model_name: str = "model.onnx",
        variant: str = "auto",
        device: str = "auto",
        threads: Optional[int] = 1,
        top_k: int = 1,
        workspace: Optional[str] = None,
    ) -> None:
        import warnings

        from PIL import Image

        # A huge image is already an ImageError; keep Pillow's warning out of the worker logs.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        # Several actors share a node's cores: idle onnxruntime threads must not spin.
        options: dict[str, Any] = {"variant": variant, "device": device, "threads": threads, "spin": False}
        if not isinstance(model, (str, os.PathLike, bytes, bytearray)):
            import ray

            model = ray.get(model)
        if isinstance(model, (bytes, bytearray)):
            folder = tempfile.mkdtemp(prefix="edgecls-model-")
            try:
                path = os.path.join(folder, os.path.basename(model_name) or "model.onnx")
                with open(path, "wb") as fh:
                    fh.write(model)
                self.classifier = Classifier(path, **options)  # the session holds the model from here on
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        else:
            self.classifier = Classifier(model, workspace=workspace, **options)
        self.top_k = cap_top_k(top_k, self.classifier.labels)
        self.schema = prediction_schema(self.top_k)

    def __call__(self, batch: "pa.Table") -> "pa.Table":
        import pyarrow as pa

        if "path" not in batch.column_names:
            raise ValueError("edgecls Predictor needs a 'path' column (read_binary_files(..., include_paths=True))")
        paths = [str(p) for p in batch.column("path").to_pylist()]
        blobs = batch.column("bytes").to_pylist() if "bytes" in batch.column_names else None
        clf = self.classifier
        sources, at, errors = [], [], {}
        for i, path in enumerate(paths):
            try:
                sources.append(blobs[i] if blobs is not None else self._source(path))
                at.append(i)
            except ImageError as exc:
                errors[i] = exc.reason
        # The decoding of local `edgecls infer` (classify_stream): the model's declared preprocessing, one
        # error per bad file, and the measurements the unsure flag needs.
        pixels, positions, failed, stats = decode_chunk(sources, clf.spec, clf.pipeline)
        errors.update({at[p]: reason for p, reason in failed.items()})
        predictions = [] if pixels is None else clf.decode(clf.run(pixels), self.top_k, pixels=pixels, stats=stats)
        by_row = dict(zip((at[p] for p in positions), predictions))

        columns = prediction_columns(self.top_k)
        values: dict[str, list] = {name: [] for name in columns}
        for i, path in enumerate(paths):
            p = by_row.get(i)
            values["path"].append(path)
            values["label"].append(p.label if p else None)
            values["score"].append(p.score if p else None)
            values["unsure"].append(bool(p.unsure) if p else None)
            for k in range(2, self.top_k + 1):
                ranked = p.top_k[k - 1] if p and k <= len(p.top_k) else (None, None)
                values[f"label_{k}"].append(ranked[0])
                values[f"score_{k}"].append(ranked[1])
            values["error"].append(errors.get(i))
        out = pa.Table.from_pydict(values, schema=self.schema)
        # Keep the caller's own columns (ids, ground truth, ...); drop the image bytes.
        for name in batch.column_names:
            if name not in ("bytes", *columns):
                out = out.append_column(name, batch.column(name))
        return out

    def _source(self, path: str) -> Union[str, bytes]:
        """A plain path is decoded by the runtime loader (its error messages); a URI is fetched first."""
        if "://" not in path or path.startswith("file://"):
            return path[len("file://"):] if path.startswith("file://") else path
        import pyarrow.fs

        try:
            fs, inner = pyarrow.fs.FileSystem.from_uri(path)
        except (OSError, ValueError) as exc:  # unknown scheme, no credentials, ...
            raise ImageError(path, f"unreadable: {exc}") from None
        try:
            with fs.open_input_stream(inner) as fh:
                return fh.read()
        except FileNotFoundError:
            raise ImageError(path, "no such file") from None
        except OSError as exc:
            raise ImageError(path, f"unreadable: {exc}") from None
