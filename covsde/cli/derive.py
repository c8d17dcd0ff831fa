"""covsde derive VARIANT [--m M] [--set NAME=VALUE ...] [--format text|latex|json] [--per-entry]
[--engine matrix|entries] [--no-cache] [--at V]"""
from __future__ import annotations

import json

import numpy as np

from ..common.errors import CovsdeInputError

from .common import add_variant_arguments, parse_m, variant_params

HELP = "derive drift and diffusion"
EXAMPLES = ('  covsde derive transformer --m 3 --format json\n'
            '  covsde derive attention --set gamma=0.35 --set tau0=1\n'
            '  covsde derive resnet --set p=0 --set q=1/2\n')


def add_arguments(p):
    add_variant_arguments(p)
    p.add_argument("--format", choices=["text", "latex", "json"], default="text",
                   help="text: b(V) and the noise N(V) as matrix formulas; latex: the same as LaTeX; json: the "
                        "machine-readable result (the derive schema in the docs; default: text)")
    p.add_argument("--per-entry", action="store_true",
                   help="text/latex: b and Σ entry by entry for this m instead of the matrix formula (m ≤ 16; "
                        "default: off)")
    p.add_argument("--engine", choices=["matrix", "entries"], default="matrix",
                   help="matrix: m symbolic (default); entries: the per-entry reference engine (m ≤ 16)")
    p.add_argument("--no-cache", action="store_true",
                   help="derive again instead of reading the on-disk cache (COVSDE_CACHE_DIR, default "
                        "~/.cache/covsde; default: use it)")
    p.add_argument("--at", metavar="V",
                   help="also evaluate b (and Σ for regime sde) at this m×m symmetric positive-definite V: a JSON "
                        "matrix such as '[[1,0.3],[0.3,0.8]]', or @FILE.json / @FILE.npy as --V0 takes; the "
                        "parameters must be numbers (--set); JSON output gains \"at\": {\"V\", \"drift\", "
                        "\"diffusion\" keyed \"a,b;c,d\"}, text/latex a line per matrix")


def run(a):
    from ..derive import derive
    from ..derive.variants import build

    m = parse_m(a.m if a.m is not None else "2")
    block, params = build(a.variant, variant_params(a))
    res = derive(block, m, use_cache=not a.no_cache, name=a.variant, engine=a.engine, kappa=params.get("kappa", 1))
    at = _at(a.at, res) if a.at is not None else None
    if a.format == "json":
        out = res.to_json(a.variant, params)
        if at is not None:
            out["at"] = at
        print(json.dumps(out))
        return 0
    if at is not None:
        print("at V = " + json.dumps(at["V"]) + ": drift = " + json.dumps(at["drift"]))
    elif a.format == "latex":
        print(res.latex(per_entry=a.per_entry))
    else:
        print(res.text(per_entry=a.per_entry))
    return 0


def _at(text, res):
    """{"V", "drift"[, "diffusion"]} at the --at matrix (read as --V0 is: JSON or @FILE), checked: its size
    is the derivation's m; symmetric, finite, positive definite; the parameters are numbers."""
    from .common import UsageError, parse_V0

    try:
        V = parse_V0(text)
    except UsageError as exc:
        raise UsageError(str(exc).replace("--V0", "--at")) from None
    except CovsdeInputError as exc:
        raise CovsdeInputError("--at: " + str(exc).replace("V0", "V")) from None
    if V.shape[0] != res.m:
        raise CovsdeInputError(f"--at: V is {V.shape[0]}×{V.shape[0]} but the derivation has m = {res.m} (use --m)")
    if not res.has_limit:
        raise CovsdeInputError(f"--at: regime {res.regime}, no drift to evaluate: {res.reason}")
    b, Sig = res.numeric(V, {})
    out = {"V": V.tolist(), "drift": np.asarray(b, dtype=float).tolist()}
    if res.regime == "sde":
        pairs = [(i, j) for i in range(res.m) for j in range(i, res.m)]
        out["diffusion"] = {f"{i},{j};{k},{l}": float(Sig[i, j, k, l]) for i, j in pairs for k, l in pairs}
    return out
