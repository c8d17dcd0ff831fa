"""Integrate covsde's shaped-attention SDE with torchsde, from the exported module.

    .venv/bin/python examples/export_torchsde.py [--paths 2000]

The state is V flattened row-major, shape (batch, m·m); the noise is covsde's structured noise, exact
(g gᵀ = Σ).  The same paths from `covsde simulate` are compared by a two-sample KS test on ρ_T.
Euler steps can push a path out of the positive-definite cone: the export then makes that path NaN,
and it is counted here (covsde's own default scheme stays in the cone).
"""
import argparse

import numpy as np
import torch
import torchsde
from scipy import stats

from covsde.derive import derive
from covsde.derive.variants import build
from covsde.export import to_torchsde
from covsde.numerics import simulate


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--paths", type=int, default=2000)
    args = ap.parse_args()
    d = derive(build("attention", {})[0], 2)
    params = {"gamma": 0.5, "tau0": 1.0}
    sde = to_torchsde(d, params)
    V0 = np.array([[1.0, 0.2], [0.2, 1.0]])
    y0 = torch.tensor(V0).reshape(1, 4).repeat(args.paths, 1)
    bm = torchsde.BrownianInterval(0.0, 0.5, size=(args.paths, sde.brownian_size), dtype=torch.float64, entropy=11)
    ys = torchsde.sdeint(sde, y0, torch.tensor([0.0, 0.5], dtype=torch.float64), bm=bm, method="euler", dt=0.01)
    VT = ys[-1].reshape(-1, 2, 2).numpy()
    failed = ~np.isfinite(VT).all(axis=(1, 2))
    print(f"torchsde: {failed.sum()} of {args.paths} paths left the positive-definite cone (NaN)")
    VT = VT[~failed]
    ref = simulate(d, V0, 0.5, dt=0.01, paths=args.paths, seed=1, params=params, progress=False).V[-1]
    rho = lambda X: X[:, 0, 1] / np.sqrt(X[:, 0, 0] * X[:, 1, 1])  # noqa: E731
    p = stats.ks_2samp(rho(VT), rho(ref)).pvalue
    print(f"torchsde: median ρ_T {np.median(rho(VT)):+.4f}; covsde simulate: {np.median(rho(ref)):+.4f}; KS p = {p:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
