"""Derive and check the SDE of a block you define yourself: a shaped GELU MLP layer.

    .venv/bin/python examples/custom_block.py [--samples 20000]

1. the block states only its one-step map (ops.act(ops.linear(x), φ));
2. derive() gives the drift and diffusion, as exact SymPy expressions;
3. check() compares the diffusion with the formula you expect (Σ_lin), numerically and symbolically;
4. the one-step moments of finite networks (n = 1024, exact-in-law sampler) are compared with b, Σ.
"""
import argparse

import numpy as np

from covsde.derive import Block, ShapedSmooth, derive
from covsde.validate.onestep import one_step_check

GELU2 = "x*(1 + erf(x/sqrt(2)))"  # 2·GELU: φ(0) = 0, φ'(0) = 1


class GeluMLP(Block):
    """Φ' = (c/n) φ_s(h) φ_s(h)ᵀ with h = X W/√n and φ_s(x) = s φ(x/s), s = a√n."""

    def __init__(self, a=1):
        self.activation = ShapedSmooth(GELU2, a)

    def step(self, x, ops):
        return ops.act(ops.linear(x), self.activation)

    def params(self):
        return {"activation": self.activation}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=20000)
    args = ap.parse_args()
    d = derive(GeluMLP(), m=2)
    print(d.text())
    sigma_lin = lambda V, a, b, c, e: V[a, c] * V[b, e] + V[a, e] * V[b, c]  # noqa: E731
    rep = d.check(None, sigma_lin)
    print(f"diffusion = Σ_lin: {rep.ok} (max relative error {rep.max_rel_error['diffusion']:.1e}, "
          f"symbolic {rep.symbolic})")
    V = np.array([[1.0, 0.3], [0.3, 0.8]])
    r = one_step_check(GeluMLP(), d, V, n=1024, samples=args.samples, seed=0)
    print(f"finite networks (n = 1024, {r.samples} layers): drift {'agrees' if r.drift_ok else 'REJECTED'}, "
          f"diffusion {'agrees' if r.diffusion_ok else 'REJECTED'}; worst {r.worst}")
    return 0 if rep.ok and r.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
