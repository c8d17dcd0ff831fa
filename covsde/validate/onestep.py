"""One-step moments: n·E[ΔV | V] and n·Cov[ΔV | V] from many one-layer draws, vs b(V), Σ(V).

Estimator.  B inputs X with X Xᵀ/n = V exactly, in antithetic pairs (X, −X) so that odd
functionals of the input (which matter when an activation acts on the stream itself) cancel, are
pushed through one layer (exact-in-law backend by default).  The mean uses regression control variates: the recorded first-order Gram
fluctuations c (mean exactly 0) absorb the O(n^{-1/2}) noise, so

    n·Ê[ΔV] = n·mean(ΔV − β̂ᵀ c),   β̂ = least squares of ΔV on c,

with standard error n·sd(residual)/√B (plus p·sd(residual)/B for the O(p/B) bias of the fitted
β̂, p control variates); the O(1/n) drift is then visible at B ~ 10⁴.  The
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


def sample_one_step(block, V, n, samples, *, seed=0, chunk=2000, mode="exact", n_k=None, device="cpu"):
    """(ΔV samples (B, m, m), control variates (B, p)) for one layer from V."""
    V = np.asarray(V, dtype=float)
    m = V.shape[0]
    gen = torch.Generator(device=device).manual_seed(int(seed))
    dvs, cvs = [], []
    done = 0
    while done < samples:
        b = min(chunk, samples - done)
        ops = TorchOps(n, m, b, mode=mode, n_k=n_k, generator=gen, record=(mode == "exact"), device=device)
        x = whitened_input(V, n, (b + 1) // 2, generator=gen, device=device)
        x = torch.cat([x, -x])[:b]  # antithetic inputs: odd functionals of X cancel exactly
        ops.begin(x)
        y = block.step(x, ops)
        ok = ~ops.failed  # (a layer from a PD V never degenerates in practice; counted if it does)
        dvs.append((ops.gram(y) - torch.as_tensor(V))[ok].cpu().numpy())
        cvs.append(ops.stats_matrix()[ok].cpu().numpy())
        done += b
    return np.concatenate(dvs), np.concatenate(cvs)


def one_step_moments(block, V, *, n=2048, samples=20000, seed=0, mode="exact", chunk=2000, n_k=None):
    """Estimates of n·E[ΔV] (with control variates) and n·Cov[ΔV], with standard errors."""
    V = np.asarray(V, dtype=float)
    m = V.shape[0]
    dV, C = sample_one_step(block, V, n, samples, seed=seed, mode=mode, chunk=chunk, n_k=n_k)
    idx = [(i, j) for i in range(m) for j in range(i, m)]
    Y = np.stack([dV[:, i, j] for i, j in idx], axis=1) * n  # n·ΔV
    if C.shape[1]:
        beta, *_ = np.linalg.lstsq(C, Y - Y.mean(0), rcond=None)  # control variates have mean 0
        R = Y - C @ beta
    else:
        R = Y
    Zc = np.stack([dV[:, i, j] for i, j in idx], axis=1) * math.sqrt(n)
    Zc = Zc - Zc.mean(0)
    cov = Zc.T @ Zc / (len(Zc) - 1)
    cov_se = np.sqrt(np.maximum((Zc[:, :, None] ** 2 * Zc[:, None, :] ** 2).mean(0) - cov**2, 0) / len(Zc))
    # standard error of the control-variate mean, plus a bound on its O(p/B) regression bias
    p = C.shape[1]
    se = np.sqrt(R.var(0, ddof=1) / len(R) + (p * R.std(0) / len(R)) ** 2)
    return dict(n=n, samples=len(Y), seed=seed, idx=idx, mean=R.mean(0), mean_se=se, cov=cov, cov_se=cov_se)


def compare_moments(mom, b, Sig, *, alpha=0.01, bias=1.0):
    """Agreement of estimated one-step moments with drift b (m×m) and diffusion Σ (m,m,m,m)."""
    idx, n = mom["idx"], mom["n"]
    m = b.shape[0]
    n_tests = len(idx) + len(idx) * (len(idx) + 1) // 2
    zc = float(st.norm.isf(alpha / (2 * n_tests)))
    slack = bias / math.sqrt(n)
    worst, worst_ratio, drift_ok, diff_ok = "", -1.0, True, True
    d_est, d_se, d_ref = (np.zeros((m, m)) for _ in range(3))
    # finite-width bias scales with the whole matrix; the floor 0.01·√max|Σ| covers b ≡ 0
    b_scale = max(0.25 * np.abs(b).max(), 0.01 * math.sqrt(np.abs(Sig).max()))
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
                   drift_scale=1.0, diffusion_scale=1.0, mode="exact", n_k=None):
    """Sample one layer at V and compare with the derivation (scaled, for power checks)."""
    b, Sig = derivation.numeric(V, params)
    mom = one_step_moments(block, V, n=n, samples=samples, seed=seed, mode=mode, n_k=n_k)
    return compare_moments(mom, b * drift_scale, Sig * diffusion_scale, alpha=alpha, bias=bias)
