"""A user-defined block, written in this file only: a residual branch with a single weight matrix
and a shaped 'x + x²/2' activation on the stream,  X' = λX + γ √c φ_s(X) W/√n,  φ_s = s φ(x/s)."""
import numpy as np
import sympy as sp

from covsde.derive import Block, Residual, ShapedSmooth, V_matrix, derive, param
from covsde.validate.onestep import one_step_check


class QuadraticBranch(Block):
    """F(X) = √c φ_s(X) W/√n with φ(x) = x + x²/2."""

    def __init__(self, a=1):
        self.activation = ShapedSmooth("x + x**2/2", a)

    def step(self, x, ops):
        return ops.linear(ops.act(x, self.activation))

    def params(self):
        return {"activation": self.activation}


def test_custom_block_coefficients_m1():
    g = param("gamma")
    d = derive(Residual(QuadraticBranch(), g), 1)
    Phi = V_matrix(1)[0, 0]
    frak_b = sp.Rational(3, 4)  # (3/4)φ''(0)² + φ'''(0) with φ'' = 1, φ''' = 0
    assert d.regime == "sde"
    assert sp.simplify(d.drift[0, 0] - g**2 * frak_b * Phi * (Phi - 1)) == 0
    # noise: λγ(Ẑ+Ẑᵀ) cross term + γ² Wishart → Σ = γ²(2λ² + γ²) Σ_lin, λ² = 1 − γ²
    assert sp.simplify(d.sigma(0, 0, 0, 0) - g**2 * (2 - g**2) * 2 * Phi**2) == 0


def test_custom_block_matches_one_layer_simulation():
    blk = Residual(QuadraticBranch(), sp.Rational(4, 5))
    d = derive(blk, 2)
    V = np.array([[1.3, 0.4], [0.4, 0.9]])
    r = one_step_check(blk, d, V, n=2048, samples=12000, seed=3)
    assert r.ok, r.worst
