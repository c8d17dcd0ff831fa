"""Lane-batched linear algebra: the kernels of :mod:`.linalg` for many paths at once, paths innermost.

Layout (structure of arrays): a matrix of every path in a chunk is one array ``A[i, j, p]`` (m × m × n,
the n paths — the *lanes* — contiguous), a vector ``x[i, p]``, a per-path scalar ``s[p]``.  Every loop
over lanes is the innermost loop, with a straight-line body and no calls, so LLVM turns it into SIMD
code (8 doubles per instruction with AVX-512): one path's m×m algebra is too small to vectorise, the
same operation on 64 paths is not.  A coefficient ``c`` may be a number (the same for every lane) or a
lane array (:func:`at` picks ``c`` or ``c[p]`` when the caller is compiled).

Functions mirror :mod:`.linalg` name for name (the generated code calls ``lanes.mm`` where the per-path
code calls ``linalg.mm``); those that return a number there (``trace``, ``trace_prod``, ``vsum``) write a
lane array here, and ``chol`` and the ``*_accept`` steps write a per-lane flag instead of returning one
(ok[p]: lane p is finite with max|V'| ≤ threshold, as :func:`.linalg.accept`).

``acos`` is a branch-free arccosine for lanes: asin(y) = y + y³·f(y²) on y ≤ ½ with f a degree-11
polynomial fitted when this module is imported (to the exact Taylor series of asin, summed in full at
600 Chebyshev nodes: relative error ≤ 3e-16 on asin, absolute ≤ 5e-16 on acos), and
acos(x) = 2·asin(√((1−|x|)/2)) for |x| > ½ (π − that for x < −½), which keeps full relative accuracy
as x → 1.  libm's acos is a call LLVM cannot vectorise.
"""
import math

import numpy as np
from numba import njit
from numba.core import types
from numba.extending import overload


def _asin_fit(deg=11, nodes=600, terms=90):
    """Monomial coefficients of f(z) = (asin(√z) − √z)/z^{3/2} on z ∈ [0, ¼], least squares at Chebyshev
    nodes, f from its Taylor series Σ_k (2k)!/(4^k k!² (2k+1)) z^{k−1} (positive terms: no cancellation)."""
    z = (np.cos(np.pi * (np.arange(nodes) + 0.5) / nodes) + 1.0) / 8.0
    f, c, zk = np.zeros(nodes), 1.0, np.ones(nodes)
    for k in range(1, terms):
        c *= (2 * k - 1) / (2 * k)
        f += c / (2 * k + 1) * zk
        zk = zk * z
    return tuple(float(v) for v in np.polynomial.polynomial.polyfit(z, f, deg))


ASIN = _asin_fit()
HALF_PI = 0.5 * math.pi


def at(c, p):
    """c[p] for a lane array, c for a number (resolved when compiled)."""
    return c[p] if isinstance(c, np.ndarray) else c


@overload(at, inline="always")
def _at(c, p):
    if isinstance(c, types.Array):
        return lambda c, p: c[p]
    return lambda c, p: c


@njit(cache=True, error_model="numpy", inline="always")
def acos(x):
    x = min(1.0, max(-1.0, x))
    a = abs(x)
    big = a > 0.5
    y = math.sqrt(0.5 * (1.0 - a)) if big else a
    z = y * y
    q = ASIN[11]
    for k in range(10, -1, -1):
        q = q * z + ASIN[k]
    s = y + y * z * q  # asin(y)
    if big:
        return 2.0 * s if x > 0 else math.pi - 2.0 * s
    return HALF_PI - s if x >= 0 else HALF_PI + s


@njit(cache=True, error_model="numpy")
def fill(out, c):
    out[...] = c


@njit(cache=True, error_model="numpy")
def mm(A, B, out):
    m, n = A.shape[0], A.shape[2]
    for i in range(m):
        for j in range(B.shape[1]):
            for p in range(n):
                out[i, j, p] = 0.0
            for k in range(A.shape[1]):
                for p in range(n):
                    out[i, j, p] += A[i, k, p] * B[k, j, p]


