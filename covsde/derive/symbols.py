"""Symbols shared by the derive layer: the entries V_a_b of V (0-based, a ≤ b) and parameters, and
the parsing of parameter values (numbers, SymPy expressions, or text read by the safe parser)."""
from __future__ import annotations

import functools

import sympy as sp

from ..common.errors import CovsdeInputError
from ..common.expr import to_expr

PARAM_ASSUMPTIONS = {
    "gamma": dict(positive=True), "gamma1": dict(positive=True), "gamma2": dict(positive=True),
    "lam": dict(nonnegative=True), "lam1": dict(nonnegative=True), "lam2": dict(nonnegative=True),
    "tau0": dict(positive=True), "a": dict(positive=True),
    "c_plus": dict(real=True), "c_minus": dict(real=True),
}
# names that a parameter value given as text may refer to (it then stays symbolic)
PARAM_NAMES = ("gamma", "gamma1", "gamma2", "lam", "lam1", "lam2", "tau0", "a", "c_plus", "c_minus")


WIDTH = sp.Symbol("n", positive=True)  # the width, in scale factors that depend on it (γ0·n^(−q))


def width_series(c, emax=2):
    """A scale factor c(n) as an ε-series {exponent: coefficient}, ε = n^(−1/2), up to ε^emax.
    Exponents of n may be any rationals: n = t^(−D) with D their common denominator makes the
    expansion a Taylor series in t (ε = t^(D/2))."""
    c = sp.sympify(c)
    if WIDTH not in c.free_symbols:
        return {sp.Integer(0): c}
    pows = [p.exp for p in c.atoms(sp.Pow) if p.base == WIDTH] + [sp.Integer(1)]
    D = sp.ilcm(*[sp.Rational(e).q for e in pows])
    t = sp.Dummy("t", positive=True)
    order = int(sp.floor(sp.Rational(emax) * D / 2)) + 1  # t^k = ε^(2k/D)
    ser = sp.series(c.subs(WIDTH, t ** (-D)), t, 0, order).removeO()
    out = {}
    for term in sp.Add.make_args(sp.expand(ser)):
        coef, k = term.as_coeff_exponent(t)
        e = sp.Rational(k) * 2 / D
        if e < 0:
            raise ValueError(f"the scale factor {c} grows with the width n")
        if e <= emax:
            out[e] = out.get(e, 0) + coef
    return {e: v for e, v in out.items() if v != 0}


def param(name: str) -> sp.Symbol:
    return sp.Symbol(name, **PARAM_ASSUMPTIONS.get(name, dict(real=True)))


@functools.lru_cache(maxsize=None)
def param_symbols() -> dict:
    return {n: param(n) for n in PARAM_NAMES}


def show(value) -> str:
    """A parameter value as the user wrote it (text), or as a short number."""
    if isinstance(value, str):
        return value.strip()
    v = sp.sympify(value) if isinstance(value, sp.Basic) else value
    if isinstance(v, sp.Rational) and not v.is_Integer:
        return f"{float(v):.17g}"
    return str(v)


MAX_EXPONENT_DENOMINATOR = 100  # the ε-series of n^(−p/q) runs over multiples of 1/q: its cost grows with q
MAX_EXPONENT_SIZE = 1000


def exponent(name: str, x, given) -> sp.Rational:
    """An exponent or count (``value(..., number=True)``): an exact rational of bounded size, refused
    up front otherwise (an irrational has no finite ε-series; 1e-300 or 1/100000 would need ~10^300 or
    10^5 terms of it)."""
    if not x.is_Rational:
        raise CovsdeInputError(f"{name}={show(given)} must be a rational number (e.g. 1/2, 0.25, 3/7): exponents are "
                               "exact, and an irrational one has no finite series in the width")
    if abs(x.q) > MAX_EXPONENT_DENOMINATOR or abs(x) > MAX_EXPONENT_SIZE:
        shown = str(x) if len(str(x)) <= 40 else f"a rational of {len(str(abs(x.p)))}/{len(str(x.q))} digits"
        raise CovsdeInputError(f"{name}={show(given)[:40]} is {shown}: exponents must be rationals with a denominator of at most "
                               f"{MAX_EXPONENT_DENOMINATOR} and at most {MAX_EXPONENT_SIZE} in size (e.g. 1/3, 0.25, "
                               f"37/100)")
    return x


def value(name: str, v, *, positive=False, nonneg=False, number=False) -> sp.Expr:
    """A block parameter: a number or a SymPy expression (text is parsed safely and may name the
    parameter symbols); numbers must be real and finite, and > 0 / ≥ 0 as asked; with ``number``, an
    exact rational of bounded size (:func:`exponent`)."""
    x = to_expr(v, name, param_symbols())
    if number and not x.is_number:
        raise CovsdeInputError(f"{name} must be a number, got {name}={show(v)}")
    if x.is_number:
        if x.is_real is False or x.has(sp.I):
            raise CovsdeInputError(f"{name}={show(v)} is not a real number")
        if positive and not x > 0:
            raise CovsdeInputError(f"{name} must be > 0, got {name}={show(v)}")
        if nonneg and not x >= 0:
            raise CovsdeInputError(f"{name} must be ≥ 0, got {name}={show(v)}")
    if number:
        exponent(name, x, v)
    return x


def v_symbol(a: int, b: int) -> sp.Symbol:
    a, b = min(a, b), max(a, b)
    if a == b:
        return sp.Symbol(f"V_{a}_{a}", positive=True)
    return sp.Symbol(f"V_{a}_{b}", real=True)


@functools.lru_cache(maxsize=None)
def V_matrix(m: int) -> sp.ImmutableMatrix:
    """The symmetric symbolic covariance V with entries V_a_b (a ≤ b)."""
    return sp.ImmutableMatrix(m, m, lambda a, b: v_symbol(a, b))


def v_symbols(m: int):
    """Independent entries (a ≤ b) in row-major order."""
    return [v_symbol(a, b) for a in range(m) for b in range(a, m)]


def centring(m: int) -> sp.ImmutableMatrix:
    """P = I − 11ᵀ/m."""
    return sp.ImmutableMatrix(sp.eye(m) - sp.ones(m, m) / m)
