"""covsde suite FILE.toml|quick|paper|paper-gpu [--out DIR] [--quiet]   (exit 1 if an entry fails)"""
from __future__ import annotations

from .common import out_folder

HELP = "run a suite of validations"


def add_arguments(p):
    p.add_argument("file")
    p.add_argument("--out", default=None)
    p.add_argument("--quiet", action="store_true")


def run(a):
    from ..validate.suite import entry_folder, load_suite, run_suite

    name, entries = load_suite(a.file)  # the whole file is checked before anything runs
    out = out_folder(a.out or f"suite-out/{name}")
    for e in entries:
        entry_folder(out, e["name"])
    out, rows = run_suite(a.file, out, progress=not a.quiet)
    print((out / "summary.md").read_text())
    print(f"wrote {out}/summary.md and summary.json")
    return 0 if all(r["verdict"] == "pass" for r in rows) else 1
