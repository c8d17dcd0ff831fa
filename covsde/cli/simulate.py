"""covsde simulate VARIANT [--m M] [--set ...] --V0 JSON --T T [--dt DT] [--paths N] [--seed S]
[--scheme em|psd] [--ode] [--out FILE.npz] [--force] [--format text|json] [--quiet] [--threshold X]
[--max-memory SIZE] [--weak-order 1|2] [--kernel auto|lanes|paths]"""
from __future__ import annotations

import json
import os

import numpy as np

from ..common.errors import CovsdeInputError
from .common import (MAX_MEMORY_HELP, add_output_arguments, add_variant_arguments, integer, number, out_file, seed_help,
                     setup_variant)

HELP = "integrate the SDE for many paths"
EXAMPLES = ("  covsde simulate mlp --V0 '[[1,0.2],[0.2,1]]' --T 1 --paths 4000 --format json\n"
            '  covsde simulate transformer --set gamma=0.35 --set tau0=1 --V0 @V0.npy --T 0.75 --weak-order 2\n')


def add_arguments(p):
    add_variant_arguments(p, initial=True)
    p.add_argument("--dt", default="0.01", help="time step in units of t (a positive number ≤ T; default: 0.01)")
    p.add_argument("--paths", default="1000", help="number of independent paths (default: 1000)")
    p.add_argument("--seed", default="0", help=seed_help("the Brownian paths"))
    p.add_argument("--scheme", choices=["em", "psd"], default="psd",
                   help="em: Euler–Maruyama; psd: the congruence step that keeps V positive semidefinite "
                        "(default: psd)")
    p.add_argument("--ode", action="store_true",
                   help="solve the drift-only ODE dV = b(V) dt instead (one path; default: off)")
    add_output_arguments(p, "write V_T of every path, the alive flags and the saved times to this .npz file "
                            "(default: nothing written)", formats=["text", "json"])
    p.add_argument("--threshold", default=None,
                   help="stop a path when max |V| exceeds this (a positive number; default: 1e6)")
    p.add_argument("--max-memory", default=None, help=MAX_MEMORY_HELP)
    p.add_argument("--kernel", choices=["auto", "lanes", "paths"], default="auto",
                   help="lanes: a chunk's paths as SIMD lanes (matrix-form derivations); paths: one path after "
                        "another; auto (default): lanes up to m = 48.  The two draw their normals "
                        "in different orders (the same law, other samples)")
    p.add_argument("--weak-order", choices=["1", "2"], default="1",
                   help="2: also a run at dt/2 on the same Brownian path, and the Richardson-extrapolated means "
                        "2·E_{dt/2} − E_dt of ρ, log V^αα and V (JSON key 'extrapolated'); the paths reported are "
                        "those at dt (default: 1)")


def _solve(a, d, V0, T, dt, paths, seed, threshold):
    """(V_T samples, alive flags, counts, summary, scheme, paths, dt, saved times)."""
    from ..numerics.integrate import simulate, solve_ode, summarize

    if a.ode:
        sol = solve_ode(d, V0, T, threshold=threshold)
        VT = sol.V[-1][None]
        alive = np.array([sol.blowup_time is None])
        counts = {"survived": int(alive[0]), "exploded": int(not alive[0]), "left_psd": 0}
        return VT, alive, counts, summarize(VT), "ode", 1, None, np.array([sol.t[-1]])
    kw = dict(paths=paths, seed=seed, scheme=a.scheme, threshold=threshold, progress=False if a.quiet else None,
              max_memory=a.max_memory, kernel=a.kernel)
    if a.weak_order == "2":
        from ..numerics.richardson import extrapolate

        ex = extrapolate(d, V0, T, dt=dt, **kw)
        r = ex.runs[0]
        a.extrapolated = ex
    else:
        r = simulate(d, V0, T, dt=dt, **kw)
    return r.V[-1], r.alive, r.counts, r.summary(), a.scheme, paths, r.dt, r.t


def run(a):
    from ..common import limits
    from ..numerics.integrate import check_simulation_size, check_time

    d, block, params, V0, m = setup_variant(a, a.V0)
    T, dt, paths, nsteps = check_time(number("T", a.T), number("dt", a.dt), integer("paths", a.paths))
    seed = integer("seed", a.seed, 0)
    threshold = number("threshold", a.threshold) if a.threshold is not None else 1e6
    if a.max_memory is not None:
        limits.parse_bytes(a.max_memory)
    if a.ode and a.weak_order == "2":
        raise CovsdeInputError("--weak-order 2 extrapolates a simulation in dt: it does not apply to --ode")
    check_simulation_size(paths, 1, m, nsteps, a.max_memory, levels=1 if a.ode else int(a.weak_order))
    out = out_file(a.out, a.force) if a.out is not None else None
    VT, alive, counts, summ, scheme, paths_used, dt_used, tsave = _solve(a, d, V0, T, dt, paths, seed, threshold)
    rep = {"variant": a.variant, "m": m, "params": {k: str(v) for k, v in params.items()}, "T": T, "dt": dt_used,
           "paths": paths_used, "seed": seed, "scheme": scheme, "survived": counts["survived"],
           "exploded": counts["exploded"], "left_psd": counts["left_psd"], "quantiles": summ["quantiles"],
           "mean": summ["mean"]}
    ex = getattr(a, "extrapolated", None)
    if ex is not None:
        rep["weak_order"] = 2
        rep["extrapolated"] = ex.to_dict()
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
        if ex is not None:
            print(f"Richardson-extrapolated means (2·E at dt/2 − E at dt, {ex.paths} paths alive at both):")
            for k, v in ex.to_dict().items():
                print(f"  {k:>10}: {v['extrapolated']:+.5f} ± {v['se']:.5f}   (dt: {v['dt']:+.5f}, dt/2: {v['dt/2']:+.5f})")
        if out is not None:
            print(f"wrote {out}")
    return 0
