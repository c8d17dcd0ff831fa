"""covsde reproduce NAME [--out DIR] [--quick] [--force]: a published figure, as PNG + JSON."""
from __future__ import annotations

from .common import UsageError, out_folder

HELP = "reproduce a published figure"


def add_arguments(p):
    p.add_argument("name")
    p.add_argument("--out", default=None)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--force", action="store_true")


def run(a):
    from ..reproduce import FIGURES, outputs_exist, reproduce

    if a.name not in FIGURES:
        raise UsageError(f"unknown reproduction {a.name!r} (known: {', '.join(FIGURES)})")
    out = a.out if a.out is not None else f"reproduce-out/{a.name}"
    clash = outputs_exist(a.name, out)
    if clash and not a.force:
        raise FileExistsError(f"{clash} exists (use --force to overwrite)")
    out_folder(out)
    data, out = reproduce(a.name, out, a.quick, force=True)
    print(f"wrote {out}/{a.name}.png and {out}/{a.name}.json ({data['seconds']:.1f} s)")
    return 0
