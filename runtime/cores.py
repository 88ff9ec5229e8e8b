"""How many cores this process may compute on: its CPU affinity and its cgroup's CPU quota, whichever is less.

`os.cpu_count()` counts the host. A container or a Kubernetes pod limited to 2 CPUs on a 64-core host sees 64,
and a thread pool sized from that starts 64 threads that share 2 CPUs' worth of time: each one is stopped at the
end of every quota period while holding work the others wait for (onnxruntime sizes its pools from the host's
cores unless told otherwise). The quota comes from cgroup v2 (`cpu.max`) or v1 (`cpu.cfs_quota_us` /
`cpu.cfs_period_us`), read along the process's own cgroup path and each of its ancestors (the tightest wins),
and is rounded up: 1.5 CPUs of quota make 2 threads.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterator, Optional

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")
V1_CPU_DIRS = ("cpu,cpuacct", "cpu", "cpuacct,cpu")  # how distributions name the v1 cpu controller's mount


def usable_cores(threads: Optional[int] = None, *, cgroup_root: Path = CGROUP_ROOT,
                 proc_cgroup: Path = PROC_CGROUP) -> int:
    """`threads` when given; else the cores this process may use: its CPU affinity, capped by the cgroup's CPU
    quota (rounded up). The one answer to "how many threads" for sessions, servers, decoders and Ray actors."""
    if threads:
        return threads
    cores = affinity_cores()
    quota = cpu_quota(cgroup_root=cgroup_root, proc_cgroup=proc_cgroup)
    return max(1, min(cores, math.ceil(quota))) if quota else cores


def affinity_cores() -> int:
    """Cores the scheduler may run this process on (taskset, cpusets); the host's count where unknown."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cpu_quota(*, cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> Optional[float]:
    """CPUs' worth of time per period this process's cgroups allow (2.0, 0.5, ...); None when unlimited or
    unknown (no cgroup file system, unreadable files)."""
    limits = [q for folder in _cgroup_folders(cgroup_root, proc_cgroup) if (q := _quota_in(folder)) is not None]
    return min(limits) if limits else None


def _quota_in(folder: Path) -> Optional[float]:
    """The quota one cgroup folder sets (v2 or v1 files), None when it sets none or the files are unusable."""
    try:
        if (folder / "cpu.max").is_file():
            quota, _, period = (folder / "cpu.max").read_text().strip().partition(" ")
            return None if quota == "max" else _ratio(quota, period or "100000")
        if (folder / "cpu.cfs_quota_us").is_file():
            quota = (folder / "cpu.cfs_quota_us").read_text().strip()
            period = (folder / "cpu.cfs_period_us").read_text().strip()
            return _ratio(quota, period)
    except OSError:
        return None
    return None


def _ratio(quota: str, period: str) -> Optional[float]:
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None  # v1 writes -1 for "no limit"


def _cgroup_folders(root: Path, proc_cgroup: Path) -> Iterator[Path]:
    """This process's cgroup folder under each mounted hierarchy and every ancestor up to the mount. A path that
    does not exist under the mount (a container without its own cgroup namespace shows the host's path) falls
    back to the mount itself, which is then the container's own cgroup."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "":  # v2: "0::/user.slice/..."
            bases = [root]
        elif "cpu" in controllers.split(","):
            bases = [root / name for name in V1_CPU_DIRS if (root / name).is_dir()]
        else:
            continue
        for base in bases:
            yield from _up_to(base, base / path.strip().lstrip("/"))
    if not lines:
        yield root


def _up_to(base: Path, folder: Path) -> Iterator[Path]:
    if not folder.is_dir():
        folder = base
    while True:
        yield folder
        if folder == base or base not in folder.parents:
            return
        folder = folder.parent