@njit(cache=True, error_model="numpy")
def mm_acc(A, B, c, out):
    m, n = A.shape[0], A.shape[2]
    s = np.empty(n)
    for i in range(m):
        for j in range(B.shape[1]):
            s[:] = 0.0
            for k in range(A.shape[1]):
                for p in range(n):
                    s[p] += A[i, k, p] * B[k, j, p]
            for p in range(n):
                out[i, j, p] += at(c, p) * s[p]


@njit(cache=True, error_model="numpy")
def acc(A, c, out):
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            for p in range(A.shape[2]):
                out[i, j, p] += at(c, p) * A[i, j, p]


@njit(cache=True, error_model="numpy")
def transpose(A, out):
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            for p in range(A.shape[2]):
                out[i, j, p] = A[j, i, p]


@njit(cache=True, error_model="numpy", inline="always")
def row_dot(A, B, i, j, kmax, out):
    """out[i, j] = Σ_{k < kmax} A[i, k] B[j, k] on every lane, summed from 0 in the order of k (row i of A
    against row j of B: the entries of A Bᵀ, of L S Lᵀ's second product, of a Gram)."""
    for p in range(out.shape[2]):
        out[i, j, p] = 0.0
    for k in range(kmax):
        for p in range(out.shape[2]):
            out[i, j, p] += A[i, k, p] * B[j, k, p]


@njit(cache=True, error_model="numpy")
def lzl(L, Z, t, out):
    """out = L Z Lᵀ (L lower triangular)."""
    m, n = L.shape[0], L.shape[2]
    for i in range(m):
        for j in range(m):
            for p in range(n):
                t[i, j, p] = 0.0
            for k in range(i + 1):
                for p in range(n):
                    t[i, j, p] += L[i, k, p] * Z[k, j, p]
    for i in range(m):
        for j in range(m):
            row_dot(t, L, i, j, j + 1, out)


@njit(cache=True, error_model="numpy")
def sym_acc(A, c, out):
    """out += c (A + Aᵀ)."""
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            for p in range(A.shape[2]):
                out[i, j, p] += at(c, p) * (A[i, j, p] + A[j, i, p])


@njit(cache=True, error_model="numpy")
def ls(L, Z, t):
    """t = L S with S symmetric: S_ij = Z_ij (i < j), S_ii = √2 Z_ii (the upper triangle of Z)."""
    m, n = L.shape[0], L.shape[2]
    r2 = math.sqrt(2.0)
    for i in range(m):
        for j in range(m):
            for p in range(n):
                t[i, j, p] = 0.0
            for k in range(i + 1):
                if k < j:
                    for p in range(n):
                        t[i, j, p] += L[i, k, p] * Z[k, j, p]
                elif k > j:
                    for p in range(n):
                        t[i, j, p] += L[i, k, p] * Z[j, k, p]
                else:
                    for p in range(n):
                        t[i, j, p] += L[i, k, p] * r2 * Z[k, k, p]


@njit(cache=True, error_model="numpy")
def lsl_sym_acc(L, Z, t, c, out):
    """out += c · L S Lᵀ with S symmetric from the upper triangle of Z (see :func:`ls`)."""
    m, n = L.shape[0], L.shape[2]
    s = np.empty(n)
    ls(L, Z, t)
    for i in range(m):
        for j in range(i, m):
            s[:] = 0.0
            for k in range(j + 1):
                for p in range(n):
                    s[p] += t[i, k, p] * L[j, k, p]
            for p in range(n):
                out[i, j, p] += at(c, p) * s[p]
            if j != i:
                for p in range(n):
                    out[j, i, p] += at(c, p) * s[p]


