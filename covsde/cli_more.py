"""CLI commands beyond ``derive`` (kept apart so that ``covsde derive`` imports no numba/torch)."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from .cli import UsageError, _m, _sets
from .derive.errors import CovsdeInputError


def _float(name, text, positive=True):
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise UsageError(f"--{name} must be a number, got {text!r}") from None
    if not math.isfinite(v) or (positive and v <= 0):
        raise UsageError(f"--{name} must be a finite number > 0, got {text}")
    return v


def _int(name, text, minimum=1):
    try:
        v = int(text)
    except (TypeError, ValueError):
        raise UsageError(f"--{name} must be an integer, got {text!r}") from None
    if v < minimum:
        raise UsageError(f"--{name} must be ≥ {minimum}, got {v}")
    return v


def parse_V0(text, m=None):
    """--V0 as a JSON matrix (a number is read as a 1×1 matrix)."""
    try:
        val = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--V0 is not valid JSON ({exc.msg}): {text!r}") from None
    if isinstance(val, (int, float)):
        val = [[val]]
    if not isinstance(val, list) or not all(isinstance(r, list) for r in val):
        raise UsageError(f"--V0 must be a JSON list of rows, got {text!r}")
    if any(not isinstance(x, (int, float)) or isinstance(x, bool) for r in val for x in r):
        raise UsageError(f"--V0 entries must be numbers, got {text!r}")
    if len({len(r) for r in val}) > 1:
        raise UsageError(f"--V0 rows have different lengths: {text!r}")
    from .numerics.integrate import check_V0

    return check_V0(val, m, "V0")


def setup_variant(a, V0_text):
    """(derivation, params, V0, m) for simulate/validate; m defaults to V0's size."""
    from .derive import derive
    from .derive.variants import build

    V0 = parse_V0(V0_text)
    m = _m(a.m) if a.m else V0.shape[0]
    if V0.shape[0] != m:
        raise UsageError(f"--V0 is {V0.shape[0]}×{V0.shape[0]} but --m is {m}")
    block, params = build(a.variant, _sets(a.set))
    d = derive(block, m, name=a.variant)
    if not d.has_limit:
        raise CovsdeInputError(f"variant {a.variant} has no SDE limit for these parameters (regime no-limit): "
                               f"{d.reason}")
    missing = [s.name for s in d.parameters]
    if missing:
        raise CovsdeInputError(f"parameter(s) {', '.join(missing)} must be given numbers for this command "
                               f"(e.g. --set {missing[0]}=1)")
    return d, block, params, V0, m


def check_out_file(path, force):
    p = Path(path)
    if p.exists() and not force:
        raise FileExistsError(f"{p} exists (use --force to overwrite)")
    if p.parent and not p.parent.exists():
        raise UsageError(f"folder {p.parent} does not exist")
    return p


def cmd_simulate(a):
    from .numerics.integrate import simulate, solve_ode, summarize

    d, block, params, V0, m = setup_variant(a, a.V0)
    T = _float("T", a.T)
    dt = _float("dt", a.dt)
    if dt > T:
        raise UsageError(f"--dt must not exceed --T, got dt={dt} > T={T}")
    paths = _int("paths", a.paths)
    seed = _int("seed", a.seed, 0)
    threshold = _float("threshold", a.threshold) if a.threshold else 1e6
    out = check_out_file(a.out, a.force) if a.out else None
    progress = False if a.quiet else None
    if a.ode:
        sol = solve_ode(d, V0, T, threshold=threshold)
        VT = sol.V[-1][None]
        alive = np.array([sol.blowup_time is None])
        counts = {"survived": int(alive[0]), "exploded": int(not alive[0]), "left_psd": 0}
        summ = summarize(VT)
        scheme, paths_used, dt_used = "ode", 1, None
        tsave = np.array([sol.t[-1]])
    else:
        r = simulate(d, V0, T, dt=dt, paths=paths, seed=seed, scheme=a.scheme, threshold=threshold,
                     progress=progress)
        VT, alive, counts, summ = r.V[-1], r.alive, r.counts, r.summary()
        scheme, paths_used, dt_used, tsave = a.scheme, paths, r.dt, r.t
    rep = {"variant": a.variant, "m": m, "params": {k: str(v) for k, v in params.items()}, "T": T, "dt": dt_used,
           "paths": paths_used, "seed": seed, "scheme": scheme, "survived": counts["survived"],
           "exploded": counts["exploded"], "left_psd": counts["left_psd"], "quantiles": summ["quantiles"],
           "mean": summ["mean"]}
    if out is not None:
        tmp = out.with_name(out.name + ".tmp.npz")
        np.savez(tmp, V=VT, alive=alive, t=tsave)
        os.replace(tmp, out)
    if a.format == "json":
        print(json.dumps(rep))
    else:
        print(f"{a.variant} m={m} T={T} dt={dt_used} paths={paths_used} scheme={scheme} seed={seed}")
        print(f"survived {counts['survived']}, exploded {counts['exploded']}, left PSD {counts['left_psd']}")
        for k, q in summ["quantiles"].items():
            print(f"  {k:>10}: " + "  ".join(f"{x:+.4f}" for x in q) + "   (q05 q25 q50 q75 q95)")
        if out is not None:
            print(f"wrote {out}")
    return 0


def cmd_validate(a):
    from .validate.cli import run_validate

    return run_validate(a)


def cmd_suite(a):
    from .validate.suite import run_suite_cli

    return run_suite_cli(a)


def cmd_demo(a):
    from .demo import run_demo

    return run_demo(a.out, force=a.force, quick=a.quick)


def cmd_reproduce(a):
    from .reproduce import run_reproduce

    return run_reproduce(a.name, a.out, quick=a.quick, force=a.force)
