"""Gaussian expectations used by the derive engine.

For (x, y) ~ N(0, [[kxx, kxy], [kxy, kyy]]) and ρ = kxy / √(kxx kyy):

* Isserlis (Wick):  E[x^i y^j] = Σ_r C(i,r) C(j,r) r! (i−r−1)!! (j−r−1)!! kxy^r kxx^{(i−r)/2} kyy^{(j−r)/2}
  (sum over the number r of x–y pairings, i−r and j−r even).
* Arc-cosine kernel:  E[relu(x) relu(y)] = √(kxx kyy) (√(1−ρ²) + ρ(π − arccos ρ)) / (2π)
  and, with y → −y and arccos(−ρ) = π − arccos ρ,
  E[relu(x) relu(−y)] = √(kxx kyy) (√(1−ρ²) − ρ arccos ρ) / (2π).
"""
from __future__ import annotations

import sympy as sp

kxx, kyy = sp.symbols("k_xx k_yy", positive=True)
kxy = sp.Symbol("k_xy", real=True)
RHO = kxy / sp.sqrt(kxx * kyy)


def _dfact(k: int) -> int:
    """Double factorial (k−1)!! convention: _dfact(k) = (k−1)!! for even k ≥ 0 (number of
    perfect matchings of k items)."""
    out = 1
    for j in range(k - 1, 0, -2):
        out *= j
    return out


def isserlis_xy(i: int, j: int, xx=kxx, xy=kxy, yy=kyy):
    """E[x^i y^j] for a centred bivariate Gaussian."""
    total = sp.Integer(0)
    for r in range(0, min(i, j) + 1):
        if (i - r) % 2 or (j - r) % 2:
            continue
        count = sp.binomial(i, r) * sp.binomial(j, r) * sp.factorial(r) * _dfact(i - r) * _dfact(j - r)
        total += count * xy**r * xx ** ((i - r) // 2) * yy ** ((j - r) // 2)
    return total


def relu_relu(sign_x: int, sign_y: int, diagonal: bool = False):
    """E[relu(sx·x) relu(sy·y)] for signs sx, sy ∈ {+1, −1} (arc-cosine kernel).

    On the diagonal (x = y) this is kxx/2 for equal signs and 0 otherwise."""
    if diagonal:
        return kxx / 2 if sign_x == sign_y else sp.Integer(0)
    scale = sp.sqrt(kxx * kyy)
    root = sp.sqrt(1 - RHO**2)
    if sign_x == sign_y:
        return scale * (root + RHO * (sp.pi - sp.acos(RHO))) / (2 * sp.pi)
    return scale * (root - RHO * sp.acos(RHO)) / (2 * sp.pi)


def relu_poly(sign: int, power: int, diagonal: bool = False):
    """E[relu(s·x) · y^power] for power ∈ {0, 1} (what a ReLU mixed with a linear term needs)."""
    if power == 0:
        return sp.sqrt(kxx) / sp.sqrt(2 * sp.pi)
    if power == 1:
        return sign * (kxx if diagonal else kxy) / 2
    raise NotImplementedError(f"E[relu(x) y^{power}] is not implemented")
