"""Correlations, features and quantiles of samples of covariance matrices (NumPy only)."""
from __future__ import annotations

import numpy as np

LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)


def correlations(V):
    """ρ^{αβ} = V^{αβ}/√(V^{αα}V^{ββ}) for an array (…, m, m) of covariances."""
    V = np.asarray(V, dtype=float)
    d = np.sqrt(np.einsum("...ii->...i", V))
    return V / (d[..., :, None] * d[..., None, :])


def features(V, norms=True):
    """(names, array (N, k)): ρ^{αβ} (α < β) and (``norms``) log V^{αα} of a sample V of shape (N, m, m);
    without the norms for a correlation state, whose diagonal is fixed at 1."""
    V = np.asarray(V, dtype=float)
    m = V.shape[-1]
    R = correlations(V)
    names, cols = [], []
    for a in range(m):
        for b in range(a + 1, m):
            names.append(f"rho_{a}_{b}")
            cols.append(R[:, a, b])
    for a in range(m if norms else 0):
        names.append(f"logV_{a}_{a}")
        cols.append(np.log(V[:, a, a]))
    return names, np.stack(cols, axis=1)


def quantiles(x, levels=LEVELS):
    """The quantiles of a 1-D sample at ``levels`` (None for an empty sample)."""
    x = np.asarray(x)
    return np.quantile(x, levels).tolist() if len(x) else None


def mean_correlation(Vrec):
    """Mean off-diagonal correlation per recorded layer: Vrec (samples, L, m, m) → (L,)."""
    m = Vrec.shape[-1]
    if m == 1:
        return np.ones(Vrec.shape[1])
    iu = np.triu_indices(m, 1)
    return correlations(Vrec)[..., iu[0], iu[1]].mean(axis=(0, 2))


def rho01(V):
    """ρ^{01} of every matrix of a sample V (N, m, m)."""
    V = np.asarray(V, dtype=float)
    return V[:, 0, 1] / np.sqrt(V[:, 0, 0] * V[:, 1, 1])
