"""The phase diagram: the regime of a variant over a grid of two scaling exponents.

``phase_diagram("resnet", ("q", 0, 1), ("p", 0, 1), steps=9)`` derives the variant at every point of
the grid (exact rationals lo + k(hi − lo)/(steps − 1)) and returns a table: per point the two
exponents, the regime (sde | ode | identity | no-limit), the time scale and the reason.  Exponents that
can span a grid: ``p`` (activation shaping), ``q`` (residual branches γ0·n^(−q)), ``e`` (attention
temperature n^e) and ``kappa`` (depth n^κ, in (0, 4]), and with ``given["preset"]`` the preset's exponents
(bordelon: ``alphaL``, ``alphaA``); other parameters are fixed by ``given``.
"""
from __future__ import annotations

import time

import sympy as sp

from ..common import checks
from .errors import CovsdeInputError, NotSupported
from .variants import USES, VARIANTS, build

EXPONENTS = ("p", "q", "e", "kappa")
SHAPED_TRANSFORMER = {"p": sp.Rational(1, 2), "q": 0, "e": sp.Rational(1, 2), "kappa": 1}
MAX_STEPS = 65


def _axis(axis, variant, given):
    """(name, lo, hi) checked: an exponent the variant uses, rationals lo < hi, not also fixed."""
    if not (isinstance(axis, (tuple, list)) and len(axis) == 3):
        raise CovsdeInputError(f"an axis is (NAME, LO, HI), got {axis!r}")
    name, lo, hi = axis
    preset = ()
    if "preset" in given:
        from .presets import PRESETS

        preset = tuple(n for n in PRESETS.get(str(given["preset"]).strip(), (None, ()))[1] if n.startswith("alpha"))
    if name not in EXPONENTS + preset:
        raise CovsdeInputError(f"{name!r} is not an exponent (axes: {', '.join(EXPONENTS + preset)})")
    if name not in USES[variant] and name not in preset:
        raise CovsdeInputError(f"exponent {name!r} does not apply to variant {variant!r}")
    if name in given:
        raise CovsdeInputError(f"{name} is an axis and also given with --set")
    from .symbols import value

    lo, hi = (value(name, v, number=True) for v in (lo, hi))
    if not lo < hi:
        raise CovsdeInputError(f"axis {name}: LO = {lo} must be below HI = {hi}")
    from .engine import KAPPA_MAX

    if lo < 0 or (name == "kappa" and (lo <= 0 or hi > KAPPA_MAX)):
        raise CovsdeInputError(f"axis {name} = {lo}:{hi} leaves the exponent's range "
                               f"({f'(0, {KAPPA_MAX}]' if name == 'kappa' else '≥ 0'})")
    return name, sp.Rational(lo), sp.Rational(hi)


def _point(variant, given, m, values):
    """Regime, time scale and reason at one grid point."""
    params = {**given, **{k: str(v) for k, v in values.items()}}
    try:
        block, p = build(variant, params)
        from .engine import derive

        d = derive(block, m, kappa=p.get("kappa", 1))
        return {"regime": d.regime, "time": d.time, "reason": d.reason}
    except NotSupported as exc:
        return {"regime": "unsupported", "time": None, "reason": str(exc)}


def phase_diagram(variant, x, y, *, steps=9, given=None, m=2) -> dict:
    """The regime over the grid (see the module docstring): a dict with the axes, the points
    (x, y, regime, time, reason), the shaped-Transformer point when both axes are its exponents,
    and the seconds it took."""
    if variant not in VARIANTS:
        raise CovsdeInputError(f"unknown variant {variant!r} (known: {', '.join(VARIANTS)})")
    given = dict(given or {})
    steps = checks.integer("steps", steps, 2)
    if steps > MAX_STEPS:
        raise CovsdeInputError(f"steps = {steps}: at most {MAX_STEPS} points per axis")
    (xn, x0, x1), (yn, y0, y1) = _axis(x, variant, given), _axis(y, variant, given)
    if xn == yn:
        raise CovsdeInputError(f"the two axes are both {xn}")
    t0 = time.perf_counter()
    grid = [[a + (b - a) * sp.Rational(k, steps - 1) for k in range(steps)] for a, b in ((x0, x1), (y0, y1))]
    from .symbols import exponent

    for name, axis in ((xn, grid[0]), (yn, grid[1])):  # every point checked before the first is derived
        for v in axis:
            try:
                exponent(f"the grid point {name}", v, v)
            except CovsdeInputError as exc:
                raise CovsdeInputError(f"{exc} (fewer steps, or an axis whose (HI − LO)/(steps − 1) has a smaller "
                                       "denominator)") from None
    points = []
    for yv in grid[1]:
        for xv in grid[0]:
            points.append({xn: str(xv), yn: str(yv), **_point(variant, given, m, {xn: xv, yn: yv})})
    mark = None
    if all(n in SHAPED_TRANSFORMER for n in (xn, yn)):
        mark = {xn: str(SHAPED_TRANSFORMER[xn]), yn: str(SHAPED_TRANSFORMER[yn])}
    return {"variant": variant, "x": {"name": xn, "lo": str(x0), "hi": str(x1)},
            "y": {"name": yn, "lo": str(y0), "hi": str(y1)}, "steps": steps, "m": m,
            "fixed": {k: str(v) for k, v in given.items()}, "shaped_transformer": mark, "points": points,
            "seconds": time.perf_counter() - t0}
