"""`edgecls serve` end to end: a real server process on a loopback port, real models, real MNIST digits."""

from __future__ import annotations

import asyncio
import io
import signal
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from serving import metric_samples, require, start_server

httpx = require("httpx", "pip install -e '.[dev]'")
require("starlette", "edgecls serve needs the serve extra: pip install -e '.[serve]'")

from edgecls.runtime import Classifier  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MNIST_INT8 = REPO / "artifacts" / "mnist" / "mnist.int8.onnx"
BODY_LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def digits(data_dir):
    with np.load(data_dir / "mnist.npz") as d:
        return d["x_test"][:64], d["y_test"][:64]


@pytest.fixture(scope="module")
def mnist_clf() -> Classifier:
    return Classifier("mnist")  # the server serves what the one variant policy picks, as Classifier does


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """mnist, cifar10 and mnist int8 under another name; batches wait 25 ms; 1 MiB body limit."""
    log = tmp_path_factory.mktemp("serve") / "server.log"
    srv = start_server(["mnist", "cifar10", f"digits8={MNIST_INT8}"],
                       ["--max-batch-size", "32", "--max-wait-ms", "25", "--max-body-mb", "1", "--threads", "1"], log)
    yield srv
    assert srv.stop() == -signal.SIGTERM, srv.log()  # uvicorn re-raises SIGTERM after draining


def _png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def _infer_body(pixels: np.ndarray, datatype: str = "UINT8", **extra) -> dict:
    return {"inputs": [{"name": "pixels", "shape": list(pixels.shape), "datatype": datatype,
                        "data": pixels.ravel().tolist()}], **extra}


def _outputs(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return {o["name"]: o for o in response.json()["outputs"]}


def test_health_server_metadata_and_repository(server):
    assert httpx.get(server.url + "/v2/health/live").json() == {"live": True}
    ready = httpx.get(server.url + "/v2/health/ready")
    assert ready.status_code == 200 and ready.json() == {"ready": True}
    meta = httpx.get(server.url + "/v2").json()
    assert meta["name"] == "edgecls" and meta["version"]
    index = httpx.post(server.url + "/v2/repository/index").json()
    assert [m["name"] for m in index] == ["mnist", "cifar10", "digits8"]
    assert {m["state"] for m in index} == {"READY"}


def test_model_metadata_and_readiness(server):
    meta = httpx.get(server.url + "/v2/models/cifar10").json()
    assert meta["name"] == "cifar10" and meta["versions"] == ["1"] and meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": "pixels", "datatype": "UINT8", "shape": [-1, 32, 32, 3],
                               "parameters": {"accepts": ["UINT8", "FP32"], "pixel_range": [0, 255],
                                              "model_layout": [-1, 3, 32, 32]}}]
    assert meta["outputs"][0] == {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}
    assert [o["name"] for o in meta["outputs"]] == ["probabilities", "labels", "scores", "unsure"]
    assert meta["parameters"]["labels"][:2] == ["airplane", "automobile"]
    int8 = httpx.get(server.url + "/v2/models/digits8/versions/1").json()
    assert int8["parameters"]["variant"] == "int8" and int8["parameters"]["file"] == "mnist.int8.onnx"
    for path in ("/v2/models/mnist/ready", "/v2/models/mnist/versions/1/ready"):
        r = httpx.get(server.url + path)
        assert r.status_code == 200 and r.json() == {"name": "mnist", "ready": True}
    missing = httpx.get(server.url + "/v2/models/nosuch")
    assert missing.status_code == 404 and "unknown model 'nosuch'" in missing.json()["error"]
    assert "mnist" in missing.json()["error"]  # names what the server has
    no_version = httpx.get(server.url + "/v2/models/mnist/versions/7/ready")
    assert no_version.status_code == 404 and "no version '7'" in no_version.json()["error"]