@njit(cache=True, error_model="numpy")
def em_wishart(V, L, b, Z, c, dtb, sq, threshold, t, Vn, ok):
    """:func:`em_accept` when the noise is N = c · L S Lᵀ alone (one Wishart group): Vn = V + dtb b +
    sq c L S Lᵀ accumulated in place, N never stored (b symmetric)."""
    m, n = L.shape[0], L.shape[2]
    ls(L, Z, t)
    ok[:] = True
    for i in range(m):
        for j in range(i, m):
            row_dot(t, L, i, j, j + 1, Vn)
            for p in range(n):
                a = V[i, j, p] + dtb * b[i, j, p] + sq * at(c, p) * Vn[i, j, p]
                Vn[i, j, p] = a
                Vn[j, i, p] = a
                ok[p] = ok[p] and abs(a) <= threshold and abs(a) < math.inf


@njit(cache=True, error_model="numpy")
def chol(V, L, ok):
    """Lower Cholesky factor of every lane; ok[p] = False where V is not (numerically) positive definite
    (that lane's L then holds NaN or junk: its caller stops the path)."""
    m, n = V.shape[0], V.shape[2]
    s = np.empty(n)
    inv = np.empty(n)
    ok[:] = True
    for j in range(m):
        for p in range(n):
            s[p] = V[j, j, p]
        for k in range(j):
            for p in range(n):
                s[p] -= L[j, k, p] * L[j, k, p]
        for p in range(n):
            good = s[p] > 0.0 and s[p] < math.inf
            ok[p] = ok[p] and good
            d = math.sqrt(s[p]) if good else 1.0
            L[j, j, p] = d
            inv[p] = 1.0 / d
        for i in range(j + 1, m):
            for p in range(n):
                s[p] = V[i, j, p]
            for k in range(j):
                for p in range(n):
                    s[p] -= L[i, k, p] * L[j, k, p]
            for p in range(n):
                L[i, j, p] = s[p] * inv[p]
        for i in range(j):
            for p in range(n):
                L[i, j, p] = 0.0


@njit(cache=True, error_model="numpy")
def inv_diag(L, out):
    """out[i, p] = 1 / L[i, i, p] (m divisions per lane, so that trsm multiplies instead of dividing)."""
    for i in range(L.shape[0]):
        for p in range(L.shape[2]):
            out[i, p] = 1.0 / L[i, i, p]


@njit(cache=True, error_model="numpy")
def trsm(L, B, out, inv):
    """out = L⁻¹ B (forward substitution, L lower triangular; inv from :func:`inv_diag`)."""
    m, n = L.shape[0], L.shape[2]
    for i in range(m):
        for c in range(B.shape[1]):
            for p in range(n):
                out[i, c, p] = B[i, c, p]
        for k in range(i):
            for c in range(B.shape[1]):
                for p in range(n):
                    out[i, c, p] -= L[i, k, p] * out[k, c, p]
        for c in range(B.shape[1]):
            for p in range(n):
                out[i, c, p] *= inv[i, p]


@njit(cache=True, error_model="numpy")
def outer(x, y, c, out):
    """out = c x yᵀ."""
    for i in range(x.shape[0]):
        for j in range(y.shape[0]):
            for p in range(x.shape[1]):
                out[i, j, p] = at(c, p) * x[i, p] * y[j, p]


@njit(cache=True, error_model="numpy")
def outer_acc(x, y, c, out):
    for i in range(x.shape[0]):
        for j in range(y.shape[0]):
            for p in range(x.shape[1]):
                out[i, j, p] += at(c, p) * x[i, p] * y[j, p]


@njit(cache=True, error_model="numpy")
def mv(A, x, out):
    """out = A x."""
    for i in range(A.shape[0]):
        for p in range(A.shape[2]):
            out[i, p] = 0.0
        for k in range(A.shape[1]):
            for p in range(A.shape[2]):
                out[i, p] += A[i, k, p] * x[k, p]


