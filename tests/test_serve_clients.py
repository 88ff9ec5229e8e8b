"""`edgecls serve` against the Open Inference Protocol clients users already have: NVIDIA's tritonclient over
HTTP (binary tensors, its default, and JSON) and over gRPC, on a real server process with real MNIST digits.

Every answer is compared with a local Classifier on the same model file."""

from __future__ import annotations

import asyncio
import gzip
import io
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest
from PIL import Image
from serving import free_port, metric_samples, require, start_server

httpx = require("httpx", "pip install -e '.[dev]'")
require("starlette", "edgecls serve needs the serve extra: pip install -e '.[serve]'")
grpc = require("grpc", "edgecls serve --grpc-port needs the serve extra: pip install -e '.[serve]'")
triton_http = require("tritonclient.http", "pip install -e '.[dev]' (tritonclient[http,grpc])")
triton_grpc = require("tritonclient.grpc", "pip install -e '.[dev]' (tritonclient[http,grpc])")

from tritonclient.grpc import service_pb2, service_pb2_grpc  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

from edgecls.runtime import Classifier  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MNIST_INT8 = REPO / "artifacts" / "mnist" / "mnist.int8.onnx"
BODY_LIMIT = 1024 * 1024
OUTPUTS = ("probabilities", "labels", "scores", "unsure")


@pytest.fixture(scope="module")
def digits(data_dir):
    with np.load(data_dir / "mnist.npz") as d:
        return d["x_test"][:48], d["y_test"][:48]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """mnist, cifar10 and mnist int8 under another name, over HTTP and gRPC; batches wait 25 ms; 1 MiB limit."""
    grpc_port = free_port()
    srv = start_server(["mnist", "cifar10", f"digits8={MNIST_INT8}"],
                       ["--grpc-port", str(grpc_port), "--max-batch-size", "32", "--max-wait-ms", "25",
                        "--max-body-mb", "1", "--threads", "1"], tmp_path_factory.mktemp("serve") / "server.log")
    srv.grpc_url = f"127.0.0.1:{grpc_port}"
    yield srv
    assert srv.stop() == -signal.SIGTERM, srv.log()
    assert "Traceback" not in srv.log()


@pytest.fixture(scope="module")
def http_client(server):
    client = triton_http.InferenceServerClient(server.url.removeprefix("http://"), connection_timeout=10,
                                               network_timeout=30)
    yield client
    client.close()


@pytest.fixture(scope="module")
def grpc_client(server):
    client = triton_grpc.InferenceServerClient(server.grpc_url)
    yield client
    client.close()


def _expected(model, pixels: np.ndarray, top_k: int = 3) -> dict[str, np.ndarray]:
    """What a local Classifier says about `pixels`, as the four output tensors."""
    clf = model if isinstance(model, Classifier) else Classifier(model)  # the variant the server picks too
    probabilities = clf.run(pixels)
    predictions = clf.decode(probabilities, top_k, pixels=pixels)
    return {"probabilities": probabilities,
            "labels": np.array([[label for label, _ in p.top_k] for p in predictions]),
            "scores": np.array([[score for _, score in p.top_k] for p in predictions]),
            "unsure": np.array([p.unsure for p in predictions])}


def _check(result, expected: dict[str, np.ndarray]) -> None:
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected["probabilities"], atol=1e-6)
    np.testing.assert_allclose(result.as_numpy("scores"), expected["scores"], atol=1e-6)
    assert result.as_numpy("labels").astype(str).tolist() == expected["labels"].tolist()
    assert result.as_numpy("unsure").tolist() == expected["unsure"].tolist()


def _infer(client_module, client, model: str, pixels: np.ndarray, binary: bool = True, datatype: str = "UINT8",
           outputs=OUTPUTS, **kwargs):
    tensor = client_module.InferInput("pixels", list(pixels.shape), datatype)
    if client_module is triton_http:
        tensor.set_data_from_numpy(pixels, binary_data=binary)
        requested = [triton_http.InferRequestedOutput(name, binary_data=binary) for name in outputs]
    else:
        tensor.set_data_from_numpy(pixels)
        requested = [triton_grpc.InferRequestedOutput(name) for name in outputs]
    return client.infer(model, [tensor], outputs=requested, **kwargs)


