"""Derivation time of the shaped Transformer SDE: cold (fresh cache) and cached, for the matrix-level
engine (m = 2 … 128; its per-entry Σ on request, m ≤ 8) and the per-entry reference engine (m ≤ 16).

Targets: m = 8 under 10 s cold, under 0.2 s from cache; a derivation cost
independent of m.  Prints a table; asserts nothing.
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
    print(f"{'engine':>8} {'m':>4} {'cold derive [s]':>16} {'+ per-entry Σ [s]':>18} {'cached [s]':>11}")
    for engine, sizes in (("matrix", (2, 4, 8, 16, 64, 128)), ("entries", (2, 4, 8, 16))):
        for m in sizes:
            t0 = time.perf_counter()
            d = derive(blk, m, use_cache=False, engine=engine)
            t1 = time.perf_counter()
            if m <= 8:
                d.diffusion  # the per-entry Σ tensor
            t2 = time.perf_counter()
            derive(blk, m, engine=engine)  # fills the cache
            t3 = time.perf_counter()
            d2 = derive(blk, m, engine=engine)
            t4 = time.perf_counter()
            assert d2.from_cache
            sig = f"{t2 - t1:18.3f}" if m <= 8 else f"{'—':>18}"
            print(f"{engine:>8} {m:>4} {t1 - t0:16.3f} {sig} {t4 - t3:11.3f}", flush=True)


if __name__ == "__main__":
    main()
