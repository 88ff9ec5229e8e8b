"""`edgecls.api.tune`: measure once what the runtime tunes per machine for a model, and say what it chose and why:
the variant (auto), the threads (the cores this process may use), batch-1 cores and sub-batch sizes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from ..runtime.engine import EnginePlan
from ..runtime.variant_policy import VariantChoice

PathLike = Union[str, os.PathLike]


@dataclass
class TuneReport:
    model: str
    choice: VariantChoice
    engine: EnginePlan
    cores: dict[str, Any]  # usable, affinity, cgroup_quota
    cache_dir: Path

    def rows(self) -> list[dict[str, str]]:
        """One row per setting: its value, where it came from, and the figures behind it."""
        c, e = self.choice, self.engine
        rows = [{"setting": "variant", "value": f"{c.variant} ({c.path.name})", "source": c.reason,
                 "why": _variant_figures(c)}]
        quota = self.cores["cgroup_quota"]
        rows.append({"setting": "threads", "value": str(e.threads), "source": "cores this process may use",
                     "why": f"affinity {self.cores['affinity']} cores, cgroup CPU quota "
                            f"{'none' if quota is None else f'{quota:g}'}"})
        for key, label in (("batch1_cores", "batch-1 cores"), ("sub_batch", "sub-batch")):
            d = e.tuning.get(key)
            if d is None:
                continue
            value = {"batch1_cores": str(e.batch1_cores), "sub_batch": "whole shard" if e.sub_batch is None
                     else f"{e.sub_batch} images"}[key]
            rows.append({"setting": label, "value": value, "source": d.note or d.source,
                         "why": ", ".join(f"{k} {v:.1f} us" for k, v in d.timings.items()) or "-"})
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "choice": self.choice.to_dict(), "engine": self.engine.to_dict(),
                "cores": self.cores, "cache_dir": str(self.cache_dir)}


def tune(model: PathLike = "mnist", *, variant: str = "auto", device: str = "auto", threads: Optional[int] = None,
         workspace: Optional[PathLike] = None, again: bool = False) -> TuneReport:
    """Measure what is not cached yet for `model` on this machine (everything, when `again`), cache it, and
    report it; what `Classifier`, `edgecls infer` and `edgecls serve` then use without measuring."""
    from ..runtime.classifier import Classifier
    from ..runtime.cores import affinity_cores, cpu_quota, usable_cores
    from ..runtime.tuning import Tuner
    from ..runtime.tuning.cache import cache_dir
    from ..runtime.variant_policy import choose_variant

    tuner = Tuner("again" if again else "auto")
    choice = choose_variant(model, variant, device=device, workspace=workspace, tune=tuner)
    clf = Classifier(choice, device=device, threads=threads, tune=tuner)
    cores = {"usable": usable_cores(), "affinity": affinity_cores(), "cgroup_quota": cpu_quota()}
    return TuneReport(os.fspath(model), choice, clf.engine, cores, cache_dir())


def _variant_figures(choice: VariantChoice) -> str:
    parts = [f"{v} {m['latency_ms'] * 1e3:.1f} us @1, {m['per_image_ms'] * 1e3:.1f} us/img @64"
             for v, m in sorted(choice.measured.items())]
    parts += [f"{v} not considered: {why}" for v, why in choice.skipped.items()]
    return "; ".join(parts) or "-"
