"""The named variants of the CLI and their parameters.

``build(variant, params)`` → (block, resolved params).  Variants:

* ``mlp``: LNR22 MLP, one DenseLayer (tracks the post-activation kernel Φ);
* ``resnet``: Residual(ResNetBranch(φ), γ, λ);
* ``attention``: Residual(Attention(τ0, e, heads, centre, identity), γ, λ) (``skip=false``: the bare
  attention layer X' = A X W^V/√n);
* ``standard-attention``: Attention(τ0 = 1, e = 0, identity = false, centre = false), with the
  residual skip unless ``skip=false``;
* ``transformer``: the shaped Transformer block (γ₁, λ₁), (γ₂, λ₂).
"""
from __future__ import annotations

import sympy as sp

from .activations import make_activation
from .blocks import Attention, DenseLayer, Residual, ResNetBranch, transformer_block
from .errors import CovsdeInputError
from .symbols import param

VARIANTS = ("mlp", "resnet", "attention", "standard-attention", "transformer")
NAMES = ("c_plus", "c_minus", "p", "activation", "a", "gamma", "lam", "gamma1", "lam1", "gamma2", "lam2",
         "tau0", "e", "heads", "centre", "identity", "skip")
DEFAULTS = {"c_plus": 0, "c_minus": -1, "p": sp.Rational(1, 2), "activation": "relu", "a": 1,
            "e": sp.Rational(1, 2), "heads": 1, "centre": True, "identity": True, "skip": True}
BOOLS = ("centre", "identity", "skip")
# which names each variant uses (others are refused as inconsistent)
USES = {
    "mlp": {"c_plus", "c_minus", "p", "activation", "a"},
    "resnet": {"c_plus", "c_minus", "p", "activation", "a", "gamma", "lam"},
    "attention": {"gamma", "lam", "tau0", "e", "heads", "centre", "identity", "skip"},
    "standard-attention": {"gamma", "lam", "tau0", "e", "heads", "centre", "identity", "skip"},
    "transformer": {"c_plus", "c_minus", "p", "activation", "a", "gamma", "lam", "gamma1", "lam1", "gamma2", "lam2",
                    "tau0", "e", "heads", "centre", "identity"},
}


def parse_value(name: str, text):
    """Parse one --set value; raises CovsdeInputError naming the bad value."""
    if name not in NAMES:
        raise CovsdeInputError(f"unknown parameter name {name!r} (known: {', '.join(NAMES)})")
    if not isinstance(text, str):
        return sp.nsimplify(text) if not isinstance(text, bool) else text
    t = text.strip()
    if name in BOOLS:
        if t.lower() in ("true", "1", "yes"):
            return True
        if t.lower() in ("false", "0", "no"):
            return False
        raise CovsdeInputError(f"{name}={text!r} must be true or false")
    if name == "activation":
        return t
    try:
        v = sp.sympify(t, rational=True)
    except (sp.SympifyError, SyntaxError, TypeError, ValueError):
        raise CovsdeInputError(f"{name}={text!r} is not a number or expression") from None
    if v.has(sp.nan) or v.has(sp.zoo) or v.has(sp.oo) or v.has(-sp.oo):
        raise CovsdeInputError(f"{name}={text!r} is not finite")
    if v.is_number and not v.is_real:
        raise CovsdeInputError(f"{name}={text!r} is not real")
    if name == "heads" and not (v.is_integer and v >= 1):
        raise CovsdeInputError(f"heads={text!r} must be an integer ≥ 1")
    return v


def resolve(variant: str, given: dict) -> dict:
    """Defaults + given values, checked for the variant."""
    if variant not in VARIANTS:
        raise CovsdeInputError(f"unknown variant {variant!r} (known: {', '.join(VARIANTS)})")
    vals = {}
    for k, v in given.items():
        vals[k] = parse_value(k, v)
        if k not in USES[variant]:
            raise CovsdeInputError(f"parameter {k!r} does not apply to variant {variant!r}")
    out = {k: v for k, v in DEFAULTS.items() if k in USES[variant]}
    if variant == "standard-attention":
        out.update({"tau0": 1, "e": 0, "centre": False, "identity": False})
    out.update(vals)
    for k in ("tau0",):
        if k in out and out[k] is not None and sp.sympify(out[k]).is_number and out[k] <= 0:
            raise CovsdeInputError(f"tau0 must be > 0, got tau0={out[k]}")
    for k in ("gamma", "gamma1", "gamma2", "lam", "lam1", "lam2"):
        if k in out and sp.sympify(out[k]).is_number and out[k] < 0:
            raise CovsdeInputError(f"{k} must be ≥ 0, got {k}={out[k]}")
    if "a" in out and sp.sympify(out["a"]).is_number and out["a"] <= 0:
        raise CovsdeInputError(f"a must be > 0, got a={out['a']}")
    if "p" in out and sp.sympify(out["p"]).is_number and out["p"] < 0:
        raise CovsdeInputError(f"p must be ≥ 0, got p={out['p']}")
    if "e" in out and sp.sympify(out["e"]).is_number and out["e"] < 0:
        raise CovsdeInputError(f"e must be ≥ 0, got e={out['e']}")
    return out


def build(variant: str, given: dict | None = None):
    """(block, params) for a CLI variant name and --set values (strings or numbers)."""
    p = resolve(variant, given or {})
    act = None
    if "activation" in p:
        act = make_activation(p["activation"], p["c_plus"], p["c_minus"], p["p"], p["a"])
    g = p.get("gamma", param("gamma"))
    lam = p.get("lam")
    if variant == "mlp":
        return DenseLayer(act), p
    if variant == "resnet":
        return Residual(ResNetBranch(act), g, lam), p
    if variant in ("attention", "standard-attention"):
        att = Attention(p.get("tau0", param("tau0")), p["e"], p["heads"], p["centre"], p["identity"])
        if not p["skip"]:
            if "gamma" in given or "lam" in given:
                raise CovsdeInputError("gamma/lam are inconsistent with skip=false (no residual branch)")
            return att, p
        return Residual(att, g, lam), p
    g1 = p.get("gamma1", g)
    g2 = p.get("gamma2", g)
    l1 = p.get("lam1", lam)
    l2 = p.get("lam2", lam if "gamma2" not in p else None)
    blk = transformer_block(act, g1, l1, g2, l2, p.get("tau0", param("tau0")), p["e"], p["heads"], p["centre"],
                            p["identity"])
    return blk, p
