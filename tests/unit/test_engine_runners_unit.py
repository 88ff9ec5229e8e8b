"""How the engine routes a call (runtime/engine.py): batch 1 to the bound buffers, big batches to per-core shards
in sub-batches, everything else to one session call; and what `Engine.load` fixes for a model when it loads
(runner, plan, tuned settings). Recording fake sessions show which call went where; the load tests open the
shipped mnist file with tuning decisions given, so nothing here depends on this machine's timings."""

from __future__ import annotations

import dataclasses
import threading
from types import SimpleNamespace

import numpy as np
import pytest

from edgecls.runtime import engine as engine_module
from edgecls.runtime.engine import (CPU, MIN_PER_SHARD, CpuRunner, Engine, EnginePlan, SessionRunner, ShardedRunner,
                                    _random_input)
from edgecls.runtime.errors import EdgeclsError
from edgecls.runtime.store import find_onnx
from edgecls.runtime.tuning import Decision, Tuner, sub_batch


class RecordingSession:
    """A stand-in onnxruntime session: each row's output is (row sum, row index in its call); it records every
    call's batch size."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self._lock = threading.Lock()

    def get_inputs(self):
        return [SimpleNamespace(name="x")]

    def get_outputs(self):
        return [SimpleNamespace(name="y")]

    def run(self, outputs, feeds):
        assert outputs in (["y"], None) and list(feeds) == ["x"]
        batch = feeds["x"]
        with self._lock:
            self.calls.append(len(batch))
        return [np.stack([_sums(batch), np.arange(len(batch))], 1).astype(np.float32)]


def _rows(n: int) -> np.ndarray:
    return np.arange(n * 4, dtype=np.float32).reshape(n, 2, 2, 1)


def _sums(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), int(np.prod(x.shape[1:]))).sum(1)


def test_the_plan_as_a_dict_keeps_every_field_and_each_decision():
    tuning = {"batch1_cores": Decision("one", "measured", {"all_us": 40.0, "one_us": 30.0}),
              "sub_batch": Decision(None, "default", note="tuning off")}
    plan = EnginePlan("cpu", CPU, 2, batch1_cores=1, shards=2, sharded_from=32, sub_batch=None, tuning=tuning)
    assert plan.to_dict() == {
        "runner": "cpu", "provider": CPU, "threads": 2, "batch1_cores": 1, "shards": 2, "sharded_from": 32,
        "sub_batch": None,
        "tuning": {"batch1_cores": {"value": "one", "source": "measured", "note": "",
                                    "timings": {"all_us": 40.0, "one_us": 30.0}},
                   "sub_batch": {"value": None, "source": "default", "note": "tuning off", "timings": {}}}}
    assert EnginePlan("session", "CUDAExecutionProvider", 8).to_dict()["shards"] == 0


@pytest.mark.parametrize("size, calls", [(None, [25, 25]), (8, [8, 8, 8, 1] * 2), (25, [25, 25]), (30, [25, 25])])
def test_a_sharded_batch_runs_each_core_shard_in_calls_of_the_size_and_keeps_order(size, calls):
    session = RecordingSession()
    runner = ShardedRunner(lambda: session, shards=2, sub_batch=size)
    x = _rows(50)
    got = runner.run(x, lambda shard: shard * 2)  # prepare runs on each shard
    assert sorted(session.calls) == sorted(calls)
    assert np.array_equal(got[:, 0], _sums(x) * 2)  # every row once, in the caller's order


def test_an_explicit_size_overrides_the_tuned_one_and_the_session_is_built_once():
    built = []
    session = RecordingSession()
    runner = ShardedRunner(lambda: built.append(1) or session, shards=3, sub_batch=4)
    x = _rows(48)
    runner.run(x, lambda s: s)
    assert sorted(session.calls) == [4] * 12
    session.calls.clear()
    runner.run(x, lambda s: s, size=None)
    assert session.calls == [16, 16, 16]
    threads = [threading.Thread(target=runner.session) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert built == [1] and runner.shards == 3 and runner.min_batch == 3 * MIN_PER_SHARD


class FakeBound:
    def __init__(self, fail: bool = False) -> None:
        self.seen: list[np.ndarray] = []
        self.fail = fail

    def run(self, one: np.ndarray) -> np.ndarray:
        if self.fail:
            raise RuntimeError("output width differs")
        self.seen.append(one)
        return np.array([[-1.0, -1.0]], np.float32)


def _cpu_runner(one=None, shards: int = 2):
    session, shard_session = RecordingSession(), RecordingSession()
    sharded = ShardedRunner(lambda: shard_session, shards=shards) if shards else None
    return CpuRunner(session, ("x", "y"), one, sharded), session, shard_session


def test_batch_one_goes_to_the_bound_buffers_through_the_view_not_prepare():
    bound = FakeBound()
    runner, session, _ = _cpu_runner(bound)
    x = _rows(1)
    got = runner.run(x, prepare=lambda b: b + 100, view=lambda b: b * 3)
    assert got.tolist() == [[-1.0, -1.0]] and np.array_equal(bound.seen[0], x * 3) and session.calls == []


def test_batch_one_without_bound_buffers_or_after_they_fail_is_one_prepared_session_call():
    runner, session, _ = _cpu_runner(None)
    x = _rows(1)
    assert runner.run(x, prepare=lambda b: b + 1, view=lambda b: b)[0, 0] == _sums(x + 1)[0]
    broken = FakeBound(fail=True)
    runner, session, _ = _cpu_runner(broken)
    assert runner.run(x, prepare=lambda b: b, view=lambda b: b)[0, 0] == _sums(x)[0]
    assert runner.one is None and session.calls == [1]


def test_from_sixteen_images_per_core_a_batch_is_split_and_below_it_is_one_call():
    runner, session, shards = _cpu_runner(FakeBound(), shards=2)
    below, split = _rows(2 * MIN_PER_SHARD - 1), _rows(2 * MIN_PER_SHARD)
    assert np.array_equal(runner.run(below, lambda b: b, lambda b: b)[:, 0], _sums(below))
    assert session.calls == [2 * MIN_PER_SHARD - 1] and shards.calls == []
    assert np.array_equal(runner.run(split, lambda b: b, lambda b: b)[:, 0], _sums(split))
    assert session.calls == [2 * MIN_PER_SHARD - 1] and shards.calls == [MIN_PER_SHARD] * 2
    bigger = _rows(3 * MIN_PER_SHARD + 1)
    assert np.array_equal(runner.run(bigger, lambda b: b, lambda b: b)[:, 0], _sums(bigger))
    assert sorted(shards.calls)[-2:] == [24, 25]
    unsplit, session, _ = _cpu_runner(None, shards=0)
    assert unsplit.run(_rows(100), lambda b: b, lambda b: b).shape == (100, 2) and session.calls == [100]


def test_a_session_runner_makes_every_batch_one_prepared_call():
    session = RecordingSession()
    runner = SessionRunner(session, ("x", "y"))
    for n in (1, 7, 300):
        x = _rows(n)
        assert np.array_equal(runner.run(x, lambda b: b - 1, lambda b: b)[:, 0], _sums(x - 1))
    assert session.calls == [1, 7, 300]


def test_timing_pixels_are_seeded_whole_pixel_values_in_the_model_shape():
    x = _random_input(3, (1, 28, 28))
    assert x.shape == (3, 1, 28, 28) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() <= 255 and np.array_equal(x, np.round(x)) and len(np.unique(x)) > 200
    assert np.array_equal(x, _random_input(3, (1, 28, 28)))


# --- what a model's load fixes -------------------------------------------------------------------------------

def _mnist_int8():
    return find_onnx("mnist", "int8")


def _decided(monkeypatch, cores: str, size):
    """Make the two tuned settings come out as given (as if measured), recording what they were asked."""
    asked = {}

    def batch1_decide(tuner, path, threads, run_all, one_core, one):
        asked["batch1"] = (path, threads, one.shape)
        return Decision(cores, "measured", {"all_us": 1.0, "one_us": 1.0})

    def sub_batch_decide(tuner, path, shape, shards, run_at):
        asked["sub_batch"] = (path, shape, shards)
        asked["timed"] = [run_at(None).shape, run_at(8).shape]  # the batch its sizes are timed on
        return Decision(size, "measured")

    monkeypatch.setattr(engine_module.batch1, "decide", batch1_decide)
    monkeypatch.setattr(engine_module.sub_batch, "decide", sub_batch_decide)
    return asked


@pytest.mark.parametrize("cores, size, threads", [("all", None, 2), ("one", 32, 2), ("all", 8, 3),
                                                  ("".join(["a", "ll"]), None, 2)])  # as read from the cache file
def test_the_load_builds_the_runner_its_tuned_settings_describe(monkeypatch, mnist, cores, size, threads):
    asked = _decided(monkeypatch, cores, size)
    path = _mnist_int8()
    eng = Engine.load(path, device="cpu", threads=threads)
    runner = eng.runner
    assert isinstance(runner, CpuRunner) and runner.sharded.shards == threads and runner.sharded.sub_batch == size
    timed = (threads * sub_batch.PER_SHARD, 10)
    assert asked == {"batch1": (path, threads, (1, 1, 28, 28)), "sub_batch": (path, (1, 28, 28), threads),
                     "timed": [timed, timed]}
    plan = eng.plan
    assert (plan.runner, plan.provider, plan.threads, plan.shards, plan.sharded_from, plan.sub_batch) == \
           ("cpu", CPU, threads, threads, threads * MIN_PER_SHARD, size)
    assert plan.batch1_cores == (threads if cores == "all" else 1)
    assert plan.tuning["batch1_cores"].value == cores and plan.tuning["sub_batch"].value == size
    # batch 1 runs on the session the plan names: all cores' session, or the one-thread shard session
    expected = eng.session if cores == "all" else runner.sharded.session()
    assert runner.one._session is expected
    x = mnist.test.x[:40]
    scores = eng.run(x)
    assert scores.shape == (40, 10) and (scores.argmax(1) == mnist.test.y[:40]).mean() >= 0.95
    assert np.allclose(eng.run(x[:1]), scores[:1], atol=1e-5)


def test_one_core_gets_no_shards_and_no_timing(monkeypatch):
    def never(*args):
        raise AssertionError("nothing to time on one core")

    monkeypatch.setattr(engine_module.batch1, "decide", never)
    monkeypatch.setattr(engine_module.sub_batch, "decide", never)
    eng = Engine.load(_mnist_int8(), device="cpu", threads=1)
    assert eng.runner.sharded is None and eng.runner.one._session is eng.session
    assert (eng.plan.threads, eng.plan.batch1_cores, eng.plan.shards, eng.plan.sharded_from) == (1, 1, 0, 0)
    assert eng.plan.tuning["batch1_cores"] == Tuner.fixed("all", "one core") and "sub_batch" not in eng.plan.tuning


def test_run_takes_pixels_or_the_model_layout_and_refuses_other_shapes(mnist):
    eng = Engine.load(_mnist_int8(), device="cpu", threads=2, tuner=Tuner("off"))
    x = mnist.test.x[:3]
    pixels = eng.run(x)
    assert np.allclose(eng.run(eng.model_input(x)), pixels, atol=1e-6)
    assert np.allclose(eng.run(x.astype(np.float64)), pixels, atol=1e-5)  # any dtype
    assert eng.run(np.zeros((3, 28, 28, 3), np.uint8)) is None
    assert eng.run(np.zeros((3, 3, 28, 28), np.float32)) is None
    assert eng.run(np.zeros((3, 1, 28, 27), np.float32)) is None and eng.run(np.zeros((3, 28, 27, 1))) is None
    assert eng.width == 10 and eng.spec.shape == (1, 28, 28) and eng.info.labels == tuple(str(i) for i in range(10))


def test_a_binary_head_needs_exactly_two_labels(monkeypatch):
    _binary_head(monkeypatch, tuple(str(d) for d in range(10)))
    with pytest.raises(EdgeclsError, match=r"mnist\.int8\.onnx: a binary head needs exactly two labels, "
                                           r"metadata has 10"):
        Engine.load(_mnist_int8(), device="cpu", threads=1)


def test_an_empty_batch_is_one_session_call_and_leaves_batch_one_bound():
    bound = FakeBound()
    runner, session, _ = _cpu_runner(bound)
    assert runner.run(_rows(0), lambda b: b, lambda b: b).shape == (0, 2) and session.calls == [0]
    runner.run(_rows(1), lambda b: b, lambda b: b)
    assert runner.one is bound and len(bound.seen) == 1


def test_the_plan_is_a_value():
    with pytest.raises(dataclasses.FrozenInstanceError):
        EnginePlan("cpu", CPU, 2).threads = 4  # type: ignore[misc]


def _binary_head(monkeypatch, labels: tuple[str, ...]) -> None:
    """mnist's file read as if its metadata declared a binary head with these labels."""
    from edgecls.runtime import metadata

    real = metadata.ModelInfo.from_metadata

    def binary(meta, source):
        return dataclasses.replace(real(meta, source), output="binary", labels=labels)

    monkeypatch.setattr(engine_module.ModelInfo, "from_metadata", staticmethod(binary))
    monkeypatch.setattr(engine_module, "output_width", lambda output, labels: 10)


