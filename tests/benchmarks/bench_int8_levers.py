"""What each int8 lever gives, measured: session options, quantization format, float islands, uint8 input,
batch-1 call path. One process per model, every candidate taking turns (toolkit/bench/interleaved.py).

    EDGECLS_DATA=/work/shared/datasets python tests/benchmarks/bench_int8_levers.py [--models mnist,cifar10]

Candidates are re-quantized here from the shipped fp32 model with the shipped calibration recipe (512 training
images, minmax) and scored on 2,000 test images, so accuracy moves are visible next to speed. Writes
artifacts/benchmarks/int8_levers.md. Ratios are vs the shipped int8 file in a default edgecls session.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))


def session(blob: bytes, threads: int, spin: bool = True, level: str = "all", qdq_propagation: bool = False,
            profile: str = "", dynamic_block_base: int = 0):
    import onnxruntime as ort

    o = ort.SessionOptions()
    o.log_severity_level = 3
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    o.graph_optimization_level = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                  "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                                  "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]
    if not spin:
        o.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if dynamic_block_base:  # smaller, self-scheduled work blocks in onnxruntime's intra-op pool
        o.add_session_config_entry("session.dynamic_block_base", str(dynamic_block_base))
    if profile:
        o.enable_profiling = True
        o.profile_file_prefix = profile
    disabled = [] if qdq_propagation else ["QDQPropagationTransformer"]
    return ort.InferenceSession(blob, o, providers=["CPUExecutionProvider"], disabled_optimizers=disabled)


def float_predict(sess, layout: str = "NCHW") -> Callable:
    name = sess.get_inputs()[0].name

    def predict(x):
        b = x.astype(np.float32)
        if layout == "NCHW":
            b = b.transpose(0, 3, 1, 2)
        return sess.run(None, {name: np.ascontiguousarray(b)})[0]

    return predict


def sharded_predict(blob: bytes, threads: int, sub_batch="auto") -> Callable:
    """The shipped big-batch path (`edgecls.runtime.engine.ShardedRunner`): the batch cut into `threads`
    contiguous shards, each run on a pool thread by a one-thread session; smaller batches run whole on one.
    sub_batch "auto": timed here on a 128-image shard per core (runtime/tuning/sub_batch.py), not cached."""
    from edgecls.runtime.engine import ShardedRunner
    from edgecls.runtime.tuning import sub_batch as sizes

    sess = session(blob, 1)
    name = sess.get_inputs()[0].name
    runner = ShardedRunner(lambda: sess, threads)
    if sub_batch == "auto":
        shape = tuple(d if isinstance(d, int) else 1 for d in sess.get_inputs()[0].shape[1:])
        sample = np.random.default_rng(0).integers(0, 256, (threads * sizes.PER_SHARD, *shape)).astype(np.float32)
        runner.sub_batch = sizes.best_size(sizes.time_sizes(lambda s: runner.run(sample, lambda b: b, s),
                                                            len(sample)))
    else:
        runner.sub_batch = sub_batch

    def to_input(b):
        return np.ascontiguousarray(b.astype(np.float32).transpose(0, 3, 1, 2))

    def predict(x):
        if runner.takes(len(x)):
            return runner.run(x, to_input)
        return sess.run(None, {name: to_input(x)})[0]

    return predict


def uint8_input(blob: bytes) -> bytes:
    """The same graph reading uint8 NCHW pixels (a Cast to float inside), so the caller converts nothing."""
    import onnx
    from onnx import TensorProto, helper

    m = onnx.load_from_string(blob)
    g = m.graph
    old = g.input[0]
    new_name = old.name + "_u8"
    for node in g.node:
        for i, name in enumerate(node.input):
            if name == old.name:
                node.input[i] = new_name
    g.node.insert(0, helper.make_node("Cast", [old.name], [new_name], to=TensorProto.FLOAT, name="input_cast"))
    old.type.tensor_type.elem_type = TensorProto.UINT8
    return m.SerializeToString()


def quantize(fp32: bytes, calib: np.ndarray, spec, fmt: str = "QDQ", act: str = "u8", per_channel: bool = True,
             float_stem: bool = True, max_float_channels: int = 1, pad_stem: bool = True,
             channels_last_tail: bool = True) -> bytes:
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, StaticQuantConfig, quantize as q

    from edgecls.exporters.optimize import channels_last_tail as keep_tail_channels_last
    from edgecls.exporters.quantize import _reader, float_nodes, pad_stem_channels, preprocess_for_quantization

    with tempfile.TemporaryDirectory() as tmp:
        src, pre, out = Path(tmp, "a.onnx"), Path(tmp, "b.onnx"), Path(tmp, "c.onnx")
        model = onnx.load_from_string(fp32)
        if channels_last_tail:  # as the exporter does
            keep_tail_channels_last(model)
        src.write_bytes(model.SerializeToString())
        preprocess_for_quantization(src, pre)
        if pad_stem:  # as the exporter does
            pad_stem_channels(pre, float_stem, max_float_channels)
        cfg = StaticQuantConfig(
            _reader(calib, spec), calibrate_method=CalibrationMethod.MinMax,
            quant_format=QuantFormat.QDQ if fmt == "QDQ" else QuantFormat.QOperator,
            activation_type=QuantType.QUInt8 if act == "u8" else QuantType.QInt8, weight_type=QuantType.QInt8,
            per_channel=per_channel, nodes_to_exclude=float_nodes(pre, float_stem, max_float_channels))
        with contextlib.redirect_stdout(io.StringIO()):
            q(str(pre), str(out), cfg)
        return out.read_bytes()


def profile_nodes(blob: bytes, x: np.ndarray, threads: int, top: int = 6) -> list[str]:
    """onnxruntime's per-node profile at batch 256: the nodes taking most of the time."""
    with tempfile.TemporaryDirectory() as tmp:
        sess = session(blob, threads, profile=str(Path(tmp) / "prof"))
        predict = float_predict(sess)
        for _ in range(20):
            predict(x)
        trace = json.loads(Path(sess.end_profiling()).read_text())
    per: dict[str, float] = {}
    for ev in trace:
        if ev.get("cat") == "Node" and ev["name"].endswith("_kernel_time"):
            key = f"{ev['args'].get('op_name', '?')} {ev['name'][:-12]}"
            per[key] = per.get(key, 0.0) + ev["dur"]
    total = sum(per.values()) or 1.0
    return [f"{k} {v / total * 100:.0f}%" for k, v in sorted(per.items(), key=lambda kv: -kv[1])[:top]]


