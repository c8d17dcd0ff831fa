"""Matrix expressions (:mod:`.matexpr`) evaluated: in numbers at a numeric V (numpy), and as per-entry
SymPy matrices for a given m (the per-entry form of a matrix-level derivation).

Both walk the same structure with a memo per word, atom and trace, so shared sub-products are
computed once; they differ only in the matrix type and how a scalar coefficient is read."""
from __future__ import annotations

import numpy as np
import sympy as sp

from .gaussian import kxx, kxy, kyy
from .matexpr import M_SYM, MatExpr


class _Walk:
    """Shared evaluation of words, atoms, traces and sums."""

    def __init__(self):
        self._words, self._atoms, self._traces = {}, {}, {}

    def word(self, w):
        if w in self._words:
            return self._words[w]
        if not w:
            out = self.eye()
        elif len(w) == 1:
            out = self.atom(w[0])
        else:
            out = self.word(w[:-1]) @ self.atom(w[-1])
        self._words[w] = out
        return out

    def atom(self, a):
        if a not in self._atoms:
            tag = a[0]
            if tag == "V":
                out = self.Vm
            elif tag == "J":
                out = self.ones() / self.m
            elif tag == "D":
                out = self.diag(self.word(a[1]))
            elif tag == "H":
                out = self.had(self.word(a[1]), self.word(a[2]))
            else:
                out = self.emap(a[1], a[2], self.value(a[3]))
            self._atoms[a] = out
        return self._atoms[a]

    def trace(self, t):
        if t not in self._traces:
            self._traces[t] = self.tr(self.word(t))
        return self._traces[t]

    def value(self, M: MatExpr):
        out = self.zeros()
        for (trs, w), c in M.terms.items():
            s = self.coef(c)
            for t in trs:
                s = s * self.trace(t)
            out = out + s * self.word(w)
        return out

    def scalar(self, S):
        """A :class:`~.matexpr.Scalar` as a number."""
        tot = 0
        for trs, c in S.terms.items():
            s = self.coef(c)
            for t in trs:
                s = s * self.trace(t)
            tot = tot + s
        return tot


class Numeric(_Walk):
    """Values at a numeric V (m×m float array); ``coef`` maps a SymPy coefficient to a number."""

    def __init__(self, V, coef):
        super().__init__()
        self.Vm = np.asarray(V, dtype=float)
        self.m = self.Vm.shape[0]
        self.coef = coef

    def eye(self):
        return np.eye(self.m)

    def zeros(self):
        return np.zeros((self.m, self.m))

    def ones(self):
        return np.ones((self.m, self.m))

    def diag(self, X):
        return np.diag(np.diag(X))

    def had(self, X, Y):
        return X * Y

    def tr(self, X):
        t = np.trace(X)
        if np.iscomplexobj(t):  # kernel maps evaluate in complex arithmetic
            return float(t.real) if abs(t.imag) <= 1e-12 * (1 + abs(t.real)) else complex(t)
        return float(t)

    def emap(self, off, dia, X):
        d = np.diag(X)
        f = _lambdified(self.coef(off, keep=True), (kxx, kxy, kyy))
        g = _lambdified(self.coef(dia, keep=True), (kxx,))
        with np.errstate(all="ignore"):
            X = X.real
            d = d.real
            out = np.asarray(f(d[:, None] * np.ones_like(X), X, d[None, :] * np.ones_like(X)), dtype=complex)
            out = out * np.ones_like(X)
            np.fill_diagonal(out, np.asarray(g(d), dtype=complex) * np.ones(self.m))
        return out


_LAMBDAS = {}


def _lambdified(expr, args):
    key = (expr, args)
    if key not in _LAMBDAS:
        if len(_LAMBDAS) > 2000:
            _LAMBDAS.clear()
        _LAMBDAS[key] = sp.lambdify(args, expr, "numpy")
    return _LAMBDAS[key]


class Entries(_Walk):
    """The per-entry SymPy matrix for a given m (V the symbolic V_a_b matrix)."""

    def __init__(self, Vsym):
        super().__init__()
        self.Vm = sp.Matrix(Vsym)
        self.m = self.Vm.shape[0]
        self.sub = {M_SYM: self.m}

    def coef(self, c, keep=False):
        return sp.sympify(c).xreplace(self.sub)

    def eye(self):
        return sp.eye(self.m)

    def zeros(self):
        return sp.zeros(self.m, self.m)

    def ones(self):
        return sp.ones(self.m, self.m)

    def diag(self, X):
        return sp.diag(*[X[i, i] for i in range(self.m)])

    def had(self, X, Y):
        return X.multiply_elementwise(Y)

    def tr(self, X):
        return X.trace()

    def emap(self, off, dia, X):
        off, dia = self.coef(off), self.coef(dia)
        return sp.Matrix(self.m, self.m, lambda i, j: dia.xreplace({kxx: X[i, i]}) if i == j else
                         off.xreplace({kxx: X[i, i], kxy: X[i, j], kyy: X[j, j]}))


def coef_reader(m, values):
    """A coefficient reader for :class:`Numeric`: m and the parameters (SymPy symbol → float) substituted;
    with ``keep`` (kernel maps) the k_xx, k_xy, k_yy placeholders stay symbolic."""
    sub = dict(values)
    sub[M_SYM] = m
    cache = {}

    def coef(c, keep=False):
        key = (c, keep)
        if key not in cache:
            e = sp.sympify(c).xreplace(sub)
            cache[key] = e if keep else complex(sp.N(e))
        return cache[key]

    return coef
