"""Derived coefficients vs the published facts (facts.md), symbolically and at random PSD V."""
import math

import numpy as np
import pytest
import sympy as sp

from covsde.derive import (DenseLayer, ShapedReLU, ShapedSmooth, V_matrix, derive, param, random_psd)

cp, cm = param("c_plus"), param("c_minus")


def nu_ref(rho, cpv, cmv):
    return (cpv - cmv) ** 2 / (2 * sp.pi) * (sp.sqrt(1 - rho**2) - rho * sp.acos(rho))


def lnr22_drift(V, cpv=cp, cmv=cm):
    m = V.shape[0]
    return sp.Matrix(m, m, lambda a, b: 0 if a == b else
                     nu_ref(V[a, b] / sp.sqrt(V[a, a] * V[b, b]), cpv, cmv) * sp.sqrt(V[a, a] * V[b, b]))


def sigma_lin(V, a, b, c, d):
    return V[a, c] * V[b, d] + V[a, d] * V[b, c]


@pytest.fixture(scope="module")
def mlp2():
    return derive(DenseLayer(ShapedReLU(cp, cm)), 2)


@pytest.fixture(scope="module")
def mlp3():
    return derive(DenseLayer(ShapedReLU(cp, cm)), 3)


def test_lnr22_drift_and_sigma_lin_symbolic_m2(mlp2):
    rep = mlp2.check(lnr22_drift, sigma_lin, symbolic=True)
    assert rep.symbolic is True and rep.ok, rep


def test_lnr22_numeric_m3(mlp3):
    rep = mlp3.check(lnr22_drift, sigma_lin, npoints=6)
    assert rep.ok, rep
    # the check can fail: a wrong drift is caught
    bad = mlp3.check(lambda V: 1.1 * lnr22_drift(V), None, npoints=3)
    assert not bad.ok and bad.max_rel_error["drift"] > 1e-3


def nu_from_derivation(d, rho, cpv=0, cmv=-1):
    V = np.array([[1.0, rho], [rho, 1.0]])
    b, _ = d.numeric(V, {"c_plus": cpv, "c_minus": cmv})
    return b[0, 1]


@pytest.mark.parametrize("rho,val", [(-0.5, 0.3044989), (0.2, 0.1123488), (0.5, 0.0544989), (0.9, 0.0047692)])
def test_nu_values(mlp2, rho, val):
    assert nu_from_derivation(mlp2, rho) == pytest.approx(val, abs=5e-7)


def test_nu_endpoints_and_derivative(mlp2):
    c = 0.7 - (-1.3)
    assert nu_from_derivation(mlp2, 0.0, 0.7, -1.3) == pytest.approx(c**2 / (2 * math.pi), rel=1e-12)
    assert nu_from_derivation(mlp2, 1 - 1e-12, 0.7, -1.3) == pytest.approx(0.0, abs=1e-5)
    assert nu_from_derivation(mlp2, -1 + 1e-12, 0.7, -1.3) == pytest.approx(c**2 / 2, rel=1e-5)
    # ν'(ρ) = −(c₊−c₋)² arccos(ρ)/(2π), symbolically from the derived drift at unit diagonal
    V = V_matrix(2)
    rho = sp.Symbol("rho")
    nu = mlp2.drift[0, 1].subs({V[0, 0]: 1, V[1, 1]: 1}).subs(V[0, 1], rho)
    dnu = sp.diff(nu, rho)
    assert sp.simplify(dnu + (cp - cm) ** 2 * sp.acos(rho) / (2 * sp.pi)) == 0


