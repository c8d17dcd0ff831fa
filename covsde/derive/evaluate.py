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


def numeric_fn(d):
    """A fast numeric view: f(V, params) → (b, groups) with numpy arrays, where
    groups = [[(coef, A, T, B), ...], ...] (A, B = None for the identity)."""
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
