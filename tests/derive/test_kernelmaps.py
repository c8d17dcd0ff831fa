"""Element-wise Gaussian kernel maps K_φ(V) = c_φ·E[φ(u)φ(uᵀ)] (covsde.derive.kernelmaps) against the
independent reference ``reference_kernels`` (a composite Gauss–Legendre rule with its own panels, L = 12,
written from the mathematics alone; its stated accuracy ~1e-13 absolute).

Points: a random 3×3 V (seeded), |ρ| = 1 − 1e-12 at variance 100, ρ = ±0.9 between variances 100 and 0.01,
and ρ = 0.5 at variance 100.  Tolerance 1e-10 absolute on the unnormalised expectation and on K_φ (values
up to ~250 at variance 100).  GELU and erf are compared with the reference's closed forms, and covsde's
own quadrature (not used for them by default) with the same closed forms."""
import math

import numpy as np
import pytest
import sympy as sp

from covsde.common.errors import CovsdeInputError
from covsde.derive import kernelmaps as km
from covsde.derive.gaussian import kxx, kxy, kyy

from . import reference_kernels as ref

TOL = 1e-10


def _points():
    rng = np.random.default_rng(24)
    A = rng.standard_normal((3, 3))
    V = A @ A.T + 0.1 * np.eye(3)
    pts = [(V[i, i], V[i, j], V[j, j]) for i in range(3) for j in range(i + 1, 3)]
    for r in (1 - 1e-12, -(1 - 1e-12)):
        pts.append((100.0, 100.0 * r, 100.0))
        pts.append((100.0, r * math.sqrt(100 * 0.01), 0.01))
    pts += [(100.0, 0.9 * math.sqrt(100 * 0.01), 0.01), (0.01, -0.9 * math.sqrt(100 * 0.01), 100.0), (100.0, 50.0, 100.0)]
    return pts


POINTS = _points()


def _ref_entry(phi, a, c, b):
    return ref.k_numeric(phi, np.array([[a, c], [c, b]]))[0, 1]


@pytest.mark.parametrize("name", ["tanh", "silu", "gelu_tanh"])
def test_quadrature_maps_match_the_independent_reference(name):
    k = km.elementwise_map(name)
    phi = getattr(ref, name)
    assert k.kind is None
    assert abs(k.c - ref.normaliser(phi)) < 1e-12 * k.c
    for a, c, b in POINTS:
        want = _ref_entry(phi, a, c, b)
        got = float(k.expectation(a, c, b))
        assert abs(got - want) <= TOL, (name, a, c, b, got - want)
        assert abs(float(k.numpy(a, c, b)) - ref.normaliser(phi) * want) <= TOL * 3, (name, a, c, b)


@pytest.mark.parametrize("name, closed", [("gelu", ref.k_gelu_closed), ("erf", ref.k_erf)])
def test_closed_forms_and_the_quadrature_match_the_reference_closed_forms(name, closed):
    k = km.elementwise_map(name)
    assert k.kind == name
    phi = getattr(ref, name)
    for a, c, b in POINTS + [(1.0, 0.3, 0.8)]:
        want = closed(np.array([[a, c], [c, b]]))[0, 1]
        assert abs(float(k.expectation(a, c, b)) - want) <= TOL
        assert abs(float(km.gauss_expectation(phi, a, c, b)) - want) <= TOL, (name, a, c, b)
    # the normaliser and the diagonal (1-D rule) of the quadrature
    assert abs(k.c - ref.normaliser(phi)) < 1e-12 * k.c
    for a in (0.01, 1.0, 100.0):
        assert abs(float(km.gauss_expectation(phi, a, a, a)) - closed(np.array([[a]]))[0, 0]) <= TOL


def test_the_gelu_expression_is_recognised_and_evaluates_like_the_name():
    typed = km.elementwise_map("x*(1 + erf(x/sqrt(2)))/2")
    assert typed.kind == "gelu" and typed is km.elementwise_map("gelu")
    other = km.elementwise_map("x*(1 + erf(x/2))/2")  # not GELU: quadrature
    assert other.kind is None
    assert abs(float(other.numpy(1.0, 0.3, 0.8)) - float(typed.numpy(1.0, 0.3, 0.8))) > 1e-3


def test_the_kernel_atom_evaluates_prints_and_pickles():
    import pickle

    k = km.elementwise_map("tanh")
    e = k.function(kxx, kxy, kyy)
    assert k.function(kyy, kxy, kxx) == e  # K(b, c, a) = K(a, c, b)
    val = e.xreplace({kxx: sp.Integer(1), kxy: sp.Rational(3, 10), kyy: sp.Rational(4, 5)})
    assert abs(float(val) - float(k.numpy(1.0, 0.3, 0.8))) < 1e-14
    f = sp.lambdify((kxx, kxy, kyy), 2 * e + 1, "numpy")
    got = f(np.array([1.0, 2.0]), np.array([0.3, -0.1]), np.array([0.8, 1.0]))
    assert np.allclose(got, 2 * k.numpy(np.array([1.0, 2.0]), np.array([0.3, -0.1]), np.array([0.8, 1.0])) + 1, atol=1e-14)
    assert pickle.loads(pickle.dumps(2 * e)) == 2 * e
    assert str(e) == "K_tanh(k_xx, k_xy, k_yy)" and r"\mathcal{K}" in sp.latex(e)
    assert "E[φ(u_a)φ(u_b)]" in k.definition() and r"\mathbb{E}" in k.definition(tex=True)
    assert abs(float(k.numpy(1.0, 1.0, 1.0)) - 1.0) < 1e-13  # c_φ·E[φ(g)²] = 1


@pytest.mark.parametrize("text, why", [("exp(x**2)", "not real and finite"), ("log(x)", "not real and finite"),
                                        ("exp(x**2/4)", "second moment"), ("0*x", "second moment"),
                                        ("x + y", "unknown name"), ("__import__('os')", "activation")])
def test_bad_activations_are_refused_by_name(text, why):
    with pytest.raises(CovsdeInputError, match=why):
        km.elementwise_map(text)


def test_a_map_without_an_evaluation_names_itself():
    k = km.elementwise_map("tanh")
    with pytest.raises(km.NotSupported, match="kernel map tanh .* no torch evaluation"):
        k.torch()
