"""covsde derive VARIANT [--m M] [--set NAME=VALUE ...] [--format text|latex|json] [--per-entry]
[--engine matrix|entries] [--no-cache]"""
from __future__ import annotations

import json

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


def run(a):
    from ..derive import derive
    from ..derive.variants import build

    m = parse_m(a.m if a.m is not None else "2")
    block, params = build(a.variant, variant_params(a))
    res = derive(block, m, use_cache=not a.no_cache, name=a.variant, engine=a.engine, kappa=params.get("kappa", 1))
    if a.format == "json":
        print(json.dumps(res.to_json(a.variant, params)))
    elif a.format == "latex":
        print(res.latex(per_entry=a.per_entry))
    else:
        print(res.text(per_entry=a.per_entry))
    return 0
