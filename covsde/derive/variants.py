"""The named variants of the CLI and their parameters.

``build(variant, params)`` → (block, resolved params).  Variants:

* ``mlp``: LNR22 MLP, one DenseLayer (tracks the post-activation kernel Φ);
* ``resnet``: Residual(ResNetBranch(φ), γ, λ);
* ``attention``: Residual(Attention(τ0, e, heads, centre, identity), γ, λ) (``skip=false``: the bare
  attention layer X' = A X W^V/√n);
* ``standard-attention``: Attention(τ0 = 1, e = 0, identity = false, centre = false), with the
  residual skip unless ``skip=false``;
* ``transformer``: the shaped Transformer block (γ₁, λ₁), (γ₂, λ₂).

Exponents: ``q`` (residual branches γ = γ0·n^(−q), default 0) and ``kappa`` (depth d = T·n^κ, the
time t = ℓ/n^κ, default 1; not a block parameter: pass ``params["kappa"]`` to ``derive``).
"""
from __future__ import annotations

import sympy as sp

from .activations import make_activation
from .blocks import Attention, DenseLayer, Residual, ResNetBranch, transformer_block, with_norm
from .errors import CovsdeInputError
from .symbols import param, show, value
from .variant_names import USES, VARIANTS  # noqa: F401 - re-exported

NAMES = ("c_plus", "c_minus", "p", "activation", "a", "gamma", "lam", "gamma1", "lam1", "gamma2", "lam2",
         "tau0", "e", "heads", "centre", "identity", "skip", "q", "kappa", "mask", "layout", "mlp", "norm")
DEFAULTS = {"c_plus": 0, "c_minus": -1, "p": sp.Rational(1, 2), "activation": "relu", "a": 1,
            "e": sp.Rational(1, 2), "heads": 1, "centre": True, "identity": True, "skip": True}
BOOLS = ("centre", "identity", "skip")


POSITIVE = ("tau0", "a")
CHOICES = {"layout": ("sequential", "parallel"), "mlp": ("plain", "swiglu", "geglu"),
           "norm": ("none", "pre-rms", "pre-ln", "post-rms", "post-ln")}
# the gates' φ, scaled so that φ(0) = 0, φ'(0) = 1 (then shaped at p like any smooth activation)
GATES = {"swiglu": "2*x/(1 + exp(-x))", "geglu": "x*(1 + erf(x/sqrt(2)))"}
NONNEGATIVE = ("gamma", "gamma1", "gamma2", "lam", "lam1", "lam2", "p", "e", "q")
NUMBERS = ("p", "e", "heads", "q", "kappa")  # exponents and counts: never symbolic


def parse_bool(name: str, text) -> bool:
    if isinstance(text, bool):
        return text
    t = str(text).strip().lower()
    if t in ("true", "1", "yes"):
        return True
    if t in ("false", "0", "no"):
        return False
    raise CovsdeInputError(f"{name}={text!r} must be true or false")


def parse_value(name: str, text):
    """Parse one --set value (text, or a number from a suite file or the Python API) without
    evaluating code; raises CovsdeInputError naming the bad value."""
    if name not in NAMES:
        raise CovsdeInputError(f"unknown parameter name {name!r} (known: {', '.join(NAMES)})")
    if name in BOOLS:
        return parse_bool(name, text)
    if name == "activation":
        if not isinstance(text, str):
            raise CovsdeInputError(f"activation={text!r} must be text: relu, tanh, sin or an expression in x")
        if text.strip() != "relu":  # parsed (safely) now; the shaping conditions (p > 0) when built
            from .kernelmaps import parse_activation

            parse_activation(text.strip())
        return text.strip()
    if name == "kappa":
        from .engine import check_kappa

        return check_kappa(text)
    if name in CHOICES:
        t = str(text).strip().lower()
        if t not in CHOICES[name]:
            raise CovsdeInputError(f"{name}={text!r}: expected one of {', '.join(CHOICES[name])}")
        return t
    if name == "mask":
        from .masks import make_mask

        return make_mask(text)
    if name == "heads":
        from .blocks import heads_value

        return heads_value(text)
    return value(name, text, positive=name in POSITIVE, nonneg=name in NONNEGATIVE, number=name in NUMBERS)


