"""Weak order in numbers: bias of E[log V_T] against dt for EM, the PSD scheme and Richardson extrapolation,
and the steps each needs for a given bias (no asserts; the test is tests/numerics/test_weak_order.py).

SDE with a known law: the `mlp` at m = 1, dV = √2 V dB, V_T = exp(√2 B_T − T) (V0 = 1, T = 1).  Each path's error is measured against its own exact solution (B_T rebuilt from the seed by
covsde.numerics.richardson.brownian_endpoint), so the table resolves biases down to the strong-error noise.
Work of a Richardson estimate at dt: the steps of dt and dt/2, 3/dt.

Run:  .venv/bin/python benchmarks/bench_weak_order.py [--paths 200000]
"""
import argparse

import numpy as np

from covsde.derive import derive
from covsde.derive.variants import build
from covsde.numerics.richardson import brownian_endpoint, extrapolate

T, SEED, CHUNK = 1.0, 11, 128


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--paths", type=int, default=200_000)
    args = ap.parse_args()
    P = args.paths
    d = derive(build("mlp", {})[0], 1)
    print(f"dV = √2 V dB (mlp m=1), T = {T}, {P} paths; bias of E[log V_T] ± SE")
    print(f"{'scheme':<6} {'dt':>7} {'bias at dt':>22} {'Richardson bias at dt':>26} {'work':>6}")
    table = {}
    for scheme, levels in (("em", (16, 32, 64, 128)), ("psd", (4, 8, 16, 32, 64, 128))):
        for n in levels:
            ex = extrapolate(d, [[1.0]], T, dt=T / n, paths=P, seed=SEED, statistic=lambda V: (["logV"], np.log(V[:, 0, :1])),
                             scheme=scheme, chunk=CHUNK, progress=False)
            exact = np.sqrt(2.0) * brownian_endpoint(T, 2 * n, P, SEED, CHUNK)[ex.alive] - T
            c, f = (v[:, 0] - exact for v in ex.values)
            r = 2 * f - c
            table[scheme, n] = (c.mean(), r.mean())
            se = lambda x: x.std() / np.sqrt(len(x))  # noqa: E731
            print(f"{scheme:<6} {'1/' + str(n):>7} {c.mean():>+12.5f} ± {se(c):.5f} {r.mean():>+15.6f} ± {se(r):.6f} "
                  f"{3 * n:>6}  ({ex.failed} paths stopped)")
    for scheme in ("em", "psd"):
        plain = sorted((1 / n, abs(b)) for (s, n), (b, _) in table.items() if s == scheme)
        slope = np.polyfit(np.log([x for x, _ in plain[:4]]), np.log([y for _, y in plain[:4]]), 1)[0]
        rich = sorted((1 / n, abs(r)) for (s, n), (_, r) in table.items() if s == scheme)
        rs = np.polyfit(np.log([x for x, _ in rich[1:4]]), np.log([y for _, y in rich[1:4]]), 1)[0]
        print(f"{scheme}: slope of the bias {slope:.2f} (finest 4 levels); Richardson {rs:.2f} (levels 2–4 finest)")
        # steps to reach the Richardson bias at dt = 1/32 with the plain scheme (bias ≈ c·dt)
        target = abs(table[scheme, 32][1])
        b32 = abs(table[scheme, 32][0])
        print(f"  Richardson at dt = 1/32: bias {target:.5f} with 96 steps of work; the plain scheme needs ≈ "
              f"{32 * b32 / target:.0f} steps for it (bias ∝ dt from its value at 1/32): "
              f"{32 * b32 / target / 96:.1f}× more")


if __name__ == "__main__":
    main()
