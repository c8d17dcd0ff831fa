"""The bordelon preset (Bordelon et al. 2024's parameterisation, width first): the mapping, its limits
(ODE in ℓ/L at α_L = 1/2, identity at α_L = 1, no limit below 1/2), their independence of κ < 1, and
the μP Transformer's ODE against finite networks.

References: facts.md — the arc-cosine kernel 2K(V) = V + √(V^αα V^ββ)(√(1−ρ²) − ρ arccos ρ)/π off the
diagonal (= V on it); with λ = 1 the ReLU branch adds β0²·2K(V) per unit of t = ℓ/L, and μP attention (the
softmax of vanishing logits, 11ᵀ/m) adds β0²·JVJ."""
import json

import numpy as np
import pytest
import sympy as sp

from covsde.cli import main
from covsde.derive import derive
from covsde.derive.errors import CovsdeInputError
from covsde.derive.presets import bordelon
from covsde.derive.variants import build

from .test_scaling import _V, two_k_minus_v


def two_k(V):
    return two_k_minus_v(V) + V


def J(m):
    return np.full((m, m), 1.0 / m)


def test_the_mapping():
    assert bordelon("resnet", alphaL="1/2", beta0="0.8") == {
        "p": 0, "c_plus": 0, "c_minus": -1, "gamma": sp.Rational(4, 5), "lam": 1, "q": sp.Rational(1, 4),
        "kappa": sp.Rational(1, 2)}
    t = bordelon("transformer", alphaA=1, alphaL=1, kappa="1/3")
    assert t["q"] == sp.Rational(1, 3) and t["e"] == sp.Rational(1, 2) and t["centre"] is False and t["identity"] is False


@pytest.mark.parametrize("kappa", ["1/2", "1/3"])
def test_resnet_is_the_kernel_ode_for_every_kappa_below_one(kappa):
    blk, p = build("resnet", {"preset": "bordelon", "alphaL": "1/2", "beta0": "0.8", "kappa": kappa})
    d = derive(blk, 3, kappa=p["kappa"])
    assert d.regime == "ode" and d.time == f"l/n^({kappa})" and d.matrix.noise == []
    for seed in range(3):
        V = _V(3, seed)
        np.testing.assert_allclose(d.numeric(V)[0], 0.64 * two_k(V), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("variant", ["attention", "transformer"])
def test_mup_attention_averages_the_tokens(variant):
    blk, p = build(variant, {"preset": "bordelon", "beta0": "0.7"})
    d = derive(blk, 3, kappa=p["kappa"])
    assert d.regime == "ode" and "softmax" in d.reason, d.reason
    V = _V(3, 4)
    want = 0.49 * J(3) @ V @ J(3) + (0.49 * two_k(V) if variant == "transformer" else 0)
    np.testing.assert_allclose(d.numeric(V)[0], want, rtol=1e-12, atol=1e-14)


def test_alpha_l_decides_the_regime():
    regime = {}
    for a in ("1/4", "1/2", "1"):
        blk, p = build("resnet", {"preset": "bordelon", "alphaL": a})
        regime[a] = derive(blk, 2, kappa=p["kappa"]).regime
    assert regime == {"1/4": "no-limit", "1/2": "ode", "1": "identity"}


def test_bad_preset_input_is_named(capsys):
    for given, named in (({"preset": "bordelon", "q": "1"}, "q set by the preset"),
                         ({"preset": "nope"}, "unknown preset"),
                         ({"preset": "bordelon", "alphaA": "1"}, "alphaA"),
                         ({"preset": "bordelon", "kappa": "1"}, "kappa"),
                         ({"preset": "bordelon", "alphaL": "-1"}, "alphaL")):
        with pytest.raises(CovsdeInputError, match=named):
            build("resnet", given)
    with pytest.raises(CovsdeInputError, match="alphaA = 1/2"):
        build("transformer", {"preset": "bordelon", "alphaA": "1/2"})
    assert main(["derive", "transformer", "--preset", "bordelon", "--set", "alphaA=1/2"]) == 2
    assert "m-dimensional integral" in capsys.readouterr().err


def test_mup_transformer_against_finite_networks(capsys):
    """The width-first Transformer (unshaped ReLU MLP, μP attention, β0 = 0.8, α_L = 1/2, d = n^(1/2)):
    networks at n = 64 and 256 (depth 8, 16; 200 each, exact sampler, seed 0) concentrate on its ODE
    and a drift × 1.25 is rejected (validate's ode target)."""
    V0 = [[1, 0.3, 0.1], [0.3, 0.8, 0.2], [0.1, 0.2, 1.2]]
    assert main(["validate", "transformer", "--preset", "bordelon", "--set", "beta0=0.8", "--V0", json.dumps(V0),
                 "--T", "1", "--widths", "64,256", "--samples", "200", "--quiet", "--format", "json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["verdict"] == "pass" and r["target"] == "ode" and r["time"] == "l/n^(1/2)"
    assert r["ode"]["per_width"]["256"]["depth"] == 16
    assert r["power"]["drift"] is not None and r["power"]["drift"] <= 0.25
