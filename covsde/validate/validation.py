"""validate(): finite networks at several widths against the SDE, with stated power.

For each width n the networks have depth d = round(T·n^κ) (κ the derivation's depth exponent) and start from inputs with Gram V0; their
terminal V_d is compared with SDE paths at T by :func:`covsde.validate.stats.law_test` (KS per
feature + energy test, Holm-corrected at level α).  Reported:

* the per-width tests and the *discrepancy* (largest KS statistic), with its fitted rate in n
  (slope of log discrepancy on log n; a shrinking discrepancy has a negative rate);
* the power: the same test with the same network sample, against the SDE with drift × (1 ± δ)
  and, separately, diffusion × (1 ± δ), on a grid of δ; the smallest δ whose both signs are
  rejected is reported (``None`` if none in the grid is) — a verdict always carries it;
* the one-step moments at V0 and width max(n_max, min(1024, 8 n_max)) (:mod:`.onestep`: n·E[ΔV] with control
  variates, n·Cov[ΔV]) against b(V0), Σ(V0) — the test with power for the drift; 20 × samples layers
  (10 000 to 40 000), more (up to 4×) while the drift's standard error exceeds 2 % of max|b(V0)|
  (an explicit ``onestep_samples`` is used as given);
* the verdict: ``fail`` when the terminal-law test at the largest width or the one-step test
  rejects, each at level α/2 (Bonferroni across the two); the power δ is that of this combined
  procedure: the smallest δ at which it rejects the scaled SDE for both signs.

Regimes ``ode`` and ``identity`` are validated against the ODE instead (``target="ode"``, the default
for them): the networks concentrate on the ODE solution, see :mod:`.ode_target`.
"""
from __future__ import annotations

import platform
import time
from dataclasses import dataclass

import numpy as np

from ..numerics.integrate import simulate, summarize
from ..common.errors import CovsdeInputError
from .executors import EXECUTORS, dask_client, run_pieces
from .networks import run_networks
from .onestep import compare_moments, one_step_moments
from .plots import finish_width_plot
from .ode_target import concentration, depth_at, kappa_of, mean_rejects, ode_path, rescale_moments
from .stats import discrepancy_interval, law_test, noise_floor

POWER_GRID = (0.05, 0.1, 0.15, 0.25, 0.35, 0.5, 0.75)
TARGETS = ("sde", "ode")
# The one-step test is a test of the coefficients b, Σ: it runs at width max(n_max, min(1024, 8 n_max)),
# where the O(n^{-1/2}) relative bias of the finite-width moments is small; each entry is allowed
# ONESTEP_BIAS/√n relative (exact for the shaped-ReLU MLP at ρ = 0.2: 1.07/√n at n = 200, 1.02/√n
# at n = 1024, from the arc-cosine closed form).
ONESTEP_MIN_WIDTH = 1024
ONESTEP_BIAS = 1.5
ONESTEP_TARGET_SE = 0.02


def _versions():
    import numba
    import scipy
    import sympy
    import torch

    from .. import __version__

    return {"covsde": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "sympy": sympy.__version__, "numba": numba.__version__,
            "torch": torch.__version__}


def _ok(res, kind):
    return res.drift_ok if kind == "drift" else res.diffusion_ok


def sde_sample(derivation, V0, T, paths, seed, dt, drift_scale=1.0, diffusion_scale=1.0, values=None):
    r = simulate(derivation, V0, T, dt=dt, paths=paths, seed=seed, drift_scale=drift_scale,
                 diffusion_scale=diffusion_scale, progress=False, params=values)
    return r.V[-1][r.alive], r.counts


def onestep_samples_default(samples):
    """Layers of the one-step test when not given: 20 × samples, within [10 000, 40 000]."""
    return min(40000, max(10000, 20 * samples))


