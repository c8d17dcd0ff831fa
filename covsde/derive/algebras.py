"""The two matrix algebras the expansion runs in (:mod:`.series`, :mod:`.algebra`).

* :class:`MatrixAlgebra` — the engine's own: m×m matrices are :class:`~.matexpr.MatExpr` with m a
  symbol, so one derivation serves every m; zero tests evaluate at random numeric V of the size
  being derived (``m_probe``).
* :class:`EntryAlgebra` — SymPy matrices of a fixed m (entries V_a_b): the per-entry reference the
  matrix form is checked against.

Both offer the same operations: the constants (V, I, 11ᵀ/m, P), structural tests, traces, the two
Wick means of Hadamard products (``diag_outer``: entries L_aa R_bb; ``hadamard``), element-wise
kernel maps, and κ with K = κV.  Zero tests that decide the regime are numerical (:class:`Probe`).
"""
from __future__ import annotations

import random

import numpy as np
import sympy as sp

from .gaussian import kxx, kxy, kyy
from .errors import NeedsEntries
from .matexpr import J_ATOM, M_SYM, V_ATOM, MatExpr
from .matnum import Numeric, coef_reader
from .symbols import V_matrix

_PLACEHOLDERS = {kxx, kxy, kyy, M_SYM}


class Probe:
    """Numerical zero tests at a few random points: random positive definite V of size m and random
    parameter values (γ, λ in [0.15, 0.95], c± in [−1.5, 1.5], others in [0.5, 2])."""

    def __init__(self, m, npoints=3, seed=1234, unit_diagonal=False):
        rng = random.Random(seed)
        self.m = m
        self.points = []
        for _ in range(npoints):
            A = np.array([[rng.gauss(0, 1) for _ in range(m)] for _ in range(m)])
            P = A @ A.T / m + np.eye(m) * (0.5 + rng.random())
            if unit_diagonal:  # correlation matrices (the state of a normalised block)
                d = 1 / np.sqrt(np.diag(P))
                P = d[:, None] * P * d[None, :]
            self.points.append(P)
        self.rng = rng
        self._params = {}

    def _param(self, s):
        if s.name not in self._params:
            lo, hi = (0.15, 0.95) if s.name.startswith(("gamma", "lam")) else (0.5, 2.0)
            if s.name.startswith("c_"):
                lo, hi = -1.5, 1.5
            self._params[s.name] = self.rng.uniform(lo, hi)
        return self._params[s.name]

    def on_correlations(self):
        """The same kind of probe, with the same parameter values, at random correlation matrices."""
        other = type(self)(self.m, unit_diagonal=True)
        other._params = self._params
        return other

    def values(self, exprs):
        syms = set()
        for e in exprs:
            syms |= sp.sympify(e).free_symbols
        return {s: self._param(s) for s in syms - _PLACEHOLDERS if not s.name.startswith("V_")}

    def is_zero(self, expr, tol=1e-9):
        expr = sp.sympify(expr)
        if expr == 0:
            return True
        sub = self.values([expr])
        sub[M_SYM] = self.m
        for k, Vn in enumerate(self.points):
            pt = dict(sub)
            pt.update(_v_values(expr, Vn))
            if abs(complex(sp.N(expr.xreplace(pt)))) > tol:
                return False
        return True


def _v_values(expr, Vn):
    out = {}
    for s in sp.sympify(expr).free_symbols:
        if s.name.startswith("V_"):
            _, a, b = s.name.split("_")
            out[s] = float(Vn[int(a), int(b)])
    return out


class MatrixProbe(Probe):
    def matrix_is_zero(self, M, tol=1e-9):
        if M.is_zero():
            return True
        vals = self.values(M.coefficients())
        for Vn in self.points:
            ev = Numeric(Vn, coef_reader(self.m, vals))
            total, scale = 0, 0.0
            for k, c in M.terms.items():
                x = ev.value(MatExpr({k: c}))
                total = total + x
                scale += float(np.abs(x).max())
            err = float(np.abs(total).max())
            if not np.isfinite(err) or err > tol * max(1.0, scale):
                return False
        return True


class EntryProbe(Probe):
    def matrix_is_zero(self, M, tol=1e-9):
        return all(self.is_zero(x, tol) for x in M)