@njit(cache=True, error_model="numpy")
def vmul(x, y, c, out):
    """out = c · x ∘ y."""
    for i in range(x.shape[0]):
        for p in range(x.shape[1]):
            out[i, p] = at(c, p) * x[i, p] * y[i, p]


@njit(cache=True, error_model="numpy")
def diagv(A, out):
    for i in range(A.shape[0]):
        for p in range(A.shape[2]):
            out[i, p] = A[i, i, p]


@njit(cache=True, error_model="numpy")
def diag_left(d, A, out):
    """out = dg(d) A (rows scaled)."""
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            for p in range(A.shape[2]):
                out[i, j, p] = d[i, p] * A[i, j, p]


@njit(cache=True, error_model="numpy")
def diag_right(A, d, out):
    """out = A dg(d) (columns scaled)."""
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            for p in range(A.shape[2]):
                out[i, j, p] = A[i, j, p] * d[j, p]


@njit(cache=True, error_model="numpy")
def diag_mat(d, out):
    out[...] = 0.0
    for i in range(d.shape[0]):
        for p in range(d.shape[1]):
            out[i, i, p] = d[i, p]


@njit(cache=True, error_model="numpy")
def had(A, B, out):
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            for p in range(A.shape[2]):
                out[i, j, p] = A[i, j, p] * B[i, j, p]


@njit(cache=True, error_model="numpy")
def acc_eye(c, out):
    for i in range(out.shape[0]):
        for p in range(out.shape[2]):
            out[i, i, p] += at(c, p)


@njit(cache=True, error_model="numpy")
def trace(A, out):
    out[:] = 0.0
    for i in range(A.shape[0]):
        for p in range(A.shape[2]):
            out[p] += A[i, i, p]


@njit(cache=True, error_model="numpy")
def trace_prod(A, B, out):
    """tr(A B) = Σ_ij A_ij B_ji per lane."""
    out[:] = 0.0
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            for p in range(A.shape[2]):
                out[p] += A[i, j, p] * B[j, i, p]


@njit(cache=True, error_model="numpy")
def vsum(x, c, out):
    """out = c Σ_i x_i per lane."""
    out[:] = 0.0
    for i in range(x.shape[0]):
        for p in range(x.shape[1]):
            out[p] += x[i, p]
    for p in range(x.shape[1]):
        out[p] *= c


@njit(cache=True, error_model="numpy")
def symmetrize(A):
    for i in range(A.shape[0]):
        for j in range(i + 1, A.shape[1]):
            for p in range(A.shape[2]):
                a = 0.5 * (A[i, j, p] + A[j, i, p])
                A[i, j, p] = a
                A[j, i, p] = a


@njit(cache=True, error_model="numpy")
def em_accept(V, b, N, dtb, sq, threshold, Vn, ok):
    """The EM step and its acceptance in one pass: Vn = V + b dt + N √dt symmetrised, ok per lane."""
    m, n = V.shape[0], V.shape[2]
    ok[:] = True
    for i in range(m):
        for j in range(i, m):
            for p in range(n):
                a = V[i, j, p] + 0.5 * (dtb * (b[i, j, p] + b[j, i, p]) + sq * (N[i, j, p] + N[j, i, p]))
                Vn[i, j, p] = a
                Vn[j, i, p] = a
                ok[p] = ok[p] and abs(a) <= threshold and abs(a) < math.inf


@njit(cache=True, error_model="numpy")
def ito_d(b, N, W, q, dtb, sq, D):
    """D = dtb b + sq N − q WᵀW (W = L⁻¹N, so WᵀW = N V⁻¹ N), symmetric: the upper triangle, mirrored."""
    m, n = b.shape[0], b.shape[2]
    for i in range(m):
        for j in range(i, m):
            for p in range(n):
                D[i, j, p] = 0.0
            for k in range(m):
                for p in range(n):
                    D[i, j, p] += W[k, i, p] * W[k, j, p]
            for p in range(n):
                a = dtb * b[i, j, p] + sq * 0.5 * (N[i, j, p] + N[j, i, p]) - q * D[i, j, p]
                D[i, j, p] = a
                D[j, i, p] = a


