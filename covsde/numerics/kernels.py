"""The integrator kernels, as ordinary Python (Numba-compiled): everything of a generated module
except the derivation's own coefficients.

A generated module (:mod:`.codegen`) is this file's source followed by the derivation-specific part:
the constants ``M, NGROUPS, NMATS, NCOEF, NWS, NWV, PARAMS, SYM, DESCRIPTION`` and the two functions

* ``coeffs(V, P, b, mats, cf, ws, wv)``: the drift b(V), the matrices A_t(V), B_t(V) and coefficients c_t
  of the structured noise (P: the run-time parameter values, in the order of PARAMS; ws, wv: NWS m×m
  and NWV length-m work arrays, allocated once per chunk);
* ``noise(V, L, Z, mats, cf, t1, t2, zh, out)``: out = Σ_g Σ_t c_t A_t (L Z_g Lᵀ)^{(T_t)} B_t.

Those later definitions replace the placeholders at the end of this file (Numba resolves global names
when it compiles, so the loops below call the generated ones).  Imported on its own, this module
integrates the trivial SDE dV = 0 (useful for reading, linting and testing the loops).

Schemes, for dV = b dt + N √dt with N the structured noise:

* ``em`` (Euler–Maruyama, scheme 0):  V' = V + b dt + N √dt.
* ``psd`` (congruence step, scheme 1, the default):  with D = b dt + N √dt − ¼ dt N V⁻¹ N and
  H = ½ D V⁻¹,   V' = (I + H) V (I + H)ᵀ = V + D + ¼ D V⁻¹ D, computed as the Gram matrix
  F Fᵀ, F = L + ½ (L⁻¹ D)ᵀ (L = chol V).
  V' is a congruence of V, so it is positive semidefinite whatever the step; pathwise
  V' = V + b dt + N √dt + O(dt^{3/2}) with odd O(dt^{3/2}) terms, so the weak order is EM's.

Parameter values whose coefficients at V0 are not finite mark every path with status 3 and run
nothing (the caller refuses them).  Stopping: a path whose V is not finite or has max|V| > threshold
is *exploded* (status 1); one whose Cholesky factorisation fails (V left the positive-definite cone)
*left_psd* (status 2).  Both are stopped, counted and timed, and keep their last valid V.  ``bscale``
multiplies the drift and ``nscale`` the noise (Σ × nscale²) at run time, for power analyses.  Paths
run in fixed chunks, each chunk seeded from its own ``np.random.Generator`` (spawned from the user's
seed by SeedSequence), so results do not depend on the number of threads.  Arithmetic follows NumPy's
error model (a division by zero gives inf/NaN, counted as a failure, never an exception).
"""
import math

import numpy as np
from numba import njit, prange


@njit(cache=True, error_model="numpy", inline="always")
def _sqrtc(x):
    return math.sqrt(x) if x > 0.0 else 0.0


@njit(cache=True, error_model="numpy", inline="always")
def _acos(x):
    if x > 1.0:
        x = 1.0
    elif x < -1.0:
        x = -1.0
    return math.atan2(math.sqrt(1.0 - x * x), x)


BLAS_M = 24  # from this size on, matrix products and factorisations call BLAS/LAPACK


@njit(cache=True, error_model="numpy", inline="always")
def _mm(A, B, out):
    m = A.shape[0]
    if m >= BLAS_M:
        np.dot(A, B, out)
        return
    for i in range(m):
        for j in range(m):
            s = 0.0
            for k in range(m):
                s += A[i, k] * B[k, j]
            out[i, j] = s


@njit(cache=True, error_model="numpy", inline="always")
def _mm_acc(A, B, c, out):
    m = A.shape[0]
    if m >= BLAS_M:
        out += c * np.dot(A, B)
        return
    for i in range(m):
        for j in range(m):
            s = 0.0
            for k in range(m):
                s += A[i, k] * B[k, j]
            out[i, j] += c * s


@njit(cache=True, error_model="numpy", inline="always")
def _acc(A, c, out):
    m = A.shape[0]
    for i in range(m):
        for j in range(m):
            out[i, j] += c * A[i, j]


@njit(cache=True, error_model="numpy", inline="always")
def _transpose(A, out):
    m = A.shape[0]
    for i in range(m):
        for j in range(m):
            out[i, j] = A[j, i]


@njit(cache=True, error_model="numpy", inline="always")
def _lzl(L, Z, t, out):
    """out = L Z Lᵀ (L lower triangular)."""
    m = L.shape[0]
    if m >= BLAS_M:
        np.dot(L, Z, t)
        np.dot(t, L.T, out)
        return
    for i in range(m):
        for j in range(m):
            s = 0.0
            for k in range(i + 1):
                s += L[i, k] * Z[k, j]
            t[i, j] = s
    for i in range(m):
        for j in range(m):
            s = 0.0
            for k in range(j + 1):
                s += t[i, k] * L[j, k]
            out[i, j] = s