def onestep_width(widths, multiple=1):
    """The width of the one-step test: max(n_max, min(ONESTEP_MIN_WIDTH, 8 n_max)), rounded up to a
    ``multiple`` (of the head counts)."""
    n = max(widths[-1], min(ONESTEP_MIN_WIDTH, 8 * widths[-1]))
    return -(-n // multiple) * multiple


def resolve_target(derivation, target):
    """``sde`` or ``ode`` (None: ``ode`` for the regimes ode and identity, else ``sde``), checked against
    the regime: an SDE limit is not a concentration on its drift, and an ODE has no law to test."""
    from ..common import checks

    if not derivation.has_limit:
        raise CovsdeInputError(f"no limit to validate (regime no-limit): {derivation.reason}")
    default = "ode" if derivation.regime in ("ode", "identity") else "sde"
    target = default if target is None else checks.choice("target", target, TARGETS)
    if target != default:
        raise CovsdeInputError(f"target {target} does not fit the regime {derivation.regime} (its target is "
                               f"{default}: " + ("the limit has fluctuations, the networks do not concentrate)"
                                                 if default == "sde" else "the limit is deterministic)"))
    return target


def check_request(block, derivation, V0, T, widths, *, samples, backend, device, dtype, seed, alpha, sde_paths,
                  dt, onestep_samples, values, max_memory=None, target=None):
    """Every argument of :func:`validate` checked, and the request's memory and work estimated,
    before anything runs (CovsdeInputError / ResourceLimitError naming the value or the limit)."""
    from ..common import checks, limits
    from ..common.errors import CovsdeInputError
    from ..derive import Block
    from ..numerics.integrate import check_simulation_size, check_time, check_V0
    from .networks import check_heads, default_device, estimate_networks, heads_multiple
    from .onestep import CHUNK, estimate_one_step

    if not isinstance(block, Block):
        raise CovsdeInputError(f"block must be a covsde Block, got {type(block).__name__} {block!r}")
    target = resolve_target(derivation, target)
    V0 = check_V0(V0, derivation.m, state=getattr(derivation, "state", "V"))
    T = checks.real("T", T, positive=True)
    if isinstance(widths, (str, bytes)) or not hasattr(widths, "__iter__"):
        raise CovsdeInputError(f"widths must be a list of integers ≥ 2, got {widths!r}")
    widths = sorted(checks.integer("width", w, 2, limits.max_width()) for w in widths)
    if not widths:
        raise CovsdeInputError("widths is empty")
    samples = checks.integer("samples", samples, 10)
    checks.choice("backend", backend, ("exact", "torch"))
    checks.choice("dtype", dtype, ("float64", "float32"))
    alpha = checks.real("alpha", alpha, positive=True, maximum=0.5)
    sde_paths = checks.integer("sde_paths", sde_paths or max(4 * samples, 4000), 10)
    dt = checks.real("dt", dt or min(0.01, T / 50), positive=True)
    nsteps = check_time(T, dt)[3]
    nos = checks.integer("onestep_samples", onestep_samples or onestep_samples_default(samples), 100)
    derivation.parameter_values(values)
    m = derivation.m
    check_simulation_size(sde_paths, 1, m, nsteps, max_memory)
    for n in widths:
        check_heads(block, n)
        if T * n ** float(kappa_of(derivation)) < 0.5:
            raise CovsdeInputError(f"T = {T:g} is less than one layer at width {n} (depth T·n^κ = "
                                   f"{T * n ** float(kappa_of(derivation)):.3g}): choose T ≥ 1/n^κ or wider networks")
        depth = depth_at(T, n, kappa_of(derivation))
        per_net, flops = estimate_networks(m, n, depth, samples, backend)
        limits.check_memory(per_net + 8.0 * samples * m * m, f"networks of width {n} ({backend} backend)",
                            max_memory)
        limits.check_work(flops, f"{samples} networks of width {n} and depth {depth}")
    n1 = onestep_width(widths, heads_multiple(block))
    mem, flops = estimate_one_step(m, n1, 4 * nos)
    limits.check_memory(mem, f"the one-step test at width {n1} ({CHUNK} layers at a time)", max_memory)
    limits.check_work(flops, f"the one-step test ({4 * nos} layers at width {n1})")
    return {"V0": V0, "T": T, "widths": widths, "samples": samples, "seed": checks.seed(seed), "alpha": alpha,
            "device": default_device(device), "sde_paths": sde_paths, "dt": dt, "target": target}


@dataclass
class _Remote:
    """A Dask client handed down from validate(executor="dask") to its phases."""

    client: object


@dataclass
class _Run:
    """The checked arguments of one validation, shared by its phases."""

    block: object
    derivation: object
    V0: np.ndarray
    T: float
    widths: list
    samples: int
    seed: int
    alpha: float
    device: str
    dtype: str
    backend: str
    sde_paths: int
    dt: float
    values: dict | None
    progress: bool
    execution: dict  # run_pieces keywords: executor, client (local: in this process)
    device_request: str | None = None  # as the caller gave it (a Dask worker resolves None itself)
    target: str = "sde"


def _timed(timings, key, fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    timings[key] = time.perf_counter() - t0
    return out


def _sde_reference(run):
    """SDE paths at T: (terminal V of the surviving paths, counts)."""
    return sde_sample(run.derivation, run.V0, run.T, run.sde_paths, run.seed + 1, run.dt, values=run.values)


def _networks_piece(piece):
    """One width's networks (a task that runs anywhere): (terminal V, bad flags, seconds)."""
    import torch

    t0 = time.perf_counter()
    Vn, bad = run_networks(piece["block"], piece["V0"], piece["n"], piece["depth"], piece["samples"],
                           backend=piece["backend"], seed=piece["seed"], device=piece["device"],
                           dtype=getattr(torch, piece["dtype"]), progress=piece["progress"],
                           desc=f"n={piece['n']} d={piece['depth']}")
    return Vn[:, -1], bad, time.perf_counter() - t0


def _networks(run, timings):
    """Networks at every width (one piece each, see :mod:`.executors`): {n: (depth, good terminal V,
    number of bad networks)}."""
    local = run.execution["executor"] == "local"
    kappa = kappa_of(run.derivation)
    pieces = [{"n": n, "depth": depth_at(run.T, n, kappa), "block": run.block, "V0": run.V0, "samples": run.samples,
               "backend": run.backend, "seed": run.seed + 1000 * n, "device": run.device if local else run.device_request,
               "dtype": run.dtype, "progress": run.progress and local} for n in run.widths]
    done = {}
    run_pieces(pieces, _networks_piece, lambda p, r: done.__setitem__(p["n"], (p["depth"], r)), **run.execution)
    out = {}
    for n in run.widths:
        depth, (terminal, bad, seconds) = done[n]
        timings[f"networks_{n}"] = seconds
        out[n] = (depth, terminal[~bad], int(bad.sum()))
    return out


def _law_tests(run, V_sde, timings):
    """Networks at every width against the SDE sample: (tests, quantiles, terminal V per width)."""
    tests, quants, nets = {}, {}, {}
    for n, (depth, good, bad) in _networks(run, timings).items():
        nets[n] = good
        res = law_test(good, V_sde, alpha=run.alpha / 2, seed=run.seed, norms=_norms(run))
        res.update({"depth": depth, "bad_networks": bad})
        tests[str(n)] = res
        quants[str(n)] = summarize(good)["quantiles"]
    return tests, quants, nets


def _convergence(run, tests, nets, V_sde):
    """The discrepancy per width with its fitted rate in n, a 90 % bootstrap interval, and the noise
    floor: the discrepancy expected if the networks followed the SDE exactly (same sample sizes)."""
    from ..common.stats import features

    widths = run.widths
    disc = [tests[str(n)]["discrepancy"] for n in widths]
    rate = float(np.polyfit(np.log(widths), np.log(disc), 1)[0]) if len(widths) > 1 else None
    F_sde = features(V_sde, _norms(run))[1]
    intervals, floor, floor95 = [], [], []
    for n in widths:
        F_net = features(nets[n], _norms(run))[1]
        intervals.append(discrepancy_interval(F_net, F_sde, seed=run.seed))
        mean, q95 = noise_floor(F_sde, len(F_net), seed=run.seed + 1)
        floor.append(mean)
        floor95.append(q95)
    return {"widths": widths, "discrepancy": disc, "rate": rate,
            "shrinking": bool(len(widths) > 1 and disc[-1] < disc[0]), "discrepancy_interval": intervals,
            "noise_floor": floor, "noise_floor_q95": floor95}


def _floor(run):
    """The one-step drift's smallest scale: 1 % of max|V0| (b(V0) = 0 at a fixed point)."""
    return 0.01 * float(np.abs(run.V0).max())


def _norms(run):
    """Whether the law tests use the norms log V^{αα} (not for a correlation state: its diagonal is 1)."""
    return getattr(run.derivation, "state", "V") != "correlation"


def _order(run):
    """The relative order in n of the one-step moments' finite-width bias (1/2 at κ = 1)."""
    import sympy as sp

    return float(sp.Rational(getattr(run.derivation, "correction", "1/2")))


def _one_step(run, onestep_samples):
    """One-step moments at V0 and the width of onestep_width: (moments, b(V0), Σ(V0), comparison).
    Sequential: rounds of nos layers (up to 4·nos) until the drift's SE is ≤ 2 % of max|b(V0)|
    (only at the default sample size: an explicit onestep_samples is used as given)."""
    b0, S0 = run.derivation.numeric(run.V0, run.values)
    nos = int(onestep_samples or onestep_samples_default(run.samples))
    target = None if onestep_samples else ONESTEP_TARGET_SE * float(np.abs(b0).max()) or None
    kappa = kappa_of(run.derivation)
    from .networks import heads_multiple

    n = onestep_width(run.widths, heads_multiple(run.block))
    if target is not None:
        target *= n ** (1 - kappa)  # the SE of n·E[ΔV] that gives this SE of n^κ·E[ΔV]
    mom = one_step_moments(run.block, run.V0, n=n, samples=nos, seed=run.seed + 3, n_k=256,
                           device=run.device, target_se=target, max_samples=4 * nos, centred=run.block.centred_rows())
    mom = rescale_moments(mom, kappa) if kappa != 1 else mom
    return mom, b0, S0, compare_moments(mom, b0, S0, alpha=run.alpha / 2, bias=ONESTEP_BIAS, order=_order(run), floor=_floor(run))


def _scaled_piece(piece):
    """SDE paths with one coefficient scaled (a task that runs anywhere)."""
    kw = {"drift_scale": piece["scale"]} if piece["kind"] == "drift" else {"diffusion_scale": max(piece["scale"], 0.0)}
    return sde_sample(piece["derivation"], piece["V0"], piece["T"], piece["paths"], piece["seed"], piece["dt"],
                      values=piece["values"], **kw)[0]


def _rejects(run, main, mom, b0, S0, kind, scale, Vp):
    """Does the combined procedure reject the SDE with this coefficient scaled (paths Vp)?"""
    scaled = compare_moments(mom, b0 * (scale if kind == "drift" else 1.0),
                             S0 * (max(scale, 0.0) if kind == "diffusion" else 1.0), alpha=run.alpha / 2,
                             bias=ONESTEP_BIAS, order=_order(run), floor=_floor(run))
    return (law_test(main, Vp, alpha=run.alpha / 2, seed=run.seed, norms=_norms(run))["reject"]
            or not _ok(scaled, kind))


def _power_search(run, main, mom, b0, S0, grid):
    """The smallest δ on the grid at which both 1 ± δ scalings of each coefficient are rejected.
    Locally the grid is walked until that δ; on Dask every replicate is a task, and the same rule is
    applied to the results (so the report is the same)."""
    def piece(kind, k, delta, sign):
        return {"kind": kind, "scale": 1 + sign * delta, "seed": run.seed + 7 + 13 * k + (sign > 0),
                "derivation": run.derivation, "V0": run.V0, "T": run.T, "paths": run.sde_paths, "dt": run.dt,
                "values": run.values}

    samples = {}
    if run.execution["executor"] != "local":
        pieces = [piece(kind, k, d, sign) for kind in ("drift", "diffusion") for k, d in enumerate(grid) for sign in (1, -1)]
        run_pieces(pieces, _scaled_piece, lambda p, r: samples.__setitem__((p["kind"], p["scale"], p["seed"]), r),
                   **run.execution)
    power = {"drift": None, "diffusion": None, "grid": list(grid), "rejections": {}}
    for kind in ("drift", "diffusion"):
        for k, delta in enumerate(grid):
            rej = []
            for sign in (1, -1):
                p = piece(kind, k, delta, sign)
                Vp = samples.get((kind, p["scale"], p["seed"]))
                rej.append(_rejects(run, main, mom, b0, S0, kind, p["scale"], _scaled_piece(p) if Vp is None else Vp))
            power["rejections"][f"{kind}x{1 + delta:.2f}"] = rej[0]
            power["rejections"][f"{kind}x{1 - delta:.2f}"] = rej[1]
            if all(rej):
                power[kind] = delta
                break
    return power


def validate(block, derivation, V0, T, widths, *, samples=2000, backend="exact", device=None, dtype="float64",
             seed=0, alpha=0.01, sde_paths=None, dt=None, power=True, power_grid=POWER_GRID, progress=False,
             variant="", params=None, onestep_samples=None, values=None, max_memory=None, executor="local",
             workers=2, scheduler=None, cluster=None, target=None):
    """Finite networks of ``block`` at each width against the derived SDE (or ODE), with the power.

    Arguments:
        block: the block whose networks run (with numbers for all its parameters).
        derivation: its :class:`~covsde.derive.Derivation`.
        V0: the initial m×m Gram.
        T: the terminal time: networks of depth d = T·n^κ at each width n.
        widths: the network widths, e.g. [64, 128, 256].
        samples: networks per width.
        backend: "exact" (the exact-in-law sampler) or "torch" (real weight matrices).
        seed: the seed of everything random in the run.
        alpha: the level of the whole test (each part at α/2).
        power: run the power search (the smallest relative error in b or Σ that would be caught).
        progress: progress lines on stderr.
        variant: the name written into the report.
        params: the parameters written into the report.
        onestep_samples: layers for the one-step moments (default: 20 × samples, 10 000 to 40 000).

    Returns:
        tuple: (report, draws): the report is the JSON-ready dict that ``covsde validate`` writes (the
            validate schema in the docs); draws = {"sde": V_T of the SDE paths, n: terminal V of the networks
            at width n}.

    Raises:
        CovsdeInputError: bad arguments, no limit, or a request beyond the limits (checked before any
            work).

    Example:
        ```python
        from covsde.derive import derive
        from covsde.derive.variants import build
        from covsde.validate import validate

        block, params = build("mlp", {})
        report, draws = validate(block, derive(block, 2), [[1, .2], [.2, 1]], 0.25, [16, 32], samples=100,
                                 power=False, onestep_samples=2000, variant="mlp", params=params)
        print(report["verdict"])
        ```

    The other keywords: ``values``: numbers for symbolic parameters of the derivation (the block must
    then have numbers); ``sde_paths``, ``dt``: the SDE reference run; ``power_grid``: the δ tried;
    ``max_memory``: the memory limit.

    ``device``: "cpu", "cuda" or None (CUDA when available); ``dtype``: "float64" (default) or
    "float32" (the fast option on a GPU) for the network runs — the one-step moments always use
    float64, since they resolve O(1/n) changes of V.

    ``executor``: "local" (in this process) or "dask" — then the networks of each width and the
    power-search replicates are Dask tasks (``workers``, ``scheduler``, ``cluster`` as in
    :func:`covsde.validate.executors.run_pieces`); the report is the same.

    ``target``: "sde" (the terminal law) or "ode" (concentration on the ODE solution, see
    :mod:`.ode_target`); None: the one that fits the derivation's regime."""
    t_start = time.perf_counter()
    if not isinstance(executor, _Remote) and executor != "local":
        if executor not in EXECUTORS:
            raise CovsdeInputError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
        client, own = dask_client(workers, scheduler, cluster)
        try:
            return validate(block, derivation, V0, T, widths, samples=samples, backend=backend, device=device,
                            dtype=dtype, seed=seed, alpha=alpha, sde_paths=sde_paths, dt=dt, power=power,
                            power_grid=power_grid, progress=progress, variant=variant, params=params,
                            onestep_samples=onestep_samples, values=values, max_memory=max_memory,
                            executor=_Remote(client), target=target)
        finally:
            client.close()
            if own is not None:
                own.close()
    req = check_request(block, derivation, V0, T, widths, samples=samples, backend=backend, device=device,
                        dtype=dtype, seed=seed, alpha=alpha, sde_paths=sde_paths, dt=dt,
                        onestep_samples=onestep_samples, values=values, max_memory=max_memory, target=target)
    execution = ({"executor": "dask", "client": executor.client} if isinstance(executor, _Remote)
                 else {"executor": "local"})
    run = _Run(block, derivation, req["V0"], req["T"], req["widths"], req["samples"], req["seed"], req["alpha"],
               req["device"], dtype, backend, req["sde_paths"], req["dt"], values, progress, execution, device,
               req["target"])
    timings = {}
    if run.target == "ode":
        return _validate_ode(run, variant, params, power, power_grid, onestep_samples, timings, t_start)
    V_sde, counts = _timed(timings, "sde", _sde_reference, run)
    report = {"variant": variant, "m": int(run.V0.shape[0]), "params": {k: str(v) for k, v in (params or {}).items()},
              "V0": run.V0.tolist(), "T": run.T, "widths": run.widths, "samples": run.samples, "backend": backend,
              "device": run.device, "dtype": dtype, "seed": run.seed, "alpha": run.alpha,
              "sde": {"paths": run.sde_paths, "dt": run.dt, "scheme": "psd", **counts},
              "state": getattr(run.derivation, "state", "V")}
    tests, quants, nets = _law_tests(run, V_sde, timings)
    report.update({"tests": tests, "quantiles": {"sde": summarize(V_sde)["quantiles"], **quants},
                   "convergence": _convergence(run, tests, nets, V_sde)})
    mom, b0, S0, os_res = _timed(timings, "onestep", _one_step, run, onestep_samples)
    report["onestep"] = {**os_res.to_dict(), "V": run.V0.tolist()}
    report["power"] = {"drift": None, "diffusion": None, "grid": list(power_grid), "rejections": {}}
    if power:
        report["power"] = _timed(timings, "power", _power_search, run, nets[run.widths[-1]], mom, b0, S0, power_grid)
    top = tests[str(run.widths[-1])]
    report["verdict"] = "fail" if (top["reject"] or not os_res.ok) else "pass"
    report["smallest_p"] = min(t["min_holm_p"] for t in tests.values())
    timings["total"] = time.perf_counter() - t_start
    report["timings"] = timings
    report["versions"] = _versions()
    return report, {"sde": V_sde, **nets}


def _validate_ode(run, variant, params, power, power_grid, onestep_samples, timings, t_start):
    """The ``ode`` target (see :mod:`.ode_target`): concentration, one-step drift, power in the drift."""
    scales = [1.0] + ([1 + sg * d for d in power_grid for sg in (1, -1)] if power else [])
    V_at = _timed(timings, "ode", ode_path, run, scales)
    report = {"variant": variant, "target": "ode", "m": int(run.V0.shape[0]),
              "params": {k: str(v) for k, v in (params or {}).items()}, "kappa": run.derivation.kappa,
              "time": run.derivation.time, "V0": run.V0.tolist(), "T": run.T, "widths": run.widths,
              "samples": run.samples, "backend": run.backend, "device": run.device, "dtype": run.dtype,
              "seed": run.seed, "alpha": run.alpha}
    nets, bad = {}, {}
    for n, (depth, good, nbad) in _networks(run, timings).items():
        nets[n], bad[str(n)] = good, nbad
    report["ode"] = concentration(run, nets, V_at[1.0])
    report["ode"]["bad_networks"] = bad
    mom, b0, S0, os_res = _timed(timings, "onestep", _one_step, run, onestep_samples)
    report["onestep"] = {**os_res.to_dict(), "V": run.V0.tolist(), "diffusion_ok": None,
                         "diffusion_note": "the one-step covariance vanishes in the limit: reported, not tested"}
    report["power"] = {"drift": None, "diffusion": None, "grid": list(power_grid), "rejections": {}}
    if power:
        c = report["ode"]
        for delta in power_grid:
            rej = []
            for sg in (1, -1):
                s = 1 + sg * delta
                one = compare_moments(mom, b0 * s, S0, alpha=run.alpha / 2, bias=ONESTEP_BIAS, order=_order(run), floor=_floor(run))
                rej.append(bool(mean_rejects(run, nets[run.widths[-1]], V_at[s], c["z_crit"], c["movement"])
                                or not one.drift_ok))
                report["power"]["rejections"][f"driftx{s:.2f}"] = rej[-1]
            if all(rej):
                report["power"]["drift"] = delta
                break
    ok = report["ode"]["mean_ok"] and report["ode"]["spread_ok"] and os_res.drift_ok
    report["verdict"] = "pass" if ok else "fail"
    timings["total"] = time.perf_counter() - t_start
    report["timings"] = timings
    report["versions"] = _versions()
    return report, nets


def _plot_convergence(report, title, path, plt):
    """Discrepancy vs n with 90 % bootstrap intervals, the fitted rate, and the null noise floor (mean,
    and its 95 % quantile shaded): a discrepancy inside the band is what an exact SDE would give."""
    c = report["convergence"]
    w = np.array(c["widths"], float)
    d = np.array(c["discrepancy"])
    fig, ax = plt.subplots(figsize=(5.5, 4))
    if c.get("discrepancy_interval"):
        lo, hi = np.array(c["discrepancy_interval"]).T
        ax.errorbar(w, d, yerr=[np.maximum(d - lo, 0), np.maximum(hi - d, 0)], fmt="o-", capsize=4,
                    label="largest KS statistic (90 % bootstrap)")
        ax.fill_between(w, 0, c["noise_floor_q95"], color="0.85", label="noise floor (to its 95 % quantile)")
        ax.plot(w, c["noise_floor"], "k:", label="noise floor (mean, exact SDE)")
        top = max(hi.max(), max(c["noise_floor_q95"]))
    else:
        ax.plot(w, d, "o-", label="largest KS statistic")
        top = d.max()
    if c["rate"] is not None:
        ax.plot(w, d[0] * (w / w[0]) ** c["rate"], "--", label=f"fit ∝ n^{c['rate']:.2f}")
    ax.set_ylim(0, 1.25 * top)
    ax.set_ylabel("discrepancy (KS statistic)")
    ax.set_title(f"{title}: convergence in n")
    finish_width_plot(fig, ax, w, path, plt)


def plot_report(report, samples, files):
    """PNG plots: overlaid densities of ρ_T (and log V^{00}_T), a QQ plot, the discrepancy vs n.

    ``files`` maps "densities", "qq", "discrepancy" to output paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..common.stats import features

    norms = report.get("state", "V") != "correlation"
    names, F_sde = features(samples["sde"], norms)
    widths = report["widths"]
    cmap = plt.get_cmap("viridis")
    col = {n: cmap(0.15 + 0.7 * i / max(1, len(widths) - 1)) for i, n in enumerate(widths)}
    title = f"{report['variant']} (m={report['m']}, T={report['T']})"
    show = ([j for j, nm in enumerate(names) if nm.startswith("rho")][:1]
            + ([names.index("logV_0_0")] if "logV_0_0" in names else []))
    fig, axes = plt.subplots(1, len(show), figsize=(5 * len(show), 4))
    axes = np.atleast_1d(axes)
    for ax, j in zip(axes, show):
        lo, hi = np.quantile(F_sde[:, j], [0.002, 0.998])
        bins = np.linspace(lo, hi, 50)
        ax.hist(F_sde[:, j], bins=bins, density=True, histtype="stepfilled", alpha=0.3, color="C3", label="SDE")
        for n in widths:
            _, F = features(samples[n], norms)
            ax.hist(F[:, j], bins=bins, density=True, histtype="step", lw=1.5, color=col[n],
                    label=f"networks n={n}, d={report['tests'][str(n)]['depth']}")
        ax.set_xlabel(names[j].replace("rho_", "ρ^").replace("logV_", "log V^") + " at T")
        ax.set_ylabel("density")
        ax.legend(fontsize=8)
    fig.suptitle(f"{title}: terminal laws, networks vs SDE")
    fig.tight_layout()
    fig.savefig(files["densities"], dpi=110)
    plt.close(fig)

    j = show[0]
    fig, ax = plt.subplots(figsize=(5, 5))
    qs = np.linspace(0.01, 0.99, 99)
    qsde = np.quantile(F_sde[:, j], qs)
    for n in widths:
        _, F = features(samples[n], norms)
        ax.plot(qsde, np.quantile(F[:, j], qs), ".", color=col[n], label=f"n={n}")
    ax.plot([qsde[0], qsde[-1]], [qsde[0], qsde[-1]], "k--", lw=1, label="y = x")
    ax.set_xlabel(f"SDE quantiles of {names[j]}")
    ax.set_ylabel(f"network quantiles of {names[j]}")
    ax.set_title(f"{title}: QQ plot")
    ax.legend()
    fig.tight_layout()
    fig.savefig(files["qq"], dpi=110)
    plt.close(fig)

    _plot_convergence(report, title, files["discrepancy"], plt)
    return list(files.values())