def test_http_client_defaults_binary_tensors(http_client, digits):
    x, y = digits[0][:8, ..., None], digits[1][:8]
    tensor = triton_http.InferInput("pixels", list(x.shape), "UINT8")
    tensor.set_data_from_numpy(x)  # binary_data=True: the client's default
    result = http_client.infer("mnist", [tensor])  # no outputs named: the client asks for all of them in binary
    expected = _expected("mnist", x)
    _check(result, expected)
    assert result.as_numpy("labels")[:, 0].astype(str).tolist() == [str(v) for v in y]  # all 8 digits right
    response = result.get_response()
    assert all("binary_data_size" in o["parameters"] and "data" not in o for o in response["outputs"])
    assert response["parameters"] == {"top_k": 3, "variant": Classifier("mnist").info.variant}  # auto's choice


def test_http_client_json_and_mixed_tensors(http_client, digits):
    x = digits[0][8:14, ..., None]
    expected = _expected("mnist", x)
    json_result = _infer(triton_http, http_client, "mnist", x, binary=False)
    _check(json_result, expected)
    assert all("data" in o for o in json_result.get_response()["outputs"])
    # JSON pixels with binary outputs, and binary pixels with one output in JSON, in one request each
    tensor = triton_http.InferInput("pixels", list(x.shape), "UINT8")
    tensor.set_data_from_numpy(x, binary_data=False)
    _check(http_client.infer("mnist", [tensor], outputs=[triton_http.InferRequestedOutput(n, binary_data=True)
                                                         for n in OUTPUTS]), expected)
    tensor.set_data_from_numpy(x, binary_data=True)
    mixed = http_client.infer("mnist", [tensor], outputs=[
        triton_http.InferRequestedOutput("probabilities", binary_data=False),
        triton_http.InferRequestedOutput("labels", binary_data=True)])
    np.testing.assert_allclose(mixed.as_numpy("probabilities"), expected["probabilities"], atol=1e-6)
    assert mixed.as_numpy("labels").astype(str).tolist() == expected["labels"].tolist()
    assert [("data" in o) for o in mixed.get_response()["outputs"]] == [True, False]


def test_http_client_fp32_cifar10_and_int8(server, http_client):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    _check(_infer(triton_http, http_client, "cifar10", pixels.astype(np.float32), datatype="FP32"),
           _expected("cifar10", pixels))
    grey = rng.integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)
    result = _infer(triton_http, http_client, "digits8", grey)
    _check(result, _expected(Classifier(MNIST_INT8), grey))
    assert result.get_response()["parameters"]["variant"] == "int8"
    assert http_client.get_model_metadata("digits8")["parameters"]["variant"] == "int8"
    png = io.BytesIO()
    Image.fromarray(grey[0, ..., 0]).save(png, format="PNG")
    classified = httpx.post(server.url + "/v2/models/digits8/classify", content=png.getvalue())
    assert classified.json()["variant"] == "int8"


def test_grpc_client_defaults(grpc_client, digits):
    assert grpc_client.is_server_live() and grpc_client.is_server_ready()
    assert grpc_client.is_model_ready("mnist") and grpc_client.is_model_ready("cifar10", "1")
    meta = grpc_client.get_server_metadata()
    assert meta.name == "edgecls" and "binary_tensor_data" in meta.extensions
    model = grpc_client.get_model_metadata("cifar10")
    assert model.versions == ["1"] and model.platform == "onnxruntime_onnx"
    assert [(t.name, t.datatype, list(t.shape)) for t in model.inputs] == [("pixels", "UINT8", [-1, 32, 32, 3])]
    assert [t.name for t in model.outputs] == list(OUTPUTS)
    x = digits[0][14:22, ..., None]
    tensor = triton_grpc.InferInput("pixels", list(x.shape), "UINT8")
    tensor.set_data_from_numpy(x)
    result = grpc_client.infer("mnist", [tensor], request_id="g-1")  # all outputs, raw contents
    _check(result, _expected("mnist", x))
    response = result.get_response()
    assert response.id == "g-1" and response.parameters["variant"].string_param == Classifier("mnist").info.variant
    top1 = _infer(triton_grpc, grpc_client, "digits8", x, outputs=("labels",), parameters={"top_k": 1})
    assert top1.as_numpy("labels").shape == (8, 1)
    assert top1.as_numpy("labels")[:, 0].astype(str).tolist() == \
        _expected(Classifier(MNIST_INT8), x, 1)["labels"][:, 0].tolist()