def test_only_difference_of_c_enters(mlp3):
    rng = np.random.default_rng(1)
    for _ in range(3):
        V = random_psd(3)
        s = rng.normal()
        b1, S1 = mlp3.numeric(V, {"c_plus": 0.3, "c_minus": -0.9})
        b2, S2 = mlp3.numeric(V, {"c_plus": 0.3 + s, "c_minus": -0.9 + s})
        np.testing.assert_allclose(b1, b2, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(S1, S2, rtol=1e-12)


def test_diagonal_has_zero_drift(mlp3):
    for k in range(3):
        assert sp.simplify(mlp3.drift[k, k]) == 0


def _frak_b(phi, a):
    x = sp.Symbol("x")
    f = sp.sympify(phi, locals={"x": x})
    d2, d3 = (sp.diff(f, x, k).subs(x, 0) for k in (2, 3))
    return (sp.Rational(3, 4) * d2**2 + d3) / a**2


@pytest.mark.parametrize("phi,expected_b", [("tanh(x)", -2), ("sin(x)", -1), ("x + x**2/2 - x**3", None),
                                            ("x + x**2", None)])
def test_smooth_activation_m1_explosion_coefficient(phi, expected_b):
    a = param("a")
    d = derive(DenseLayer(ShapedSmooth(phi, a)), 1)
    frak_b = _frak_b(phi, a)
    if expected_b is not None:
        assert sp.simplify(frak_b - expected_b / a**2) == 0
    Phi = V_matrix(1)[0, 0]
    assert sp.simplify(d.drift[0, 0] - frak_b * Phi * (Phi - 1)) == 0
    assert sp.simplify(d.sigma(0, 0, 0, 0) - 2 * Phi**2) == 0


@pytest.mark.parametrize("phi", ["tanh", "sin", "x + x**2"])
def test_smooth_activation_sigma_lin_and_drift_depends_on_two_derivatives(phi):
    d = derive(DenseLayer(ShapedSmooth(phi, 1)), 3)
    assert d.check(None, sigma_lin).ok
    # a different φ with the same φ''(0), φ'''(0) gives the same drift
    x = sp.Symbol("x")
    f = sp.sympify(phi if "x" in phi else f"{phi}(x)", locals={"x": x})
    d2, d3 = (sp.diff(f, x, k).subs(x, 0) for k in (2, 3))
    g = x + d2 / 2 * x**2 + d3 / 6 * x**3 + x**5 / 7
    d_other = derive(DenseLayer(ShapedSmooth(g, 1)), 3)
    assert d.check(d_other.drift, None).ok


@pytest.fixture(scope="module")
def attention3():
    from covsde.derive.variants import build

    return derive(build("attention", {})[0], 3)


def test_rank_collapsed_input_is_a_fixed_point_of_attention(attention3):
    """V = v 11ᵀ: all logits in a row are equal, the attention part does nothing (facts.md)."""
    V = V_matrix(3)
    v = sp.Symbol("v", positive=True)
    sub = {V[i, j]: v for i in range(3) for j in range(i, 3)}
    assert all(sp.simplify(x.xreplace(sub)) == 0 for x in attention3.drift)


def test_tau0_to_infinity_leaves_the_linear_residual_network(attention3):
    """τ0 → ∞: drift → 0 and Σ → γ²(2 − γ²) Σ_lin (the λX + γXW/√n network)."""
    g, tau = param("gamma"), param("tau0")
    V = V_matrix(3)
    assert all(sp.limit(x, tau, sp.oo) == 0 for x in attention3.drift[:2])
    for (a, b, c, d) in [(0, 0, 0, 0), (0, 1, 1, 2), (0, 2, 0, 2)]:
        lim = sp.limit(attention3.sigma(a, b, c, d), tau, sp.oo)
        assert sp.simplify(lim - g**2 * (2 - g**2) * sigma_lin(V, a, b, c, d)) == 0


def test_limit_does_not_depend_on_key_width():
    """Nothing in the derivation refers to n_k (τ = τ0 √(n n_k)); the finite layer's one-step
    moments at two key widths agree within Monte Carlo error (n = 512, 6000 layers each)."""
    from covsde.derive.variants import build
    from covsde.validate.onestep import one_step_moments

    blk, _ = build("attention", {"gamma": "0.8", "tau0": "0.5"})
    V0 = np.array([[1.0, 0.3], [0.3, 0.8]])
    a = one_step_moments(blk, V0, n=512, samples=6000, seed=1, n_k=16)
    b = one_step_moments(blk, V0, n=512, samples=6000, seed=2, n_k=512)
    z = np.abs(a["mean"] - b["mean"]) / np.sqrt(a["mean_se"] ** 2 + b["mean_se"] ** 2)
    assert z.max() < 4
