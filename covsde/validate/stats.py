"""Two-sample tests of terminal laws, with family-wise error control.

Features of a sample of covariances V ∈ R^{m×m}: ρ^{αβ} (α < β) and log V^{αα}.

* per feature: the two-sample Kolmogorov–Smirnov test (scipy.stats.ks_2samp);
* jointly: an energy-distance permutation test on the standardised feature vectors
  (E-statistic 2E|X−Y| − E|X−X'| − E|Y−Y'|, p-value from ``permutations`` label shuffles);
* the family (all KS tests + the energy test) is Holm-corrected: the verdict rejects when any
  Holm-adjusted p-value is below α.
"""
from __future__ import annotations

import numpy as np
from scipy import stats as sps

from ..common.stats import features


def holm(pvalues):
    """Holm–Bonferroni adjusted p-values (same order as given)."""
    p = np.asarray(pvalues, float)
    k = len(p)
    order = np.argsort(p)
    adj = np.empty(k)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (k - rank) * p[i]))
        adj[i] = running
    return adj


def energy_test(X, Y, permutations=199, seed=0, max_n=1500):
    """Energy-distance permutation test; X, Y are (n, k) arrays (subsampled to ≤ max_n each)."""
    rng = np.random.default_rng(seed)
    if len(X) > max_n:
        X = X[rng.choice(len(X), max_n, replace=False)]
    if len(Y) > max_n:
        Y = Y[rng.choice(len(Y), max_n, replace=False)]
    Zs = np.concatenate([X, Y])
    mu, sd = Zs.mean(0), Zs.std(0) + 1e-12
    Zs = (Zs - mu) / sd
    sq = (Zs**2).sum(1)
    D = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * Zs @ Zs.T, 0.0))
    nx, n = len(X), len(Zs)
    ny = n - nx
    total = D.sum()
    rowsum = D.sum(1)

    def stat(w):  # w: 0/1 indicator of the X group; all sums from one matrix–vector product
        Dw = D @ w
        s_aa = w @ Dw
        s_ab = rowsum @ w - s_aa
        s_bb = total - 2 * s_ab - s_aa
        return 2 * s_ab / (nx * ny) - s_aa / nx**2 - s_bb / ny**2

    w0 = np.zeros(n)
    w0[:nx] = 1.0
    e0 = stat(w0)
    count = 1
    for _ in range(permutations):
        if stat(w0[rng.permutation(n)]) >= e0 - 1e-12:
            count += 1
    return float(e0), count / (permutations + 1)


def law_test(V_net, V_sde, alpha=0.01, seed=0, permutations=199, norms=True):
    """Compare two samples of covariances (``norms=False``: correlation matrices, the ρ features only);
    returns a dict with every statistic and the verdict."""
    names, A = features(V_net, norms)
    _, B = features(V_sde, norms)
    ks = {}
    for j, nm in enumerate(names):
        r = sps.ks_2samp(A[:, j], B[:, j])
        ks[nm] = {"statistic": float(r.statistic), "pvalue": float(r.pvalue)}
    e_stat, e_p = energy_test(A, B, permutations=permutations, seed=seed)
    pvals = [ks[nm]["pvalue"] for nm in names] + [e_p]
    adj = holm(pvals)
    for nm, a in zip(names, adj[:-1]):
        ks[nm]["holm"] = float(a)
    reject = bool((adj < alpha).any())
    return {"ks": ks, "energy": {"statistic": e_stat, "pvalue": e_p, "holm": float(adj[-1]),
                                 "permutations": permutations},
            "min_holm_p": float(adj.min()), "alpha": alpha, "reject": reject,
            "n_net": int(len(A)), "n_sde": int(len(B)),
            "discrepancy": float(max(v["statistic"] for v in ks.values()))}


def ks_statistic(a, b):
    """Two-sample Kolmogorov–Smirnov statistic sup |F_a − F_b| (sorting, O(N log N))."""
    a, b = np.sort(a), np.sort(b)
    x = np.concatenate([a, b])
    return float(np.abs(np.searchsorted(a, x, side="right") / len(a)
                        - np.searchsorted(b, x, side="right") / len(b)).max())


def max_ks(A, B):
    """The discrepancy: the largest KS statistic over the feature columns of A and B."""
    return max(ks_statistic(A[:, j], B[:, j]) for j in range(A.shape[1]))


def discrepancy_interval(A, B, reps=100, seed=0, z=1.645):
    """90 % error bar of the discrepancy d = max_ks(A, B): d ± z·s, s the standard deviation of d over
    bootstrap resamples of both samples (clipped at 0).  The bootstrap's percentiles are not used: near
    the null they are biased upwards (resampling adds noise to a statistic bounded below by 0)."""
    rng = np.random.default_rng(seed)
    stats = [max_ks(A[rng.integers(0, len(A), len(A))], B[rng.integers(0, len(B), len(B))]) for _ in range(reps)]
    d, s = max_ks(A, B), float(np.std(stats, ddof=1))
    return [max(0.0, d - z * s), d + z * s]


def noise_floor(B, n_a, reps=100, seed=0):
    """The discrepancy expected when the networks follow the SDE exactly, for these sample sizes:
    (mean, 95 % quantile) of max_ks between n_a and len(B) draws, both taken from the SDE sample B."""
    rng = np.random.default_rng(seed)
    stats = [max_ks(B[rng.integers(0, len(B), n_a)], B[rng.integers(0, len(B), len(B))]) for _ in range(reps)]
    return float(np.mean(stats)), float(np.quantile(stats, 0.95))
