"""The Open Inference Protocol over gRPC: `inference.GRPCInferenceService`, served by grpc.aio in the HTTP
server's event loop, so both protocols share the models, batchers, limits and metrics (service.py).

The message classes come from tritonclient's generated code of the protocol's .proto (Triton and KServe
publish the same service). Served: ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata and
ModelInfer; the other RPCs of the service answer UNIMPLEMENTED. Tensors go back as raw_output_contents, as
Triton and KServe send them; inputs may come as raw_input_contents or typed contents.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Awaitable, Callable, Optional

import grpc
from tritonclient.grpc import service_pb2 as pb

from ..runtime.classifier import Classifier
from . import protocol, tensors
from .app import StartupError
from .errors import ApiError
from .protocol import InferRequest, Tensor
from .scores import Scores
from .service import InferenceService

log = logging.getLogger("edgecls.serve")

SERVICE = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
STATUS = {400: grpc.StatusCode.INVALID_ARGUMENT, 404: grpc.StatusCode.NOT_FOUND, 405: grpc.StatusCode.UNIMPLEMENTED,
          413: grpc.StatusCode.RESOURCE_EXHAUSTED, 503: grpc.StatusCode.UNAVAILABLE,
          504: grpc.StatusCode.DEADLINE_EXCEEDED}
# typed InferTensorContents field per datatype (inputs sent without raw_input_contents)
CONTENTS = {"UINT8": "uint_contents", "FP32": "fp32_contents"}

Rpc = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


class GrpcServer:
    """grpc.aio server for one InferenceService; started and stopped by the HTTP app's lifespan."""

    def __init__(self, service: InferenceService, host: str, port: int) -> None:
        self.service = service
        self.address = f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"
        self.port = port
        self._server: Optional[grpc.aio.Server] = None
        # RPC -> (method, route its answers are counted under; None: not counted, as HTTP's health checks)
        self.rpcs: dict[str, tuple[Rpc, Optional[str]]] = {
            "ServerLive": (self.server_live, None), "ServerReady": (self.server_ready, None),
            "ServerMetadata": (self.server_metadata, None), "ModelReady": (self.model_ready, "ready"),
            "ModelMetadata": (self.model_metadata, "metadata"), "ModelInfer": (self.model_infer, "infer")}

    async def start(self) -> None:
        config = self.service.config
        self._server = grpc.aio.server(options=[
            ("grpc.max_receive_message_length", config.max_body_bytes),  # larger requests: RESOURCE_EXHAUSTED
            ("grpc.so_reuseport", 0)])  # a port in use is an error, not silently shared
        self._server.add_generic_rpc_handlers((self.handlers(),))
        try:
            self.port = self._server.add_insecure_port(self.address)
        except RuntimeError:
            raise StartupError(f"gRPC: cannot listen on {self.address} (address already in use or not "
                               "available); choose another --grpc-port") from None
        await self._server.start()
        log.info("gRPC (inference.GRPCInferenceService) on %s", self.address.rsplit(":", 1)[0] + f":{self.port}")

    async def stop(self) -> None:
        """Refuse new RPCs and let those in flight finish (up to the drain time)."""
        if self._server is not None:
            await self._server.stop(self.service.config.drain_s)

    def handlers(self) -> grpc.GenericRpcHandler:
        """The served RPCs with their request and response types from the service descriptor; the server
        answers UNIMPLEMENTED for every other method."""
        table = {}
        for name, (method, route) in self.rpcs.items():
            desc = SERVICE.methods_by_name[name]
            table[name] = grpc.unary_unary_rpc_method_handler(
                self._observed(method, route), request_deserializer=getattr(pb, desc.input_type.name).FromString,
                response_serializer=getattr(pb, desc.output_type.name).SerializeToString)
        return grpc.method_handlers_generic_handler(SERVICE.full_name, table)

    def _observed(self, method: Rpc, route: Optional[str]) -> Rpc:
        """Turn ApiError into its gRPC status and count every answer of a counted route."""
        async def rpc(request, context: grpc.aio.ServicerContext):
            started, code = time.perf_counter(), grpc.StatusCode.OK
            try:
                return await method(request, context)
            except ApiError as exc:
                code = STATUS.get(exc.status, grpc.StatusCode.INTERNAL)
                await context.abort(code, exc.message)
            finally:
                if route is not None:
                    name = getattr(request, "model_name", "") or getattr(request, "name", "")
                    self.service.answered("grpc", route, name, code.name, started)
        return rpc

    async def server_live(self, request: pb.ServerLiveRequest, context) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def server_ready(self, request: pb.ServerReadyRequest, context) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.service.ready)

    async def server_metadata(self, request: pb.ServerMetadataRequest, context) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(**protocol.server_metadata())

    async def model_ready(self, request: pb.ModelReadyRequest, context) -> pb.ModelReadyResponse:
        model = self.service.model(request.name, request.version)
        return pb.ModelReadyResponse(ready=self.service.model_ready(model))

    async def model_metadata(self, request: pb.ModelMetadataRequest, context) -> pb.ModelMetadataResponse:
        """The REST metadata without its `parameters` (the gRPC message has none; the variant served comes in
        every ModelInfer response's parameters)."""
        model = self.service.model(request.name, request.version)
        meta = protocol.model_metadata(model.name, model.classifier)
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=meta["name"], versions=meta["versions"], platform=meta["platform"],
            inputs=[tensor(name=t["name"], datatype=t["datatype"], shape=t["shape"]) for t in meta["inputs"]],
            outputs=[tensor(name=t["name"], datatype=t["datatype"], shape=t["shape"]) for t in meta["outputs"]])

    async def model_infer(self, request: pb.ModelInferRequest, context) -> pb.ModelInferResponse:
        model = self.service.model(request.model_name, request.model_version)
        infer = infer_request(request, model.classifier, self.service.config.top_k)
        scores = await self.service.scores(model, infer.pixels, context.time_remaining())
        return infer_response(model.name, infer, scores, model.classifier)


