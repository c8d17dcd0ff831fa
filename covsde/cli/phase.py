"""covsde phase VARIANT --x NAME=LO:HI --y NAME=LO:HI [--steps K] [--m M] [--set ...] --out DIR [--force]:
the regime over a grid of two exponents, as DIR/phase.json and DIR/phase.png."""
from __future__ import annotations

import re
from fractions import Fraction

from .common import M_HELP, VARIANT_HELP, UsageError, out_folder, out_folder_name, parse_m, variant_params

HELP = "the regime over a grid of two scaling exponents"
EXAMPLES = ('  covsde phase resnet --x q=0:1 --y p=0:1 --steps 9 --out phase-resnet\n')
COLORS = {"sde": "#1b9e77", "ode": "#7570b3", "identity": "#bdbdbd", "no-limit": "#d95f02", "unsupported": "#ffffff"}


def add_arguments(p):
    p.add_argument("variant", help=VARIANT_HELP)
    p.add_argument("--x", required=True, metavar="NAME=LO:HI",
                   help="the horizontal axis: an exponent (p, q, e, kappa; with --preset bordelon also alphaL, "
                        "alphaA) from LO to HI, numbers or fractions, e.g. q=0:1")
    p.add_argument("--y", required=True, metavar="NAME=LO:HI", help="the vertical axis, like --x, e.g. p=0:1")
    p.add_argument("--steps", default="9", help="grid points per axis (an integer ≥ 2; default: 9)")
    p.add_argument("--m", default=None, help=M_HELP.format(default="2"))
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a fixed parameter as NAME=VALUE, repeatable (the names of covsde derive)")
    p.add_argument("--preset", default=None, metavar="NAME",
                   help="a named parameterisation (bordelon); its exponents (alphaL, alphaA) can be axes (default: none)")
    p.add_argument("--out", required=True, metavar="DIR", help="the folder for phase.json and phase.png")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs (default: refuse)")


def parse_axis(flag, text):
    mt = re.fullmatch(r"\s*([A-Za-z_]+)\s*=\s*([^:]+):([^:]+)\s*", text)
    if not mt:
        raise UsageError(f"{flag} expects NAME=LO:HI (e.g. q=0:1), got {text!r}")
    return mt.group(1), mt.group(2).strip(), mt.group(3).strip()


def plot(table, path):
    """A labelled map of the regimes; the shaped Transformer's point marked when on the axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    xn, yn = table["x"]["name"], table["y"]["name"]
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    k = table["steps"]
    xs = [float(Fraction(p[xn])) for p in table["points"]]
    ys = [float(Fraction(p[yn])) for p in table["points"]]
    dx = (max(xs) - min(xs)) / (k - 1)
    dy = (max(ys) - min(ys)) / (k - 1)
    for x, y, pt in zip(xs, ys, table["points"]):
        ax.add_patch(plt.Rectangle((x - dx / 2, y - dy / 2), dx, dy, color=COLORS[pt["regime"]], ec="white"))
    mark = table.get("shaped_transformer")
    if mark:
        ax.plot(float(Fraction(mark[xn])), float(Fraction(mark[yn])), "k*", ms=14,
                label="shaped Transformer")
    ax.set_xlim(min(xs) - dx / 2, max(xs) + dx / 2)
    ax.set_ylim(min(ys) - dy / 2, max(ys) + dy / 2)
    ax.set_xlabel(xn)
    ax.set_ylabel(yn)
    seen = sorted({p["regime"] for p in table["points"]})
    ax.legend(handles=[Patch(color=COLORS[r], label=r) for r in seen]
              + ([ax.lines[0]] if mark else []), loc="upper left", bbox_to_anchor=(1.01, 1))
    fixed = ", ".join(f"{k}={v}" for k, v in table["fixed"].items())
    ax.set_title(f"{table['variant']}: regime by ({xn}, {yn})" + (f"; {fixed}" if fixed else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(a):
    from pathlib import Path

    from ..derive.phase import phase_diagram

    x, y = parse_axis("--x", a.x), parse_axis("--y", a.y)
    m = parse_m(a.m if a.m is not None else "2")
    given = variant_params(a)
    out = Path(out_folder_name(a.out))
    for f in ("phase.json", "phase.png"):
        if (out / f).exists() and not a.force:
            raise FileExistsError(f"{out / f} exists (use --force to overwrite)")
    out_folder(out)
    table = phase_diagram(a.variant, x, y, steps=a.steps, given=given, m=m)
    from ..common.cache import write_json

    write_json(out / "phase.json", table)
    plot(table, out / "phase.png")
    counts = {}
    for p in table["points"]:
        counts[p["regime"]] = counts.get(p["regime"], 0) + 1
    print(f"wrote {out}/phase.json and {out}/phase.png ({len(table['points'])} points in {table['seconds']:.1f} s: "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ")")
    return 0

