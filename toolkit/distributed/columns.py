"""The flat prediction table: one row per file, the same columns locally (CSV) and on Ray (Parquet/CSV)."""

from __future__ import annotations


def prediction_columns(top_k: int = 1) -> list[str]:
    """`path, label, score, unsure, label_2, score_2, ..., error` for `top_k` labels per file."""
    columns = ["path", "label", "score", "unsure"]
    for i in range(2, top_k + 1):
        columns += [f"label_{i}", f"score_{i}"]
    return columns + ["error"]


def prediction_schema(top_k: int = 1) -> "pyarrow.Schema":  # noqa: F821 - pyarrow comes with the ray extra
    """Arrow types of `prediction_columns`: strings, float64 scores, a boolean `unsure`; nulls on error rows."""
    import pyarrow as pa

    kinds = {"path": pa.string(), "label": pa.string(), "score": pa.float64(), "unsure": pa.bool_(),
             "error": pa.string()}
    return pa.schema([(name, kinds[name.split("_")[0]]) for name in prediction_columns(top_k)])