@njit(cache=True, error_model="numpy", inline="always")
def _sym_acc(A, c, out):
    """out += c (A + Aᵀ)."""
    m = A.shape[0]
    for i in range(m):
        for j in range(m):
            out[i, j] += c * (A[i, j] + A[j, i])


@njit(cache=True, error_model="numpy", inline="always")
def _lsl_sym_acc(L, Z, t, c, out):
    """out += c · L S Lᵀ with S symmetric: S_ij = Z_ij (i < j), S_ii = √2 Z_ii (upper triangle of Z)."""
    m = L.shape[0]
    r2 = math.sqrt(2.0)
    if m >= BLAS_M:
        S = np.empty((m, m))
        for i in range(m):
            S[i, i] = r2 * Z[i, i]
            for j in range(i + 1, m):
                S[i, j] = Z[i, j]
                S[j, i] = Z[i, j]
        np.dot(L, S, t)
        out += c * np.dot(t, L.T)
        return
    for i in range(m):
        for j in range(m):
            s = 0.0
            for k in range(i + 1):
                if k < j:
                    s += L[i, k] * Z[k, j]
                elif k > j:
                    s += L[i, k] * Z[j, k]
                else:
                    s += L[i, k] * r2 * Z[k, k]
            t[i, j] = s
    for i in range(m):
        for j in range(i, m):
            s = 0.0
            for k in range(j + 1):
                s += t[i, k] * L[j, k]
            out[i, j] += c * s
            if j != i:
                out[j, i] += c * s


@njit(cache=True, error_model="numpy", inline="always")
def _chol(V, L):
    """Lower Cholesky factor; returns False if V is not (numerically) positive definite."""
    m = V.shape[0]
    if m >= BLAS_M:
        return _chol_lapack(V, L)
    for j in range(m):
        s = V[j, j]
        for k in range(j):
            s -= L[j, k] * L[j, k]
        if not (s > 0.0) or not math.isfinite(s):
            return False
        d = math.sqrt(s)
        L[j, j] = d
        for i in range(j + 1, m):
            s = V[i, j]
            for k in range(j):
                s -= L[i, k] * L[j, k]
            L[i, j] = s / d
        for i in range(j):
            L[i, j] = 0.0
    return True


@njit(cache=True, error_model="numpy")
def _chol_lapack(V, L):
    try:
        L[:, :] = np.linalg.cholesky(V)
    except Exception:  # noqa: BLE001 - LAPACK's "not positive definite"
        return False
    for j in range(V.shape[0]):
        if not (L[j, j] > 0.0) or not math.isfinite(L[j, j]):
            return False
    return True


TRSM_BLOCK = 32


@njit(cache=True, error_model="numpy")
def _trsm_blocked(L, B, out):
    """out = L⁻¹ B by blocks: X_i = L_ii⁻¹ (B_i − L_i,<i X_<i), the update a BLAS product."""
    m = L.shape[0]
    for lo in range(0, m, TRSM_BLOCK):
        hi = min(lo + TRSM_BLOCK, m)
        R = B[lo:hi, :].copy()
        if lo > 0:
            R -= np.dot(np.ascontiguousarray(L[lo:hi, :lo]), np.ascontiguousarray(out[:lo, :]))
        for c in range(B.shape[1]):
            for i in range(hi - lo):
                s = R[i, c]
                for k in range(i):
                    s -= L[lo + i, lo + k] * out[lo + k, c]
                out[lo + i, c] = s / L[lo + i, lo + i]


@njit(cache=True, error_model="numpy", inline="always")
def _trsm(L, B, out):
    """out = L⁻¹ B (forward substitution, L lower triangular)."""
    m = L.shape[0]
    if m >= BLAS_M:
        _trsm_blocked(L, B, out)
        return
    for c in range(m):
        for i in range(m):
            s = B[i, c]
            for k in range(i):
                s -= L[i, k] * out[k, c]
            out[i, c] = s / L[i, i]


# ---- matrix-level coefficient kernels (called by a generated ``coeffs``; O(m²) unless a product) ----
@njit(cache=True, error_model="numpy", inline="always")
def _fill(out, c):
    out[...] = c


@njit(cache=True, error_model="numpy", inline="always")
def _outer(x, y, c, out):
    """out = c x yᵀ (a word with 11ᵀ/m in it is rank one)."""
    for i in range(x.shape[0]):
        for j in range(y.shape[0]):
            out[i, j] = c * x[i] * y[j]


@njit(cache=True, error_model="numpy", inline="always")
def _outer_acc(x, y, c, out):
    for i in range(x.shape[0]):
        for j in range(y.shape[0]):
            out[i, j] += c * x[i] * y[j]


