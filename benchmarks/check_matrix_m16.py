"""The matrix-level engine against the per-entry reference engine at m = 16 (or --m M) for every CLI
variant: b and Σ (Σ from each engine's structured noise) at three random positive definite V, the
per-entry expansion run in numbers at each V (``derive_at``: its own entry-wise Wick rules, no symbols);
prints the largest relative differences and the times.

Run:  .venv/bin/python benchmarks/check_matrix_m16.py [--m 16]
"""
import argparse
import time

import numpy as np

from covsde.derive import derive
from covsde.derive.engine import derive_at
from covsde.derive.evaluate import sigma_from_groups
from covsde.derive.variants import build

P = {"gamma": "0.6", "tau0": "0.8"}
CASES = [("mlp", {}), ("mlp", {"activation": "tanh"}), ("resnet", {"c_plus": "0.4", "gamma": "0.6"}),
         ("attention", P), ("attention", {"heads": "2", **P}), ("transformer", P),
         ("transformer", {"activation": "sin", "heads": "2", **P})]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--m", type=int, default=16)
    m = ap.parse_args().m
    rng = np.random.default_rng(16)
    for variant, given in CASES:
        block = build(variant, given)[0]
        t0 = time.perf_counter()
        d = derive(block, m, use_cache=False)
        t1 = time.perf_counter()
        worst_b = worst_s = 0.0
        for _ in range(3):
            A = rng.normal(size=(m, m))
            V = A @ A.T / m + np.eye(m) * rng.uniform(0.3, 1.5)
            b1, g1 = d.numeric_fn()(V)
            b2, g2 = derive_at(block, V).numeric_fn()(V)
            S1, S2 = sigma_from_groups(g1, V), sigma_from_groups(g2, V)
            worst_b = max(worst_b, np.abs(b1 - b2).max() / max(np.abs(b2).max(), 1e-300))
            worst_s = max(worst_s, np.abs(S1 - S2).max() / max(np.abs(S2).max(), 1e-300))
        print(f"{variant:12s} {str(given):58s} m = {m}: matrix engine {t1 - t0:5.2f} s; per-entry in numbers "
              f"{(time.perf_counter() - t1) / 3:5.1f} s per V; max rel. diff b {worst_b:.1e}, Σ {worst_s:.1e}",
              flush=True)


if __name__ == "__main__":
    main()
