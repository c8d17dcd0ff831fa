"""Accuracy against cost of one evaluation of standard softmax attention's kernel K_att(V)
(covsde.derive.attention_kernel.k_att), m = 2, 4, 16, 64.

For each m and a few V (``rand``: A Aᵀ/m + c·I, unequal diagonal and weak correlations, the hard case;
``corr``: a correlation matrix with correlations around 0.4, the state of a normalised block) and τ0,
k_att runs at its default and at tighter settings; printed: the rule, its integrand evaluations, the wall
time of one evaluation, the error it reports (``err``), and its actual max-abs difference from an
independent estimate by the test reference (tests/derive/reference_kernels.py): the exact m = 2
reduction; for m = 4 tensor Gauss–Hermite on the diagonal and randomised QMC (2^17 points × 8) off it;
for m = 16, 64 Monte Carlo on whole matrices (200 000 and 30 000 samples, 30 000 with a mask; its
standard error is printed: a difference below about 3 of them is all such a reference can resolve).

wall is the elapsed time of one evaluation, CPU the process time it used (all threads): on a shared
machine the wall time includes waiting for the cores; with OPENBLAS_NUM_THREADS=1 the CPU time is the
time one idle core would take.

Run:  OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_attention_kernel.py [--quick] [--only M]
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "derive"))
import reference_kernels as ref  # noqa: E402

from covsde.derive.attention_kernel import k_att  # noqa: E402


def rand_v(m, seed, shift=0.5):
    A = np.random.default_rng(seed).standard_normal((m, m))
    return A @ A.T / m + shift * np.eye(m)


def corr_v(m, seed, rho=0.4):
    X = np.random.default_rng(seed).standard_normal((m, m)) / np.sqrt(m)
    C = rho * np.ones((m, m)) + (1 - rho) * (X @ X.T + np.eye(m)) / 2
    d = np.sqrt(np.diag(C))
    return C / np.outer(d, d)


def reference(m, V, tau0, quick, mask=None):
    """(K, standard error or 0, seconds) from the independent reference."""
    t = time.perf_counter()
    if mask is not None:
        K, SE = ref.k_att_mc(V, tau0, mask=np.tril(np.ones((m, m))), samples=30_000 // (4 if quick else 1),
                             seed=2025)
        se = float(SE.max())
    elif m == 2:
        K, se = ref.k_att_m2(V, tau0), 0.0
    elif m == 4:
        off = [(a, b) for a in range(4) for b in range(a + 1, 4)]
        K, SE = ref.k_att_qmc(V, tau0, log2n=15 if quick else 17, reps=8, entries=off)
        gh = ref.k_att_gh(V, tau0, entries=[(a, a) for a in range(4)])
        K[np.diag_indices(4)] = np.diag(gh)
        SE[np.diag_indices(4)] = 0.0
        se = float(np.nanmax(SE))
    else:
        samples = {16: 200_000, 64: 30_000}[m] // (4 if quick else 1)
        K, SE = ref.k_att_mc(V, tau0, samples=samples, seed=2024)
        se = float(SE.max())
    return K, se, time.perf_counter() - t


CASES = [  # m, V name, V, tau0, settings (k_att keyword sets; "mask" passes on to the reference)
    (2, "rand", rand_v(2, 2, 0.3), 0.5, [{}, {"accuracy": 1e-12}]),
    (2, "rand", rand_v(2, 3, 0.3), 1.0, [{}, {"accuracy": 1e-6}]),
    (4, "rand", rand_v(4, 4, 0.4), 0.5, [{}, {"accuracy": 1e-4}]),
    (4, "rand", rand_v(4, 5, 0.4), 1.0, [{}, {"accuracy": 1e-4}]),
    (4, "corr", corr_v(4, 6), 1.0, [{}]),
    (16, "rand", rand_v(16, 16), 1.0, [{}, {"accuracy": 4e-4, "budget": 4}]),
    (16, "corr", corr_v(16, 17), 1.0, [{}, {"accuracy": 1e-4, "budget": 4}]),
    (16, "rand", rand_v(16, 18), 1.0, [{"mask": "causal"}, {"mask": "causal", "budget": 4}]),
    (64, "rand", rand_v(64, 64), 1.0, [{}, {"accuracy": 4e-4, "budget": 4}]),
    (64, "corr", corr_v(64, 65), 1.0, [{}]),
    (64, "corr", corr_v(64, 66), 1.0, [{"mask": "causal"}, {"mask": "causal", "budget": 4}]),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller reference banks (a quarter)")
    ap.add_argument("--only", type=int, default=None, help="only this m")
    a = ap.parse_args()
    print("| m | V | τ0 | setting | rule | evaluations | wall (s) | CPU (s) | err (reported) | max abs diff vs ref "
          "| ref se |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for m, name, V, tau0, settings in CASES:
        if a.only is not None and m != a.only:
            continue
        K_ref, se, t_ref = reference(m, V, tau0, a.quick, settings[0].get("mask"))
        for kw in settings:
            k_att(V, tau0, **kw)  # warm (imports, the Sobol' tables)
            t, c = time.perf_counter(), time.process_time()
            r = k_att(V, tau0, **kw)
            dt, dc = time.perf_counter() - t, time.process_time() - c
            diff = float(np.abs(r.K - K_ref).max())
            setting = ", ".join(f"{k}={v}" for k, v in kw.items()) or "default"
            print(f"| {m} | {name} | {tau0:g} | {setting} | {r.method} | {r.nodes:.3g} | {dt:.3f} | {dc:.3f} "
                  f"| {r.err:.2e}"
                  f"{'' if r.converged else ' (not met)'} | {diff:.2e} | {se:.1e} |", flush=True)
        print(f"<!-- reference for m = {m} ({name}, τ0 = {tau0:g}): {t_ref:.1f} s -->", flush=True)


if __name__ == "__main__":
    main()
