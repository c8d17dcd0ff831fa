"""covsde demo [--out DIR] [--force] [--quick]: the end-to-end demo, report in DIR/report.md."""
from __future__ import annotations

from pathlib import Path

from .common import out_folder_name, out_folder

HELP = "the end-to-end demo"
EXAMPLES = ('  covsde demo --out demo-out\n')


def add_arguments(p):
    p.add_argument("--out", default="demo-out", metavar="DIR",
                   help="the folder for report.md, report.json and the plots (default: demo-out)")
    p.add_argument("--force", action="store_true", help="write into a folder that is not empty (default: refuse)")
    p.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke test (default: off)")


def run(a):
    from ..demo import run_demo

    out = Path(out_folder_name(a.out))
    if out.is_dir() and any(out.iterdir()) and not a.force:
        raise FileExistsError(f"{out} exists and is not empty (use --force to overwrite)")
    out_folder(out)
    return run_demo(out, force=True, quick=a.quick)