def test_a_binary_head_with_two_labels_loads_and_one_label_does_not(monkeypatch):
    _binary_head(monkeypatch, ("cat", "dog"))
    assert Engine.load(_mnist_int8(), device="cpu", threads=1).info.labels == ("cat", "dog")
    _binary_head(monkeypatch, ("cat",))
    with pytest.raises(EdgeclsError, match="a binary head needs exactly two labels, metadata has 1"):
        Engine.load(_mnist_int8(), device="cpu", threads=1)


@pytest.mark.parametrize("provider", ["CUDAExecutionProvider", "ACLExecutionProvider"])
def test_any_provider_but_the_cpu_runs_every_batch_as_one_session_call(monkeypatch, provider):
    """CUDA and the other providers parallelise inside a call: no bound buffers, no shards, no tuning."""
    def never(*args):
        raise AssertionError("nothing is tuned off the CPU")

    monkeypatch.setattr(engine_module, "session_provider", lambda session: provider)
    monkeypatch.setattr(engine_module.batch1, "decide", never)
    eng = Engine.load(_mnist_int8(), device="cpu", threads=2)
    assert type(eng.runner) is SessionRunner and eng.plan == EnginePlan("session", provider, 2)
    assert eng.run(np.zeros((3, 28, 28, 1), np.uint8)).shape == (3, 10)


@pytest.mark.parametrize("spin", [True, False, None])
def test_shards_run_one_thread_sessions_and_every_session_spins_as_asked(monkeypatch, spin):
    built = []
    real = engine_module.create_session

    def recording(path, device, threads, spin_):
        built.append((device, threads, spin_))
        return real(path, device, threads, spin_)

    monkeypatch.setattr(engine_module, "create_session", recording)
    _decided(monkeypatch, "all", None)
    options = {} if spin is None else {"spin": spin}
    eng = Engine.load(_mnist_int8(), device="cpu", threads=2, **options)
    eng.runner.sharded.session()
    expected = True if spin is None else spin  # idle threads spin by default: the lowest latency
    assert built == [("cpu", 2, expected), ("cpu", 1, expected)]