@njit(cache=True, error_model="numpy", inline="always")
def _mv(A, x, out):
    """out = A x."""
    m = A.shape[0]
    for i in range(m):
        s = 0.0
        for k in range(m):
            s += A[i, k] * x[k]
        out[i] = s


@njit(cache=True, error_model="numpy", inline="always")
def _vmul(x, y, c, out):
    """out = c · x ∘ y."""
    for i in range(x.shape[0]):
        out[i] = c * x[i] * y[i]


@njit(cache=True, error_model="numpy", inline="always")
def _diagv(A, out):
    for i in range(A.shape[0]):
        out[i] = A[i, i]


@njit(cache=True, error_model="numpy", inline="always")
def _diag_left(d, A, out):
    """out = dg(d) A (rows scaled)."""
    m = A.shape[0]
    for i in range(m):
        for j in range(m):
            out[i, j] = d[i] * A[i, j]


@njit(cache=True, error_model="numpy", inline="always")
def _diag_right(A, d, out):
    """out = A dg(d) (columns scaled)."""
    m = A.shape[0]
    for i in range(m):
        for j in range(m):
            out[i, j] = A[i, j] * d[j]


@njit(cache=True, error_model="numpy", inline="always")
def _diag_mat(d, out):
    m = d.shape[0]
    for i in range(m):
        for j in range(m):
            out[i, j] = d[i] if i == j else 0.0


@njit(cache=True, error_model="numpy", inline="always")
def _had(A, B, out):
    m = A.shape[0]
    for i in range(m):
        for j in range(m):
            out[i, j] = A[i, j] * B[i, j]


@njit(cache=True, error_model="numpy", inline="always")
def _acc_eye(c, out):
    for i in range(out.shape[0]):
        out[i, i] += c


@njit(cache=True, error_model="numpy", inline="always")
def _trace(A):
    s = 0.0
    for i in range(A.shape[0]):
        s += A[i, i]
    return s


@njit(cache=True, error_model="numpy", inline="always")
def _trace_prod(A, B):
    """tr(A B) = Σ_ij A_ij B_ji, O(m²)."""
    m = A.shape[0]
    s = 0.0
    for i in range(m):
        for j in range(m):
            s += A[i, j] * B[j, i]
    return s


@njit(cache=True, error_model="numpy", inline="always")
def _vsum(x):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i]
    return s


@njit(cache=True, error_model="numpy", inline="always")
def _symmetrize(A):
    m = A.shape[0]
    for i in range(m):
        for j in range(i + 1, m):
            a = 0.5 * (A[i, j] + A[j, i])
            A[i, j] = a
            A[j, i] = a


@njit(cache=True, error_model="numpy", inline="always")
def _draw(rng, Z, m):
    """Standard normals for every noise group (the upper triangle only for a SYM group)."""
    for g in range(NGROUPS):
        for i in range(m):
            for j in range(i if SYM[g] else 0, m):
                Z[g, i, j] = rng.standard_normal()


@njit(cache=True, error_model="numpy", inline="always")
def _em_step(V, b, N, dtb, sq, Vn):
    m = V.shape[0]
    for i in range(m):
        for j in range(m):
            Vn[i, j] = V[i, j] + dtb * b[i, j] + sq * N[i, j]


@njit(cache=True, error_model="numpy", inline="always")
def _psd_step(L, b, N, dt, dtb, sq, nscale, D, W, H, Vn):
    """D = b dt + N √dt − ¼ dt N V⁻¹ N;  V' = F Fᵀ with F = L + ½ (L⁻¹ D)ᵀ
    (= (I + H) V (I + H)ᵀ, H = ½ D V⁻¹: a Gram matrix, PSD also in floating point)."""
    m = L.shape[0]
    _trsm(L, N, W)  # W = L⁻¹ N, so N V⁻¹ N = Wᵀ W
    if m >= BLAS_M:
        D[:, :] = dtb * b + sq * N - 0.25 * dt * nscale * nscale * np.dot(W.T, W)
        for i in range(m):
            for j in range(i + 1, m):
                x = 0.5 * (D[i, j] + D[j, i])
                D[i, j] = x
                D[j, i] = x
        _trsm(L, D, W)
        H[:, :] = L + 0.5 * W.T
        np.dot(H, H.T, Vn)
        return
    for i in range(m):
        for j in range(i, m):
            s = 0.0
            for q in range(m):
                s += W[q, i] * W[q, j]
            x = dtb * b[i, j] + sq * N[i, j] - 0.25 * dt * nscale * nscale * s
            D[i, j] = x
            D[j, i] = x
    _trsm(L, D, W)  # W = L⁻¹ D
    for i in range(m):
        for j in range(m):
            H[i, j] = L[i, j] + 0.5 * W[j, i]
    for i in range(m):
        for j in range(i, m):
            s = 0.0
            for q in range(m):
                s += H[i, q] * H[j, q]
            Vn[i, j] = s
            Vn[j, i] = s


