"""Parallel sublayers and gated MLPs (issue 13): derived by the engine from their one-step maps, checked
against reference identities and against finite networks with real weights.

Identities: a parallel block X' = λX + γ(Attn(X) + MLP(X))/√2 has the mean change of the two sublayers
averaged, so b_parallel = (b_attention + b_mlp)/2 (numerically at random V); a gated MLP (√c φ_s(Z W₁) ∘ Z W₂) W₃
in a branch γ0·n^(−1/2) is the ODE b = γ0²(V∘V − V) (the gate's Gram is Ka ∘ Kb, Ka → V for a shaped φ).
Finite networks: one-step moments (torch real weights, two widths; the exact sampler with control variates
for the drift's power), a coefficient × 1.25 rejected."""
import numpy as np
import pytest
import sympy as sp

from covsde.derive import derive
from covsde.derive.activations import make_activation
from covsde.derive.blocks import Attention, MLPBranch, Residual
from covsde.derive.errors import CovsdeInputError
from covsde.derive.variants import build
from covsde.validate.onestep import compare_moments, one_step_moments

from .onestep_checks import real_weights_agree

V3 = np.array([[1.0, 0.3, 0.1], [0.3, 0.8, 0.2], [0.1, 0.2, 1.1]])
G = sp.Symbol("gamma", positive=True)


def test_parallel_drift_is_the_average_of_the_sublayers():
    par = derive(build("transformer", {"layout": "parallel"})[0], 3)
    att = derive(Residual(Attention(), G), 3)
    mlp = derive(Residual(MLPBranch(make_activation()), G), 3)
    vals = {"gamma": 0.6, "tau0": 0.9}
    b = par.numeric(V3, vals)[0]
    np.testing.assert_allclose(b, (att.numeric(V3, vals)[0] + mlp.numeric(V3, vals)[0]) / 2, rtol=1e-12, atol=1e-14)
    assert par.regime == "sde" and np.abs(b).max() > 0.01


@pytest.mark.parametrize("gate", ["swiglu", "geglu"])
def test_gated_mlp_in_a_small_branch_is_the_hadamard_ode(gate):
    d = derive(build("transformer", {"mlp": gate, "q": "1/2", "gamma": "0.7"})[0], 3)
    assert d.regime == "ode"
    np.testing.assert_allclose(d.numeric(V3)[0], 0.49 * (V3 * V3 - V3), rtol=1e-12, atol=1e-14)
    nolimit = derive(build("transformer", {"mlp": gate})[0], 3)
    assert nolimit.regime == "no-limit" and "gated product" in nolimit.reason


def test_choices_are_checked():
    for given, named in (({"layout": "diagonal"}, "layout"), ({"mlp": "moe"}, "mlp"),
                         ({"layout": "parallel", "gamma2": "0.5"}, "one residual branch"),
                         ({"mlp": "geglu", "activation": "tanh"}, "activation is set by mlp")):
        with pytest.raises(CovsdeInputError, match=named):
            build("transformer", given)
    with pytest.raises(CovsdeInputError, match="does not apply"):
        build("resnet", {"layout": "parallel"})


def test_gated_mlp_one_step_with_real_weights():
    """A GeGLU branch X' = λX + γ·GeGLU(X), γ = 0.7·n^(−1/2) (regime ode), m = 3: real weights at n = 64 and
    128 (2500 layers each, seed = n): n·E[ΔV] agrees with b (Bonferroni α = 0.01 plus the 1.5/√n allowance;
    SE ≈ 15 % of max|b| without control variates) and n·Cov[ΔV] → 0 (like 1/n: shrinks by more than 1.4×
    over the 2× width); the exact sampler of the same ops (n = 512, 4000 layers, control variates: SE ≈ 1 %
    of max|b|, seed 1) accepts b and rejects b × 1.25."""
    from covsde.derive.blocks import GatedMLPBranch
    from covsde.derive.variants import GATES

    blk = Residual(GatedMLPBranch(make_activation(GATES["geglu"])), sp.Rational(7, 10), q=sp.Rational(1, 2))
    d = derive(blk, 3)
    assert d.regime == "ode"
    b, Sig = d.numeric(V3)
    spread = []
    for n in (64, 128):
        mom = one_step_moments(blk, V3, n=n, samples=2500, seed=n, mode="weights")
        res = compare_moments(mom, b, Sig, bias=1.5)
        assert res.drift_ok, res.worst
        spread.append(np.abs(np.diag(mom["cov"])).max())
    assert spread[1] < spread[0] / 1.4, spread
    mom = one_step_moments(blk, V3, n=512, samples=4000, seed=1)
    assert compare_moments(mom, b, Sig, bias=1.5).drift_ok
    assert not compare_moments(mom, 1.25 * b, Sig, bias=1.5).drift_ok


def test_parallel_block_one_step_with_real_weights():
    """Parallel attention + MLP, γ = 0.8, τ0 = 0.7, m = 3: real weights at n = 64 and 128 (2500 layers, seed = n)
    agree with b and Σ and reject Σ × 1.25; the exact sampler (m = 2, where the cross-draw product control
    variates apply: n = 512, 12 000 layers, seed 3, SE ≈ 1.5 % of b) accepts b and rejects b × 1.25 and × 0.75."""
    blk, _ = build("transformer", {"layout": "parallel", "gamma": "0.8", "tau0": "0.7"})
    d = derive(blk, 3)
    b, Sig = d.numeric(V3)
    real_weights_agree(blk, V3, b, Sig)
    V2 = V3[:2, :2]
    b, Sig = derive(blk, 2).numeric(V2)
    mom = one_step_moments(blk, V2, n=512, samples=12000, seed=3, n_k=256)
    assert compare_moments(mom, b, Sig).ok, compare_moments(mom, b, Sig).worst
    assert not compare_moments(mom, 1.25 * b, Sig).drift_ok
    assert not compare_moments(mom, 0.75 * b, Sig).drift_ok