class MatrixAlgebra:
    """m×m matrices as :class:`MatExpr`, m the symbol ``m`` (zero tests at m = ``m_probe``)."""

    symbolic = True

    def __init__(self, m_probe):
        self.m = M_SYM
        self.V = MatExpr.V()
        self.probe = MatrixProbe(m_probe)

    def zero(self):
        return MatExpr()

    def eye(self):
        return MatExpr.eye()

    def uniform(self):
        return MatExpr.J()

    def centring(self):
        return MatExpr.eye() - MatExpr.J()

    def imm(self, M):
        return M

    def is_zero(self, M):
        return M.is_zero()

    def scalar_part(self, M):
        c = M.scalar_part()
        return (M, 1) if c is None else (None, c)

    def trace(self, M):
        return M.trace()

    def transpose(self, M):
        return M.T

    def diag_outer(self, L, R):
        return M_SYM * (L.dg() * MatExpr.J() * R.dg())

    def hadamard(self, A, B):
        return A.hadamard(B)

    def emap(self, K0, off, dia):
        return MatExpr.emap(K0, off, dia)

    def masked_uniform(self, mask):
        """U_M (row a: uniform over a's allowed tokens); without a mask 11ᵀ/m."""
        if mask is None:
            return MatExpr.J()
        raise NeedsEntries(f"a token mask ({mask!r}) has rows that differ: it is derived per entry")

    def hadamard_split(self, D, A, B):
        """D ∘ (A Ẑ B) as Σ c·A' Ẑ B' (a list of (c, A', B')): for D = c·11ᵀ/m only (J ∘ X = X/m)."""
        c = D.coef_of((J_ATOM,))
        if not D.is_zero() and (D - c * MatExpr.J()).is_zero():
            return [(c / M_SYM, A, B)]
        raise NeedsEntries("the Hadamard product of a token matrix with a fluctuation is derived per entry")

    def map_coefs(self, M, f):
        return M.map_coefs(f)

    def kappa(self, K):
        """κ with K = κ V, or None."""
        c = K.coef_of((V_ATOM,))
        if not self.probe.matrix_is_zero(K - c * self.V):
            return None
        return sp.simplify(c)

    def sample(self, M):
        return M


class EntryAlgebra:
    """m×m SymPy matrices of a fixed m (entries V_a_b, or the numbers of a given V: the expansion then
    runs in numbers, an independent numeric check at any m).  ``unit_diagonal``: V is a correlation
    matrix (V_a_a = 1; zero tests at random correlation matrices)."""

    symbolic = False

    def __init__(self, m, V=None, unit_diagonal=False):
        self.m = m
        if V is None:
            V = V_matrix(m)
            if unit_diagonal:
                V = sp.ImmutableMatrix(m, m, lambda a, b: 1 if a == b else V[a, b])
        self.V = sp.ImmutableMatrix(V)
        self.probe = EntryProbe(m, unit_diagonal=unit_diagonal)

    def zero(self):
        return sp.ImmutableMatrix(sp.zeros(self.m, self.m))

    def eye(self):
        return sp.ImmutableMatrix(sp.eye(self.m))

    def uniform(self):
        return sp.ImmutableMatrix(sp.ones(self.m, self.m) / self.m)

    def centring(self):
        return sp.ImmutableMatrix(sp.eye(self.m) - sp.ones(self.m, self.m) / self.m)

    def imm(self, M):
        return sp.ImmutableMatrix(M)

    def is_zero(self, M):
        """Structural zero (entries that SymPy already reduced to 0): deciding semantic zeros of large
        entries is slow, and the regime's zero tests are numerical (the probe)."""
        return all(x == 0 for x in M)

    def scalar_part(self, M):
        m, d = self.m, M[0, 0]
        for i in range(m):
            for j in range(m):
                x = M[i, j]
                if (i == j and x != d) or (i != j and x != 0):
                    return M, 1
        return None, d

    def trace(self, M):
        return M.trace()

    def transpose(self, M):
        return sp.ImmutableMatrix(M.T)

    def diag_outer(self, L, R):
        return sp.ImmutableMatrix(self.m, self.m, lambda a, b: L[a, a] * R[b, b])

    def hadamard(self, A, B):
        return sp.ImmutableMatrix(A.multiply_elementwise(B))

    def masked_uniform(self, mask):
        """U_M = D_r^{-1} M (see :mod:`.masks`); without a mask 11ᵀ/m."""
        if mask is None:
            return self.uniform()
        rows = mask.uniform_rows(self.m)
        return sp.ImmutableMatrix(self.m, self.m, lambda a, b: sp.Rational(*rows[a][b]))

    def hadamard_split(self, D, A, B):
        """D ∘ (A Ẑ B) = Σ_a (E_aa A) Ẑ (B diag(D_a·)), E_aa = e_a e_aᵀ: a list of (1, A', B')."""
        m, out = self.m, []
        for a in range(m):
            row = [D[a, b] for b in range(m)]
            if all(x == 0 for x in row):
                continue
            E = sp.ImmutableMatrix(m, m, lambda i, j: 1 if i == j == a else 0)
            Dg = sp.ImmutableMatrix(sp.diag(*row))
            out.append((1, E if A is None else sp.ImmutableMatrix(E * A), Dg if B is None else sp.ImmutableMatrix(B * Dg)))
        return out

    def emap(self, K0, off, dia):
        off, dia = sp.sympify(off), sp.sympify(dia)
        return sp.ImmutableMatrix(self.m, self.m, lambda i, j: (
            dia.xreplace({kxx: K0[i, i]}) if i == j else off.xreplace({kxx: K0[i, i], kxy: K0[i, j], kyy: K0[j, j]})))

    def map_coefs(self, M, f):
        return sp.ImmutableMatrix(M.applyfunc(f))

    def kappa(self, K):
        kappa = sp.simplify(K[0, 0] / self.V[0, 0])
        if not self.probe.matrix_is_zero(K - kappa * self.V):
            return None
        return kappa

    def sample(self, M):
        return sp.simplify(M[0, 0]) if self.m < 4 else M[0, 0]