def test_grpc_typed_contents(server, digits):
    """Inputs in typed contents (uint_contents) instead of raw bytes: the other way the .proto allows."""
    x = digits[0][22:24]
    with grpc.insecure_channel(server.grpc_url) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        request = service_pb2.ModelInferRequest(model_name="mnist")
        tensor = request.inputs.add(name="pixels", datatype="UINT8", shape=[2, 28, 28])
        tensor.contents.uint_contents.extend(x.ravel().tolist())
        response = stub.ModelInfer(request, timeout=30)
    probabilities = np.frombuffer(response.raw_output_contents[0], "<f4").reshape(2, 10)
    np.testing.assert_allclose(probabilities, _expected("mnist", x)["probabilities"], atol=1e-6)


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_client_errors_name_the_problem(transport, http_client, grpc_client, digits):
    module, client = (triton_http, http_client) if transport == "http" else (triton_grpc, grpc_client)
    x = digits[0][:1]
    cases = [
        (lambda: _infer(module, client, "nosuch", x), "unknown model 'nosuch'", "404", "StatusCode.NOT_FOUND"),
        (lambda: _infer(module, client, "mnist", np.zeros((1, 32, 32, 3), np.uint8)),
         "input shape [1, 32, 32, 3] does not fit this model", "400", "StatusCode.INVALID_ARGUMENT"),
        (lambda: _infer(module, client, "mnist", x.astype(np.int64), datatype="INT64"),
         "unsupported datatype 'INT64'", "400", "StatusCode.INVALID_ARGUMENT"),
        (lambda: _infer(module, client, "mnist", x.astype(np.float32) * 300, datatype="FP32"),
         "FP32 pixels must be finite values from 0 to 255", "400", "StatusCode.INVALID_ARGUMENT"),
        (lambda: _infer(module, client, "mnist", x, outputs=("logits",)), "unknown output 'logits'", "400",
         "StatusCode.INVALID_ARGUMENT"),
        (lambda: _infer(module, client, "mnist", x, model_version="7"), "no version '7'", "404",
         "StatusCode.NOT_FOUND"),
    ]
    for call, message, http_status, grpc_status in cases:
        with pytest.raises(InferenceServerException) as info:
            call()
        assert message in info.value.message()
        assert info.value.status() == (http_status if transport == "http" else grpc_status)
    with pytest.raises(InferenceServerException) as info:  # Triton's model configuration: not served
        client.get_model_config("mnist")
    assert info.value.status() == ("404" if transport == "http" else "StatusCode.UNIMPLEMENTED")


def _binary_body(pixels: np.ndarray, size=None, extra: bytes = b"", **tensor) -> tuple[bytes, int]:
    header = orjson.dumps({"inputs": [{"name": "pixels", "shape": list(pixels.shape), "datatype": "UINT8",
                                       "parameters": {"binary_data_size": len(pixels.tobytes()) if size is None
                                                      else size}, **tensor}]})
    return header + pixels.tobytes() + extra, len(header)


def test_bad_binary_bodies_get_a_400_naming_the_problem(server, digits):
    x = digits[0][:1, ..., None]
    body, length = _binary_body(x)
    url = server.url + "/v2/models/mnist/infer"
    cases = [
        (body[:-100], {rest_header(): str(length)}, "input 'pixels' has binary_data_size 784 but 684 bytes follow"),
        (body + b"\0" * 16, {rest_header(): str(length)}, "binary_data_size 784 but 800 bytes follow"),
        (body, {rest_header(): "abc"}, "Inference-Header-Content-Length must be a byte count, got 'abc'"),
        (body, {rest_header(): "-5"}, "Inference-Header-Content-Length must be a byte count"),
        (body, {rest_header(): str(len(body) + 1)}, f"Inference-Header-Content-Length is {len(body) + 1} but the body "
                                                     f"has only {len(body)} bytes"),
        (body, {rest_header(): str(length - 3)}, "malformed JSON"),
        (body, {}, "binary tensor data must follow a JSON header whose length the Inference-Header-Content-Length"),
        (_binary_body(x, size=100)[0], {rest_header(): str(_binary_body(x, size=100)[1])},
         "binary_data_size 100 but 784 bytes follow"),
        (_binary_body(x[:, :10], size=280)[0], {rest_header(): str(_binary_body(x[:, :10], size=280)[1])},
         "input shape [1, 10, 28, 1] does not fit this model"),
        (_binary_body(x, size="784")[0], {rest_header(): str(_binary_body(x, size="784")[1])},
         "binary_data_size of input 'pixels' must be a byte count"),
        (_binary_body(x, data=[1])[0], {rest_header(): str(_binary_body(x, data=[1])[1])},
         "has both 'data' and binary_data_size"),
    ]
    for content, headers, message in cases:
        response = httpx.post(url, content=content, headers={"content-type": "application/octet-stream", **headers})
        assert response.status_code == 400, (message, response.text)
        assert message in response.json()["error"], response.text
    gzipped = httpx.post(url, content=gzip.compress(body), headers={rest_header(): str(length),
                                                                  "content-encoding": "gzip"})
    assert gzipped.status_code == 415 and "Content-Encoding 'gzip' is not supported" in gzipped.json()["error"]
    # FP32 raw bytes whose shape needs more bytes than sent
    fp32 = x.astype(np.float32)
    header = orjson.dumps({"inputs": [{"name": "pixels", "shape": [1, 28, 28, 1], "datatype": "FP32",
                                       "parameters": {"binary_data_size": 784}}]})
    response = httpx.post(url, content=header + fp32.tobytes()[:784], headers={rest_header(): str(len(header))})
    assert response.status_code == 400
    assert "784 bytes of binary data, but shape [1, 28, 28, 1] of FP32 needs 3136" in response.json()["error"]


