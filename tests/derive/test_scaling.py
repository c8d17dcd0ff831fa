"""Scaling exponents (issue 12, first part): residual branches γ = γ0·n^(−q), unshaped activations inside
a small branch, and the depth exponent κ (time t = ℓ/n^κ).

References: facts.md — the arc-cosine kernel (2K(V) − V = √(V^αα V^ββ)(√(1−ρ²) − ρ arccos ρ)/π off the
diagonal, 0 on it), the ResNet with a d^(−1/2) branch following dV/dτ = γ0²(2K(V) − V), and the shaped
MLP's drift (c₊ − c₋)²/(2π)(√(1−ρ²) − ρ arccos ρ)√(Φ^αα Φ^ββ)."""
import numpy as np
import pytest
import sympy as sp

from covsde.derive import derive
from covsde.derive.errors import CovsdeInputError
from covsde.derive.variants import build


def two_k_minus_v(V):
    d = np.sqrt(np.diag(V))
    s = np.outer(d, d)
    rho = np.clip(V / s, -1, 1)
    out = s * (np.sqrt(1 - rho**2) - rho * np.arccos(rho)) / np.pi
    np.fill_diagonal(out, 0.0)
    return out


def _V(m, seed):
    A = np.random.default_rng(seed).normal(size=(m, m))
    return A @ A.T / m + 0.4 * np.eye(m)


@pytest.mark.parametrize("kappa,q,time", [("1", "1/2", "l/n"), ("1/2", "1/4", "l/n^(1/2)")])
def test_unshaped_resnet_with_a_small_branch_is_the_arc_cosine_ode(kappa, q, time):
    blk, p = build("resnet", {"p": "0", "q": q, "kappa": kappa})
    d = derive(blk, 4, kappa=p["kappa"])
    assert d.regime == "ode" and d.kappa == kappa and d.time == time, d.reason
    assert d.matrix.noise == []
    for seed in range(3):
        V = _V(4, seed)
        b, groups = d.numeric_fn()(V, {"gamma": 0.7})
        assert groups == []
        np.testing.assert_allclose(b, 0.7**2 * two_k_minus_v(V), rtol=1e-12, atol=1e-14)


def test_li_nica_equivalence_mlp_shaped_at_quarter_vs_resnet():
    """An MLP shaped at p = 1/4 with κ = 1/2 is an ODE with the shaped drift; it equals the ResNet's
    γ0²(2K − V) when (c₊ − c₋)² = 2γ0² — symbolically, entry by entry at m = 2."""
    mlp_blk, p = build("mlp", {"p": "1/4", "kappa": "1/2", "c_plus": "c_plus", "c_minus": "c_minus"})
    mlp = derive(mlp_blk, 2, kappa=p["kappa"])
    res_blk, p2 = build("resnet", {"p": "0", "q": "1/4", "kappa": "1/2"})
    res = derive(res_blk, 2, kappa=p2["kappa"])
    assert mlp.regime == res.regime == "ode"
    g, cp, cm = (sp.Symbol(n, **a) for n, a in (("gamma", dict(positive=True)), ("c_plus", dict(real=True)),
                                                   ("c_minus", dict(real=True))))
    diff = mlp.drift.xreplace({cp: cm + sp.sqrt(2) * g}) - res.drift
    V = _V(2, 7)
    sub = {s: V[int(s.name[2]), int(s.name[4])] for s in res.symbols}
    sub.update({g: 0.6, cm: -0.3})
    assert all(abs(complex(x.xreplace(sub).evalf())) < 1e-12 for x in diff)
    assert all(sp.simplify(x) == 0 for x in diff)


@pytest.mark.parametrize("variant", ["mlp", "resnet", "attention", "transformer"])
def test_today_exponents_at_kappa_half_drop_out(variant):
    """d = n^(1/2) layers with today's exponents: every per-layer effect is o(n^(-1/2)): identity."""
    blk, p = build(variant, {"kappa": "1/2"})
    d = derive(blk, 3, kappa=p["kappa"])
    assert d.regime == "identity" and d.time == "l/n^(1/2)", d.reason
    assert derive(blk, 3).regime == "sde"  # κ = 1: today's SDE


def test_orders_too_large_are_no_limit_with_the_reason():
    blk, _ = build("resnet", {"p": "0"})
    d = derive(blk, 2)
    assert d.regime == "no-limit" and "not near-linear" in d.reason
    blk, _ = build("resnet", {"p": "0", "q": "1/4"})
    d = derive(blk, 2)
    assert d.regime == "no-limit" and "order n^(-1/2)" in d.reason