def infer_request(message: pb.ModelInferRequest, clf: Classifier, default_top_k: int) -> InferRequest:
    """A ModelInferRequest -> a checked InferRequest (raw_input_contents or typed contents)."""
    raw = message.raw_input_contents
    if raw and len(raw) != len(message.inputs):
        raise ApiError(400, f"raw_input_contents holds {len(raw)} entries for {len(message.inputs)} inputs")
    inputs, parameters = [], _parameters(message.parameters)
    for i, tensor in enumerate(message.inputs):
        parameters.update(_parameters(tensor.parameters))
        if raw:
            inputs.append(Tensor(tensor.name, tensor.datatype, list(tensor.shape), raw=raw[i]))
        else:
            field = CONTENTS.get(tensor.datatype)
            data = list(getattr(tensor.contents, field)) if field else []
            inputs.append(Tensor(tensor.name, tensor.datatype, list(tensor.shape), data=data))
    outputs = [o.name for o in message.outputs] or None
    return protocol.build_request(inputs, outputs, parameters, message.id or None, clf, default_top_k)


def infer_response(model_name: str, request: InferRequest, scores: Scores, clf: Classifier) -> pb.ModelInferResponse:
    response = pb.ModelInferResponse(model_name=model_name, model_version=protocol.VERSION, id=request.id)
    for key, value in protocol.response_parameters(request, clf).items():
        _set_parameter(response.parameters[key], value)
    for tensor in protocol.output_tensors(request, scores, clf):
        response.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
        response.raw_output_contents.append(tensors.to_raw(tensor.datatype, tensor.values))
    return response


def _parameters(parameters) -> dict[str, Any]:
    """A protobuf map of InferParameter -> plain values."""
    return {key: getattr(value, value.WhichOneof("parameter_choice")) for key, value in parameters.items()
            if value.WhichOneof("parameter_choice")}


def _set_parameter(parameter: pb.InferParameter, value: Any) -> None:
    if isinstance(value, bool):
        parameter.bool_param = value
    elif isinstance(value, int):
        parameter.int64_param = value
    else:
        parameter.string_param = str(value)
