"""Dense linear algebra of the integrators and of generated coefficient code, Numba-compiled once.

These kernels do not depend on a derivation, so they live in an ordinary module whose compiled code
Numba caches once for every generated module (a generated module imports them; only its own
coefficients and loops are compiled per derivation).  Loops are explicit for small m; from
:data:`BLAS_M` on, products call BLAS (``np.dot``) and the Cholesky factorisation LAPACK, and the
triangular solve works by blocks with BLAS updates.  The functions named in the generated code
(``outer``, ``mv``, ``diag_left``, …) compute the values of matrix words (see :mod:`.matcode`).
"""
import math

import numpy as np
from numba import njit

BLAS_M = 24  # from this size on, matrix products and factorisations call BLAS/LAPACK


@njit(cache=True, error_model="numpy")
def mm(A, B, out):
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


@njit(cache=True, error_model="numpy")
def mm_acc(A, B, c, out):
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


@njit(cache=True, error_model="numpy")
def acc(A, c, out):
    m = A.shape[0]
    for i in range(m):
        for j in range(m):
            out[i, j] += c * A[i, j]


@njit(cache=True, error_model="numpy")
def transpose(A, out):
    m = A.shape[0]
    for i in range(m):
        for j in range(m):
            out[i, j] = A[j, i]


@njit(cache=True, error_model="numpy")
def lzl(L, Z, t, out):
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


@njit(cache=True, error_model="numpy")
def sym_acc(A, c, out):
    """out += c (A + Aᵀ)."""
    m = A.shape[0]
    for i in range(m):
        for j in range(m):
            out[i, j] += c * (A[i, j] + A[j, i])


@njit(cache=True, error_model="numpy")
def lsl_sym_acc(L, Z, t, c, out):
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


@njit(cache=True, error_model="numpy")
def chol(V, L):
    """Lower Cholesky factor; returns False if V is not (numerically) positive definite."""
    m = V.shape[0]
    if m >= BLAS_M:
        return chol_blocked(V, L)
    return chol_columns(V, L, 0, m)


@njit(cache=True, error_model="numpy")
def chol_columns(A, L, lo, hi):
    """Columns lo..hi−1 of the Cholesky factor, A holding V minus the update from columns < lo."""
    m = A.shape[0]
    for j in range(lo, hi):
        s = A[j, j]
        for k in range(lo, j):
            s -= L[j, k] * L[j, k]
        if not (s > 0.0) or not math.isfinite(s):
            return False
        d = math.sqrt(s)
        L[j, j] = d
        for i in range(j + 1, m):
            s = A[i, j]
            for k in range(lo, j):
                s -= L[i, k] * L[j, k]
            L[i, j] = s / d
        for i in range(j):
            L[i, j] = 0.0
    return True


CHOL_BLOCK = 32


@njit(cache=True, error_model="numpy")
def chol_blocked(V, L):
    """Right-looking blocked Cholesky: each block of columns factored by loops (:func:`chol_columns`),
    the trailing matrix updated by one BLAS product.  False if V is not positive definite."""
    m = V.shape[0]
    A = V.copy()
    for lo in range(0, m, CHOL_BLOCK):
        hi = min(lo + CHOL_BLOCK, m)
        if not chol_columns(A, L, lo, hi):
            return False
        if hi < m:
            P = np.ascontiguousarray(L[hi:, lo:hi])
            A[hi:, hi:] -= np.dot(P, P.T)
    return True


TRSM_BLOCK = 32


@njit(cache=True, error_model="numpy")
def trsm_blocked(L, B, out):
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


@njit(cache=True, error_model="numpy")
def trsm(L, B, out):
    """out = L⁻¹ B (forward substitution, L lower triangular)."""
    m = L.shape[0]
    if m >= BLAS_M:
        trsm_blocked(L, B, out)
        return
    for c in range(m):
        for i in range(m):
            s = B[i, c]
            for k in range(i):
                s -= L[i, k] * out[k, c]
            out[i, c] = s / L[i, i]


# ---- matrix-level coefficient kernels (called by a generated ``coeffs``; O(m²) unless a product) ----
@njit(cache=True, error_model="numpy")
def fill(out, c):
    out[...] = c