@njit(cache=True, error_model="numpy", inline="always")
def _accept(Vn, threshold):
    """Symmetrise Vn; is it finite with max|V| ≤ threshold?"""
    m = Vn.shape[0]
    for i in range(m):
        for j in range(i + 1, m):
            a = 0.5 * (Vn[i, j] + Vn[j, i])
            Vn[i, j] = a
            Vn[j, i] = a
    big = 0.0
    finite = True
    for i in range(m):
        for j in range(m):
            x = Vn[i, j]
            if not math.isfinite(x):
                finite = False
            elif abs(x) > big:
                big = abs(x)
    return finite and not big > threshold


@njit(cache=True, error_model="numpy")
def _run_chunk(V0, P, dt, nsteps, save_steps, scheme, threshold, rng, Vout, status, tdeath, drift_only, bscale,
               nscale):
    m = V0.shape[0]
    V = np.empty((m, m))
    Vn = np.empty((m, m))
    b = np.empty((m, m))
    N = np.empty((m, m))
    D = np.empty((m, m))
    W = np.empty((m, m))
    H = np.empty((m, m))
    t1 = np.empty((m, m))
    t2 = np.empty((m, m))
    zh = np.empty((m, m))
    L = np.zeros((m, m))
    mats = np.zeros((NMATS, m, m))
    cf = np.zeros(NCOEF)
    ws = np.zeros((NWS, m, m))
    wv = np.zeros((NWV, m))
    Z = np.empty((NGROUPS, m, m))
    sq = math.sqrt(dt) * nscale
    dtb = dt * bscale
    for p in range(Vout.shape[1]):
        V[:, :] = V0
        st = 0
        k = 0
        for step in range(nsteps + 1):
            while k < save_steps.shape[0] and save_steps[k] == step:
                Vout[k, p, :, :] = V
                k += 1
            if step == nsteps:
                break
            if not _chol(V, L):
                st = 2
            if st == 0:
                coeffs(V, P, b, mats, cf, ws, wv)
                if drift_only:
                    N[:, :] = 0.0
                else:
                    _draw(rng, Z, m)
                    noise(V, L, Z, mats, cf, t1, t2, zh, N)
                if scheme == 0:
                    _em_step(V, b, N, dtb, sq, Vn)
                else:
                    _psd_step(L, b, N, dt, dtb, sq, nscale, D, W, H, Vn)
                if _accept(Vn, threshold):
                    V[:, :] = Vn
                else:
                    st = 1
            if st != 0:
                status[p] = st
                tdeath[p] = step * dt
                while k < save_steps.shape[0]:
                    Vout[k, p, :, :] = V
                    k += 1
                break


@njit(cache=True, error_model="numpy")
def _finite_at(V0, P):
    """The coefficients at V0 are finite numbers."""
    m = V0.shape[0]
    b = np.empty((m, m))
    mats = np.zeros((NMATS, m, m))
    cf = np.zeros(NCOEF)
    ws = np.zeros((NWS, m, m))
    wv = np.zeros((NWV, m))
    coeffs(V0, P, b, mats, cf, ws, wv)
    return np.all(np.isfinite(b)) and np.all(np.isfinite(mats)) and np.all(np.isfinite(cf))


@njit(cache=True, error_model="numpy", parallel=True)
def simulate(V0, P, dt, nsteps, save_steps, scheme, threshold, rngs, chunk, Vout, status, tdeath, drift_only,
             bscale, nscale):
    npaths = Vout.shape[1]
    nchunks = len(rngs)
    if not _finite_at(V0, P):  # parameter values whose coefficients are not finite: nothing is run
        status[:] = 3
        return
    for c in prange(nchunks):
        lo = c * chunk
        hi = min(lo + chunk, npaths)
        _run_chunk(V0, P, dt, nsteps, save_steps, scheme, threshold, rngs[c], Vout[:, lo:hi], status[lo:hi],
                   tdeath[lo:hi], drift_only, bscale, nscale)


@njit(cache=True, error_model="numpy")
def drift_vec(V, P, b, mats, cf, ws, wv):
    coeffs(V, P, b, mats, cf, ws, wv)


# ---- placeholders: a generated module redefines everything below for its derivation ----------------
M = 1
NGROUPS = 1
NMATS = 1
NCOEF = 1
NWS = 1
NWV = 1
PARAMS = ()
SYM = (False,)
DESCRIPTION = "placeholder: dV = 0"


@njit(cache=True, error_model="numpy")
def coeffs(V, P, b, mats, cf, ws, wv):
    b[:, :] = 0.0


@njit(cache=True, error_model="numpy")
def noise(V, L, Z, mats, cf, t1, t2, zh, out):
    out[:, :] = 0.0
