"""One-step moments: n·E[ΔV | V] and n·Cov[ΔV | V] from many one-layer draws, vs b(V), Σ(V).

Estimator.  B inputs X with X Xᵀ/n = V exactly, in antithetic pairs (X, −X) so that odd
functionals of the input (which matter when an activation acts on the stream itself) cancel, are
pushed through one layer (exact-in-law backend by default).  The mean uses regression control
variates: the recorded first-order Gram fluctuations c (mean exactly 0) absorb the O(n^{-1/2})
noise, and their products across independent draws (mean 0 too: the later factor has conditional
mean 0 given the earlier draws) absorb the O(1) second-order noise of blocks made of several random
maps, so

    n·Ê[ΔV] = n·mean(ΔV − β̂ᵀ c),   β̂ = least squares of ΔV on c,

cross-fitted (β̂ from one half of the draws, applied to the other half and vice versa), so it is
unbiased for any number of control variates, with standard error n·sd(out-of-fold residual)/√B;
the O(1/n) drift is then visible at B ~ 10⁴.  The
covariance is the plain sample covariance of n^{1/2}ΔV, with the standard error of a sample
covariance, √((E[x²y²] − Cov²)/B).

Agreement test (``compare_moments``).  Each entry gets z = (estimate − derived)/SE; finite width biases the moments by
O(n^{-1/2}) relative to the size of the whole matrix, so an entry agrees when
|est − ref| ≤ z_crit·SE + bias·max(|ref|, max|ref_all|/4)/√n (for the drift the scale is at
least 0.01·√max|Σ|, so that b ≡ 0 is not tested against zero).  z_crit is
Bonferroni-corrected over all entries (family-wise false-alarm rate α).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy import stats as st

from .backends import TorchOps, whitened_input


@dataclass
class OneStepResult:
    n: int
    samples: int
    seed: int
    drift_est: list
    drift_se: list
    drift_ref: list
    cov_est: dict
    cov_se: dict
    cov_ref: dict
    z_crit: float
    alpha: float
    bias_allowance: float
    drift_ok: bool
    diffusion_ok: bool
    worst: str

    @property
    def ok(self):
        return self.drift_ok and self.diffusion_ok

    def to_dict(self):
        d = asdict(self)
        d["ok"] = self.ok
        return d


PRODUCT_CAP = 1500  # most control-variate columns for which the products are used
CHUNK = 2000  # one-layer draws per chunk


def estimate_one_step(m, n, samples, chunk=CHUNK):
    """(bytes, floating-point operations) of one_step_moments at width n (exact backend): a chunk
    holds a few m×n arrays per draw, and the product control variates a (PRODUCT_CAP+q)² matrix."""
    q = m * (m + 1) // 2
    mem = 8.0 * min(chunk, samples) * (12 * m * n + PRODUCT_CAP + q) + 16.0 * (PRODUCT_CAP + q) ** 2
    flops = float(samples) * (24.0 * m * m * n + 2.0 * (PRODUCT_CAP + q) ** 2)
    return mem, flops


def _chunks(block, V, n, samples, *, seed, chunk, mode, n_k, device, products, centred=False):
    """Yield (ΔV (b, m, m), control variates (b, p)) for chunks of one-layer draws from V."""
    V = np.asarray(V, dtype=float)
    m = V.shape[0]
    gen = torch.Generator(device=device).manual_seed(int(seed))
    Vt = torch.as_tensor(V, device=device)
    done = 0
    while done < samples:
        b = min(chunk, samples - done)
        ops = TorchOps(n, m, b, mode=mode, n_k=n_k, generator=gen, record=(mode == "exact"), device=device)
        x = whitened_input(V, n, (b + 1) // 2, generator=gen, device=device, centred=centred)
        x = torch.cat([x, -x])[:b]  # antithetic inputs: odd functionals of X cancel exactly
        ops.begin(x)
        y = block.step(x, ops)
        ok = ~ops.failed  # (a layer from a PD V never degenerates in practice; counted if it does)
        if products == "auto":  # the same block gives the same columns in every chunk: decide once
            products = ops.n_control_variates(True) <= PRODUCT_CAP
        yield (ops.gram(y) - Vt)[ok].cpu().numpy(), ops.stats_matrix(bool(products))[ok].cpu().numpy()
        done += b


def sample_one_step(block, V, n, samples, *, seed=0, chunk=CHUNK, mode="exact", n_k=None, device="cpu",
                    products=False, centred=False):
    """(ΔV samples (B, m, m), control variates (B, p)) for one layer from V; ``centred``: inputs whose rows
    have mean 0 over the width (the state of a network whose previous layer ends with a LayerNorm)."""
    parts = list(_chunks(block, V, n, samples, seed=seed, chunk=chunk, mode=mode, n_k=n_k, device=device,
                         products=products, centred=centred))
    return np.concatenate([a for a, _ in parts]), np.concatenate([c for _, c in parts])


class _Fold:
    """Running sums for one fold of the cross-fitted control-variate regression of Y on C."""

    def __init__(self):
        self.N, self.sums = 0, None

    def add(self, Y, C):
        Z = np.concatenate([Y, C], axis=1)
        if self.sums is None:
            self.sums = [np.zeros(Z.shape[1]), np.zeros((Z.shape[1], Z.shape[1]))]
        self.N += len(Z)
        self.sums[0] += Z.sum(0)
        self.sums[1] += Z.T @ Z

    def moments(self):
        mu = self.sums[0] / self.N
        return mu, self.sums[1] / self.N - np.outer(mu, mu)


ROUNDING = 4096 * np.finfo(float).eps  # relative size of the rounding noise of a variance from running sums


def _rounding_zero(var, second_moment):
    """A residual variance, with the values at rounding-noise level (at most ROUNDING × the raw second moment
    E[Y²] its sums were formed from, ≈ 1e-12 relative) set to exactly 0.  An entry that the control variates
    explain exactly (a drift entry that is zero by the block's structure) then has standard error 0 on every
    CPU, not the square root of one machine's rounding (≈ 1e-8, of either sign before the clamp); a real
    residual variance is many orders above it (≈ 1e-8 relative for the smallest seen, the MLP's off-diagonal
    drift after its control variates)."""
    return np.where(var <= ROUNDING * second_moment, 0.0, var)


def _cv_mean(folds, q):
    """Cross-fitted control-variate estimate of the mean of Y and its standard error."""
    N = folds[0].N + folds[1].N
    if folds[1].N == 0:  # a single chunk: no cross-fitting, plain mean
        mu, S = folds[0].moments()
        return mu[:q], np.sqrt(np.diag(S)[:q] / folds[0].N)
    ests, vars_ = [], []
    for f in (0, 1):
        mu_o, S_o = folds[1 - f].moments()  # fit on the other fold
        beta = np.linalg.lstsq(S_o[q:, q:], S_o[q:, :q], rcond=1e-10)[0] if S_o.shape[0] > q else np.zeros((0, q))
        mu_f, S_f = folds[f].moments()  # apply to this fold: residual Y − Cβ
        ests.append(mu_f[:q] - mu_f[q:] @ beta)
        var = (np.diag(S_f)[:q] - 2 * np.einsum("pq,pq->q", S_f[q:, :q], beta)
               + np.einsum("pq,pr,rq->q", beta, S_f[q:, q:], beta))
        vars_.append(_rounding_zero(var, np.diag(S_f)[:q] + mu_f[:q] ** 2) / folds[f].N)
    w = np.array([folds[0].N, folds[1].N], float) / N
    return w[0] * ests[0] + w[1] * ests[1], np.sqrt(w[0] ** 2 * vars_[0] + w[1] ** 2 * vars_[1])


def one_step_moments(block, V, *, n=2048, samples=20000, seed=0, mode="exact", chunk=CHUNK, n_k=None,
                     device="cpu", products="auto", target_se=None, max_samples=None, centred=False):
    """Estimates of n·E[ΔV] (with control variates) and n·Cov[ΔV], with standard errors.

    Control variates: the first-order statistics recorded by the exact backend and, when
    ``products`` (default "auto": if there are at most PRODUCT_CAP columns), their products across
    independent draws, which take out the second-order noise of multi-map blocks (attention, the
    Transformer).  The regression is cross-fitted (β from one half of the chunks, applied to the
    other, and vice versa), so the estimate stays unbiased however many control variates there are;
    the sums are streamed, so memory does not grow with the sample size.

    Sequential sampling: with ``target_se``, rounds of ``samples`` layers are added until every
    entry's standard error of n·E[ΔV] is at most target_se, or ``max_samples`` (default 4·samples)
    are used (the stopping rule looks only at the spread, not at the estimate)."""
    V = np.asarray(V, dtype=float)
    m = V.shape[0]
    idx = [(i, j) for i in range(m) for j in range(i, m)]
    q = len(idx)
    iu = (np.array([i for i, _ in idx]), np.array([j for _, j in idx]))
    folds = [_Fold(), _Fold()]
    zsum, z2, z4, N = np.zeros(q), np.zeros((q, q)), np.zeros((q, q)), 0
    max_samples = int(max_samples or 4 * samples)
    k, rnd = 0, 0
    while True:
        for dV, C in _chunks(block, V, n, samples, seed=seed + 1000003 * rnd, chunk=chunk, mode=mode, n_k=n_k,
                             device=device, products=products, centred=centred):
            Zc = dV[:, iu[0], iu[1]] * math.sqrt(n)  # √n·ΔV
            folds[k % 2].add(Zc * math.sqrt(n), C)
            zsum += Zc.sum(0)
            z2 += Zc.T @ Zc
            z4 += (Zc**2).T @ (Zc**2)
            N += len(Zc)
            k += 1
        rnd += 1
        mean, se = _cv_mean(folds, q)
        if target_se is None or se.max() <= target_se or N + samples > max_samples:
            break
    # n·Cov[ΔV] and the standard error of a sample covariance, √((E[x²y²] − Cov²)/B)
    zbar = zsum / N
    cov = (z2 - N * np.outer(zbar, zbar)) / (N - 1)
    # (fourth moments about the mean ≈ about 0: the mean of √n·ΔV is O(n^{-1/2}))
    cov_se = np.sqrt(np.maximum(z4 / N - cov**2, 0) / N)
    return dict(n=n, samples=N, seed=seed, idx=idx, mean=mean, mean_se=se, cov=cov, cov_se=cov_se,
                control_variates=int(folds[0].sums[1].shape[0] - q))


def compare_moments(mom, b, Sig, *, alpha=0.01, bias=1.0, order=0.5, floor=0.0):
    """Agreement of estimated one-step moments with drift b (m×m) and diffusion Σ (m,m,m,m); each entry
    is allowed a relative bias of bias·n^(−order) (the finite-width correction) of max(|b|, its scale),
    the scale being at least ``floor`` (validate: 1 % of max|V0|, for a V0 where b and Σ vanish)."""
    idx, n = mom["idx"], mom["n"]
    m = b.shape[0]
    n_tests = len(idx) + len(idx) * (len(idx) + 1) // 2
    zc = float(st.norm.isf(alpha / (2 * n_tests)))
    slack = bias * float(n) ** (-float(order))
    worst, worst_ratio, drift_ok, diff_ok = "", -1.0, True, True
    d_est, d_se, d_ref = (np.zeros((m, m)) for _ in range(3))
    # finite-width bias scales with the whole matrix; the floor 0.01·√max|Σ| covers b ≡ 0
    b_scale = max(0.25 * np.abs(b).max(), 0.01 * math.sqrt(np.abs(Sig).max()), floor)
    S_scale = 0.25 * np.abs(Sig).max()
    for k, (i, j) in enumerate(idx):
        est, se, ref = mom["mean"][k], mom["mean_se"][k] + 1e-300, b[i, j]
        d_est[i, j] = d_est[j, i] = est
        d_se[i, j] = d_se[j, i] = se
        d_ref[i, j] = d_ref[j, i] = ref
        ratio = abs(est - ref) / (zc * se + slack * max(abs(ref), b_scale))
        drift_ok &= ratio <= 1
        if ratio > worst_ratio:
            worst_ratio, worst = ratio, f"drift[{i},{j}]: est {est:.4g} ± {se:.2g}, derived {ref:.4g}"
    c_est, c_se, c_ref = {}, {}, {}
    for k1, (i, j) in enumerate(idx):
        for k2, (a, c) in enumerate(idx):
            if k2 < k1:
                continue
            est, se, ref = mom["cov"][k1, k2], mom["cov_se"][k1, k2] + 1e-300, Sig[i, j, a, c]
            key = f"{i},{j};{a},{c}"
            c_est[key], c_se[key], c_ref[key] = float(est), float(se), float(ref)
            ratio = abs(est - ref) / (zc * se + slack * max(abs(ref), S_scale))
            diff_ok &= ratio <= 1
            if ratio > worst_ratio:
                worst_ratio, worst = ratio, f"Σ[{key}]: est {est:.4g} ± {se:.2g}, derived {ref:.4g}"
    return OneStepResult(n, mom["samples"], mom["seed"], d_est.tolist(), d_se.tolist(), d_ref.tolist(), c_est, c_se,
                         c_ref, zc, alpha, slack, bool(drift_ok), bool(diff_ok), worst)


def one_step_check(block, derivation, V, params=None, *, n=2048, samples=20000, seed=0, alpha=0.01, bias=1.0,
                   drift_scale=1.0, diffusion_scale=1.0, mode="exact", n_k=None, device="cpu", products="auto"):
    """Sample one layer at V and compare with the derivation (scaled, for power checks)."""
    b, Sig = derivation.numeric(V, params)
    mom = one_step_moments(block, V, n=n, samples=samples, seed=seed, mode=mode, n_k=n_k, device=device,
                           products=products)
    return compare_moments(mom, b * drift_scale, Sig * diffusion_scale, alpha=alpha, bias=bias)
