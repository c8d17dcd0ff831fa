"""The matrix-level engine (m symbolic) against the per-entry reference engine, and its printed formula
against the shaped-attention drift derived by hand.

The per-entry engine (``engine="entries"``) runs the same expansion on SymPy matrices of one m, with its
own entry-wise Wick rules; the matrix engine's result, instantiated at that m, must equal it — symbolically
at m ≤ 4 for every CLI variant; at m = 16 against the per-entry expansion run in numbers at a random V."""
import json
import re

import numpy as np
import pytest
import sympy as sp

from covsde.cli import main
from covsde.derive import derive
from covsde.derive.engine import derive_at
from covsde.derive.evaluate import sigma_from_groups
from covsde.derive.variants import build

VARIANTS = [("mlp", {}), ("mlp", {"activation": "tanh"}), ("resnet", {}), ("resnet", {"c_plus": "0.3"}),
            ("attention", {}), ("attention", {"heads": "2"}), ("attention", {"identity": "false"}),
            ("transformer", {}), ("transformer", {"activation": "sin", "heads": "2"})]


def _zero(expr):
    expr = sp.expand(expr)
    return expr == 0 or sp.simplify(expr) == 0


@pytest.mark.parametrize("variant,given", VARIANTS, ids=[f"{v}-{'-'.join(g.values()) or 'default'}" for v, g in VARIANTS])
def test_matrix_form_equals_the_per_entry_engine_symbolically(variant, given):
    block = build(variant, given)[0]
    for m in (1, 2, 3, 4):
        d, e = derive(block, m, use_cache=False), derive(block, m, use_cache=False, engine="entries")
        assert d.regime == e.regime and d.reason.split("(ΔV")[0] == e.reason.split("(ΔV")[0], (m, d.reason, e.reason)
        if not d.has_limit:
            continue
        assert d.matrix is not None and e.matrix is None
        assert all(_zero(x) for x in d.drift - e.drift), (variant, m)
        assert all(_zero(d.diffusion[k] - e.diffusion[k]) for k in e.diffusion), (variant, m)