def rest_header() -> str:
    return "Inference-Header-Content-Length"


def test_grpc_limits_and_bad_raw_contents(server, digits):
    with grpc.insecure_channel(server.grpc_url) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        big = service_pb2.ModelInferRequest(model_name="mnist", raw_input_contents=[b"\0" * (BODY_LIMIT + 10)])
        big.inputs.add(name="pixels", datatype="UINT8", shape=[BODY_LIMIT + 10])
        with pytest.raises(grpc.RpcError) as info:
            stub.ModelInfer(big, timeout=30)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        short = service_pb2.ModelInferRequest(model_name="mnist", raw_input_contents=[digits[0][:1].tobytes()[:500]])
        short.inputs.add(name="pixels", datatype="UINT8", shape=[1, 28, 28, 1])
        with pytest.raises(grpc.RpcError) as info:
            stub.ModelInfer(short, timeout=30)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "500 bytes of binary data, but shape [1, 28, 28, 1] of UINT8 needs 784" in info.value.details()
        two = service_pb2.ModelInferRequest(model_name="mnist", raw_input_contents=[b"\0" * 784, b"\0"])
        two.inputs.add(name="pixels", datatype="UINT8", shape=[1, 28, 28, 1])
        with pytest.raises(grpc.RpcError) as info:
            stub.ModelInfer(two, timeout=30)
        assert "raw_input_contents holds 2 entries for 1 inputs" in info.value.details()


def test_http_and_grpc_requests_share_batches_and_metrics(server, digits):
    x = digits[0][:24]
    before = metric_samples(httpx.get(server.url + "/metrics").text, "edgecls_batch_size", model="mnist")

    async def fire():
        channel = grpc.aio.insecure_channel(server.grpc_url)
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)

        async def over_grpc(i):
            request = service_pb2.ModelInferRequest(model_name="mnist", raw_input_contents=[x[i:i + 1].tobytes()])
            request.inputs.add(name="pixels", datatype="UINT8", shape=[1, 28, 28])
            request.outputs.add(name="probabilities")
            response = await stub.ModelInfer(request, timeout=30)
            return np.frombuffer(response.raw_output_contents[0], "<f4")

        async def over_http(i, client):
            body, length = _binary_body(x[i:i + 1, ..., None])
            response = await client.post("/v2/models/mnist/infer", content=body,
                                         headers={rest_header(): str(length)})
            return np.array(response.json()["outputs"][0]["data"], np.float32)

        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            answers = await asyncio.gather(*(over_grpc(i) if i % 2 else over_http(i, client) for i in range(len(x))))
        await channel.close()
        return answers

    answers = asyncio.run(fire())
    np.testing.assert_allclose(np.stack(answers), Classifier("mnist").run(x), atol=1e-6)
    text = httpx.get(server.url + "/metrics").text
    after = metric_samples(text, "edgecls_batch_size", model="mnist")
    runs = after["edgecls_batch_size_count"] - before.get("edgecls_batch_size_count", 0)
    assert after["edgecls_batch_size_sum"] - before.get("edgecls_batch_size_sum", 0) == len(x)
    mixed = runs < len(x) // 2  # fewer runs than either protocol's requests alone: batches held both
    assert mixed, f"{len(x)} requests ran as {runs} batches"
    for protocol, code in (("http", "200"), ("grpc", "OK")):
        count = metric_samples(text, "edgecls_requests", model="mnist", route="infer", protocol=protocol, code=code)
        assert count["edgecls_requests_total"] >= 12
    assert metric_samples(text, "edgecls_requests", model="", route="infer", protocol="grpc",
                          code="NOT_FOUND")["edgecls_requests_total"] >= 1