def test_kappa_and_q_are_checked():
    for bad, named in (({"kappa": "0"}, "kappa"), ({"kappa": "5"}, "kappa"), ({"q": "-1"}, "q"),
                       ({"kappa": "x"}, "kappa")):
        with pytest.raises(CovsdeInputError, match=named):
            build("resnet", bad)
    with pytest.raises(CovsdeInputError, match="kappa"):
        derive(build("mlp")[0], 2, kappa=9)
    from covsde.derive.errors import NotSupported

    from covsde.derive import Unshaped

    unshaped = build("resnet", {"activation": "tanh", "p": "0", "q": "1/2"})[0]  # unshaped tanh: not silently shaped
    assert isinstance(unshaped.branch.activation, Unshaped) and derive(unshaped, 2).regime == "ode"
    with pytest.raises(NotSupported, match="tanh"):  # a backend without an evaluation names the map
        unshaped.branch.activation.kernel.torch()
    with pytest.raises(CovsdeInputError, match="c_plus apply to activation=relu only"):
        build("resnet", {"activation": "tanh", "c_plus": "1"})
    assert build("mlp", {"activation": "tanh", "p": "1/4"})[0].activation.q == sp.Rational(1, 4)


def test_depth_much_larger_than_width():
    """κ > 1: the shaped MLP's O(1/n) mean change per layer is too large for depth n² (no-limit, with the
    order); a block whose lower orders all fit needs the drift at n^(−κ), beyond the expansion: refused."""
    from covsde.derive.errors import NotSupported

    blk, p = build("mlp", {"kappa": "2"})
    d = derive(blk, 2, kappa=p["kappa"])
    assert d.regime == "no-limit" and "order n^(-1)" in d.reason and d.time == "l/n^(2)"
    blk, p = build("resnet", {"kappa": "3/2", "q": "1/4"})
    with pytest.raises(NotSupported, match="beyond the orders"):
        derive(blk, 2, kappa=p["kappa"])


