"""Numbers from a derivation: b(V) and Σ(V) at a numeric V (exact SymPy evaluation), and a fast
lambdified view of the drift and the structured noise."""
from __future__ import annotations

import numpy as np
import sympy as sp

from .points import upper_pairs


def numeric(d, V, params=None):
    """(b, Σ) as numpy arrays at a numeric V (Σ as an (m, m, m, m) array); parameter values are
    checked by :meth:`Derivation.parameter_values`."""
    V = np.asarray(V, dtype=float)
    if d.matrix is not None:
        b, groups = d.numeric_fn()(V, params)
        return b, sigma_from_groups(groups, V)
    sub = {s: V[i, j] for s, (i, j) in zip(d.symbols, upper_pairs(d.m))}
    vals = d.parameter_values(params)
    for s in d.parameters:
        sub[s] = vals[s.name]
    b = np.array(d.drift.xreplace(sub).evalf(), dtype=float)
    m = d.m
    Sig = np.zeros((m, m, m, m))
    for (a, bb, c, e), ex in d.diffusion.items():
        val = float(sp.sympify(ex).xreplace(sub).evalf())
        for i, j in {(a, bb), (bb, a)}:
            for k, l in {(c, e), (e, c)}:
                Sig[i, j, k, l] = val
    return b, Sig


def sigma_from_groups(groups, V):
    r"""Σ^{αβ,γδ} = Cov(N_αβ, N_γδ) of the numeric structured noise (see
    :func:`~.result.diffusion_from_noise`), an (m, m, m, m) array."""
    m = V.shape[0]
    eye = np.eye(m)
    Sig = np.zeros((m, m, m, m))
    for g in groups:
        for c1, A, T1, B in g:
            for c2, C, T2, D in g:
                A_, B_, C_, D_ = (eye if X is None else X for X in (A, B, C, D))
                if T1 == T2:
                    Sig += c1 * c2 * np.einsum("ac,bd->abcd", A_ @ V @ C_.T, B_.T @ V @ D_)
                else:
                    Sig += c1 * c2 * np.einsum("ad,cb->abcd", A_ @ V @ D_, C_ @ V @ B_)
    return Sig


def _matrix_fn(d):
    from .matexpr import M_SYM
    from .matnum import Numeric, coef_reader

    form = d.matrix

    def fn(V, values=None):
        V = np.asarray(V, dtype=float)
        checked = d.parameter_values(values)
        vals = {s: checked[s.name] for s in d.parameters}
        ev = Numeric(V, coef_reader(V.shape[0], vals))

        def mat(X):
            return None if X is None else np.asarray(ev.value(X).real, dtype=float)

        groups = [[(float(complex(sp.N(sp.sympify(t.coef).xreplace({**vals, M_SYM: V.shape[0]}))).real),
                    mat(t.A), t.T, mat(t.B)) for t in g.terms] for g in form.noise]
        return mat(form.drift), groups

    return fn


def numeric_fn(d):
    """A fast numeric view: f(V, params) → (b, groups) with numpy arrays, where
    groups = [[(coef, A, T, B), ...], ...] (A, B = None for the identity)."""
    if d.matrix is not None:
        return _matrix_fn(d)
    params = d.parameters
    exprs, layout = [sp.Matrix(d.drift)], []
    for g in d.noise:
        gl = []
        for t in g.terms:
            gl.append((len(exprs), t.A is not None, t.T, t.B is not None))
            exprs.append(sp.Matrix([[t.coef]]))
            exprs.append(sp.Matrix(t.A) if t.A is not None else sp.zeros(1, 1))
            exprs.append(sp.Matrix(t.B) if t.B is not None else sp.zeros(1, 1))
        layout.append(gl)
    f = sp.lambdify(list(d.symbols) + params, exprs, "numpy", cse=True)
    pairs = upper_pairs(d.m)

    def fn(V, values=None):
        V = np.asarray(V, dtype=float)
        checked = d.parameter_values(values)
        out = f(*([V[i, j] for i, j in pairs] + [checked[s.name] for s in params]))
        b = np.array(out[0], dtype=float)
        groups = [[(float(np.asarray(out[k]).reshape(-1)[0]), np.array(out[k + 1], dtype=float) if hasA else None, T,
                    np.array(out[k + 2], dtype=float) if hasB else None) for k, hasA, T, hasB in gl]
                  for gl in layout]
        return b, groups

    return fn
