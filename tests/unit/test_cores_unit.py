"""Threads from the cores this process may use: CPU affinity capped by the cgroup CPU quota (v2 cpu.max, v1
cfs_quota_us/cfs_period_us), read from cgroup files this test writes, as a container or a pod would show them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgecls.runtime.cores import affinity_cores, cpu_quota, usable_cores


def _tree(root: Path, files: dict[str, str], proc: str) -> dict[str, Path]:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "proc-self-cgroup").write_text(proc)
    return {"cgroup_root": root / "fs", "proc_cgroup": root / "proc-self-cgroup"}


def test_v2_pod_limit_caps_threads(tmp_path, monkeypatch):
    where = _tree(tmp_path, {"fs/cpu.max": "max 100000\n", "fs/kubepods/pod1/cpu.max": "150000 100000\n",
                             "fs/kubepods/pod1/ctr/cpu.max": "max 100000\n"}, "0::/kubepods/pod1/ctr\n")
    assert cpu_quota(**where) == 1.5  # the pod's limit, set one level above the container's own cgroup
    monkeypatch.setattr("edgecls.runtime.cores.affinity_cores", lambda: 64)
    assert usable_cores(**where) == 2  # rounded up: 1.5 CPUs of time keep 2 threads busy
    assert usable_cores(3, **where) == 3  # an explicit count is taken as given


def test_v2_tightest_ancestor_wins_and_unlimited_means_affinity(tmp_path, monkeypatch):
    monkeypatch.setattr("edgecls.runtime.cores.affinity_cores", lambda: 8)
    where = _tree(tmp_path / "a", {"fs/cpu.max": "max 100000", "fs/slice/cpu.max": "50000 100000",
                                   "fs/slice/job/cpu.max": "400000 100000"}, "0::/slice/job\n")
    assert cpu_quota(**where) == 0.5 and usable_cores(**where) == 1
    free = _tree(tmp_path / "b", {"fs/cpu.max": "max 100000", "fs/job/cpu.max": "max 100000"}, "0::/job\n")
    assert cpu_quota(**free) is None and usable_cores(**free) == 8
    few = _tree(tmp_path / "c", {"fs/job/cpu.max": "1600000 100000"}, "0::/job\n")  # 16 CPUs of quota, 8 allowed
    assert usable_cores(**few) == 8


def test_v1_cfs_quota_and_namespaced_paths(tmp_path, monkeypatch):
    monkeypatch.setattr("edgecls.runtime.cores.affinity_cores", lambda: 32)
    v1 = _tree(tmp_path / "a", {"fs/cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "300000",
                                "fs/cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000",
                                "fs/cpu,cpuacct/cpu.cfs_quota_us": "-1", "fs/cpu,cpuacct/cpu.cfs_period_us": "100000"},
               "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n")
    assert cpu_quota(**v1) == 3.0 and usable_cores(**v1) == 3
    # a container without its own cgroup namespace shows the host's path; its mount is its own cgroup
    hidden = _tree(tmp_path / "b", {"fs/cpu/cpu.cfs_quota_us": "200000", "fs/cpu/cpu.cfs_period_us": "100000"},
                   "3:cpu:/docker/0123456789\n")
    assert usable_cores(**hidden) == 2


@pytest.mark.parametrize("text", ["", "garbage", "0 100000", "-5 100000", "100000 0", "max"])
def test_unusable_quota_files_mean_no_limit(tmp_path, monkeypatch, text):
    monkeypatch.setattr("edgecls.runtime.cores.affinity_cores", lambda: 4)
    where = _tree(tmp_path, {"fs/cpu.max": text}, "0::/\n")
    assert cpu_quota(**where) is None and usable_cores(**where) == 4


def test_no_cgroup_filesystem_means_affinity(tmp_path):
    where = {"cgroup_root": tmp_path / "absent", "proc_cgroup": tmp_path / "absent-too"}
    assert cpu_quota(**where) is None and usable_cores(**where) == affinity_cores()
    assert affinity_cores() == len(os.sched_getaffinity(0))