def test_grpc_overload_and_timeout_share_the_limits(tmp_path, digits):
    """Three requests admitted (two over HTTP, one over gRPC fill the queue of 3), the rest refused; the admitted
    ones time out after 1 s, whichever protocol they came by."""
    grpc_port = free_port()
    srv = start_server(["mnist"], ["--grpc-port", str(grpc_port), "--max-batch-size", "64", "--max-wait-ms", "5000",
                                   "--max-queue", "3", "--timeout", "1", "--threads", "1"], tmp_path / "server.log")
    try:
        async def fire():
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}")
            stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)

            async def over_grpc():
                request = service_pb2.ModelInferRequest(model_name="mnist", raw_input_contents=[digits[0][:1].tobytes()])
                request.inputs.add(name="pixels", datatype="UINT8", shape=[1, 28, 28])
                try:
                    await stub.ModelInfer(request, timeout=30)
                    return "OK"
                except grpc.aio.AioRpcError as exc:
                    return exc.code().name

            async with httpx.AsyncClient(base_url=srv.url, timeout=30) as client:
                body, length = _binary_body(digits[0][:1, ..., None])
                http = [client.post("/v2/models/mnist/infer", content=body, headers={rest_header(): str(length)})
                        for _ in range(4)]
                answers = await asyncio.gather(*http, *(over_grpc() for _ in range(4)))
            await channel.close()
            return [a if isinstance(a, str) else str(a.status_code) for a in answers]

        answers = asyncio.run(fire())
        assert answers.count("504") + answers.count("DEADLINE_EXCEEDED") == 3, answers
        assert answers.count("503") + answers.count("UNAVAILABLE") == 5, answers
        text = httpx.get(srv.url + "/metrics").text
        assert metric_samples(text, "edgecls_rejected", model="mnist")["edgecls_rejected_total"] == 5
    finally:
        assert srv.stop() == -signal.SIGTERM
    assert "Traceback" not in srv.log()


def test_grpc_port_in_use_exits_3_with_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "edgecls", "serve", "--port", str(free_port()),
                                 "--grpc-port", str(port)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    assert f"gRPC: cannot listen on 127.0.0.1:{port}" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout


def test_shutdown_answers_grpc_and_http_requests_in_flight(tmp_path, digits):
    grpc_port = free_port()
    srv = start_server(["mnist"], ["--grpc-port", str(grpc_port), "--max-batch-size", "64", "--max-wait-ms", "1500",
                                   "--threads", "1"], tmp_path / "server.log")
    x = digits[0][:4]

    async def scenario():
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}")
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as client:
            requests = []
            for i in range(4):
                if i % 2:
                    request = service_pb2.ModelInferRequest(model_name="mnist", raw_input_contents=[x[i:i + 1].tobytes()])
                    request.inputs.add(name="pixels", datatype="UINT8", shape=[1, 28, 28])
                    request.outputs.add(name="probabilities")
                    requests.append(asyncio.ensure_future(stub.ModelInfer(request, timeout=30)))
                else:
                    body, length = _binary_body(x[i:i + 1, ..., None])
                    requests.append(asyncio.create_task(client.post("/v2/models/mnist/infer", content=body,
                                                                    headers={rest_header(): str(length)})))
            for _ in range(100):  # wait until all four sit in the batcher
                text = (await client.get("/metrics")).text
                if metric_samples(text, "edgecls_queue_depth", model="mnist").get("edgecls_queue_depth") == 4:
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("requests never queued")
            srv.proc.send_signal(signal.SIGTERM)
            answers = await asyncio.gather(*requests)
        await channel.close()
        return answers

    try:
        answers = asyncio.run(scenario())
        assert srv.proc.wait(30) == -signal.SIGTERM
    finally:
        srv.stop()
    expected = Classifier("mnist").run(x)
    for i, answer in enumerate(answers):
        got = np.frombuffer(answer.raw_output_contents[0], "<f4") if i % 2 else \
            np.array(answer.json()["outputs"][0]["data"], np.float32)
        np.testing.assert_allclose(got, expected[i], atol=1e-6)
    assert "all in-flight requests answered" in srv.log() and "Traceback" not in srv.log()
