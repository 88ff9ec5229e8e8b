"""Exact graph rewrites that tf2onnx and onnxruntime leave on the hot path.

1. fold_input_normalization: the model's first layers scale and shift the raw pixels (Mul, Add).
   When the first Conv has no padding this is folded into its weights and bias exactly, so the
   int8 model quantizes raw pixels directly instead of running QLinearMul + QLinearAdd.
2. static_flatten: Keras Flatten becomes Shape->Gather->Cast->Slice->Concat->Cast->Reshape
   (dynamic batch); a constant [-1, K] shape does the same with no per-batch work.
3. fold_flatten_transpose: flattening NHWC order from an NCHW tensor needs a Transpose; the
   following MatMul's weight rows are permuted instead, so the Transpose disappears.

Every rewrite is exact in real arithmetic; the export's fp32 gate (<= 1e-4 vs Keras) checks it.

Static int8 graphs run their convolutions channels-last (onnxruntime's NHWC QLinearConv), so before
quantization two rewrites keep the int8 tail in that layout (`channels_last_tail`):
4. channels_last_flatten: the inverse of 3: flatten in NHWC order (Transpose, then Reshape) and permute the
   MatMul's rows back. onnxruntime cancels that Transpose against the one it puts after its NHWC conv.
5. global_max_pool_as_max_pool: a GlobalMaxPool over a static HxW becomes MaxPool(kernel HxW); onnxruntime
   has an int8 channels-last MaxPool but no int8 GlobalMaxPool, which it runs in float NCHW behind a
   Transpose and a DequantizeLinear.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Optional

import numpy as np


def graph_maps(graph):
    """(initializers by name, consumers of each tensor, producer of each tensor, onnx.numpy_helper)."""
    from onnx import numpy_helper

    inits = {t.name: t for t in graph.initializer}
    consumers: dict[str, list] = {}
    producer: dict[str, Any] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
        for name in node.output:
            producer[name] = node
    return inits, consumers, producer, numpy_helper


def _shapes(model) -> dict[str, list[Optional[int]]]:
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)  # see through Shape->Concat chains
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    return shapes


def _const(inits, name: str, numpy_helper) -> Optional[np.ndarray]:
    return numpy_helper.to_array(inits[name]) if name in inits else None


def _set_init(graph, inits, name: str, value: np.ndarray, numpy_helper) -> None:
    tensor = numpy_helper.from_array(value.astype(np.float32), name)
    if name in inits:
        inits[name].CopyFrom(tensor)
    else:
        graph.initializer.append(tensor)
        inits[name] = graph.initializer[-1]


def fold_input_normalization(model) -> bool:
    graph = model.graph
    inits, consumers, _, nh = graph_maps(graph)
    x = graph.input[0].name
    mul = next((n for n in consumers.get(x, []) if n.op_type == "Mul"), None)
    if mul is None or len(consumers[x]) != 1:
        return False
    scale = _const(inits, mul.input[1], nh)
    nxt = consumers.get(mul.output[0], [])
    if scale is None or len(nxt) != 1:
        return False
    add, offset = None, np.zeros((), np.float32)
    conv = nxt[0]
    if conv.op_type == "Add":
        add = conv
        offset = _const(inits, add.input[1], nh)
        after = consumers.get(add.output[0], [])
        if offset is None or len(after) != 1:
            return False
        conv = after[0]
    if conv.op_type != "Conv" or conv.input[0] != (add or mul).output[0]:
        return False
    attrs = {a.name: a for a in conv.attribute}
    if "pads" in attrs and any(attrs["pads"].ints):
        return False  # zero padding in normalised space is not zero in pixel space: not exact
    if "auto_pad" in attrs and attrs["auto_pad"].s not in (b"NOTSET", b"VALID"):
        return False
    if "group" in attrs and attrs["group"].i != 1:
        return False
    weight = _const(inits, conv.input[1], nh)
    if weight is None or len(consumers.get(conv.input[1], [])) != 1:
        return False
    cin = weight.shape[1]
    try:
        s = np.broadcast_to(scale, (1, cin, 1, 1)).reshape(cin)
        o = np.broadcast_to(offset, (1, cin, 1, 1)).reshape(cin)
    except ValueError:
        return False
    bias = _const(inits, conv.input[2], nh) if len(conv.input) > 2 and conv.input[2] else np.zeros(weight.shape[0])
    new_bias = bias.astype(np.float64) + np.einsum("oikl,i->o", weight.astype(np.float64), o.astype(np.float64))
    new_weight = weight.astype(np.float64) * s.astype(np.float64)[None, :, None, None]
    _set_init(graph, inits, conv.input[1], new_weight, nh)
    bias_name = conv.input[2] if len(conv.input) > 2 and conv.input[2] else conv.name + "_folded_bias"
    _set_init(graph, inits, bias_name, new_bias, nh)
    if len(conv.input) > 2:
        conv.input[2] = bias_name
    else:
        conv.input.append(bias_name)
    conv.input[0] = x
    for node in (mul, add):
        if node is not None:
            graph.node.remove(node)
    return True


def static_flatten(model) -> int:
    from onnx import numpy_helper

    graph = model.graph
    inits = {t.name for t in graph.initializer}
    shapes = _shapes(model)
    changed = 0
    for node in graph.node:
        if node.op_type != "Reshape" or node.input[1] in inits:
            continue
        out = shapes.get(node.output[0])
        if out is None or len(out) != 2 or out[1] is None:
            continue
        name = node.name + "_static_shape"
        graph.initializer.append(numpy_helper.from_array(np.array([-1, out[1]], np.int64), name))
        inits.add(name)
        node.input[1] = name
        changed += 1
    return changed


def fold_flatten_transpose(model) -> int:
    graph = model.graph
    inits, consumers, _, nh = graph_maps(graph)
    shapes = _shapes(model)
    changed = 0
    for tr in list(graph.node):
        if tr.op_type != "Transpose":
            continue
        perm = next((list(a.ints) for a in tr.attribute if a.name == "perm"), None)
        shape = shapes.get(tr.input[0])
        users = consumers.get(tr.output[0], [])
        if perm != [0, 2, 3, 1] or shape is None or len(shape) != 4 or None in shape[1:] or len(users) != 1:
            continue
        reshape = users[0]
        shape_const = _const(inits, reshape.input[1], nh) if reshape.op_type == "Reshape" else None
        after = consumers.get(reshape.output[0], [])
        if shape_const is None or list(shape_const) != [-1, int(np.prod(shape[1:]))] or len(after) != 1:
            continue
        matmul = after[0]
        if matmul.op_type != "MatMul" or matmul.input[0] != reshape.output[0]:
            continue
        weight = _const(inits, matmul.input[1], nh)
        if weight is None or len(consumers.get(matmul.input[1], [])) != 1:
            continue
        _, c, h, w = shape
        # Row r of the NHWC flatten is (y, x, ch); the same value sits at ch*h*w + y*w + x in NCHW order.
        # NCHW row p=(ch, y, x) must read the weight of NHWC row (y, x, ch).
        nhwc_row_of = np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).reshape(-1)
        permuted = weight[nhwc_row_of]
        _set_init(graph, inits, matmul.input[1], permuted, nh)
        reshape.input[0] = tr.input[0]
        graph.node.remove(tr)
        changed += 1
    return changed


def channels_last_flatten(model) -> int:
    """A 4-D -> 2-D flatten into a Dense layer (MatMul with constant weights) reads NHWC order: Transpose(0,2,3,1)
    in front of it, and
    - Reshape(NCHW -> [-1, C*H*W]): the MatMul's rows permuted to match;
    - a 1x1 map (after global pooling), Reshape [-1, C] or Squeeze of axes 2, 3: the same values in the same
      order; the Squeeze drops axes 1, 2 instead."""
    from onnx import helper

    graph = model.graph
    inits, consumers, _, nh = graph_maps(graph)
    shapes = _shapes(model)
    changed = 0
    for flat in list(graph.node):
        shape = shapes.get(flat.input[0]) if flat.op_type in ("Reshape", "Squeeze") and len(flat.input) == 2 else None
        if shape is None or len(shape) != 4 or None in shape[1:]:
            continue
        _, c, h, w = shape
        arg = _const(inits, flat.input[1], nh)
        after = consumers.get(flat.output[0], [])
        matmul = after[0] if len(after) == 1 and after[0].op_type == "MatMul" else None
        weight = _const(inits, matmul.input[1], nh) if matmul is not None else None
        if arg is None or len(consumers.get(flat.input[1], [])) != 1 or weight is None or weight.ndim != 2 or \
                matmul.input[0] != flat.output[0] or len(consumers.get(matmul.input[1], [])) != 1:
            continue
        if flat.op_type == "Squeeze":
            if h * w != 1 or sorted(int(a) % 4 for a in arg.ravel()) != [2, 3]:
                continue
            inits[flat.input[1]].CopyFrom(nh.from_array(np.array([1, 2], np.int64), flat.input[1]))
        elif list(arg) != [-1, c * h * w]:
            continue
        elif h * w != 1:
            # NHWC row (y, x, ch) must read the weight of NCHW row (ch, y, x)
            nchw_row_of = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)
            _set_init(graph, inits, matmul.input[1], weight[nchw_row_of], nh)
        name = flat.name + "_channels_last"
        graph.node.insert(list(graph.node).index(flat),
                          helper.make_node("Transpose", [flat.input[0]], [name], name=name, perm=[0, 2, 3, 1]))
        flat.input[0] = name
        changed += 1
    return changed


def global_max_pool_as_max_pool(model) -> int:
    from onnx import helper

    shapes = _shapes(model)
    changed = 0
    for node in model.graph.node:
        shape = shapes.get(node.input[0]) if node.op_type == "GlobalMaxPool" else None
        if shape is None or len(shape) != 4 or None in shape[2:]:
            continue
        node.op_type = "MaxPool"  # same name: nodes kept in float are chosen by name
        node.attribute.extend([helper.make_attribute("kernel_shape", [shape[2], shape[3]])])
        changed += 1
    return changed


def channels_last_tail(model) -> dict[str, int]:
    """Rewrites 4 and 5 in place, for a graph about to be statically quantized; what changed."""
    return {"channels_last_flatten": channels_last_flatten(model),
            "global_max_pool_as_max_pool": global_max_pool_as_max_pool(model)}


def remove_dead_nodes(model) -> int:
    graph = model.graph
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(list(graph.node)):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
    removed = len(graph.node) - len(keep)
    del graph.node[:]
    graph.node.extend(reversed(keep))
    used = {i for n in graph.node for i in n.input}
    for init in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(init)
    return removed


def optimize_graph(model) -> dict[str, Any]:
    """Apply the rewrites in place; return what changed (recorded in the export report)."""
    import onnx

    before = Counter(n.op_type for n in model.graph.node)
    done = {
        "fold_input_normalization": fold_input_normalization(model),
        "static_flatten": static_flatten(model),
    }
    done["fold_flatten_transpose"] = fold_flatten_transpose(model)
    done["dead_nodes_removed"] = remove_dead_nodes(model)
    onnx.checker.check_model(model, full_check=True)
    after = Counter(n.op_type for n in model.graph.node)
    done["nodes_before"], done["nodes_after"] = sum(before.values()), sum(after.values())
    return done
