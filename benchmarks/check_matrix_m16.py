"""The matrix-level engine against the per-entry reference engine at m = 16 for every CLI variant:
b and Σ (Σ from each engine's structured noise) at three random positive definite V with random
parameter values; prints the largest relative differences and the time of each engine.

Run:  .venv/bin/python benchmarks/check_matrix_m16.py   (several minutes: the per-entry engine and
its lambdified numeric view grow like m^3.4 and faster)
"""
import time

import numpy as np

from covsde.derive import derive
from covsde.derive.evaluate import sigma_from_groups
from covsde.derive.variants import build

CASES = [("mlp", {}), ("mlp", {"activation": "tanh"}), ("resnet", {"c_plus": "0.4"}), ("attention", {}),
         ("attention", {"heads": "2"}), ("transformer", {})]


def main(m=16):
    rng = np.random.default_rng(16)
    for variant, given in CASES:
        block = build(variant, given)[0]
        t0 = time.perf_counter()
        d = derive(block, m, use_cache=False)
        t1 = time.perf_counter()
        e = derive(block, m, use_cache=False, engine="entries")
        t2 = time.perf_counter()
        fd, fe = d.numeric_fn(), e.numeric_fn()
        worst_b = worst_s = 0.0
        for _ in range(3):
            A = rng.normal(size=(m, m))
            V = A @ A.T / m + np.eye(m) * rng.uniform(0.3, 1.5)
            vals = {s.name: rng.uniform(0.2, 0.9) for s in d.parameters}
            (b1, g1), (b2, g2) = fd(V, vals), fe(V, vals)
            S1, S2 = sigma_from_groups(g1, V), sigma_from_groups(g2, V)
            worst_b = max(worst_b, np.abs(b1 - b2).max() / max(np.abs(b2).max(), 1e-300))
            worst_s = max(worst_s, np.abs(S1 - S2).max() / max(np.abs(S2).max(), 1e-300))
        print(f"{variant:12s} {str(given):22s} matrix engine {t1 - t0:6.2f} s   per-entry engine {t2 - t1:6.2f} s   "
              f"max rel. diff: b {worst_b:.1e}, Σ {worst_s:.1e}   ({time.perf_counter() - t2:.0f} s numeric)",
              flush=True)


if __name__ == "__main__":
    main()