def test_transformer_at_m4_numerically_with_numbers_for_parameters():
    """m = 4, γ given as a number and τ0 at run time: the two engines' numeric views agree."""
    block = build("transformer", {"gamma": "1/2"})[0]
    d, e = derive(block, 4, use_cache=False), derive(block, 4, use_cache=False, engine="entries")
    assert all(_zero(x) for x in d.drift - e.drift)
    rng = np.random.default_rng(3)
    A = rng.normal(size=(4, 4))
    V = A @ A.T / 4 + np.eye(4)
    (b1, S1), (b2, S2) = d.numeric(V, {"tau0": 0.8}), e.numeric(V, {"tau0": 0.8})
    np.testing.assert_allclose(b1, b2, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(S1, S2, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("variant,given", VARIANTS, ids=[f"{v}-{'-'.join(g.values()) or 'default'}" for v, g in VARIANTS])
def test_matrix_form_numerically_at_m16(variant, given):
    """b and Σ at a random V of size 16 equal those of the per-entry expansion run in numbers at that V
    (``derive_at``: the entry-wise Wick rules, no symbols; Σ from each engine's structured noise)."""
    block = build(variant, {**given, "gamma": "0.6", **({"tau0": "0.8"} if variant in ("attention", "transformer") else {})}
                  if variant != "mlp" else given)[0]
    d = derive(block, 16, use_cache=False)
    rng = np.random.default_rng(16)
    A = rng.normal(size=(16, 16))
    V = A @ A.T / 16 + np.eye(16) * rng.uniform(0.3, 1.5)
    e = derive_at(block, V)
    assert d.regime == e.regime
    if not d.has_limit:
        return
    (b1, g1), (b2, g2) = d.numeric_fn()(V), e.numeric_fn()(V)
    np.testing.assert_allclose(b1, b2, rtol=1e-10, atol=1e-12 * np.abs(b2).max())
    np.testing.assert_allclose(sigma_from_groups(g1, V), sigma_from_groups(g2, V), rtol=1e-10, atol=1e-12)


# ---- the printed shaped-attention drift ----------------------------------------------------------------
def attention_drift_by_hand(V, gamma, tau0):
    r"""X' = λX + γ A X W/√n, A = I + Softmax(S) − J, S = εẐ/τ0 with Cov(S_ab, S_cd) = V_ac V_bd/τ0².
    Softmax(S) = J + SP/m + ((SP)∘(SP))P/(2m) + O(S³) (facts.md), so to order ε², with Δ₁ = SP/m and
    Δ₂ = ((SP)∘(SP))P/(2m):  b = γ²(E[Δ₁VΔ₁ᵀ] + E[Δ₂]V + VE[Δ₂]ᵀ).  Wick: E[S M Sᵀ] = tr(V Mᵀ)V/τ0²
    gives tr(Ṽ²)V/m² with Ṽ = PVP; E[(SP)∘(SP)] = dg(V) dg(Ṽ)ᵀ/τ0² gives E[Δ₂] = d d̃ᵀP/(2mτ0²), d = diag V,
    d̃ = diag Ṽ.  Hence  b = γ²/τ0² [(d uᵀ + u dᵀ)/(2m) + tr(Ṽ²) V/m²],  u = V P d̃."""
    m = V.shape[0]
    P = np.eye(m) - np.ones((m, m)) / m
    Vt = P @ V @ P
    d, dt = np.diag(V), np.diag(Vt)
    u = V @ P @ dt
    return gamma**2 / tau0**2 * ((np.outer(d, u) + np.outer(u, d)) / (2 * m) + np.trace(Vt @ Vt) * V / m**2)


def _parse_word(text, V):
    """Evaluate a word of the JSON terms: atoms V, J, I, dg(word), (word ∘ word), separated by spaces."""
    m = V.shape[0]
    tokens = re.findall(r"dg\(|\(|\)|∘|V|J|I", text)
    pos = 0

    def word():
        out = np.eye(m)
        while pos < len(tokens) and tokens[pos] not in (")", "∘"):
            out = out @ atom()
        return out

    def atom():
        nonlocal pos
        t = tokens[pos]
        pos += 1
        if t == "V":
            return V
        if t == "J":
            return np.ones((m, m)) / m
        if t == "I":
            return np.eye(m)
        if t == "dg(":
            x = word()
            pos += 1
            return np.diag(np.diag(x))
        x = word()
        assert tokens[pos] == "∘"
        pos += 1
        y = word()
        pos += 1
        return x * y

    out = word()
    assert pos == len(tokens), text
    return out


def _evaluate_terms(terms, V, values):
    m = V.shape[0]
    sub = {sp.Symbol(k): v for k, v in values.items()}
    sub[sp.Symbol("m")] = m
    total = np.zeros((m, m))
    for t in terms:
        c = float(sp.parse_expr(t["coef"], local_dict={str(k): k for k in sub}).subs(sub))
        for w in t["traces"]:
            c *= np.trace(_parse_word(w, V))
        total += c * _parse_word(t["word"], V)
    return total


def test_attention_latex_is_one_matrix_formula_equal_to_the_hand_derivation(capsys):
    assert main(["derive", "attention", "--format", "latex"]) == 0
    tex = capsys.readouterr().out.splitlines()
    assert tex[0].startswith("b(V) = ") and "V_{0" not in tex[0] and r"\operatorname{tr}" in tex[0]
    assert main(["derive", "attention", "--format", "json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["matrix"]["latex"]["drift"] == tex[0][len("b(V) = "):]  # the printed formula is this expression
    rng = np.random.default_rng(5)
    for m in (2, 5, 9):
        A = rng.normal(size=(m, m))
        V = A @ A.T / m + np.eye(m) * 0.4
        got = _evaluate_terms(js["matrix"]["drift_terms"], V, {"gamma": 0.6, "tau0": 1.3})
        want = attention_drift_by_hand(V, 0.6, 1.3)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)
        # negative control: one term off by 25 % is seen
        bad = [dict(t, coef=f"5/4*({t['coef']})") if k == 1 else t for k, t in enumerate(js["matrix"]["drift_terms"])]
        assert not np.allclose(_evaluate_terms(bad, V, {"gamma": 0.6, "tau0": 1.3}), want, rtol=1e-6, atol=1e-9)


def test_attention_drift_at_m16_equals_the_hand_derivation():
    d = derive(build("attention")[0], 16)
    rng = np.random.default_rng(160)
    for _ in range(3):
        A = rng.normal(size=(16, 16))
        V = A @ A.T / 16 + np.eye(16) * rng.uniform(0.3, 1.5)
        b, _ = d.numeric_fn()(V, {"gamma": 0.7, "tau0": 0.9})
        np.testing.assert_allclose(b, attention_drift_by_hand(V, 0.7, 0.9), rtol=1e-10, atol=1e-12)


def test_the_derivation_does_not_depend_on_m():
    """The matrix-level result of the Transformer is the same expression at m = 2 and m = 128 (m enters only
    as a symbol), so its cost cannot grow with m (the timings are benchmarks/bench_derive.py's)."""
    block = build("transformer")[0]
    d2, d128 = derive(block, 2, use_cache=False), derive(block, 128, use_cache=False)
    assert d2.regime == d128.regime == "sde"
    assert d2.matrix.drift == d128.matrix.drift
    assert [[(t.coef, t.A, t.T, t.B) for t in g.terms] for g in d2.matrix.noise] == \
        [[(t.coef, t.A, t.T, t.B) for t in g.terms] for g in d128.matrix.noise]


def test_json_omits_per_entry_keys_beyond_the_limit_and_keeps_the_matrix_section(capsys):
    assert main(["derive", "resnet", "--m", "64", "--format", "json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["drift"] is None and js["diffusion"] is None and "COVSDE_MAX_M_ENTRIES" in js["per_entry"]
    assert js["matrix"]["drift_terms"] and js["regime"] == "sde"
    assert main(["derive", "resnet", "--m", "3", "--format", "json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert len(js["drift"]) == 3 and "per_entry" not in js and js["matrix"]["noise_terms"]
