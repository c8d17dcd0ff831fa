"""Input checks shared by the Python API and the CLI; each raises CovsdeInputError naming the value."""
from __future__ import annotations

import math
from numbers import Integral, Real

from .errors import CovsdeInputError


def integer(name: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    """An int (a Python/NumPy integer, an integral float, or a decimal string) within the bounds."""
    v = value
    if isinstance(v, str):
        t = v.strip()
        try:
            v = int(t) if t.lstrip("+-").isdigit() and len(t) <= 30 else float(t)
        except ValueError:
            raise CovsdeInputError(f"{name} must be an integer, got {value!r}") from None
    if isinstance(v, bool) or not isinstance(v, Real):
        raise CovsdeInputError(f"{name} must be an integer, got {value!r}")
    if not isinstance(v, Integral):
        if not math.isfinite(float(v)) or float(v) != int(float(v)):
            raise CovsdeInputError(f"{name} must be an integer, got {value!r}")
        v = int(float(v))
    v = int(v)
    if minimum is not None and v < minimum:
        raise CovsdeInputError(f"{name} must be ≥ {minimum}, got {name}={value!r}")
    if maximum is not None and v > maximum:
        raise CovsdeInputError(f"{name} must be ≤ {maximum}, got {name}={value!r}")
    return v


def real(name: str, value, *, positive: bool = False, nonnegative: bool = False, maximum: float | None = None,
         ) -> float:
    """A finite float (a number or a numeric string), optionally > 0 or ≥ 0 or ≤ maximum."""
    v = value
    if isinstance(v, str):
        try:
            v = float(v.strip())
        except ValueError:
            raise CovsdeInputError(f"{name} must be a number, got {value!r}") from None
    if isinstance(v, bool) or not isinstance(v, Real):
        raise CovsdeInputError(f"{name} must be a number, got {value!r}")
    v = float(v)
    if not math.isfinite(v):
        raise CovsdeInputError(f"{name} must be a finite number, got {name}={value!r}")
    if positive and v <= 0:
        raise CovsdeInputError(f"{name} must be > 0, got {name}={value!r}")
    if nonnegative and v < 0:
        raise CovsdeInputError(f"{name} must be ≥ 0, got {name}={value!r}")
    if maximum is not None and v > maximum:
        raise CovsdeInputError(f"{name} must be ≤ {maximum:g}, got {name}={value!r}")
    return v


def choice(name: str, value, options) -> str:
    """One of ``options`` (strings)."""
    if not isinstance(value, str) or value not in options:
        raise CovsdeInputError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}")
    return value


def seed(value, name: str = "seed") -> int:
    """A seed: an integer in [0, 2**63)."""
    return integer(name, value, 0, 2**63 - 1)
