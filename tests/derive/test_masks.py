"""Causal and user masks in attention (issue 13): the masked softmax expansion, its causal structure, and
finite networks with real weights.

The masked expansion with a mask that allows every token is the unmasked one (drift and Σ, symbolically,
m = 2, and numerically at m = 3); causal attention's coefficients of the first k tokens involve only those
tokens and equal the derivation at m = k (every k < m, m = 3 and 4, symbolically); the first token's equal a
linear residual branch's."""
import itertools

import numpy as np
import pytest
import sympy as sp

from .onestep_checks import real_weights_agree

from covsde.derive import derive
from covsde.derive.blocks import Attention, Linear, Residual
from covsde.derive.errors import CovsdeInputError
from covsde.derive.masks import Causal, Explicit, make_mask
from covsde.derive.variants import build

G = sp.Symbol("gamma", positive=True)


def _att(mask, m=None):
    return Residual(Attention(mask=mask), G)


def _zero(x):
    return sp.expand(x) == 0 or sp.simplify(x) == 0


def test_a_mask_allowing_every_token_is_the_unmasked_expansion():
    full = derive(_att(Explicit([[1, 1], [1, 1]])), 2, use_cache=False)
    ref = derive(_att(None), 2, use_cache=False, engine="entries")
    assert full.engine == "entries"
    assert all(_zero(full.drift[i, j] - ref.drift[i, j]) for i in range(2) for j in range(2))
    assert all(_zero(full.diffusion[k] - ref.diffusion[k]) for k in ref.diffusion)
    blk = _att(Explicit(np.ones((3, 3), dtype=int)))
    d3, r3 = derive(blk, 3, use_cache=False), derive(_att(None), 3)
    V = np.array([[1.0, 0.3, -0.2], [0.3, 0.9, 0.1], [-0.2, 0.1, 1.2]])
    vals = {"gamma": 0.6, "tau0": 0.8}
    for a, b in zip(d3.numeric(V, vals), r3.numeric(V, vals)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("m", [3, 4])
def test_causal_tokens_do_not_see_the_future(m):
    d = derive(_att("causal"), m, use_cache=False)
    S = d.diffusion
    for k in range(1, m):
        small = derive(_att("causal"), k, use_cache=False) if k > 1 else None
        future = {sp.Symbol(f"V_{i}_{j}") for i in range(m) for j in range(m) if max(i, j) >= k}
        for a, b in itertools.product(range(k), repeat=2):
            assert not (sp.sympify(d.drift[a, b]).free_symbols & future), (k, a, b)
        for key, v in S.items():
            if max(key) < k:
                assert not (sp.sympify(v).free_symbols & future), (k, key)
        if small is not None:
            assert all(_zero(d.drift[a, b] - small.drift[a, b]) for a, b in itertools.product(range(k), repeat=2))
            assert all(_zero(S[key] - v) for key, v in small.diffusion.items())


def test_the_first_token_is_a_linear_residual_branch():
    d = derive(_att("causal"), 3)
    lin = derive(Residual(Linear(), G), 3)
    assert _zero(d.drift[0, 0] - lin.drift[0, 0])
    assert _zero(d.diffusion[(0, 0, 0, 0)] - lin.diffusion[(0, 0, 0, 0)])
    assert not _zero(d.drift[1, 1] - lin.drift[1, 1])  # the second token does attend


def test_masks_are_checked():
    assert make_mask("none") is None and make_mask("causal") == Causal()
    for bad, named in (("[[1,0],[0,0]]", "row 1 allows no token"), ("[[1,2],[1,1]]", "0 or 1"),
                       ("[[1,0]]", "square"), ("diag", "expected none, causal"), ("[[1,", "never closed")):
        with pytest.raises(CovsdeInputError, match=named):
            make_mask(bad)
    blk, _ = build("attention", {"mask": "[[1,0],[1,1]]"})
    with pytest.raises(CovsdeInputError, match="2×2 but m = 3"):
        derive(blk, 3)
    with pytest.raises(CovsdeInputError, match="per-entry engine takes m ≤"):
        derive(build("attention", {"mask": "causal"})[0], 32)


def test_causal_attention_one_step_with_real_weights():
    """m = 3, γ = 0.8, τ0 = 0.7.  Real weight matrices (torch), n = 64 and 128, 2500 layers each (seed = n):
    n·E[ΔV] and n·Cov[ΔV] agree with b and Σ (Bonferroni α = 0.01 plus the 1/√n allowance), and the
    diffusion × 1.25 is rejected.  Real weights leave the drift's standard error at ~3× |b| (no control
    variates), so the drift's power comes from the exact sampler of the same ops (n = 512, 12 000 layers,
    control variates, seed 7): b accepted, b × 1.25 rejected."""
    from covsde.validate.onestep import compare_moments, one_step_moments

    blk, _ = build("attention", {"mask": "causal", "gamma": "0.8", "tau0": "0.7"})
    d = derive(blk, 3)
    V = np.array([[1.0, 0.3, 0.1], [0.3, 0.8, 0.2], [0.1, 0.2, 1.1]])
    b, Sig = d.numeric(V)
    real_weights_agree(blk, V, b, Sig)
    mom = one_step_moments(blk, V, n=512, samples=12000, seed=7, n_k=256)
    assert compare_moments(mom, b, Sig).ok
    assert not compare_moments(mom, 1.25 * b, Sig).drift_ok
