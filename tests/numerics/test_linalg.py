"""The dense kernels at sizes where they call BLAS (m ≥ BLAS_M) against NumPy, and the coefficients and
noise generated from the matrix form at m = 40 against the matrix form's own numeric evaluation."""
import numpy as np
import pytest

from covsde.derive import derive
from covsde.derive.variants import build
from covsde.numerics import linalg, load_module
from covsde.numerics.codegen import param_vector
from covsde.numerics.integrate import workspace


def _spd(m, seed):
    A = np.random.default_rng(seed).normal(size=(m, m))
    return A @ A.T / m + 0.3 * np.eye(m)


@pytest.mark.parametrize("m", [5, linalg.BLAS_M, 70])
def test_cholesky_and_triangular_solve(m):
    V = _spd(m, m)
    L = np.full((m, m), np.nan)
    assert linalg.chol(V, L)
    np.testing.assert_allclose(L, np.linalg.cholesky(V), rtol=1e-12, atol=1e-13)
    B = np.random.default_rng(1).normal(size=(m, m))
    X = np.empty((m, m))
    linalg.trsm(L, B, X)
    np.testing.assert_allclose(X, np.linalg.solve(L, B), rtol=1e-10, atol=1e-11)
    bad = V.copy()
    bad[m // 2, m // 2] = -1.0  # not positive definite: refused, never a wrong factor
    assert not linalg.chol(bad, L)


@pytest.mark.parametrize("m", [6, 40])
def test_noise_products_and_psd_step(m):
    rng = np.random.default_rng(m)
    V = _spd(m, m + 1)
    L = np.linalg.cholesky(V)
    Z = rng.normal(size=(m, m))
    t, out = np.empty((m, m)), np.empty((m, m))
    linalg.lzl(L, Z, t, out)
    np.testing.assert_allclose(out, L @ Z @ L.T, rtol=1e-11, atol=1e-12)
    acc = np.zeros((m, m))
    linalg.lsl_sym_acc(L, Z, t, 0.7, acc)
    S = np.triu(Z, 1) + np.triu(Z, 1).T + np.diag(np.sqrt(2) * np.diag(Z))
    np.testing.assert_allclose(acc, 0.7 * L @ S @ L.T, rtol=1e-11, atol=1e-12)
    b, N = rng.normal(size=(m, m)), out + out.T
    b = b + b.T
    dt = 1e-3
    D, W, H, Vn = (np.empty((m, m)) for _ in range(4))
    linalg.psd_step(L, b, N, dt, dt, np.sqrt(dt), 1.0, D, W, H, Vn)
    Dref = b * dt + N * np.sqrt(dt) - 0.25 * dt * N @ np.linalg.solve(V, N)
    F = L + 0.5 * np.linalg.solve(L, Dref).T
    np.testing.assert_allclose(Vn, F @ F.T, rtol=1e-9, atol=1e-11)
    assert np.linalg.eigvalsh(Vn).min() > 0


def test_generated_coefficients_at_m40_equal_the_matrix_form():
    """The module generated from the Transformer's matrix form (the same module as for m = 2) at
    m = 40: drift and noise equal the matrix form evaluated by numpy (derive/matnum.py)."""
    d = derive(build("transformer", {})[0], 40)
    values = {"gamma": 0.45, "tau0": 0.7}
    mod, P = load_module(d), param_vector(d, values)
    assert mod.M == 0  # one module for every m
    rng = np.random.default_rng(40)
    for _ in range(3):
        V = _spd(40, int(rng.integers(1000)))
        b = np.empty((40, 40))
        mats, cf, ws, wv = workspace(mod, 40)
        mod.coeffs(V, P, b, mats, cf, ws, wv)
        ref_b, groups = d.numeric_fn()(V, values)
        np.testing.assert_allclose(b, ref_b, rtol=1e-10, atol=1e-12 * np.abs(ref_b).max())
        L = np.linalg.cholesky(V)
        Z = rng.standard_normal((mod.NGROUPS, 40, 40))
        out, t1, t2, zh = (np.empty((40, 40)) for _ in range(4))
        mod.noise(V, L, Z, mats, cf, t1, t2, zh, out)
        N = np.zeros((40, 40))
        for g, grp in enumerate(groups):
            Zg = Z[g]
            if mod.SYM[g]:
                Zg = (np.triu(Zg, 1) + np.triu(Zg, 1).T + np.diag(np.sqrt(2) * np.diag(Zg))) / np.sqrt(2)
            Zh = L @ Zg @ L.T
            for c, A, T, B in grp:
                N += c * (np.eye(40) if A is None else A) @ (Zh.T if T else Zh) @ (np.eye(40) if B is None else B)
        np.testing.assert_allclose(out, N, rtol=1e-10, atol=1e-12 * np.abs(N).max())