def test_infer_matches_the_runtime_in_every_accepted_layout(server, digits, mnist_clf):
    x, y = digits[0][:8], digits[1][:8]
    expected = mnist_clf.run(x)
    body = _infer_body(x[..., None], id="req-1", parameters={"top_k": 2})
    response = httpx.post(server.url + "/v2/models/mnist/infer", json=body)
    doc = response.json()
    assert doc["model_name"] == "mnist" and doc["model_version"] == "1" and doc["id"] == "req-1"
    out = _outputs(response)
    assert out["probabilities"]["datatype"] == "FP32" and out["probabilities"]["shape"] == [8, 10]
    np.testing.assert_allclose(np.array(out["probabilities"]["data"]).reshape(8, 10), expected, atol=1e-6)
    assert out["labels"]["datatype"] == "BYTES" and out["labels"]["shape"] == [8, 2]
    assert np.array(out["labels"]["data"]).reshape(8, 2)[:, 0].tolist() == [str(v) for v in y]  # all 8 correct
    assert out["scores"]["shape"] == [8, 2] and out["unsure"] == {"name": "unsure", "datatype": "BOOL",
                                                                    "shape": [8], "data": [False] * 8}
    # The model's own NCHW layout, grey without a channel axis, FP32 and nested data all give the same answer.
    variants = [_infer_body(x[:, None]), _infer_body(x), _infer_body(x[..., None].astype(np.float32), "FP32"),
                {"inputs": [{"name": "pixels", "shape": [8, 28, 28, 1], "datatype": "UINT8",
                             "data": x[..., None].tolist()}]}]
    for body in variants:
        got = _outputs(httpx.post(server.url + "/v2/models/mnist/infer", json=body))["probabilities"]
        np.testing.assert_allclose(np.array(got["data"]).reshape(8, 10), expected, atol=1e-6)
    only = httpx.post(server.url + "/v2/models/mnist/versions/1/infer",
                      json=_infer_body(x[:1], outputs=[{"name": "labels"}])).json()
    assert [o["name"] for o in only["outputs"]] == ["labels"] and only["outputs"][0]["shape"] == [1, 3]  # server --topk


def test_infer_cifar10_and_int8(server, digits):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    out = _outputs(httpx.post(server.url + "/v2/models/cifar10/infer", json=_infer_body(pixels)))
    np.testing.assert_allclose(np.array(out["probabilities"]["data"]).reshape(3, 10), Classifier("cifar10").run(pixels),
                               atol=1e-5)
    x = digits[0][:4]
    out = _outputs(httpx.post(server.url + "/v2/models/digits8/infer", json=_infer_body(x)))
    np.testing.assert_allclose(np.array(out["probabilities"]["data"]).reshape(4, 10),
                               Classifier(MNIST_INT8).run(x), atol=1e-5)


def test_classify_image_files(server, digits, mnist_clf):
    x, y = digits
    raw = httpx.post(server.url + "/v2/models/mnist/classify?top_k=3", content=_png(x[0]),
                     headers={"content-type": "image/png"})
    assert raw.status_code == 200, raw.text
    pred = raw.json()["predictions"][0]
    assert pred["label"] == str(y[0]) and pred["index"] == int(y[0]) and pred["unsure"] is False
    assert len(pred["top_k"]) == 3 and pred["top_k"][0] == {"label": str(y[0]), "score": pred["score"]}
    files = [("file", (f"digit{i}.png", _png(x[i]), "image/png")) for i in range(1, 4)]
    multi = httpx.post(server.url + "/v2/models/mnist/classify", files=files)
    assert multi.status_code == 200, multi.text
    preds = multi.json()["predictions"]
    assert [p["source"] for p in preds] == ["digit1.png", "digit2.png", "digit3.png"]
    assert [p["label"] for p in preds] == [p.label for p in mnist_clf.predict([_png(x[i]) for i in range(1, 4)])]
    assert [p["label"] for p in preds] == [str(v) for v in y[1:4]]


def test_page_is_served(server):
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<canvas id="pad"' in page.text and 'id="file"' in page.text


