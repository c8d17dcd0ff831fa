"""Numbers for a derivation's symbolic parameters, checked against the derivation's domain.

A value is accepted when it is a finite real number that satisfies the assumption the derivation
was made under (γ, τ0, a > 0; λ ≥ 0), and every coefficient stays real with it: each square root,
logarithm or inverse trigonometric function of the parameters alone (e.g. λ = √(1 − γ²)) is
evaluated and must lie in its domain.  (With real coefficients Σ = Σ_g J_g J_gᵀ is positive
semidefinite by construction, J_g the Jacobian of the structured noise in Z_g.)
"""
from __future__ import annotations

import sympy as sp

from ..common.errors import CovsdeInputError
from ..common.expr import to_float


def _show(values):
    return ", ".join(f"{k} = {v:g}" for k, v in sorted(values.items()))


def domain_atoms(exprs, params):
    """Sub-expressions of the parameters alone whose real domain is restricted."""
    params = set(params)
    out = set()
    for ex in exprs:
        ex = sp.sympify(ex)
        for a in ex.atoms(sp.Pow, sp.log, sp.acos, sp.asin, sp.atanh):
            fs = a.free_symbols
            if fs and fs <= params:
                if isinstance(a, sp.Pow) and a.exp.is_integer:
                    continue
                out.add(a)
    return sorted(out, key=sp.default_sort_key)


def _violation(atom, sub):
    if isinstance(atom, sp.Pow):
        x = complex(sp.N(atom.base.xreplace(sub), 20))
        if x.real < 0 and abs(x.imag) < 1e-300:
            return f"{atom.base} = {x.real:.6g} < 0 under a non-integer power"
        return None
    x = complex(sp.N(atom.args[0].xreplace(sub), 20))
    if isinstance(atom, sp.log) and x.real <= 0:
        return f"the logarithm's argument {atom.args[0]} = {x.real:.6g} ≤ 0"
    if isinstance(atom, (sp.acos, sp.asin)) and abs(x.real) > 1:
        return f"the argument of {atom.func.__name__}, {atom.args[0]} = {x.real:.6g}, is outside [−1, 1]"
    if isinstance(atom, sp.atanh) and abs(x.real) >= 1:
        return f"the argument of atanh, {atom.args[0]} = {x.real:.6g}, is outside (−1, 1)"
    return None


def parameter_values(parameters, atoms, values) -> dict:
    """{name: float} for every symbolic parameter, checked (see the module docstring)."""
    out = {}
    for s in parameters:
        if not values or s.name not in values:
            raise CovsdeInputError(f"parameter {s.name} is symbolic: give it a value (--set {s.name}=...)")
        v = to_float(values[s.name], s.name)
        if s.is_positive and not v > 0:
            raise CovsdeInputError(f"{s.name} = {v:g} must be > 0 (the derivation assumes {s.name} > 0)")
        if s.is_nonnegative and not v >= 0:
            raise CovsdeInputError(f"{s.name} = {v:g} must be ≥ 0 (the derivation assumes {s.name} ≥ 0)")
        out[s.name] = v
    sub = {s: out[s.name] for s in parameters}
    for atom in atoms:
        why = _violation(atom, sub)
        if why:
            names = sorted(x.name for x in atom.free_symbols)
            hint = ""
            if any(n.startswith("gamma") for n in names) and isinstance(atom, sp.Pow):
                hint = "; λ = √(1 − γ²) by default: give lam explicitly or choose gamma ≤ 1"
            raise CovsdeInputError(f"{_show({n: out[n] for n in names})} make{'s' if len(names) == 1 else ''} "
                                   f"the coefficients complex: {why}{hint}")
    return out
