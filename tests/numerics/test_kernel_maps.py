"""Kernel maps without elementary closed form in the generated Numba kernels: the ResNet with an unshaped
φ in a 1/√n branch (regime ode, b = γ0²(K_φ(V) − V)).  The generated drift, per path and per lane, equals
the matrix form evaluated by NumPy to 1e-12 and the independent reference to 1e-10, at random V (m = 3,
seeded); the module's key changes with the quadrature's node count (a cache never outlives the rule)."""
import numpy as np
import pytest

from covsde.derive import derive, kernelmaps
from covsde.derive.variants import build
from covsde.numerics.codegen import derivation_hash, generate_source, load_module, param_vector

from ..derive import reference_kernels as ref


def _derivation(act):
    return derive(build("resnet", {"p": "0", "q": "1/2", "gamma": "0.8", "activation": act})[0], 3)


@pytest.mark.parametrize("act, reference", [
    ("tanh", lambda V: ref.normaliser(ref.tanh) * ref.k_numeric(ref.tanh, V)),
    ("gelu", lambda V: ref.normaliser(ref.gelu) * ref.k_gelu_closed(V))])
def test_generated_kernels_carry_the_map(act, reference):
    from covsde.numerics.integrate import lane_coefficients, workspace

    d = _derivation(act)
    assert d.regime == "ode"
    src = generate_source(d)
    assert f"def _kmap_{act}(xa, xab, xb)" in src and src.count(f"def _kmap_{act}(") == 1
    mod, P = load_module(d), param_vector(d)
    rng = np.random.default_rng(7)
    for scale in (1.0, 30.0):
        A = rng.normal(size=(3, 3))
        V = scale * (A @ A.T + 0.3 * np.eye(3))
        mine, _ = d.numeric_fn()(V, {})
        want = 0.64 * (reference(V) - V)
        np.testing.assert_allclose(mine, want, rtol=0, atol=1e-10)
        b = np.empty((3, 3))
        mod.coeffs(V, P, b, *workspace(mod, 3))
        np.testing.assert_allclose(b, mine, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(lane_coefficients(mod, 3, P)(V)[0], mine, rtol=1e-12, atol=1e-12)


def test_the_module_key_covers_the_quadrature(monkeypatch):
    d = _derivation("silu")
    key = derivation_hash(d)
    monkeypatch.setattr(kernelmaps, "QUAD_NODES", kernelmaps.QUAD_NODES + 1)
    assert derivation_hash(d) != key


def test_the_per_entry_engine_and_its_module_carry_the_map():
    """engine="entries" (per-entry SymPy, unrolled module): the same numbers as the matrix form."""
    from covsde.numerics.integrate import workspace

    blk = build("resnet", {"p": "0", "q": "1/2", "gamma": "0.8", "activation": "silu"})[0]
    d, dm = derive(blk, 2, engine="entries"), derive(blk, 2)
    V = np.array([[1.0, 0.3], [0.3, 0.8]])
    want = dm.numeric(V, {})[0]
    np.testing.assert_allclose(d.numeric(V, {})[0], want, rtol=0, atol=1e-13)
    mod, b = load_module(d), np.empty((2, 2))
    mod.coeffs(V, param_vector(d), b, *workspace(mod, 2))
    np.testing.assert_allclose(b, want, rtol=0, atol=1e-13)
    assert abs(want[0, 1] - 0.64 * (ref.normaliser(ref.silu) * ref.k_numeric(ref.silu, V)[0, 1] - 0.3)) < 1e-10
