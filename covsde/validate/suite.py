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

Entry keys (:data:`SCHEMA`): name, variant, set, m, T, V0, widths, samples, seed, backend, device,
dtype, power, onestep_samples.  The file is checked against the schema before anything runs: each
wrong field gets a message naming the entry, its line and the field.  Entry names are plain folder
names (letters, digits, '.', '_', '-'; not '.' or '..'), so every entry's folder is inside the output
folder.  Nothing in the file is evaluated as code: parameter values are read by the safe parser.

Each entry writes DIR/<name>/report.json and its plots; an entry whose report.json exists (and reads
as JSON) is skipped on a rerun, so an interrupted suite loses nothing.  DIR gets summary.md and
summary.json (one row per entry: verdict, power δ, smallest p-value, time).  Shipped suites:
``quick``, ``paper``, ``paper-gpu``.
"""
from __future__ import annotations

import json
import math
import re
import sys
import time
import tomllib
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path

from ..common.cache import write_json
from ..common.errors import CovsdeInputError

SHIPPED = Path(__file__).resolve().parent.parent / "suites"
MAX_FILE_BYTES = 1_000_000
MAX_DEPTH = 32
NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


def _integer(minimum, maximum=2**62):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, Integral):
            raise CovsdeInputError(f"must be an integer (without quotes), got {v!r}")
        if v < minimum:
            raise CovsdeInputError(f"must be ≥ {minimum}, got {v}")
        if v > maximum:
            raise CovsdeInputError(f"must be ≤ {maximum}, got {v}")
        return int(v)
    return check


def _number(v):
    if isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(v) or v <= 0:
        raise CovsdeInputError(f"must be a finite number > 0 (without quotes), got {v!r}")
    return float(v)


def _one_of(*options):
    def check(v):
        if v not in options:
            raise CovsdeInputError(f"must be one of {', '.join(map(repr, options))}, got {v!r}")
        return v
    return check


def _boolean(v):
    if not isinstance(v, bool):
        raise CovsdeInputError(f"must be true or false (without quotes), got {v!r}")
    return v


def _name(v):
    if not isinstance(v, str) or not NAME_RE.fullmatch(v) or set(v) == {"."}:
        raise CovsdeInputError(f"must be a plain folder name (letters, digits, '.', '_', '-'; not '.' or '..'), "
                               f"got {v!r}")
    return v


def _variant(v):
    from ..derive.variants import VARIANTS

    return _one_of(*VARIANTS)(v)


def _set(v):
    if not isinstance(v, dict):
        raise CovsdeInputError(f"must be a table such as {{ gamma = \"0.35\" }}, got {v!r}")
    for k, x in v.items():
        if not isinstance(x, (str, int, float, bool)):
            raise CovsdeInputError(f"value of {k!r} must be a string, number or boolean, got {x!r}")
    return v


def _V0(v):
    if not isinstance(v, list) or not all(isinstance(r, list) for r in v):
        raise CovsdeInputError(f"must be a list of rows (numbers), got {v!r}")
    from ..numerics.integrate import check_V0

    return check_V0(v).tolist()


def _widths(v):
    if not isinstance(v, list) or not v:
        raise CovsdeInputError(f"must be a non-empty list of integers ≥ 2, got {v!r}")
    return [_integer(2)(w) for w in v]


SCHEMA = {"name": _name, "variant": _variant, "set": _set, "m": _integer(1), "T": _number, "V0": _V0,
          "widths": _widths, "samples": _integer(10), "seed": _integer(0, 2**63 - 1), "backend": _one_of("exact", "torch"),
          "device": _one_of("cpu", "cuda"), "dtype": _one_of("float64", "float32"), "power": _boolean,
          "onestep_samples": _integer(100)}
REQUIRED = ("name", "variant", "T", "V0", "widths")


def _line_of(text, name):
    for i, line in enumerate(text.splitlines(), 1):
        if re.search(r'name\s*=\s*["\']' + re.escape(str(name)) + '["\']', line):
            return i
    return "?"


def _read(spec):
    p = Path(spec)
    if not p.exists() and isinstance(spec, str) and NAME_RE.fullmatch(spec) and (SHIPPED / f"{spec}.toml").exists():
        p = SHIPPED / f"{spec}.toml"
    if not p.exists():
        raise CovsdeInputError(f"suite {str(spec)!r} not found (a TOML file, or one of: "
                               f"{', '.join(sorted(x.stem for x in SHIPPED.glob('*.toml')))})")
    if not p.is_file():
        raise CovsdeInputError(f"suite {str(p)!r} is not a file")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise CovsdeInputError(f"suite {str(p)!r} cannot be read ({exc.strerror or exc})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise CovsdeInputError(f"suite {str(p)!r} is larger than {MAX_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CovsdeInputError(f"suite {str(p)!r} is not UTF-8 text (byte {exc.start})") from None
    from ..common.literal import nesting_depth

    depth = nesting_depth(text, "[{", "]}")
    if depth > MAX_DEPTH:
        raise CovsdeInputError(f"{p}: arrays or tables nested {depth} deep (at most {MAX_DEPTH})")
    try:
        return p, text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CovsdeInputError(f"{p}: malformed TOML: {exc}") from None
    except RecursionError:
        raise CovsdeInputError(f"{p}: nested too deeply to read") from None


def _check_entry(e, where):
    from ..derive.variants import resolve

    bad = sorted(set(e) - set(SCHEMA))
    if bad:
        raise CovsdeInputError(f"{where}: unknown key(s) {bad} (known: {', '.join(SCHEMA)})")
    for req in REQUIRED:
        if req not in e:
            raise CovsdeInputError(f"{where}: missing {req!r}")
    out = {}
    for k, v in e.items():
        try:
            out[k] = SCHEMA[k](v)
        except CovsdeInputError as exc:
            raise CovsdeInputError(f"{where}: {exc}" if str(exc).startswith(k) else f"{where}: {k} {exc}") from None
    try:
        resolve(out["variant"], out.get("set", {}))
    except CovsdeInputError as exc:
        raise CovsdeInputError(f"{where}: set: {exc}") from None
    if "m" in out and out["m"] != len(out["V0"]):
        raise CovsdeInputError(f"{where}: m = {out['m']} but V0 is {len(out['V0'])}×{len(out['V0'])}")
    return out


def load_suite(spec):
    """Read and check a suite file before anything runs.

    Arguments:
        spec: a path to a TOML file, or a shipped suite name (``quick``, ``paper``, ``paper-gpu``).

    Returns:
        tuple: (suite name, the list of checked entries, defaults applied).

    Raises:
        CovsdeInputError: an unreadable file or a wrong field (named with its entry and line).

    Example:
        ```python
        from covsde.validate import load_suite

        name, entries = load_suite("quick")
        print(name, [e["name"] for e in entries])
        ```
    """
    p, text, data = _read(spec)
    extra = sorted(set(data) - {"defaults", "entry"})
    if extra:
        raise CovsdeInputError(f"{p}: unknown top-level key(s) {extra} (a suite has [defaults] and [[entry]] tables)")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise CovsdeInputError(f"{p}: defaults must be a table ([defaults])")
    entries = data.get("entry", [])
    if isinstance(entries, dict):
        raise CovsdeInputError(f"{p}: entries must be written [[entry]] (an array of tables), not [entry]")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise CovsdeInputError(f"{p}: no [[entry]] tables")
    out, seen = [], set()
    for k, e in enumerate(entries):
        e = {**defaults, **e}
        name = e.get("name", f"#{k + 1}")
        checked = _check_entry(e, f"{p}: entry {name!r} (line {_line_of(text, name)})")
        if checked["name"] in seen:
            raise CovsdeInputError(f"{p}: entry {name!r}: duplicate name")
        seen.add(checked["name"])
        out.append(checked)
    return p.stem, out


def entry_folder(out: Path, name: str) -> Path:
    """DIR/<name>, which must lie directly inside DIR."""
    folder = out / name
    if folder.resolve().parent != out.resolve():
        raise CovsdeInputError(f"entry name {name!r} does not name a folder inside {out}")
    return folder


def _entry_arguments(e):
    """(block, derivation, V0, T, widths, keyword arguments of validate) of one checked entry."""
    import numpy as np

    from ..derive import derive
    from ..derive.variants import build

    block, params = build(e["variant"], e.get("set", {}))
    V0 = np.asarray(e["V0"], float)
    d = derive(block, int(e.get("m", V0.shape[0])), name=e["variant"], kappa=params.get("kappa", 1))
    if not d.has_limit or d.parameters:
        raise CovsdeInputError(d.reason if not d.has_limit else f"give values for {[s.name for s in d.parameters]}")
    kw = dict(samples=int(e.get("samples", 1000)), backend=e.get("backend", "exact"), device=e.get("device"),
              dtype=e.get("dtype", "float64"), seed=int(e.get("seed", 0)), onestep_samples=e.get("onestep_samples"))
    return block, d, V0, float(e["T"]), e["widths"], kw, params


def check_entries(entries, here=True):
    """Every entry's request checked (values, memory, work; with ``here`` also its device, on this
    machine) before the first runs: a bad entry is one error naming it, not a failure halfway."""
    from .validation import check_request

    for e in entries:
        try:
            block, d, V0, T, widths, kw, _ = _entry_arguments(e)
            if not here:
                kw["device"] = None  # a worker of a remote cluster may have the GPU this machine lacks
            check_request(block, d, V0, T, widths, alpha=0.01, sde_paths=None, dt=None, values=None, **kw)
        except CovsdeInputError as exc:
            raise type(exc)(f"entry {e['name']!r}: {exc}") from None


def validate_entry(e, progress=False):
    """(report, draws) of one checked suite entry (runs anywhere: it only reads the entry)."""
    from .validation import validate

    block, d, V0, T, widths, kw, params = _entry_arguments(e)
    return validate(block, d, V0, T, widths, power=bool(e.get("power", True)), progress=progress,
                    variant=e["variant"], params=params, **kw)


def run_entry(e, folder, progress=False):
    """Validate one entry and write its folder (report.json last: its presence marks the entry done)."""
    from .outputs import write_outputs

    report, draws = validate_entry(e, progress)
    folder.mkdir(parents=True, exist_ok=True)
    write_outputs(report, draws, folder)
    return report


def _done(folder):
    try:
        rep = json.loads((folder / "report.json").read_text())
        return rep if isinstance(rep, dict) and "verdict" in rep else None
    except (OSError, ValueError):
        return None


def summary_rows(entries, reports):
    rows = []
    for e, r in zip(entries, reports):
        c = r["convergence"]
        rows.append({"name": e["name"], "variant": e["variant"], "verdict": r["verdict"],
                     "power_drift": r["power"]["drift"], "power_diffusion": r["power"]["diffusion"],
                     "smallest_p": r["smallest_p"], "seconds": r["timings"]["total"],
                     "discrepancy": c["discrepancy"][-1], "noise_floor": (c.get("noise_floor") or [None])[-1],
                     "rate": c["rate"]})
    return rows


def _num(x, fmt):
    return "–" if x is None else format(x, fmt)


def write_summary(out, name, rows):
    """summary.json and summary.md: one row per entry (verdict, power, discrepancy at the largest width
    beside its noise floor, fitted rate, time, links to the entry's plots)."""
    write_json(out / "summary.json", {"suite": name, "rows": rows})
    md = ["| entry | variant | verdict | power δ (drift) | power δ (diffusion) | discrepancy (noise floor) | rate in n "
          "| smallest p | time [s] | plots |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        plots = ", ".join(f"[{k}]({r['name']}/{k}.png)" for k in ("densities", "qq", "discrepancy"))
        md.append(f"| {r['name']} | {r['variant']} | {r['verdict']} | {r['power_drift']} | {r['power_diffusion']} | "
                  f"{_num(r['discrepancy'], '.3f')} ({_num(r['noise_floor'], '.3f')}) | {_num(r['rate'], '+.2f')} | "
                  f"{r['smallest_p']:.3g} | {r['seconds']:.1f} | {plots} |")
    (out / "summary.md").write_text("\n".join(md) + "\n")


def run_suite(spec, out=None, progress=False, log=sys.stderr, *, executor="local", workers=2, scheduler=None,
              cluster=None):
    """Run (or resume) a suite into ``out``.

    Entries whose report.json exists are skipped; the others run in this process or as tasks on a Dask
    cluster (:mod:`.executors`), and each entry's folder is written here as soon as its result arrives.

    Arguments:
        spec: a path to a TOML file, or a shipped suite name.
        out: the output folder (default ``suite-out/NAME``).
        progress: progress lines on ``log``.
        log: where the progress goes.
        executor: "local" or "dask".
        workers: Dask workers (a LocalCluster's processes, or cluster jobs).
        scheduler: the address of a running Dask scheduler.
        cluster: "slurm" or "pbs" (a dask-jobqueue cluster).

    Returns:
        tuple: (out, rows): the output folder and the rows of summary.json.

    Raises:
        CovsdeInputError: a bad suite file or executor setting (checked before anything runs).

    Example:
        ```py
        from covsde.validate import run_suite

        out, rows = run_suite("quick", "suite-quick")       # about a minute on 2 cores
        print([(r["name"], r["verdict"]) for r in rows])
        ```
    """
    from .executors import run_pieces
    from .outputs import write_outputs

    name, entries = load_suite(spec)
    out = Path(out or f"suite-out/{name}")
    folders = [entry_folder(out, e["name"]) for e in entries]
    out.mkdir(parents=True, exist_ok=True)
    pending = []
    for e, folder in zip(entries, folders):
        if _done(folder) is not None:
            print(f"[suite {name}] {e['name']}: skipped (done)", file=log, flush=True)
        else:
            pending.append((e, folder))
    t0 = time.perf_counter()

    def save(piece, result):
        e, folder = piece
        if isinstance(result, TaskError):
            raise CovsdeInputError(f"entry {e['name']!r}: {result.message}")
        folder.mkdir(parents=True, exist_ok=True)
        write_outputs(*result, folder)  # report.json last: its presence marks the entry done
        print(f"[suite {name}] {e['name']}: {result[0]['verdict']} (done after {time.perf_counter() - t0:.1f} s)",
              file=log, flush=True)

    check_entries([e for e, _ in pending], here=scheduler is None and cluster is None)
    client = own = None
    if pending and executor != "local":
        from .executors import dask_client

        client, own = dask_client(workers, scheduler, cluster)  # reached (or refused) before anything is printed
    try:
        if pending:
            print(f"[suite {name}] running {len(pending)} entr{'y' if len(pending) == 1 else 'ies'} ({executor})",
                  file=log, flush=True)
        run_pieces(pending, _entry_task if executor != "local" else (lambda p: validate_entry(p[0], progress)), save,
                   executor=executor, workers=workers, scheduler=scheduler, cluster=cluster, client=client)
    finally:
        if client is not None:
            client.close()
            if own is not None:
                own.close()
    rows = summary_rows(entries, [_done(folder) for folder in folders])
    write_summary(out, name, rows)
    return out, rows


@dataclass
class TaskError:
    """A bad-input error raised on a worker, returned as a value: Dask does not retry it, and the
    worker logs no traceback."""

    message: str


def _entry_task(piece):
    """The Dask task of one entry (module-level, so that workers import it)."""
    try:
        return validate_entry(piece[0])
    except CovsdeInputError as exc:
        return TaskError(str(exc))
