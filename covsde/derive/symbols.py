"""Symbols shared by the derive layer: the entries V_a_b of V (0-based, a ≤ b) and parameters."""
from __future__ import annotations

import functools

import sympy as sp

PARAM_ASSUMPTIONS = {
    "gamma": dict(positive=True), "gamma1": dict(positive=True), "gamma2": dict(positive=True),
    "lam": dict(nonnegative=True), "lam1": dict(nonnegative=True), "lam2": dict(nonnegative=True),
    "tau0": dict(positive=True), "a": dict(positive=True),
    "c_plus": dict(real=True), "c_minus": dict(real=True),
}


def param(name: str) -> sp.Symbol:
    return sp.Symbol(name, **PARAM_ASSUMPTIONS.get(name, dict(real=True)))


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
