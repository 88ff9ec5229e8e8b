"""What `Classifier.engine` says about how a model runs (EnginePlan), and from which batch size a batch is split
over the cores (ShardedRunner.takes): built here from their parts, no session, no model."""

from __future__ import annotations

from edgecls.runtime.engine import MIN_PER_SHARD, EnginePlan, ShardedRunner
from edgecls.runtime.tuning import Decision

CPU = "CPUExecutionProvider"


def test_a_session_runner_says_every_batch_is_one_call():
    plan = EnginePlan("session", "CUDAExecutionProvider", 1)
    assert str(plan) == "session on CUDAExecutionProvider: every batch one call"


def test_the_cpu_plan_names_threads_cores_and_why_in_the_singular_and_plural():
    measured = {"batch1_cores": Decision(1, "measured"), "sub_batch": Decision(32, "cached", note="")}
    plan = EnginePlan("cpu", CPU, 4, batch1_cores=1, shards=4, sharded_from=64, sub_batch=32, tuning=measured)
    assert str(plan) == ("cpu, 4 threads; batch 1 on 1 core (measured); batches >= 64 split over 4 cores in calls "
                         "of 32 (cached)")
    one = EnginePlan("cpu", CPU, 1, batch1_cores=2, tuning={"batch1_cores": Decision(2, "default", note="one thread")})
    assert str(one) == "cpu, 1 thread; batch 1 on 2 cores (one thread)"
    whole = EnginePlan("cpu", CPU, 2, batch1_cores=2, shards=2, sharded_from=32)
    assert str(whole) == "cpu, 2 threads; batch 1 on 2 cores (default); batches >= 32 split over 2 cores in whole " \
                         "shards (default)"


def test_a_batch_is_split_from_sixteen_images_per_core():
    runner = ShardedRunner(lambda: None, shards=4)
    assert runner.min_batch == 4 * MIN_PER_SHARD == 64
    assert runner.takes(64) and not runner.takes(63)
