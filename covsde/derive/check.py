"""Comparing a derivation with a user-supplied formula, numerically at random PSD V and symbolically."""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import sympy as sp

from ..common.expr import to_expr
from .errors import CovsdeInputError
from .points import random_psd, upper_pairs
from .symbols import param_symbols, v_symbols


@dataclass
class CheckReport:
    ok: bool
    max_rel_error: dict
    symbolic: bool | None
    npoints: int

    def __bool__(self):
        return self.ok


def user_expr(x, m):
    """A user formula entry: SymPy or a number; text is parsed safely (names: V_a_b and parameters)."""
    if isinstance(x, str):
        names = {str(s): s for s in v_symbols(m)}
        names.update(param_symbols())
        return to_expr(x, "formula", names)
    return sp.sympify(x, strict=True) if not isinstance(x, sp.Basic) else x


def _drift_matrix(d, drift):
    if drift is None:
        return None
    D = sp.Matrix(drift(d.V) if callable(drift) else drift).applyfunc(lambda x: user_expr(x, d.m))
    if D.shape != (d.m, d.m):
        raise CovsdeInputError(f"drift must be {d.m}×{d.m}, got {D.shape}")
    return D


def _numeric_errors(d, D, diffusion, npoints, seed, params):
    """Largest relative errors of drift and diffusion over random PSD V and parameter values."""
    rng = random.Random(seed)
    errs = {"drift": 0.0, "diffusion": 0.0}
    syms = set(d.parameters) | ((D.free_symbols - set(d.symbols)) if D is not None else set())
    for _ in range(npoints):
        Vn = random_psd(d.m, rng)
        sub = {s: Vn[i, j] for s, (i, j) in zip(d.symbols, upper_pairs(d.m))}
        for s in syms:
            sub[s] = (params or {}).get(s.name, rng.uniform(0.2, 0.9))
        if D is not None:
            diff = np.array((d.drift - D).xreplace(sub).evalf(), dtype=complex)
            ref = max(1.0, float(np.abs(np.array(D.xreplace(sub).evalf(), dtype=complex)).max()))
            errs["drift"] = max(errs["drift"], float(np.abs(diff).max()) / ref)
        if diffusion is not None:
            for (a, b, c, e), ex in d.diffusion.items():
                other = user_expr(diffusion(d.V, a, b, c, e), d.m)
                val = complex((ex - other).xreplace(sub).evalf())
                ref = max(1.0, abs(complex(other.xreplace(sub).evalf())))
                errs["diffusion"] = max(errs["diffusion"], abs(val) / ref)
    return errs


def check(d, drift=None, diffusion=None, *, npoints=5, seed=0, tol=1e-9, symbolic=None, params=None):
    """Compare a derivation with a user-supplied formula.

    ``drift``: an m×m SymPy matrix in the V symbols, or a callable V ↦ matrix;
    ``diffusion``: a callable (V, a, b, c, d) ↦ expression.  Compared numerically at ``npoints``
    random PSD V (and random positive parameter values), and symbolically (simplify of the
    difference) when ``symbolic`` (default: m ≤ 2).  Returns a :class:`CheckReport`."""
    symbolic = (d.m <= 2) if symbolic is None else symbolic
    D = _drift_matrix(d, drift)
    errs = _numeric_errors(d, D, diffusion, npoints, seed, params)
    sym_ok = None
    if symbolic:
        sym_ok = True
        if D is not None:
            sym_ok &= all(sp.simplify(x) == 0 for x in (d.drift - D))
        if diffusion is not None:
            sym_ok &= all(sp.simplify(ex - user_expr(diffusion(d.V, a, b, c, e), d.m)) == 0
                          for (a, b, c, e), ex in d.diffusion.items())
    ok = errs["drift"] < tol and errs["diffusion"] < tol and sym_ok is not False
    return CheckReport(ok, errs, sym_ok, npoints)
