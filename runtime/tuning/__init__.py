"""Per-machine tuning, apart from the engine that uses it: which validated variant runs fastest (variant.py),
whether batch-1 calls run on one core or all (batch1.py), how many images each core's calls take
(sub_batch.py). Each is measured once per machine and model by the same timing loop (runtime/timing.py),
through one `Tuner` (tuner.py), and kept in the one cache folder `environment.cache_dir("tuning")` (cache.py).

    Tuner("auto")    measure what is not cached yet (the default)
    Tuner("cached")  use only what an earlier run measured; defaults otherwise
    Tuner("off")     defaults, no cache read or written
"""

from .tuner import TUNE_MODES, Decision, Tuner, as_tuner

__all__ = ["TUNE_MODES", "Decision", "Tuner", "as_tuner"]
