"""covsde reproduce NAME [--out DIR] [--quick] [--force]: a published figure, as PNG + JSON."""
from __future__ import annotations

from .common import UsageError, out_folder

HELP = "reproduce a published figure"
EXAMPLES = ('  covsde reproduce rank-collapse --quick\n')
# covsde.reproduce.FIGURES, written out so that `covsde --help` stays light (tests/cli/test_help.py compares)
FIGURE_NAMES = ("rank-collapse", "mlp-density", "transformer-density", "explosion", "tau-sweep", "gamma-sweep",
                "shaped-training")


def add_arguments(p):
    p.add_argument("name", metavar="NAME", help="the figure: " + ", ".join(FIGURE_NAMES))
    p.add_argument("--out", default=None, metavar="DIR",
                   help="the folder for NAME.png and NAME.json (default: reproduce-out/NAME)")
    p.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke test (default: off)")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs (default: refuse)")


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
