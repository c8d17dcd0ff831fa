"""covsde derive VARIANT [--m M] [--set NAME=VALUE ...] [--format text|latex|json] [--per-entry]
[--engine matrix|entries] [--no-cache]"""
from __future__ import annotations

import json

from .common import add_variant_arguments, parse_m, variant_params

HELP = "derive drift and diffusion"


def add_arguments(p):
    add_variant_arguments(p)
    p.add_argument("--format", choices=["text", "latex", "json"], default="text")
    p.add_argument("--per-entry", action="store_true",
                   help="text/latex: b and Σ entry by entry for this m instead of the matrix formula")
    p.add_argument("--engine", choices=["matrix", "entries"], default="matrix",
                   help="matrix: m symbolic (default); entries: the per-entry reference engine (m ≤ 16)")
    p.add_argument("--no-cache", action="store_true")


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
