"""K_att(V) = E[softmax_M(S) V softmax_M(S)ᵀ] (covsde.derive.attention_kernel) against an independent
reference written from the mathematics alone (tests/derive/reference_kernels.py: an m = 2 reduction by
composite Gauss–Legendre, pruned tensor Gauss–Hermite and randomised QMC in its own reduced coordinates,
Monte Carlo on whole matrices), the identity mechanism's closed form, the small-logit expansion (and the
shaped attention drift the symbolic engine derives), the rank-collapse fixed point, determinism and the
input checks."""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from covsde.derive import attention_kernel as ak
from covsde.derive.attention_kernel import k_att, k_identity, small_logit_parts, small_logit_terms
from covsde.derive.errors import CovsdeInputError, ResourceLimitError

from . import reference_kernels as ref

ROOT = Path(__file__).resolve().parents[2]


def _random_v(m, rng, shift=0.4):
    A = rng.standard_normal((m, m))
    return A @ A.T / m + shift * np.eye(m)


def _correlation_v(m, rng, rho=0.4):
    """A correlation matrix (unit diagonal) with correlations around rho: the state of a normalised block."""
    X = rng.standard_normal((m, m)) / np.sqrt(m)
    C = rho * np.ones((m, m)) + (1 - rho) * (X @ X.T + np.eye(m)) / 2
    d = np.sqrt(np.diag(C))
    return C / np.outer(d, d)


def _causal(m):
    return np.tril(np.ones((m, m)))


# ---- m = 2: the two-dimensional reduction, to 1e-9 ------------------------------------------------------

@pytest.mark.parametrize("tau0", [0.5, 1.0, 2.0])
def test_m2_matches_the_reference_reduction_to_1e9(tau0):
    rng = np.random.default_rng(int(tau0 * 10))
    for _ in range(3):
        V = _random_v(2, rng, shift=rng.uniform(0.05, 1.0))
        r = k_att(V, tau0)
        assert r.method == "trapezoid" and r.converged and r.err <= 1e-9
        np.testing.assert_allclose(r.K, ref.k_att_m2(V, tau0), rtol=0, atol=1e-9)


def test_m2_causal_and_a_one_token_row():
    V = np.array([[1.3, -0.4], [-0.4, 0.7]])
    r = k_att(V, 1.0, mask="causal")
    # row 0 sees token 0 only: p_0 = e_0, so K_00 = V_00 exactly and K_01 = E[p_1]·V[0] = V_01/2 + V_00/2
    # minus the odd part (E[t] = 0): p_1 = (1/2 + t, 1/2 − t) with t odd in a centred Gaussian
    assert abs(r.K[0, 0] - V[0, 0]) < 1e-12
    assert abs(r.K[0, 1] - (V[0, 0] + V[0, 1]) / 2) < 1e-9
    np.testing.assert_allclose(r.K, ref.k_att_gh(V, 1.0, mask=_causal(2)), rtol=0, atol=1e-9)


# ---- m = 3, 4: reduced coordinates, to 1e-5 --------------------------------------------------------------

@pytest.mark.parametrize("tau0", [0.5, 1.0, 2.0])
def test_m3_matches_the_gauss_hermite_reference_to_1e5(tau0):
    V = _random_v(3, np.random.default_rng(30 + int(4 * tau0)))
    r = k_att(V, tau0)
    want = ref.k_att_gh(V, tau0)
    assert r.method == "rqmc-pairs"
    assert np.abs(r.K - want).max() <= 1e-5
    assert np.abs(r.K - want).max() <= r.err + 1e-7  # the error estimate covers the error


def test_m3_causal_matches_the_gauss_hermite_reference():
    V = _random_v(3, np.random.default_rng(33))
    for tau0 in (0.7, 1.5):
        r = k_att(V, tau0, mask="causal")
        np.testing.assert_allclose(r.K, ref.k_att_gh(V, tau0, mask=_causal(3)), rtol=0, atol=1e-5)
        assert abs(r.K[0, 0] - V[0, 0]) < 1e-12  # row 0 attends to itself only


def test_m4_matches_the_references_to_1e5():
    """Diagonal entries (3-D) against tensor Gauss–Hermite, the off-diagonal (6-D) against the reference's
    own randomised QMC (2^17 points × 8 scramblings)."""
    V = _random_v(4, np.random.default_rng(40))
    r = k_att(V, 1.0)
    assert r.converged and r.err <= 1e-5
    gh = ref.k_att_gh(V, 1.0, entries=[(a, a) for a in range(4)])
    assert np.abs(np.diag(r.K) - np.diag(gh)).max() <= 1e-5
    q, se = ref.k_att_qmc(V, 1.0, log2n=16, reps=8, entries=[(0, 1), (0, 3), (1, 2), (2, 3)])
    for a, b in [(0, 1), (0, 3), (1, 2), (2, 3)]:
        assert abs(r.K[a, b] - q[a, b]) <= 1e-5 + 4 * se[a, b], (a, b, r.K[a, b], q[a, b], se[a, b])