@pytest.mark.parametrize("body, status, message", [
    (b"{not json", 400, "malformed JSON"),
    (b"", 400, "empty request body"),
    (b"[1, 2]", 400, "must be a JSON object"),
    (b'{"inputs": []}', 400, "'inputs' must be a list holding one tensor"),
    (b'{"inputs": [{"name": "pixels", "shape": [1, 28, 28, 1], "datatype": "UINT8"}]}', 400, "missing 'data'"),
    (b'{"inputs": [{"name": "image", "shape": [1], "datatype": "UINT8", "data": [0]}]}', 400, "unknown input 'image'"),
    (b'{"inputs": [{"name": "pixels", "shape": [1, 28, 28, 1], "datatype": "INT64", "data": [0]}]}', 400,
     "unsupported datatype 'INT64'"),
    (b'{"inputs": [{"name": "pixels", "shape": [1, 32, 32, 3], "datatype": "UINT8", "data": []}]}', 400,
     "holds 0 values but shape [1, 32, 32, 3] needs 3072"),
    (b'{"inputs": [{"name": "pixels", "shape": [2, 2], "datatype": "UINT8", "data": [0, 0, 0, 0]}]}', 400,
     "input shape [2, 2] does not fit this model"),
    (b'{"inputs": [{"name": "pixels", "shape": [1, "a"], "datatype": "UINT8", "data": [0]}]}', 400,
     "'shape' must be a list of non-negative integers"),
    (b'{"inputs": [{"name": "pixels", "shape": [1], "datatype": "UINT8", "data": [300]}]}', 400,
     "UINT8 data must be integers from 0 to 255"),
    (b'{"inputs": [{"name": "pixels", "shape": [1], "datatype": "UINT8", "data": [1.5]}]}', 400,
     "UINT8 data must be integers"),
    (b'{"inputs": [{"name": "pixels", "shape": [1], "datatype": "FP32", "data": [NaN]}]}', 400, "malformed JSON"),
    (b'{"inputs": [{"name": "pixels", "shape": [1], "datatype": "FP32", "data": [256.5]}]}', 400,
     "FP32 pixels must be finite values from 0 to 255"),
    (b'{"inputs": [{"name": "pixels", "shape": [2], "datatype": "UINT8", "data": [1, "x"]}]}', 400,
     "must hold only numbers"),
    (b'{"inputs": [{"name": "pixels", "shape": [2], "datatype": "UINT8", "data": [[1], [2, 3]]}]}', 400, "ragged"),
])
def test_bad_infer_requests_get_a_json_error(server, body, status, message):
    response = httpx.post(server.url + "/v2/models/mnist/infer", content=body,
                          headers={"content-type": "application/json"})
    assert response.status_code == status
    assert message in response.json()["error"]


def test_bad_parameters_models_and_images(server, digits):
    x = digits[0][:1]
    cases = [
        (httpx.post(server.url + "/v2/models/mnist/infer", json=_infer_body(x, parameters={"top_k": 0})), 400,
         "top_k must be a positive integer"),
        (httpx.post(server.url + "/v2/models/mnist/infer", json=_infer_body(x, outputs=[{"name": "logits"}])), 400,
         "unknown output 'logits'"),
        (httpx.post(server.url + "/v2/models/nosuch/infer", json=_infer_body(x)), 404, "unknown model 'nosuch'"),
        (httpx.post(server.url + "/v2/models/mnist/classify", content=b"GIF89a\x00\x00garbage"), 400, "<15 bytes>:"),
        (httpx.post(server.url + "/v2/models/mnist/classify", files=[("file", ("cat.png", b"\x89PNG\r\n\x1a\nxx"))]),
         400, "cat.png: "),
        (httpx.post(server.url + "/v2/models/mnist/classify", content=b""), 400, "empty request body"),
        (httpx.post(server.url + "/v2/models/mnist/classify", content=b'--b\r\nContent-Disposition: form-data; '
                    b'name="note"\r\n\r\nhello\r\n--b--\r\n', headers={"content-type": "multipart/form-data; boundary=b"}),
         400, "holds no file"),
        (httpx.post(server.url + "/v2/models/mnist/classify", content=b"x", headers={"content-type": "multipart/form-data"}),
         400, "Missing boundary"),
        (httpx.post(server.url + "/v2/models/mnist/classify?top_k=x", content=_png(x[0])), 400, "top_k"),
        (httpx.get(server.url + "/v2/nothing/here"), 404, "Not Found"),
        (httpx.get(server.url + "/v2/models/mnist/infer"), 405, "Method Not Allowed"),
    ]
    for response, status, message in cases:
        assert response.status_code == status, response.text
        assert message in response.json()["error"], response.text


