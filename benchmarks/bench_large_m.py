"""Sequence lengths in the hundreds: the Transformer SDE at m = 32, 64, 128, all timings in one run.

1. derive + code generation for m = 128, cold (a fresh cache folder): the matrix-level derivation, and
   the module source generated from it (one module for every m); the module's Numba compilation is
   timed separately (it is the same for every m, and cached on disk after the first run).
2. simulate the Transformer SDE (γ = 0.5, τ0 = 1, V0 = 0.5 I + A Aᵀ/m): 1024 paths × 100 steps at
   m = 32 and 64, 256 paths × 100 steps at m = 128 (T = 0.1, dt = 0.001); default PSD scheme and EM.  Contender (the issue's
   yardstick), measured in the same run on the same machine: a NumPy reference doing three batched m×m
   matrix products and m² standard normals per path-step, the minimum any O(m³) structured-noise
   integrator does, timed with NumPy's multi-threaded BLAS and single-threaded, the faster counting.
   Printed: seconds, µs per path-step, and the ratio covsde / reference (target ≤ 2).

Run:  .venv/bin/python benchmarks/bench_large_m.py [--quick]
"""
import argparse
import os
import tempfile
import time

import numpy as np


def reference(m, paths, steps, seed=0):
    """Three batched m×m products and m² normals per path-step (a stand-in for L Z Lᵀ and one more)."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(m, m))
    V = np.broadcast_to(A @ A.T / m + 0.5 * np.eye(m), (paths, m, m)).copy()
    L = np.linalg.cholesky(V[0])
    t0 = time.perf_counter()
    for _ in range(steps):
        Z = rng.standard_normal((paths, m, m))
        N = np.matmul(np.matmul(L, Z), L.T)
        V += 1e-6 * np.matmul(N, V)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a quarter of the paths")
    a = ap.parse_args()
    os.environ["COVSDE_CACHE_DIR"] = tempfile.mkdtemp(prefix="covsde-bench-")
    from covsde.derive import derive
    from covsde.derive.variants import build
    from covsde.numerics import simulate
    from covsde.numerics.codegen import generate_source, load_module

    block = build("transformer", {"gamma": "0.5", "tau0": "1"})[0]
    t0 = time.perf_counter()
    d = derive(block, 128)
    t1 = time.perf_counter()
    src = generate_source(d)
    t2 = time.perf_counter()
    print(f"derive m=128: {t1 - t0:.2f} s   code generation: {t2 - t1:.3f} s ({len(src.splitlines())} lines)   "
          f"derive + codegen: {t2 - t0:.2f} s (target < 10 s)")
    t3 = time.perf_counter()
    load_module(d)
    simulate(d, np.eye(128) + 0.1, 0.01, dt=0.01, paths=2, progress=False)
    print(f"Numba compilation of the module (once for every m, then cached): {time.perf_counter() - t3:.1f} s")
    print(f"\n{'m':>4} {'paths':>6} {'scheme':>6} {'covsde s':>9} {'µs/path-step':>13} {'reference s':>12} {'ratio':>6}")
    for m, paths in ((32, 1024), (64, 1024), (128, 256)):
        paths = paths // 4 if a.quick else paths
        rng = np.random.default_rng(m)
        A = rng.normal(size=(m, m))
        V0 = A @ A.T / m + 0.5 * np.eye(m)
        dm = derive(block, m)
        simulate(dm, V0, 0.01, dt=0.01, paths=2, progress=False)  # warm
        from threadpoolctl import threadpool_limits

        ref_mt = reference(m, paths, 100)
        with threadpool_limits(limits=1, user_api="blas"):
            ref_1 = reference(m, paths, 100)
        ref = min(ref_mt, ref_1)  # the reference at its best BLAS threading
        print(f"     reference: {ref_mt:.2f} s with multi-threaded BLAS, {ref_1:.2f} s single-threaded")
        for scheme in ("psd", "em"):
            t = time.perf_counter()
            r = simulate(dm, V0, 0.1, dt=0.001, paths=paths, scheme=scheme, progress=False, seed=1)
            sec = time.perf_counter() - t
            lost = paths - r.counts["survived"]
            print(f"{m:>4} {paths:>6} {scheme:>6} {sec:>9.2f} {1e6 * sec / (paths * 100):>13.1f} {ref:>12.2f} "
                  f"{sec / ref:>6.2f}" + (f"   ({lost} paths stopped)" if lost else ""))


if __name__ == "__main__":
    main()
