"""Normalisation (issue 13): RMSNorm and LayerNorm, pre- and post-placed, derived from ops.norm.

Post-normalised blocks have the correlation matrix as state: checked against Itô's formula for
ρ = V^{αβ}/√(V^{αα}V^{ββ}) applied to the un-normalised ResNet's SDE (symbolically, m = 2).  LayerNorm vs
RMSNorm: the derived difference is 0 for these placements (the centring shrinks every Gram by 1 − 1/n, a row
scaling the normalisation undoes); finite networks measure the difference of the two one-step drifts, paired.
Pre-normalised branches scaled by n^(−1/2) are the ODE b = γ0²(ρ(V) − V)."""
import itertools
import json

import numpy as np
import pytest
import sympy as sp
import torch

from covsde.cli import main
from covsde.derive import derive
from covsde.derive.activations import make_activation
from covsde.derive.blocks import Residual, ResNetBranch, with_norm
from covsde.derive.errors import CovsdeInputError, NotSupported
from covsde.derive.symbols import V_matrix
from covsde.derive.variants import build
from covsde.validate.onestep import compare_moments, one_step_moments

from .onestep_checks import real_weights_agree

G = sp.Symbol("gamma", positive=True)


def _zero(x):
    return sp.expand(x) == 0 or sp.simplify(x) == 0


def test_post_norm_resnet_is_ito_of_the_resnet_sde():
    m = 2
    post = derive(with_norm(Residual(ResNetBranch(make_activation()), G), "post-rms"), m)
    raw = derive(Residual(ResNetBranch(make_activation()), G), m, engine="entries")
    assert post.state == "correlation" and post.regime == "sde"
    V = V_matrix(m)
    idx = [(i, j) for i in range(m) for j in range(i, m)]
    unit = {V[a, a]: 1 for a in range(m)}
    rho = {(a, b): V[a, b] / sp.sqrt(V[a, a] * V[b, b]) for a, b in idx}
    b, S = raw.drift, raw.diffusion
    for key in idx:
        r = rho[key]
        ito = sum(sp.diff(r, V[i, j]) * b[i, j] for i, j in idx)
        ito += sum(sp.diff(r, V[i, j], V[k, l]) * S[(i, j, k, l)] for (i, j) in idx for (k, l) in idx) / 2
        assert _zero(ito.xreplace(unit) - post.drift[key]), key
    for k1, k2 in itertools.product(idx, idx):
        cov = sum(sp.diff(rho[k1], V[i, j]) * sp.diff(rho[k2], V[k, l]) * S[(i, j, k, l)]
                  for (i, j) in idx for (k, l) in idx)
        assert _zero(cov.xreplace(unit) - post.diffusion[k1 + k2]), (k1, k2)


def test_layernorm_and_rmsnorm_derive_the_same_coefficients():
    for variant, extra in (("resnet", {}), ("attention", {"tau0": "0.8"})):
        ln = derive(build(variant, {"norm": "post-ln", "gamma": "0.6", **extra})[0], 2)
        rms = derive(build(variant, {"norm": "post-rms", "gamma": "0.6", **extra})[0], 2)
        R = np.array([[1.0, 0.35], [0.35, 1.0]])
        for x, y in zip(ln.numeric(R), rms.numeric(R)):
            np.testing.assert_allclose(x, y, rtol=1e-11, atol=1e-13)
    pre_ln = derive(build("transformer", {"norm": "pre-ln", "q": "1/2"})[0], 3)
    pre_rms = derive(build("transformer", {"norm": "pre-rms", "q": "1/2"})[0], 3)
    V = np.array([[1.3, 0.3, 0.1], [0.3, 0.8, 0.2], [0.1, 0.2, 1.1]])
    vals = {"gamma": 0.7, "tau0": 1.0}
    np.testing.assert_allclose(pre_ln.numeric(V, vals)[0], pre_rms.numeric(V, vals)[0], rtol=1e-12)


def test_finite_networks_measure_the_layernorm_rmsnorm_difference(monkeypatch):
    """Post-normalised ResNet (γ = 0.6, m = 2, ρ = 0.35): real weights at n = 32 and 64, 16000 layers each, the
    same weights and inputs for both norms (seed = n, paired), inputs with centred rows (the state a post-LN
    network's layers read; uncentred inputs add the centring of the input's own O(n^(-1/2)) mean, which
    tripled the SE).  The measured difference of the one-step drifts n·E[ΔV^{01}] is within 4 SE of the
    derived difference 0 at both widths, with SE ≈ 0.0026, 4 % of |b^{01}| = 0.061 (asserted below 6 %): a
    difference of 16 % of the drift would be detected (measured: −0.0007 at n = 32, −0.0032 at n = 64).  The
    drift alone, unpaired, has SE ≈ 0.03 at this sample size."""
    from covsde.validate.backends import whitened_input
    from covsde.validate.onestep import sample_one_step

    R = np.array([[1.0, 0.35], [0.35, 1.0]])
    x = whitened_input(R, 16, 3, centred=True)
    assert float(x.mean(-1).abs().max()) < 1e-12
    np.testing.assert_allclose((x @ x.transpose(-1, -2) / 16).numpy(), np.broadcast_to(R, (3, 2, 2)), atol=1e-12)
    b01 = derive(build("resnet", {"norm": "post-rms", "gamma": "0.6"})[0], 2).numeric(R)[0][0, 1]
    for n in (32, 64):
        dv = {norm: sample_one_step(build("resnet", {"norm": norm, "gamma": "0.6"})[0], R, n, 16000, seed=n,
                                    mode="weights", centred=True)[0][:, 0, 1] * n for norm in ("post-ln", "post-rms")}
        diff = dv["post-ln"] - dv["post-rms"]
        se = diff.std(ddof=1) / np.sqrt(len(diff))
        assert abs(diff.mean()) <= 4 * se and se < 0.06 * abs(b01), (n, diff.mean(), se, b01)
    # negative control: a LayerNorm that divides by the uncentred row norm (a common slip) leaves the
    # centring's −z̄_0 z̄_1 in the Gram, a drift difference ≈ −γ²ρ = −0.13: the same paired test rejects it
    from covsde.validate.backends import TorchOps

    right = TorchOps.norm

    def slipped(self, x, kind):
        if kind != "ln":
            return right(self, x, kind)
        return (x - x.mean(-1, keepdim=True)) * (x.shape[-1] ** 0.5 / torch.linalg.vector_norm(x, dim=-1, keepdim=True))

    monkeypatch.setattr(TorchOps, "norm", slipped)
    bad = sample_one_step(build("resnet", {"norm": "post-ln", "gamma": "0.6"})[0], R, 64, 16000, seed=64,
                          mode="weights", centred=True)[0][:, 0, 1] * 64 - dv["post-rms"]
    assert abs(bad.mean()) > 4 * bad.std(ddof=1) / np.sqrt(len(bad)), bad.mean()