def test_m4_causal_and_a_singular_v():
    rng = np.random.default_rng(44)
    x, y = rng.standard_normal(4), rng.standard_normal(4)
    V = np.outer(x, x) + np.outer(y, y)  # rank 2: PVP has rank ≤ 2, a plain Cholesky fails
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.cholesky(V)
    r = k_att(V, 1.5)
    np.testing.assert_allclose(r.K, ref.k_att_gh(V, 1.5), rtol=0, atol=1e-5)
    W = _random_v(4, rng)
    rc = k_att(W, 1.5, mask="causal")
    q, se = ref.k_att_qmc(W, 1.5, mask=_causal(4), log2n=15, reps=8)
    assert np.all(np.abs(rc.K - q) <= 1e-5 + 4 * se)


# ---- m = 16, 64: row draws, to 1e-3 -----------------------------------------------------------------------

def test_m16_matches_the_reference_monte_carlo():
    V = _correlation_v(16, np.random.default_rng(16))
    r = k_att(V, 1.0)
    assert r.method == "mc-rows" and r.converged and r.err <= 1e-3
    want, se = ref.k_att_mc(V, 1.0, samples=60000, seed=5)
    assert np.abs(r.K - want).max() <= 1e-3 + 4 * se.max()
    assert se.max() < 3e-4  # the reference is sharp enough for the comparison to mean something


def test_m16_hard_v_error_estimate_covers_the_error():
    """Weak correlations and unequal diagonal (the hard case): the estimate may exceed 1e-3, but it must
    cover the difference from an independent estimate."""
    V = _random_v(16, np.random.default_rng(161), shift=0.5)
    r = k_att(V, 1.0, mask="causal")
    want, se = ref.k_att_mc(V, 1.0, mask=_causal(16), samples=60000, seed=6)
    assert np.abs(r.K - want).max() <= r.err + 4 * se.max()
    assert r.err < 1e-2


def test_m64_against_a_larger_bank():
    V = _correlation_v(64, np.random.default_rng(64))
    r = k_att(V, 1.0)
    assert r.converged and r.err <= 1e-3
    big = k_att(V, 1.0, accuracy=2e-4, budget=6)
    assert np.abs(r.K - big.K).max() <= r.err + big.err
    # every row of softmax(S) sums to one: 1ᵀ K 1 = E[1ᵀ A V Aᵀ 1] = 1ᵀ V 1 holds only on average over rows;
    # the exact statement is K's symmetry and PSD-ness
    assert np.allclose(r.K, r.K.T) and np.linalg.eigvalsh(r.K).min() > -1e-3


# ---- the identity mechanism: E[S V Sᵀ] = V·Σ V_ij²/τ0² -----------------------------------------------------

def test_identity_closed_form_matches_the_reference():
    V = _random_v(5, np.random.default_rng(5))
    np.testing.assert_allclose(k_identity(V, 0.8), ref.k_identity(V, 0.8), rtol=1e-14)


@pytest.mark.parametrize("m", [2, 3, 12])
def test_every_rule_reproduces_the_identity_closed_form(m):
    """The same rules with the softmax replaced by A = S: a check of each rule's law of S (row factors,
    coupled rows) against the exact E[S V Sᵀ]."""
    V = _random_v(m, np.random.default_rng(100 + m))
    r = k_att(V, 1.3, mechanism="identity", accuracy=1e-4)
    exact = k_identity(V, 1.3)
    assert np.abs(r.K - exact).max() <= r.err + 1e-12
    assert np.abs(r.K - exact).max() <= 0.05 * np.abs(exact).max()
    assert np.abs(r.K - 1.1 * exact).max() > r.err  # a 10 % wrong law would be seen


# ---- the small-logit expansion K = JVJ + M/τ0² + O(τ0⁻⁴) ------------------------------------------------

