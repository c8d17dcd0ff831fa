"""Suites: a TOML list of validations, resumable, with a summary table.

    [defaults]            # any entry key, applied to every entry
    T = 0.75
    V0 = [[1.0, 0.2], [0.2, 1.0]]
    widths = [50, 100, 200]
    samples = 2000
    [[entry]]
    name = "attention"    # unique; the entry's folder under --out
    variant = "attention"
    set = { gamma = "0.35355339", tau0 = "1" }

Entry keys: name, variant, set, m, T, V0, widths, samples, seed, backend, device, dtype, power,
onestep_samples.
Each entry writes DIR/<name>/report.json and its plots; an entry whose report.json exists is
skipped on a rerun, so an interrupted suite loses nothing.  DIR gets summary.md and summary.json
(one row per entry: verdict, power δ, smallest p-value, time).  Shipped suites: ``quick``, ``paper``.
"""
from __future__ import annotations

import json
import re
import sys
import time
import tomllib
from pathlib import Path

from ..derive.errors import CovsdeInputError

KEYS = {"name", "variant", "set", "m", "T", "V0", "widths", "samples", "seed", "backend", "device", "dtype", "power",
        "onestep_samples"}
SHIPPED = Path(__file__).resolve().parent.parent / "suites"


def _line_of(text, name):
    for i, line in enumerate(text.splitlines(), 1):
        if re.search(r'name\s*=\s*"' + re.escape(str(name)) + '"', line):
            return i
    return "?"


def load_suite(spec):
    """(suite name, list of entries) from a path or a shipped suite name; errors name entry and line."""
    p = Path(spec)
    if not p.exists() and (SHIPPED / f"{spec}.toml").exists():
        p = SHIPPED / f"{spec}.toml"
    if not p.exists():
        raise CovsdeInputError(f"suite {spec!r} not found (a TOML file, or one of: "
                               f"{', '.join(sorted(x.stem for x in SHIPPED.glob('*.toml')))})")
    text = p.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CovsdeInputError(f"{p}: malformed TOML: {exc}") from None
    defaults = data.get("defaults", {})
    entries = data.get("entry", [])
    if not entries:
        raise CovsdeInputError(f"{p}: no [[entry]] tables")
    out, seen = [], set()
    for k, e in enumerate(entries):
        e = {**defaults, **e}
        name = e.get("name", f"#{k + 1}")
        where = f"{p}: entry {name!r} (line {_line_of(text, name)})"
        bad = set(e) - KEYS
        if bad:
            raise CovsdeInputError(f"{where}: unknown key(s) {sorted(bad)}")
        for req in ("name", "variant", "T", "V0", "widths"):
            if req not in e:
                raise CovsdeInputError(f"{where}: missing {req!r}")
        if name in seen:
            raise CovsdeInputError(f"{where}: duplicate name")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", str(name)):
            raise CovsdeInputError(f"{where}: name must use letters, digits, '.', '_' or '-'")
        seen.add(name)
        if not isinstance(e["widths"], list) or not all(isinstance(w, int) and w >= 2 for w in e["widths"]):
            raise CovsdeInputError(f"{where}: widths must be a list of integers ≥ 2, got {e['widths']!r}")
        try:
            from ..derive.variants import resolve
            from ..numerics.integrate import check_V0

            resolve(e["variant"], {k2: str(v) for k2, v in e.get("set", {}).items()})
            check_V0(e["V0"])
            if not (isinstance(e["T"], (int, float)) and e["T"] > 0):
                raise CovsdeInputError(f"T must be > 0, got {e['T']!r}")
        except CovsdeInputError as exc:
            raise CovsdeInputError(f"{where}: {exc}") from None
        out.append(e)
    return p.stem, out


def run_entry(e, folder, progress=False):
    from ..derive import derive
    from ..derive.variants import build
    from .cli import OUTPUTS, write_json
    from .validation import plot_report, validate
    import numpy as np

    block, params = build(e["variant"], {k: str(v) for k, v in e.get("set", {}).items()})
    V0 = np.asarray(e["V0"], float)
    d = derive(block, int(e.get("m", V0.shape[0])), name=e["variant"])
    if not d.has_limit or d.parameters:
        raise CovsdeInputError(f"entry {e['name']!r}: " + (d.reason if not d.has_limit else
                               f"give values for {[s.name for s in d.parameters]}"))
    report, samples = validate(block, d, V0, float(e["T"]), e["widths"], samples=int(e.get("samples", 1000)),
                               backend=e.get("backend", "exact"), device=e.get("device"),
                               dtype=e.get("dtype", "float64"), seed=int(e.get("seed", 0)),
                               power=bool(e.get("power", True)), progress=progress, variant=e["variant"],
                               params=params, onestep_samples=e.get("onestep_samples"))
    folder.mkdir(parents=True, exist_ok=True)
    plot_report(report, samples, {k: folder / v for k, v in OUTPUTS.items() if k != "report"})
    write_json(folder / OUTPUTS["report"], report)  # written last: its presence marks the entry done
    return report


def run_suite(spec, out=None, progress=False, log=sys.stderr):
    from .cli import write_json

    name, entries = load_suite(spec)
    out = Path(out or f"suite-out/{name}")
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for e in entries:
        folder = out / e["name"]
        rep_path = folder / "report.json"
        if rep_path.exists():
            rep = json.loads(rep_path.read_text())
            status = "skipped (done)"
        else:
            t0 = time.perf_counter()
            print(f"[suite {name}] {e['name']} ...", file=log, flush=True)
            rep = run_entry(e, folder, progress)
            status = f"ran in {time.perf_counter() - t0:.1f} s"
        print(f"[suite {name}] {e['name']}: {rep['verdict']} ({status})", file=log, flush=True)
        rows.append({"name": e["name"], "variant": e["variant"], "verdict": rep["verdict"],
                     "power_drift": rep["power"]["drift"], "power_diffusion": rep["power"]["diffusion"],
                     "smallest_p": rep["smallest_p"], "seconds": rep["timings"]["total"]})
    write_json(out / "summary.json", {"suite": name, "rows": rows})
    md = ["| entry | variant | verdict | power δ (drift) | power δ (diffusion) | smallest p | time [s] |",
          "|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['name']} | {r['variant']} | {r['verdict']} | {r['power_drift']} | {r['power_diffusion']} | "
                  f"{r['smallest_p']:.3g} | {r['seconds']:.1f} |")
    (out / "summary.md").write_text("\n".join(md) + "\n")
    return out, rows


def run_suite_cli(a):
    out, rows = run_suite(a.file, a.out, progress=not a.quiet)
    print((out / "summary.md").read_text())
    print(f"wrote {out}/summary.md and summary.json")
    return 0 if all(r["verdict"] == "pass" for r in rows) else 1