def test_oversized_bodies_get_413(server, digits):
    # A 200 MB upload is refused from its Content-Length, before the body is read.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /v2/models/mnist/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 200000000\r\n\r\n" + b"{" * 1000)
        reply = b""
        while chunk := sock.recv(65536):  # the server closes the connection after its answer
            reply += chunk
        reply = reply.decode()
    assert reply.startswith("HTTP/1.1 413") and "exceeds the limit of 1048576 bytes" in reply
    # A chunked body without a declared length is cut off once it passes the limit.
    def chunks():
        for _ in range(40):
            yield b" " * 65536
    response = httpx.post(server.url + "/v2/models/mnist/classify", content=chunks())
    assert response.status_code == 413 and "exceeds the limit" in response.json()["error"]
    # The server keeps serving.
    assert _outputs(httpx.post(server.url + "/v2/models/mnist/infer", json=_infer_body(digits[0][:1])))


def test_concurrent_requests_are_merged_into_batches(server, digits, mnist_clf):
    x, _ = digits
    n = 24
    before = metric_samples(httpx.get(server.url + "/metrics").text, "edgecls_batch_size", model="mnist")

    async def fire():
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            return await asyncio.gather(*(client.post("/v2/models/mnist/infer", json=_infer_body(x[i:i + 1]))
                                          for i in range(n)))

    responses = asyncio.run(fire())
    expected = mnist_clf.run(x[:n])
    for i, response in enumerate(responses):  # every request got its own rows back
        got = np.array(_outputs(response)["probabilities"]["data"])
        np.testing.assert_allclose(got, expected[i], atol=1e-6)
    after = metric_samples(httpx.get(server.url + "/metrics").text, "edgecls_batch_size", model="mnist")
    runs = after["edgecls_batch_size_count"] - before.get("edgecls_batch_size_count", 0)
    images = after["edgecls_batch_size_sum"] - before.get("edgecls_batch_size_sum", 0)
    singles = after["edgecls_batch_size_bucket[1.0]"] - before.get("edgecls_batch_size_bucket[1.0]", 0)
    assert images == n
    assert runs < n and singles < runs, f"{n} requests ran as {runs} batches ({singles} of one image)"


def test_metrics_report_requests_latency_and_queue(server):
    httpx.get(server.url + "/v2/models/mnist")
    text = httpx.get(server.url + "/metrics").text
    assert metric_samples(text, "edgecls_requests", model="mnist", route="metadata", code="200")[
        "edgecls_requests_total"] >= 1
    assert metric_samples(text, "edgecls_requests", model="mnist", route="infer", code="400")[
        "edgecls_requests_total"] >= 1
    latency = metric_samples(text, "edgecls_request_latency_seconds", model="mnist", route="infer")
    assert latency["edgecls_request_latency_seconds_count"] >= 1
    assert metric_samples(text, "edgecls_queue_depth", model="mnist") == {"edgecls_queue_depth": 0.0}
    assert "edgecls_batch_run_seconds_bucket" in text and "edgecls_queue_wait_seconds_bucket" in text


def test_client_errors_log_no_traceback(server):
    # Runs after the bad-input tests in this module: they were answered, none was logged as a crash.
    log = server.log()
    assert '"POST /v2/models/mnist/infer HTTP/1.1" 400' in log
    assert "Traceback" not in log and "Exception in ASGI application" not in log