def test_json_has_kappa_and_time(capsys):
    import json

    from covsde.cli import main

    assert main(["derive", "resnet", "--set", "p=0", "--set", "q=1/4", "--set", "kappa=1/2", "--format", "json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["kappa"] == "1/2" and js["time"] == "l/n^(1/2)" and js["regime"] == "ode"
    assert js["diffusion"] == {} or all(v == "0" for v in js["diffusion"].values())


def test_ode_regime_against_finite_networks():
    """Unshaped ReLU ResNet, γ = 0.8·n^(−1/2), κ = 1 (regime ode): finite networks (exact sampler, seed = n)
    at n = 256 and 1024, 6000 layers each.  n·E[ΔV] agrees with the drift γ0²(2K − V) within 4 standard
    errors plus 2 % of max|b| (a drift × 1.25 is rejected), and n·Cov[ΔV] — the diffusion, zero in the
    limit — shrinks like 1/n (by more than 2× from n = 256 to 1024), while the γ = O(1) ResNet's (an
    SDE) stays put."""
    from covsde.validate.onestep import one_step_moments

    blk, _ = build("resnet", {"p": "0", "q": "1/2", "gamma": "0.8"})
    d = derive(blk, 2)
    assert d.regime == "ode"
    V = np.array([[1.0, 0.3], [0.3, 0.8]])
    b, _ = d.numeric(V)
    spread, sde_spread = [], []
    sde_blk, _ = build("resnet", {"gamma": "0.8"})
    for n in (256, 1024):
        mom = one_step_moments(blk, V, n=n, samples=6000, seed=n)
        est = np.array(mom["mean"])
        ref = np.array([b[i, j] for i, j in mom["idx"]])
        tol = 4 * np.array(mom["mean_se"]) + 0.02 * np.abs(ref).max()
        assert np.all(np.abs(est - ref) <= tol), (n, est, ref)
        assert not np.all(np.abs(est - 1.25 * ref) <= tol)  # negative control
        spread.append(np.abs(np.diag(mom["cov"])).max())
        sde_spread.append(np.abs(np.diag(one_step_moments(sde_blk, V, n=n, samples=2000, seed=n)["cov"])).max())
    assert spread[1] < spread[0] / 2, spread
    assert sde_spread[1] > sde_spread[0] / 2, sde_spread
    assert abs(b[0, 1]) > 0.05  # the drift being tested is not trivially zero


def test_attention_with_exponents_scaled_to_the_depth_keeps_its_logit_noise_only():
    """d = n^(1/2), e = κ/2 = 1/4: the logits fluctuate at n^(−1/4), so the attention's drift (the same
    formula as at κ = 1) and its logit noise survive, while the value projection's Wishart noise, O(n^(−1/2)),
    drops out: one noise group instead of two."""
    blk, p = build("attention", {"kappa": "1/2", "e": "1/4"})
    d = derive(blk, 3, kappa=p["kappa"])
    ref = derive(build("attention")[0], 3)
    assert d.regime == ref.regime == "sde" and len(d.matrix.noise) == 1 and len(ref.matrix.noise) == 2
    V = _V(3, 11)
    vals = {"gamma": 0.6, "tau0": 1.1}
    (b, g), (b_ref, _) = d.numeric_fn()(V, vals), ref.numeric_fn()(V, vals)
    np.testing.assert_allclose(b, b_ref, rtol=1e-12)
    assert any(t[3] is not None for t in g[0])  # the logit group: Ẑ P V + V P Ẑᵀ
    assert derive(build("attention", {"e": "1/4"})[0], 3).regime == "no-limit"  # the same e at κ = 1


@pytest.mark.parametrize("variant", ["attention", "transformer"])
def test_infinitely_many_heads_keep_the_drift_and_lose_the_attention_noise(variant):
    """heads = inf: the mean of a head is kept, a head's own fluctuation (the logits) averages out as
    H^(−1/2), while the value projection's Wishart noise (width n/H each, weight 1/H) stays: the drift is
    the one-head drift and Σ is the one-head Σ without its logit group; H = 2 shows the H^(−1/2)."""
    vals = {"gamma": 0.6, "tau0": 0.9}
    V = _V(3, 5)
    one = derive(build(variant)[0], 3)
    inf = derive(build(variant, {"heads": "inf"})[0], 3)
    two = derive(build(variant, {"heads": "2"})[0], 3)
    assert inf.regime == "sde" and len(inf.matrix.noise) == 1 and len(one.matrix.noise) == 2
    (b1, g1), (b_inf, g_inf), (b2, g2) = (d.numeric_fn()(V, vals) for d in (one, inf, two))
    np.testing.assert_allclose(b_inf, b1, rtol=1e-12)
    np.testing.assert_allclose(b2, b1, rtol=1e-12)
    from covsde.derive.evaluate import sigma_from_groups

    plain = [all(t[1] is None and t[3] is None for t in g) for g in g1]  # c(Ẑ + Ẑᵀ) vs the logit group
    wishart = [g for g, w in zip(g1, plain) if w]
    logits = [g for g, w in zip(g1, plain) if not w]
    assert len(wishart) == len(logits) == 1
    np.testing.assert_allclose(sigma_from_groups(g_inf, V), sigma_from_groups(wishart, V), rtol=1e-12)
    half = sigma_from_groups(wishart, V) + 0.5 * sigma_from_groups(logits, V)
    np.testing.assert_allclose(sigma_from_groups(g2, V), half, rtol=1e-10, atol=1e-14)
    with pytest.raises(CovsdeInputError, match="finite number of heads"):
        from covsde.validate.onestep import one_step_moments

        one_step_moments(build(variant, {"heads": "inf", **{k: str(v) for k, v in vals.items()}})[0], V, n=64,
                         samples=10)


def test_identity_and_no_limit_orders_against_finite_networks():
    """The orders in n the classifier reads, measured (exact sampler, seed = n, n = 128 and 512, 2000 layers;
    it detects a factor-2 change of an order over the 4× width, measured 3.7× and 15× for identity):
    `identity` (unshaped ReLU, q = 1: γ = γ0/n) — n·E[ΔV] and n·Var[ΔV] both shrink with n (by more
    than 2× over 4× the width); `no-limit` (unshaped ReLU, q = 0) — E[ΔV] itself stays O(1) (within
    10 % across the widths, and at least 0.05): an O(1) change per layer."""
    from covsde.validate.onestep import one_step_moments

    V = np.array([[1.0, 0.3], [0.3, 0.8]])
    ident, _ = build("resnet", {"p": "0", "q": "1", "gamma": "0.8"})
    nolim, _ = build("resnet", {"p": "0", "gamma": "0.8"})
    assert derive(ident, 2).regime == "identity" and derive(nolim, 2).regime == "no-limit"
    mean_i, var_i, step_n = [], [], []
    for n in (128, 512):
        mi = one_step_moments(ident, V, n=n, samples=2000, seed=n)
        mean_i.append(np.abs(mi["mean"]).max())
        var_i.append(np.abs(np.diag(mi["cov"])).max())
        mn = one_step_moments(nolim, V, n=n, samples=2000, seed=n)
        step_n.append(np.abs(np.array(mn["mean"])).max() / n)  # E[ΔV] = (n·E[ΔV]) / n
    assert mean_i[1] < mean_i[0] / 2 and var_i[1] < var_i[0] / 2, (mean_i, var_i)
    assert step_n[0] > 0.05 and abs(step_n[1] / step_n[0] - 1) < 0.1, step_n