@njit(cache=True, error_model="numpy")
def outer(x, y, c, out):
    """out = c x yᵀ (a word with 11ᵀ/m in it is rank one)."""
    for i in range(x.shape[0]):
        for j in range(y.shape[0]):
            out[i, j] = c * x[i] * y[j]


@njit(cache=True, error_model="numpy")
def outer_acc(x, y, c, out):
    for i in range(x.shape[0]):
        for j in range(y.shape[0]):
            out[i, j] += c * x[i] * y[j]


@njit(cache=True, error_model="numpy")
def mv(A, x, out):
    """out = A x."""
    m = A.shape[0]
    for i in range(m):
        s = 0.0
        for k in range(m):
            s += A[i, k] * x[k]
        out[i] = s


@njit(cache=True, error_model="numpy")
def vmul(x, y, c, out):
    """out = c · x ∘ y."""
    for i in range(x.shape[0]):
        out[i] = c * x[i] * y[i]


@njit(cache=True, error_model="numpy")
def diagv(A, out):
    for i in range(A.shape[0]):
        out[i] = A[i, i]


@njit(cache=True, error_model="numpy")
def diag_left(d, A, out):
    """out = dg(d) A (rows scaled)."""
    m = A.shape[0]
    for i in range(m):
        for j in range(m):
            out[i, j] = d[i] * A[i, j]


@njit(cache=True, error_model="numpy")
def diag_right(A, d, out):
    """out = A dg(d) (columns scaled)."""
    m = A.shape[0]
    for i in range(m):
        for j in range(m):
            out[i, j] = A[i, j] * d[j]


@njit(cache=True, error_model="numpy")
def diag_mat(d, out):
    m = d.shape[0]
    for i in range(m):
        for j in range(m):
            out[i, j] = d[i] if i == j else 0.0


@njit(cache=True, error_model="numpy")
def had(A, B, out):
    m = A.shape[0]
    for i in range(m):
        for j in range(m):
            out[i, j] = A[i, j] * B[i, j]


@njit(cache=True, error_model="numpy")
def acc_eye(c, out):
    for i in range(out.shape[0]):
        out[i, i] += c


@njit(cache=True, error_model="numpy")
def trace(A):
    s = 0.0
    for i in range(A.shape[0]):
        s += A[i, i]
    return s


@njit(cache=True, error_model="numpy")
def trace_prod(A, B):
    """tr(A B) = Σ_ij A_ij B_ji, O(m²)."""
    m = A.shape[0]
    s = 0.0
    for i in range(m):
        for j in range(m):
            s += A[i, j] * B[j, i]
    return s


@njit(cache=True, error_model="numpy")
def vsum(x):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i]
    return s


@njit(cache=True, error_model="numpy")
def symmetrize(A):
    m = A.shape[0]
    for i in range(m):
        for j in range(i + 1, m):
            a = 0.5 * (A[i, j] + A[j, i])
            A[i, j] = a
            A[j, i] = a


@njit(cache=True, error_model="numpy")
def em_step(V, b, N, dtb, sq, Vn):
    m = V.shape[0]
    for i in range(m):
        for j in range(m):
            Vn[i, j] = V[i, j] + dtb * b[i, j] + sq * N[i, j]


@njit(cache=True, error_model="numpy")
def psd_step(L, b, N, dt, dtb, sq, nscale, D, W, H, Vn):
    """D = b dt + N √dt − ¼ dt N V⁻¹ N;  V' = F Fᵀ with F = L + ½ (L⁻¹ D)ᵀ
    (= (I + H) V (I + H)ᵀ, H = ½ D V⁻¹: a Gram matrix, PSD also in floating point)."""
    m = L.shape[0]
    trsm(L, N, W)  # W = L⁻¹ N, so N V⁻¹ N = Wᵀ W
    if m >= BLAS_M:
        D[:, :] = dtb * b + sq * N - 0.25 * dt * nscale * nscale * np.dot(W.T, W)
        for i in range(m):
            for j in range(i + 1, m):
                x = 0.5 * (D[i, j] + D[j, i])
                D[i, j] = x
                D[j, i] = x
        trsm(L, D, W)
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
    trsm(L, D, W)  # W = L⁻¹ D
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


@njit(cache=True, error_model="numpy")
def accept(Vn, threshold):
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