@njit(cache=True, error_model="numpy")
def gram_accept(H, threshold, Vn, ok):
    """Vn = H Hᵀ (upper triangle, mirrored) and the acceptance flag (as :func:`em_accept`) in the same pass."""
    m, n = H.shape[0], H.shape[2]
    ok[:] = True
    for i in range(m):
        for j in range(i, m):
            row_dot(H, H, i, j, H.shape[1], Vn)
            for p in range(n):
                a = Vn[i, j, p]
                Vn[j, i, p] = a
                ok[p] = ok[p] and abs(a) <= threshold and abs(a) < math.inf


@njit(cache=True, error_model="numpy")
def psd_step(L, b, N, dt, dtb, sq, nscale, threshold, D, W, H, Vn, ok):
    """The congruence step of :func:`.linalg.psd_step` on every lane, with the acceptance flag:
    D = b dt + N √dt − ¼ dt N V⁻¹ N (N V⁻¹ N = WᵀW, W = L⁻¹N), V' = F Fᵀ with F = L + ½ (L⁻¹ D)ᵀ."""
    m, n = L.shape[0], L.shape[2]
    inv = np.empty((m, n))
    inv_diag(L, inv)
    trsm(L, N, W, inv)
    ito_d(b, N, W, 0.25 * dt * nscale * nscale, dtb, sq, D)
    trsm(L, D, W, inv)  # W = L⁻¹ D
    for i in range(m):
        for j in range(m):
            for p in range(n):
                H[i, j, p] = L[i, j, p] + 0.5 * W[j, i, p]
    gram_accept(H, threshold, Vn, ok)


@njit(cache=True, error_model="numpy")
def psd_wishart(L, b, Z, c, dtb, sq, threshold, S, G, W, H, Vn, ok):
    """:func:`psd_step` when the noise is N = c · L S Lᵀ alone (one Wishart group; S symmetric from the
    upper triangle of Z, √2 on its diagonal, as in :func:`lsl_sym_acc`), without forming N: with
    a = c·sq, L⁻¹ D = dtb L⁻¹b + M Lᵀ where M = aS − ¼a²S², so F = L G + ½ dtb (L⁻¹b)ᵀ, G = I + ½M —
    the same V' up to rounding, with S² (a symmetric Gram) in place of the noise product and a solve."""
    m, n = L.shape[0], L.shape[2]
    r2 = math.sqrt(2.0)
    for i in range(m):
        for p in range(n):
            S[i, i, p] = r2 * Z[i, i, p]
        for j in range(i + 1, m):
            for p in range(n):
                S[i, j, p] = Z[i, j, p]
                S[j, i, p] = Z[i, j, p]
    for i in range(m):  # G = I + ½ a (S − ¼ a S²), S² = S Sᵀ accumulated in G (upper triangle, mirrored)
        for j in range(i, m):
            row_dot(S, S, i, j, m, G)
            for p in range(n):
                a = sq * at(c, p)
                g = 0.5 * a * (S[i, j, p] - 0.25 * a * G[i, j, p]) + (1.0 if i == j else 0.0)
                G[i, j, p] = g
                G[j, i, p] = g
    inv = np.empty((m, n))
    inv_diag(L, inv)
    trsm(L, b, W, inv)  # W = L⁻¹ b
    for i in range(m):
        for j in range(m):
            for p in range(n):
                H[i, j, p] = 0.5 * dtb * W[j, i, p]
            for k in range(i + 1):
                for p in range(n):
                    H[i, j, p] += L[i, k, p] * G[k, j, p]
    gram_accept(H, threshold, Vn, ok)