def test_small_logit_coefficient_matches_the_reference_and_the_shaped_derivation():
    from covsde.derive import derive
    from covsde.derive.variants import build

    rng = np.random.default_rng(7)
    for m in (2, 3, 6):
        V = _random_v(m, rng)
        K0, M = small_logit_terms(V)
        J = np.full((m, m), 1 / m)
        np.testing.assert_allclose(K0, J @ V @ J, atol=1e-14)
        np.testing.assert_allclose(M, ref.small_logit_M(V), atol=1e-13)
    # the shaped attention (A = I + softmax − J) shares E[δp₁ V δp₁ᵀ] and E[δp₂]: its derived drift at γ = τ0 = 1
    V = _random_v(3, rng)
    b, _ = derive(build("attention")[0], 3).numeric_fn()(V, {"gamma": 1.0, "tau0": 1.0})
    _, E1, E2 = small_logit_parts(V)
    np.testing.assert_allclose(b, E1 + E2 @ V + V @ E2.T, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("m,mask", [(2, None), (3, None), (3, "causal")])
def test_small_logit_limit(m, mask):
    """(K − K0)·τ0² → M with a remainder ∝ τ0⁻²: halving 1/τ0 quarters it."""
    V = _random_v(m, np.random.default_rng(20 + m))
    K0, M = small_logit_terms(V, mask)
    rem = {}
    for tau0 in (5.0, 10.0, 20.0, 40.0):
        r = k_att(V, tau0, mask=mask, accuracy=1e-9 if m == 2 else 1e-8)
        rem[tau0] = np.abs((r.K - K0) * tau0**2 - M).max()
        assert r.err * tau0**2 < 0.05 * rem[tau0] + 1e-9 or tau0 == 40.0
    assert rem[40.0] < 0.02 * np.abs(M).max()
    ratio = rem[5.0] / rem[10.0]
    assert 3.0 < ratio < 5.5, rem  # remainder ∝ τ0⁻²
    assert rem[10.0] / rem[20.0] > 3.0, rem


# ---- the rank-collapse fixed point V = v·11ᵀ ---------------------------------------------------------------

@pytest.mark.parametrize("m,mask", [(2, None), (4, "causal"), (16, None), (40, "causal")])
def test_rank_collapsed_v_is_a_fixed_point(m, mask):
    V = 0.7 * np.ones((m, m))
    r = k_att(V, 0.5, mask=mask)
    assert r.method == "exact" and r.err == 0.0
    np.testing.assert_allclose(r.K, V, rtol=0, atol=1e-14)


# ---- determinism ----------------------------------------------------------------------------------------

def _digest(K):
    return hashlib.sha256(np.ascontiguousarray(K).tobytes()).hexdigest()


def test_the_same_v_gives_the_same_bits_in_two_calls_and_two_processes():
    """Two calls, and a fresh interpreter (most of this test's time is that interpreter's imports)."""
    V3 = _random_v(3, np.random.default_rng(9))
    V12 = _correlation_v(12, np.random.default_rng(12))
    here = [_digest(k_att(V3, 2.0).K), _digest(k_att(V12, 0.9, budget=0.2).K)]
    assert here == [_digest(k_att(V3, 2.0).K), _digest(k_att(V12, 0.9, budget=0.2).K)]
    code = ("import hashlib, numpy as np, sys\n"
            "from covsde.derive.attention_kernel import k_att\n"
            "V3, V12 = np.load(sys.argv[1]), np.load(sys.argv[2])\n"
            "d = lambda K: hashlib.sha256(np.ascontiguousarray(K).tobytes()).hexdigest()\n"
            "print(d(k_att(V3, 2.0).K), d(k_att(V12, 0.9, budget=0.2).K))\n")
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    p3, p12 = tmp / f"katt_v3_{os.getpid()}.npy", tmp / f"katt_v12_{os.getpid()}.npy"
    np.save(p3, V3)
    np.save(p12, V12)
    try:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        out = subprocess.run([sys.executable, "-c", code, str(p3), str(p12)], capture_output=True, text=True,
                             env=env, timeout=120, check=True).stdout.split()
    finally:
        p3.unlink()
        p12.unlink()
    assert out == here


# ---- input checks -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("V,word", [
    (np.ones((2, 3)), "square"), ([[1.0, 0.2], [0.3, 1.0]], "symmetric"), ([[1.0, np.nan], [np.nan, 1.0]], "finite"),
    ([[1.0, 2.0], [2.0, 1.0]], "semi-definite"), ("abc", "V"), (np.zeros((0, 0)), "square")])
def test_bad_v_is_refused(V, word):
    with pytest.raises(CovsdeInputError, match=word):
        k_att(V, 1.0)


@pytest.mark.parametrize("tau0", [0, -1.0, float("nan"), float("inf"), "x", None])
def test_bad_tau0_is_refused(tau0):
    with pytest.raises(CovsdeInputError, match="tau0"):
        k_att(np.eye(2), tau0)


@pytest.mark.parametrize("mask", [np.ones((3, 3)), [[1, 0], [0, 0]], [[1, 2], [1, 1]], "sideways"])
def test_bad_mask_is_refused(mask):
    with pytest.raises(CovsdeInputError, match="mask"):
        k_att(np.eye(2), 1.0, mask=mask)


def test_limits_and_options_are_checked():
    with pytest.raises(ResourceLimitError, match=str(ak.MAX_M)):
        k_att(np.eye(ak.MAX_M + 1), 1.0)
    for kw, word in [({"accuracy": 0}, "accuracy"), ({"accuracy": float("nan")}, "accuracy"),
                     ({"budget": -1}, "budget"), ({"mechanism": "relu"}, "mechanism")]:
        with pytest.raises(CovsdeInputError, match=word):
            k_att(np.eye(2), 1.0, **kw)
    with pytest.raises(CovsdeInputError, match="mask"):
        k_att(np.eye(2), 1.0, mask="causal", mechanism="identity")


def test_result_unpacks_as_a_pair_and_a_full_mask_is_no_mask():
    V = np.array([[1.0, 0.3], [0.3, 0.8]])
    K, err = k_att(V, 1.0)
    assert K.shape == (2, 2) and 0 <= err < 1e-9
    assert np.array_equal(k_att(V, 1.0, mask=np.ones((2, 2))).K, K)