def run_model(name: str, threads: int, rounds: int, window: float, calls: int) -> list[str]:
    from bench_int8_peers import model_data

    from edgecls.bench import interleaved
    from edgecls.runtime.classifier import Classifier
    from edgecls.runtime.spec import InputSpec

    folder = REPO / "artifacts" / name
    data = model_data(name, 2000)
    x, y, calib = data["x"], data["y"], data["calib"]
    fp32 = (folder / f"{name}.onnx").read_bytes()
    shipped = (folder / f"{name}.int8.onnx").read_bytes()
    spec = Classifier(folder / f"{name}.onnx").spec
    spec = InputSpec.from_dict({**spec.__dict__}) if hasattr(spec, "__dict__") else spec

    cands: dict[str, Callable] = {}
    blobs: dict[str, bytes] = {"shipped int8 (QDQ U8S8 per-channel, stem as exported)": shipped}
    cands["shipped int8, edgecls session (baseline)"] = float_predict(session(shipped, threads))
    cands["fp32, edgecls session"] = float_predict(session(fp32, threads))
    cands["session: spinning off"] = float_predict(session(shipped, threads, spin=False))
    cands["session: optimization level extended"] = float_predict(session(shipped, threads, level="extended"))
    cands["session: optimization level basic"] = float_predict(session(shipped, threads, level="basic"))
    cands["session: QDQPropagation on (stock onnxruntime)"] = float_predict(session(shipped, threads, qdq_propagation=True))
    cands["session: dynamic block base 4"] = float_predict(session(shipped, threads, dynamic_block_base=4))
    cands[f"batch split in {threads} shards, one-thread session each, one call per shard"] = \
        sharded_predict(shipped, threads, sub_batch=None)
    cands[f"batch split in {threads} shards, in cache-sized sub-batches (timed; shipped)"] = \
        sharded_predict(shipped, threads)
    cands[f"fp32, batch split in {threads} shards"] = sharded_predict(fp32, threads)
    variants = {"QOperator U8S8 per-channel": dict(fmt="QOperator"),
                "QDQ S8S8 per-channel": dict(act="s8"),
                "QDQ U8S8 per-tensor": dict(per_channel=False),
                "QDQ U8S8, stem conv int8 too": dict(float_stem=False),
                "QDQ U8S8, stem conv int8 too, input not padded to 4 channels": dict(float_stem=False, pad_stem=False),
                "QDQ U8S8, stem conv float up to 4 input channels (the recipe before)": dict(max_float_channels=4),
                "QDQ U8S8, flatten and global max pool left channels-first (the recipe before)":
                    dict(channels_last_tail=False)}
    for label, kw in variants.items():
        try:
            blobs[label] = quantize(fp32, calib, spec, **kw)
            cands[f"format: {label}"] = float_predict(session(blobs[label], threads))
        except Exception as exc:  # noqa: BLE001 - a lever that cannot be built is a finding, not a crash
            print(f"{name}: {label}: {exc}", file=sys.stderr)
    u8 = uint8_input(shipped)
    u8_sess = session(u8, threads)
    u8_name = u8_sess.get_inputs()[0].name
    cands["uint8 model input (Cast inside)"] = lambda b: u8_sess.run(None, {u8_name: np.ascontiguousarray(
        b.transpose(0, 3, 1, 2))})[0]

    accuracy = {k: float((np.concatenate([p(x[i:i + 256]) for i in range(0, len(x), 256)]).argmax(1) == y).mean())
                for k, p in cands.items()}
    rates = interleaved.throughput(cands, x, 256, rounds, window)
    lat = interleaved.latency(cands, x, rounds, calls)

    # batch-1 call paths on the shipped int8 (same session options), and one thread at batch 1
    clf = Classifier(folder / f"{name}.int8.onnx", device="cpu", threads=threads)
    sess = session(shipped, threads)
    inp, out = sess.get_inputs()[0].name, sess.get_outputs()[0].name
    binding = sess.io_binding()
    width = sess.run(None, {inp: np.zeros((1, *spec.shape), np.float32)})[0].shape[1]
    out_buf = np.empty((1, width), np.float32)
    in_buf = np.empty((1, *spec.shape), np.float32)
    binding.bind_cpu_input(inp, in_buf)
    binding.bind_output(out, "cpu", 0, np.float32, out_buf.shape, out_buf.ctypes.data)

    def iobinding(b):
        np.copyto(in_buf, b.transpose(0, 3, 1, 2))
        sess.run_with_iobinding(binding)
        return out_buf

    one_thread = float_predict(session(shipped, 1))
    paths = {"Classifier.run (baseline)": clf.run, "session.run, output name given": float_predict(sess),
             "IOBinding, preallocated input/output": iobinding, "1 intra-op thread": one_thread}
    lat_paths = interleaved.latency(paths, x, rounds, calls)

    base_tp = rates["shipped int8, edgecls session (baseline)"]
    base_lat = lat["shipped int8, edgecls session (baseline)"][0]
    lines = [f"### {name} ({threads} threads)", "", "| lever | test acc | img/s @256 | vs baseline | p50 us @1 | vs baseline |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for k in cands:
        lines.append(f"| {k} | {accuracy[k] * 100:.2f}% | {rates[k]:,.0f} | {rates[k] / base_tp:.2f}x | "
                     f"{lat[k][0] * 1000:.1f} | {base_lat / lat[k][0]:.2f}x |")
    base_path = lat_paths["Classifier.run (baseline)"][0]
    for k, (p50, _) in lat_paths.items():
        if k != "Classifier.run (baseline)":
            lines.append(f"| batch-1 path: {k} | | | | {p50 * 1000:.1f} | {base_path / p50:.2f}x vs Classifier.run "
                         f"({base_path * 1000:.1f}) |")
    lines += ["", "Where the time goes at batch 256 (onnxruntime profile, share of node time):", ""]
    for label, blob in [("fp32", fp32), ("shipped int8", shipped)]:
        lines.append(f"- {label}: " + ", ".join(profile_nodes(blob, x[:256], threads)))
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="mnist,cifar10")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "benchmarks" / "int8_levers.md")
    args = parser.parse_args()
    from edgecls.machine import describe_machine

    rounds, window, calls = (3, 0.1, 100) if args.quick else (7, 0.25, 300)
    lines = ["# int8 levers, measured", "",
             f"{describe_machine()}; {args.threads} threads. Every candidate in one process, taking turns "
             f"({rounds} turns of >= {window}s at batch 256, median; {rounds} x {calls} batch-1 calls, p50). "
             "Accuracy on 2,000 test images (declared preprocessing). The only execution providers in the "
             "onnxruntime CPU wheel are CPU and Azure (a remote-call provider), so no other EP was measured. "
             f"Re-create: `python tests/benchmarks/bench_int8_levers.py{' --quick' if args.quick else ''}`.", ""]
    for name in args.models.split(","):
        lines += run_model(name, args.threads, rounds, window, calls)
        print("\n".join(lines[-30:]), flush=True)
    from edgecls.runtime.atomic import write_bytes_atomic

    write_bytes_atomic(args.out, ("\n".join(lines) + "\n").encode())  # the tables were printed as they came
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
