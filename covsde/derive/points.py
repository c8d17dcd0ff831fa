"""Index pairs of symmetric matrices and random PSD test points."""
from __future__ import annotations

import random

import numpy as np


def upper_pairs(m):
    """(a, b) with a ≤ b, row-major: the independent entries of a symmetric m×m matrix."""
    return [(a, b) for a in range(m) for b in range(a, m)]


def random_psd(m, rng=None):
    """A random well-conditioned SPD matrix (numpy), used for numerical checks."""
    rng = rng or random.Random(0)
    A = np.array([[rng.gauss(0, 1) for _ in range(m)] for _ in range(m)])
    return A @ A.T / m + np.eye(m) * (0.3 + rng.random())
