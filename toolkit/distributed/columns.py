"""The flat prediction table: one row per file, the same columns locally (CSV) and on Ray (Parquet/CSV)."""

from __future__ import annotations


def prediction_columns(top_k: int = 1) -> list[str]:
    """`path, label, score, label_2, score_2, ..., unsure, error` for `top_k` labels per file: the header of
    local `edgecls infer -o x.csv` (edgecls.runtime.outputs.Writer; a test compares the two)."""
    columns = ["path", "label", "score"]
    for i in range(2, top_k + 1):
        columns += [f"label_{i}", f"score_{i}"]
    return columns + ["unsure", "error"]


def prediction_schema(top_k: int = 1) -> "pyarrow.Schema":  # noqa: F821 - pyarrow comes with the ray extra
    """Arrow types of `prediction_columns`: strings, float64 scores, a boolean `unsure`; nulls on error rows."""
    import pyarrow as pa

    kinds = {"path": pa.string(), "label": pa.string(), "score": pa.float64(), "unsure": pa.bool_(),
             "error": pa.string()}
    return pa.schema([(name, kinds[name.split("_")[0]]) for name in prediction_columns(top_k)])
