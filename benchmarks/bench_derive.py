"""Derivation time of the shaped Transformer SDE at m = 2, 4, 8: cold (fresh cache) and cached.

Targets (issue 2): m = 8 under 10 s cold, under 0.2 s from cache.  Prints a table; asserts nothing.
Run:  .venv/bin/python benchmarks/bench_derive.py
"""
import os
import tempfile
import time

os.environ["COVSDE_CACHE_DIR"] = tempfile.mkdtemp(prefix="covsde-bench-")

from covsde.derive import derive  # noqa: E402
from covsde.derive.variants import build  # noqa: E402


def main():
    blk, _ = build("transformer", {})
    print(f"{'m':>3} {'cold derive [s]':>16} {'+ diffusion [s]':>16} {'cached [s]':>11}")
    for m in (2, 4, 8):
        t0 = time.perf_counter()
        d = derive(blk, m, use_cache=False)
        t1 = time.perf_counter()
        d.diffusion  # the Σ tensor
        t2 = time.perf_counter()
        derive(blk, m)  # fills the cache
        t3 = time.perf_counter()
        d2 = derive(blk, m)
        d2.diffusion
        t4 = time.perf_counter()
        assert d2.from_cache
        print(f"{m:>3} {t1 - t0:>16.2f} {t2 - t1:>16.2f} {t4 - t3:>11.3f}")


if __name__ == "__main__":
    main()
