"""`edgecls infer` writers, on hand-made results: exact CSV / JSON / JSON Lines text, errors and top-k padding.

Targets runtime/outputs.py, where issue 12 moved the writers (toolkit/cli/outputs.py only re-exports them).
Since the declared-preprocessing merge every row carries `unsure` (CSV: a column just before `error`)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from edgecls.runtime.outputs import FORMATS, Writer, result_dict
from edgecls.runtime.classifier import Prediction
from edgecls.runtime.stream import Result


def _ok(path: str, top: list[tuple[str, float]], unsure: bool = False) -> Result:
    probs = np.array([s for _, s in top], dtype=np.float32)
    return Result(path, Prediction(label=top[0][0], index=0, score=top[0][1], top_k=tuple(top), probabilities=probs,
                                   unsure=unsure))


GOOD = _ok("a.png", [("cat", 0.8765432), ("dog", 0.1234567), ("eel", 0.0000001)])
SHORT = _ok("b.png", [("dog", 1.0)], unsure=True)  # fewer labels than the asked top-k; flagged unsure
BAD = Result("c.png", None, "not an image")


def _write(fmt: str, results, top_k: int = 1) -> str:
    fh = io.StringIO()
    writer = Writer(fh, fmt, top_k)
    for r in results:
        writer.write(r)
    writer.close()
    assert writer.count == len(results)
    return fh.getvalue()


def test_cli_module_re_exports_the_library_writers():
    from edgecls.cli import outputs as cli_outputs

    assert (cli_outputs.FORMATS, cli_outputs.Writer, cli_outputs.result_dict) == (FORMATS, Writer, result_dict)


def test_formats():
    assert FORMATS == ("table", "csv", "json", "jsonl")
    with pytest.raises(ValueError, match="no streaming writer for 'table'"):
        Writer(io.StringIO(), "table", 1)


def test_result_dict():
    assert result_dict(GOOD) == {"path": "a.png", "label": "cat", "score": 0.876543,
                                 "top_k": [{"label": "cat", "score": 0.876543}, {"label": "dog", "score": 0.123457},
                                           {"label": "eel", "score": 0.0}], "labels": ["cat"], "unsure": False,
                                 "error": None}
    assert result_dict(SHORT)["unsure"] is True
    assert result_dict(BAD) == {"path": "c.png", "label": None, "score": None, "top_k": [], "labels": [],
                                "unsure": None, "error": "not an image"}
    # `labels` (issue 16): every label a multi-label model reports; the top label for single-label models
    assert list(result_dict(GOOD)) == ["path", "label", "score", "top_k", "labels", "unsure", "error"]


def test_csv_top1_exact_text():
    text = _write("csv", [GOOD, SHORT, BAD])
    assert text == ("path,label,score,unsure,error\r\na.png,cat,0.876543,false,\r\nb.png,dog,1.000000,true,\r\n"
                    "c.png,,,,not an image\r\n")


def test_csv_topk_header_padding_and_errors():
    rows = list(csv.reader(io.StringIO(_write("csv", [GOOD, SHORT, BAD], top_k=3))))
    assert rows == [
        ["path", "label", "score", "label_2", "score_2", "label_3", "score_3", "unsure", "error"],
        ["a.png", "cat", "0.876543", "dog", "0.123457", "eel", "0.000000", "false", ""],
        ["b.png", "dog", "1.000000", "", "", "", "", "true", ""],
        ["c.png", "", "", "", "", "", "", "", "not an image"],
    ]
    assert {len(r) for r in rows} == {9}  # every row as wide as the header


def test_csv_quotes_awkward_paths():
    odd = _ok('we,ird "name".png', [("x", 0.5)])
    rows = list(csv.reader(io.StringIO(_write("csv", [odd]))))
    assert rows[1][0] == 'we,ird "name".png'


def test_json_array_exact_text():
    text = _write("json", [GOOD, BAD], top_k=2)
    assert text == "[\n  " + json.dumps(result_dict(GOOD)) + ",\n  " + json.dumps(result_dict(BAD)) + "\n]\n"
    assert json.loads(text) == [result_dict(GOOD), result_dict(BAD)]


def test_json_with_no_results_is_an_empty_array():
    text = _write("json", [])
    assert text == "[]\n" and json.loads(text) == []


def test_json_lines_one_object_per_line():
    text = _write("jsonl", [GOOD, SHORT, BAD])
    lines = text.split("\n")
    assert lines[-1] == "" and len(lines) == 4
    assert [json.loads(line) for line in lines[:-1]] == [result_dict(r) for r in (GOOD, SHORT, BAD)]
    assert _write("jsonl", []) == ""


def test_close_flushes_the_handle():
    flushed = []

    class Handle(io.StringIO):
        def flush(self):
            flushed.append(True)
            super().flush()

    for fmt in ("csv", "jsonl", "json"):
        flushed.clear()
        Writer(Handle(), fmt, 1).close()
        assert flushed


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_format_names_built_at_run_time_work(fmt):
    """infer derives the format from the --output suffix: a runtime string, equal to but not the literal."""
    runtime_fmt = "".join(list(fmt))
    assert _write(runtime_fmt, [GOOD, BAD]) == _write(fmt, [GOOD, BAD])
