r"""Named parameterisations from the literature, mapped onto covsde's exponents.

``bordelon`` — Bordelon, Chaudhry & Pehlevan 2024, "Infinite limits of multi-head transformer dynamics"
(arXiv 2405.15712), at initialisation.  Their residual stream is

    h_{ℓ+1} = h_ℓ + β0 · L^{−α_L} · F_ℓ(h_ℓ),     ℓ = 0 … L − 1,

attention logits q·k / N^{α_A} (N the key/query width), unshaped activations (ReLU), and their limit
takes the width n → ∞ first, at fixed depth L, then L → ∞.  covsde's version of "width first" is a
depth d = L = n^κ with κ < 1 (d ≪ n: the width's fluctuations vanish on the depth's time scale); the
limit on t = ℓ/L is then the same for every κ in (0, 1) (a test checks two).  The mapping:

===================  =============================================================================
theirs               covsde
===================  =============================================================================
depth L              d = n^κ, ``kappa`` = κ (default 1/2), time t = ℓ/L
β0                   ``gamma`` (γ0; and ``gamma1``/``gamma2`` of the Transformer's two sublayers)
L^{−α_L}             n^{−κα_L}: ``q`` = κ·α_L
h_ℓ + …              ``lam`` = 1 (the stream is not shrunk)
ReLU, unshaped       ``p`` = 0, ``c_plus`` = 0, ``c_minus`` = −1
α_A = 1 (μP)         logits / n_k: τ = n_k = √n_k·n^{1/2}, so ``e`` = 1/2 with ``tau0`` = 1, softmax
                     attention without identity or centring (``centre`` = ``identity`` = false):
                     the softmax is 11ᵀ/m + O(n^{−1/2}), the sublayer averages the tokens
α_A = 1/2            O(1) random logits; the limit needs H → ∞ heads and the Gaussian expectation of
                     softmax(Y) V softmax(Y)ᵀ over the logits (an m-dimensional integral): refused
===================  =============================================================================

α_L = 1/2 gives an ODE in t = ℓ/L, α_L = 1 the identity (each layer moves V by O(L^{−2})), α_L < 1/2
no limit (V moves by O(1) in o(L) layers) — the classifier says which.
"""
from __future__ import annotations

import sympy as sp

from .errors import CovsdeInputError, NotSupported
from .symbols import exponent, value
from .variant_names import USES

BORDELON_NAMES = ("alphaA", "alphaL", "beta0")
ATTENTION_VARIANTS = ("attention", "standard-attention", "transformer")


def bordelon(variant: str, alphaA=None, alphaL=sp.Rational(1, 2), beta0=1, kappa=sp.Rational(1, 2)) -> dict:
    """covsde parameters (for :func:`covsde.derive.variants.build`) of Bordelon et al.'s
    parameterisation (see the module docstring); exponents are exact rationals (alphaA: default 1, only
    for the variants with attention)."""
    if variant not in USES:
        raise CovsdeInputError(f"the preset bordelon has no mapping for variant {variant!r} "
                               f"(known: {', '.join(USES)})")
    if variant not in ATTENTION_VARIANTS and alphaA is not None:
        raise CovsdeInputError(f"alphaA (the attention logits' exponent) does not apply to variant {variant!r}")
    aL = value("alphaL", alphaL, nonneg=True, number=True)
    aA = value("alphaA", 1 if alphaA is None else alphaA, nonneg=True, number=True)
    k = value("kappa", kappa, positive=True, number=True)
    if not k < 1:
        raise CovsdeInputError(f"kappa = {k}: the width-first limit of the preset bordelon needs depth ≪ width, "
                               "kappa in (0, 1)")
    b0 = value("beta0", beta0, nonneg=True)
    q = exponent("q = kappa·alphaL", sp.Rational(k * aL), f"{k}·{aL}")  # the branch exponent the preset sets
    full = {"p": 0, "c_plus": 0, "c_minus": -1, "gamma": b0, "lam": 1, "q": q, "kappa": k}
    if variant in ATTENTION_VARIANTS:
        if aA != 1:
            raise NotSupported(f"alphaA = {aA}: only alphaA = 1 (μP attention) is mapped; at alphaA = 1/2 the logits "
                               "are O(1) and the infinite-head limit needs the Gaussian expectation of "
                               "softmax(Y) V softmax(Y)ᵀ (an m-dimensional integral), which covsde does not carry yet")
        full.update({"e": sp.Rational(1, 2), "tau0": 1, "centre": False, "identity": False})
    return {name: v for name, v in full.items() if name in USES[variant]}  # the parameters the variant takes


PRESETS = {"bordelon": (bordelon, BORDELON_NAMES)}


def apply_preset(variant: str, given: dict) -> dict:
    """``given`` with ``preset`` = NAME replaced by the preset's parameters: the preset's own names
    (bordelon: alphaA, alphaL, beta0, and kappa) are consumed; a covsde parameter the preset sets may
    not also be given."""
    given = dict(given)
    name = str(given.pop("preset")).strip()
    if name not in PRESETS:
        raise CovsdeInputError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
    fn, names = PRESETS[name]
    kw = {k: given.pop(k) for k in (*names, "kappa") if k in given}
    mapped = fn(variant, **kw)
    clash = sorted(set(mapped) & set(given))
    if clash:
        raise CovsdeInputError(f"{', '.join(clash)} set by the preset {name} (from {', '.join(names)}): do not also "
                               "give it")
    return {**{k: str(v) if not isinstance(v, bool) else v for k, v in mapped.items()}, **given}
