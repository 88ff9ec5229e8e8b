"""The int8 size rule: an int8 file must shrink by a fair share of what its weights allow.

Storing a float32 weight in int8 saves 3 of its 4 bytes; quantization adds scales, zero points and
Quantize/DequantizeLinear nodes, and pads a stem's weights to 4 input channels (the overhead, measured in
the int8 graph). So the saving to expect is
3/4 of the quantizable weight bytes (the weights of the ops the format quantizes, less the nodes it was
asked to keep in float), and the file realises `fp32 size - int8 size + overhead` of it. A small model's int8
file shrinks little because the overhead is a large part of it, and passes; a file whose weights were not
stored in int8 (an fp32 copy, weights kept twice) realises nothing and is refused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable, Optional

from .gates import GateFailure

QUANT_OPS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger")
PAYLOAD_SLOT = {"DequantizeLinear": 0, "MatMulInteger": 1, "ConvInteger": 1}  # the stored integer weights
INTEGER_PAYLOADS = (2, 3, 6)  # onnx.TensorProto UINT8, INT8, INT32 (biases)
MIN_JUDGED_BYTES = 1024  # below this possible saving, protobuf framing outweighs what the rule could see


@dataclass(frozen=True)
class SizeCheck:
    fp32_bytes: int
    int8_bytes: int
    quantizable_weights: int  # float32 weights of the ops the format quantizes, not kept in float
    overhead_bytes: int  # scales, zero points and quantization nodes in the int8 graph

    @property
    def possible_bytes(self) -> int:
        return 3 * self.quantizable_weights

    @property
    def realised_bytes(self) -> int:
        return self.fp32_bytes - self.int8_bytes + self.overhead_bytes

    @property
    def share(self) -> Optional[float]:
        return self.realised_bytes / self.possible_bytes if self.possible_bytes else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "possible_bytes": self.possible_bytes, "realised_bytes": self.realised_bytes,
                "share": self.share}


def quantizable_weights(fp32: bytes, ops: tuple[str, ...], kept_float: Iterable[str] = ()) -> int:
    """Float weights (constant inputs beyond the first) of `ops` nodes in the fp32 graph, less `kept_float`."""
    import onnx

    graph = onnx.load_from_string(fp32).graph
    inits = {t.name: t for t in graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    keep = set(kept_float)
    count = 0
    for node in graph.node:
        if node.op_type in ops and node.name not in keep:
            weights = [inits[name] for name in node.input[1:2] if name in inits]
            if node.op_type == "MatMul" and not weights:  # a constant left operand
                weights = [inits[name] for name in node.input[:1] if name in inits]
            count += sum(_elements(t) for t in weights)
    return count


def _elements(tensor) -> int:
    n = 1
    for d in tensor.dims:
        n *= int(d)
    return n


def quantization_overhead(int8: bytes, fp32: bytes) -> int:
    """Serialized bytes the int8 graph adds to the fp32 one besides the int8 weights themselves: its new and
    rewired nodes, scales and zero points, shape information, and weights stored beyond the fp32 graph's (a
    stem's input channels padded to 4: zeros that make int8 fast). A float initializer of the fp32 graph still
    there (a layer kept in float, or weights kept twice) is in both files, so it is never counted as overhead."""
    import onnx

    g8, g32 = onnx.load_from_string(int8).graph, onnx.load_from_string(fp32).graph
    before = {t.name: t for t in g32.initializer}
    payloads = {n.input[PAYLOAD_SLOT[n.op_type]] for n in g8.node if n.op_type in PAYLOAD_SLOT}
    overhead = sum(n.ByteSize() for n in g8.node) - sum(n.ByteSize() for n in g32.node)
    overhead += sum(v.ByteSize() for v in g8.value_info) - sum(v.ByteSize() for v in g32.value_info)
    for tensor in g8.initializer:
        if tensor.name in before:
            continue
        if tensor.name in payloads and tensor.data_type in INTEGER_PAYLOADS:
            source = before.get(tensor.name.removesuffix("_quantized"))  # a folded bias has no fp32 twin
            if source is not None and tensor.data_type != onnx.TensorProto.INT32:
                overhead += max(0, _elements(tensor) - _elements(source))
        else:
            overhead += tensor.ByteSize()
    return overhead


def check_size(fp32: bytes, int8: bytes, ops: tuple[str, ...], kept_float: Iterable[str] = ()) -> SizeCheck:
    return SizeCheck(len(fp32), len(int8), quantizable_weights(fp32, ops, kept_float),
                     quantization_overhead(int8, fp32))


def judge_size(check: SizeCheck, min_share: float, ops: tuple[str, ...]) -> tuple[Optional[GateFailure], Optional[str]]:
    """(failure, note): refused when the file realises less than `min_share` of the saving its weights allow."""
    if check.quantizable_weights == 0:
        return GateFailure("size", f"stores no weights in int8: the model has no {'/'.join(ops)} weights it "
                                   "quantizes (the file would be the fp32 model)", 0.0, min_share), None
    if check.possible_bytes < MIN_JUDGED_BYTES:
        return None, (f"size not judged: its {check.quantizable_weights:,} quantizable weights can save only "
                      f"{check.possible_bytes:,} bytes")
    share = check.share or 0.0
    if share < min_share:
        return GateFailure(
            "size", f"saves {check.realised_bytes / 1024:,.1f} KiB of the {check.possible_bytes / 1024:,.1f} KiB its "
                    f"{check.quantizable_weights:,} quantizable weights allow ({share:.0%} < {min_share:.0%}; "
                    f"{check.overhead_bytes / 1024:,.1f} KiB of scales and Q/DQ nodes counted)", share, min_share), None
    return None, None