def test_overload_gets_503_and_slow_answers_504(tmp_path, digits):
    # Batches wait 5 s for company, so admitted requests sit in the queue: 3 admitted, the rest refused at once;
    # the admitted ones time out after 1 s (all 8 arrive well within it, even on a loaded machine).
    srv = start_server(["mnist"], ["--max-batch-size", "64", "--max-wait-ms", "5000", "--max-queue", "3",
                                   "--timeout", "1", "--threads", "1"], tmp_path / "server.log")
    try:
        async def fire():
            async with httpx.AsyncClient(base_url=srv.url, timeout=30) as client:
                return await asyncio.gather(*(client.post("/v2/models/mnist/infer", json=_infer_body(digits[0][:1]))
                                              for _ in range(8)))

        responses = asyncio.run(fire())
        codes = sorted(r.status_code for r in responses)
        assert codes == [503] * 5 + [504] * 3, [r.text for r in responses]
        assert all("error" in r.json() for r in responses)
        assert "overloaded" in next(r for r in responses if r.status_code == 503).json()["error"]
        assert "did not answer within 1 s" in next(r for r in responses if r.status_code == 504).json()["error"]
        text = httpx.get(srv.url + "/metrics").text
        assert metric_samples(text, "edgecls_rejected", model="mnist")["edgecls_rejected_total"] == 5
        assert metric_samples(text, "edgecls_queue_depth", model="mnist") == {"edgecls_queue_depth": 0.0}
        assert httpx.get(srv.url + "/v2/health/live").status_code == 200  # still serving
    finally:
        assert srv.stop() == -signal.SIGTERM
    assert "Traceback" not in srv.log()


def test_graceful_shutdown_answers_requests_in_flight(tmp_path, digits, mnist_clf):
    srv = start_server(["mnist"], ["--max-batch-size", "64", "--max-wait-ms", "1500", "--threads", "1"],
                       tmp_path / "server.log")
    x = digits[0][:4]

    async def scenario():
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as client:
            tasks = [asyncio.create_task(client.post("/v2/models/mnist/infer", json=_infer_body(x[i:i + 1])))
                     for i in range(4)]
            for _ in range(100):  # wait until all four sit in the batcher
                depth = metric_samples((await client.get("/metrics")).text, "edgecls_queue_depth", model="mnist")
                if depth.get("edgecls_queue_depth") == 4:
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("requests never queued")
            stopped = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)  # as systemd or docker stop would
            responses = await asyncio.gather(*tasks)
            return responses, time.monotonic() - stopped

    responses, waited = asyncio.run(scenario())
    assert srv.proc.wait(30) == -signal.SIGTERM
    for i, response in enumerate(responses):
        np.testing.assert_allclose(np.array(_outputs(response)["probabilities"]["data"]), mnist_clf.run(x)[i],
                                   atol=1e-6)
    assert waited < 10
    log = srv.log()
    assert "all in-flight requests answered" in log and "Traceback" not in log
    with pytest.raises(httpx.ConnectError):
        httpx.get(srv.url + "/v2/health/live", timeout=2)
    srv.stop()


def test_cli_refuses_bad_setups_with_one_line(tmp_path):
    import subprocess
    import sys

    def run(*args):
        return subprocess.run([sys.executable, "-m", "edgecls", "serve", *args], capture_output=True, text=True,
                              timeout=60)

    missing = run("nosuch", "--port", "1")
    assert missing.returncode == 1 and "no model 'nosuch'" in missing.stdout + missing.stderr
    dup = run("mnist", "mnist", "--port", "1")
    assert dup.returncode == 1 and "two models would be served as 'mnist'" in dup.stdout + dup.stderr
    bad = run("mnist", "--int8", "--fp16")
    assert bad.returncode == 1 and "choose one variant" in bad.stdout + bad.stderr
    for result in (missing, dup, bad):
        assert "Traceback" not in result.stdout + result.stderr


def test_port_in_use_exits_3_with_one_line():
    import subprocess
    import sys

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "edgecls", "serve", "--port", str(port)], capture_output=True,
                                text=True, timeout=60)
    assert result.returncode == 3  # uvicorn's start-up failure code
    assert "address already in use" in result.stderr + result.stdout and "Traceback" not in result.stderr


def test_serve_imports_only_the_runtime():
    import subprocess
    import sys

    code = ("import sys; from edgecls.serve import create_app, load_models, ServeConfig; "
            "create_app(load_models(['mnist']), ServeConfig()); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx', 'onnx')]; "
            "bad += [m for m in sys.modules if m.startswith('edgecls.') and m.split('.')[1] not in "
            "('runtime', 'serve', 'artifacts')]; "  # artifacts: the shipped zoo's data package
            "print(bad); sys.exit(bool(bad))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
