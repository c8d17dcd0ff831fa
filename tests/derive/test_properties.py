"""Property tests over random PSD V, random parameters and m ∈ {1..5}."""
import functools
import itertools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from covsde.derive import derive
from covsde.derive.variants import build
from covsde.validate.strategies import psd_matrices

SYMBOLIC = {"mlp": {}, "resnet": {}, "attention": {}, "transformer": {}}


@functools.lru_cache(maxsize=None)
def symbolic_derivation(name, m, heads=1):
    s = {"c_plus": "c_plus", "c_minus": "c_minus"} if name != "attention" else {}
    if name in ("attention", "transformer"):
        s["heads"] = str(heads)
    blk, _ = build(name, s)
    d = derive(blk, m)
    return d, d.numeric_fn()


def full_sigma(d, V, values):
    return d.numeric(V, values)[1]


def structured_sigma(groups, V):
    """Σ implied by the structured noise, from the Jacobian of N with respect to each Z:
    N is linear in Z, so Cov(N) = Σ_g J_g J_gᵀ exactly (independent of the Wick rules)."""
    m = V.shape[0]
    L = np.linalg.cholesky(V)
    S = np.zeros((m * m, m * m))
    for g in groups:
        J = np.zeros((m * m, m * m))
        for idx in range(m * m):
            Z = np.zeros((m, m))
            Z.flat[idx] = 1.0
            Zh = L @ Z @ L.T
            N = sum(c * (A if A is not None else np.eye(m)) @ (Zh.T if T else Zh) @ (B if B is not None else np.eye(m))
                    for c, A, T, B in g)
            J[:, idx] = N.ravel()
        S += J @ J.T
    return S.reshape(m, m, m, m)


params_st = st.fixed_dictionaries({
    "c_plus": st.floats(-1.5, 1.5), "c_minus": st.floats(-1.5, 1.5),
    "gamma": st.floats(0.15, 0.95), "tau0": st.floats(0.4, 3.0)})


@st.composite
def cases(draw):
    name = draw(st.sampled_from(sorted(SYMBOLIC)))
    m = draw(st.integers(1, 5 if name != "transformer" else 4))
    heads = draw(st.sampled_from([1, 2])) if name in ("attention", "transformer") and m <= 3 else 1
    V = draw(psd_matrices(m))
    return name, m, heads, V, draw(params_st)


def _values(d, p):
    return {s.name: p[s.name] for s in d.parameters}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_symmetries_psd_equivariance_and_structured_noise(case):
    name, m, heads, V, p = case
    d, fn = symbolic_derivation(name, m, heads)
    vals = _values(d, p)
    b, groups = fn(V, vals)
    Sig = full_sigma(d, V, vals)
    scale = max(1.0, np.abs(Sig).max())
    # b symmetric
    np.testing.assert_allclose(b, b.T, atol=1e-10 * max(1, np.abs(b).max()))
    # Σ index symmetries
    np.testing.assert_allclose(Sig, Sig.transpose(1, 0, 2, 3), atol=1e-10 * scale)
    np.testing.assert_allclose(Sig, Sig.transpose(0, 1, 3, 2), atol=1e-10 * scale)
    np.testing.assert_allclose(Sig, Sig.transpose(2, 3, 0, 1), atol=1e-10 * scale)
    # Σ PSD as a quadratic form on symmetric matrices
    M = Sig.reshape(m * m, m * m)
    Pi = np.zeros((m * m, m * m))
    for i, j in itertools.product(range(m), repeat=2):
        Pi[i * m + j, i * m + j] += 0.5
        Pi[i * m + j, j * m + i] += 0.5
    w = np.linalg.eigvalsh(Pi @ M @ Pi)
    assert w.min() >= -1e-9 * scale
    # the structured noise reproduces Σ exactly
    np.testing.assert_allclose(structured_sigma(groups, V), Sig, atol=1e-9 * scale, rtol=1e-9)
    # token permutation equivariance: b(PVPᵀ) = P b(V) Pᵀ, same for Σ
    perm = np.random.default_rng(m).permutation(m)
    Pm = np.eye(m)[perm]
    b2, _ = fn(Pm @ V @ Pm.T, vals)
    np.testing.assert_allclose(b2, Pm @ b @ Pm.T, atol=1e-9 * max(1, np.abs(b).max()))
    Sig2 = full_sigma(d, Pm @ V @ Pm.T, vals)
    np.testing.assert_allclose(Sig2, np.einsum("ai,bj,ck,dl,ijkl->abcd", Pm, Pm, Pm, Pm, Sig), atol=1e-9 * scale)


def test_structured_noise_check_can_fail():
    """The Jacobian check detects a noise representation that does not match Σ."""
    d, fn = symbolic_derivation("attention", 3)
    V = np.array([[1.0, 0.2, 0.1], [0.2, 1.2, 0.3], [0.1, 0.3, 0.9]])
    vals = {"gamma": 0.6, "tau0": 0.8}
    b, groups = fn(V, vals)
    bad = [[(c * (1.1 if k == 0 else 1.0), A, T, B) for k, (c, A, T, B) in enumerate(g)] for g in groups]
    assert not np.allclose(structured_sigma(bad, V), full_sigma(d, V, vals), rtol=1e-6)