def test_post_norm_one_step_with_real_weights():
    """Post-RMS ResNet, γ = 0.6, m = 2: real weights at n = 64 and 128 (4000 layers, seed = n) agree with b, Σ
    and reject Σ × 1.25; the exact sampler (n = 512, 40 000 layers, control variates: SE 5 % of b, seed 2) rejects
    b × 1.25."""
    blk, _ = build("resnet", {"norm": "post-rms", "gamma": "0.6"})
    d = derive(blk, 2)
    R = np.array([[1.0, 0.35], [0.35, 1.0]])
    b, Sig = d.numeric(R)
    real_weights_agree(blk, R, b, Sig, samples=4000, floor=0.01)
    mom = one_step_moments(blk, R, n=512, samples=40000, seed=2)
    assert compare_moments(mom, b, Sig, floor=0.01).ok
    assert not compare_moments(mom, 1.25 * b, Sig, floor=0.01).drift_ok


def test_pre_norm_with_a_small_branch_is_the_correlation_ode():
    d = derive(build("resnet", {"norm": "pre-rms", "q": "1/2", "gamma": "0.7"})[0], 3)
    assert d.regime == "ode" and d.state == "V" and d.engine == "matrix"
    V = np.array([[1.3, 0.3, 0.1], [0.3, 0.8, 0.2], [0.1, 0.2, 1.1]])
    s = 1 / np.sqrt(np.diag(V))
    np.testing.assert_allclose(d.numeric(V)[0], 0.49 * (s[:, None] * V * s[None, :] - V), rtol=1e-12)


def test_normalised_blocks_are_checked(capsys):
    with pytest.raises(NotSupported, match="norms relax"):
        derive(build("resnet", {"norm": "pre-rms"})[0], 2)
    with pytest.raises(CovsdeInputError, match="norm"):
        build("resnet", {"norm": "mid-rms"})
    assert main(["derive", "resnet", "--set", "norm=post-ln", "--m", "2", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "correlation"
    assert main(["simulate", "resnet", "--set", "norm=post-rms", "--set", "gamma=0.5", "--V0", "[[2,0.2],[0.2,1]]",
                 "--T", "0.1"]) == 2
    assert "correlation matrix (unit diagonal)" in capsys.readouterr().err


def test_a_correlation_state_stays_on_unit_diagonal():
    """Both integrators (per path, lanes) keep a correlation state's diagonal at 1 (the default PSD step's
    quadratic terms would move it by O(dt) per step: the kernel projects back), and ρ stays in (−1, 1): the
    generated module's own source run as plain Python (its dense kernels compiled; no module compile), 64
    paths × 50 steps, seed 0; the same run without the projection leaves the diagonal (negative control)."""
    from covsde.numerics import straight
    from covsde.numerics.codegen import generate_source, param_vector

    d = derive(build("resnet", {"norm": "post-rms", "gamma": "0.5"})[0], 2)
    ns = {}
    exec(compile(generate_source(d).replace("@njit(", "# @njit("), "<generated>", "exec"), ns)
    V0 = np.array([[1.0, 0.2], [0.2, 1.0]])
    for entry in ("simulate", "simulate_lanes"):  # the per-path and the lane kernel
        out = {}
        for unit in (True, False):
            Vout, status, tdeath = np.zeros((1, 64, 2, 2)), np.zeros(64, dtype=np.int64), np.full(64, np.inf)
            lane_args = (straight.none(), 0) if entry == "simulate_lanes" else ()
            ns[entry](V0, param_vector(d), 0.01, 50, np.array([50]), 1, 1e6, [np.random.default_rng(0)], 64, Vout,
                      status, tdeath, False, 1.0, 1.0, unit, 1, *lane_args)
            assert np.all(status == 0)
            out[unit] = Vout[0]
        assert np.abs(out[True][:, [0, 1], [0, 1]] - 1).max() < 1e-12, entry
        assert np.abs(out[False][:, [0, 1], [0, 1]] - 1).max() > 1e-6, entry
        assert np.abs(out[True][:, 0, 1]).max() < 1 and out[True][:, 0, 1].std() > 0.05, entry