def resolve(variant: str, given: dict) -> dict:
    """Defaults + given values, checked for the variant."""
    if variant not in VARIANTS:
        raise CovsdeInputError(f"unknown variant {variant!r} (known: {', '.join(VARIANTS)})")
    if not isinstance(given, dict):
        raise CovsdeInputError(f"parameters must be a table NAME = VALUE, got {given!r}")
    vals = {}
    for k, v in given.items():
        vals[k] = parse_value(k, v)
        if k not in USES[variant]:
            raise CovsdeInputError(f"parameter {k!r} does not apply to variant {variant!r}")
    out = {k: v for k, v in DEFAULTS.items() if k in USES[variant]}
    if variant == "standard-attention":
        out.update({"tau0": 1, "e": 0, "centre": False, "identity": False})
    out.update(vals)
    for g, lam in (("gamma", "lam"), ("gamma1", "lam1"), ("gamma2", "lam2")):
        x = vals.get(g)
        if x is not None and x.is_number and x > 1 and lam not in vals and "lam" not in vals:
            raise CovsdeInputError(f"{g} = {show(given[g])} > 1 makes λ = √(1 − γ²) imaginary: give {lam} "
                                   f"explicitly or choose {g} ≤ 1")
    return out


def build(variant: str, given: dict | None = None):
    """(block, params) for a CLI variant name and --set values (strings or numbers); ``given["preset"]``
    names a parameterisation of :mod:`.presets` (its own names, e.g. alphaL, are then accepted)."""
    given = {} if given is None else given
    if isinstance(given, dict) and "preset" in given:
        from .presets import apply_preset

        given = apply_preset(variant, given)
    p = resolve(variant, given)
    act = None
    if p.get("mlp", "plain") != "plain":
        if "activation" in given:
            raise CovsdeInputError(f"activation is set by mlp={p['mlp']} (φ = {GATES[p['mlp']]}); do not also give it")
        p["activation"] = GATES[p["mlp"]]
    if p.get("layout") == "parallel":
        clash = sorted(k for k in ("gamma1", "lam1", "gamma2", "lam2") if k in given)
        if clash:
            raise CovsdeInputError(f"{', '.join(clash)}: layout=parallel has one residual branch (give gamma, lam)")
    if "activation" in p:
        if str(p["activation"]).strip() != "relu":
            given_relu = sorted(k for k in ("c_plus", "c_minus") if k in given)
            if given_relu:
                raise CovsdeInputError(f"{', '.join(given_relu)} apply to activation=relu only, not "
                                       f"activation={p['activation']!r}")
        act = make_activation(p["activation"], p["c_plus"], p["c_minus"], p["p"], p["a"])
    g = p.get("gamma", param("gamma"))
    lam = p.get("lam")
    if variant == "mlp":
        return DenseLayer(act), p
    q = p.get("q", 0)
    if variant == "resnet":
        return with_norm(Residual(ResNetBranch(act), g, lam, q=q), p.get("norm")), p
    if variant in ("attention", "standard-attention"):
        att = Attention(p.get("tau0", param("tau0")), p["e"], p["heads"], p["centre"], p["identity"], p.get("mask"))
        if not p["skip"]:
            if "gamma" in given or "lam" in given:
                raise CovsdeInputError("gamma/lam are inconsistent with skip=false (no residual branch)")
            if p.get("norm", "none") != "none":
                raise CovsdeInputError("norm applies to a residual block: it is inconsistent with skip=false")
            return att, p
        return with_norm(Residual(att, g, lam, q=q), p.get("norm")), p
    g1 = p.get("gamma1", g)
    g2 = p.get("gamma2", g)
    l1 = p.get("lam1", lam)
    l2 = p.get("lam2", lam if "gamma2" not in p else None)
    blk = transformer_block(act, g1, l1, g2, l2, p.get("tau0", param("tau0")), p["e"], p["heads"], p["centre"],
                            p["identity"], q=q, mask=p.get("mask"), layout=p.get("layout", "sequential"),
                            mlp="plain" if p.get("mlp", "plain") == "plain" else "gated", norm=p.get("norm"))
    return blk, p
