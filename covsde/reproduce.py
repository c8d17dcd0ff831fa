"""``covsde reproduce NAME``: the paper figures, as PNGs plus a JSON of the numbers.

NAME ∈ rank-collapse, mlp-density, transformer-density, explosion, tau-sweep, gamma-sweep, shaped-training
(training; see :mod:`covsde.validate.training.shaped`).
``--quick`` shrinks sample sizes (CI).  Output: DIR (default ``reproduce-out/NAME``) gets
NAME.png and NAME.json; existing files are not overwritten without ``--force``.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from .common.cache import write_json
from .common.errors import CovsdeInputError
from .common.stats import mean_correlation, quantiles, rho01
from .derive import derive
from .derive.variants import build

FIGURES = ("rank-collapse", "mlp-density", "transformer-density", "explosion", "tau-sweep", "gamma-sweep",
           "shaped-training")
G8 = "0.35355339"  # γ = √(1/8)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _say(msg):
    print(f"[reproduce] {msg}", file=sys.stderr, flush=True)


def rank_collapse(quick):
    """Mean token correlation per layer, m = 8, n = 256, ρ0 = 0.2, 50 layers (real weights)."""
    from .validate.networks import run_networks

    m, n, L = 8, (64 if quick else 256), (12 if quick else 50)
    samples = 16 if quick else 48
    V = np.full((m, m), 0.2) + 0.8 * np.eye(m)
    cases = {
        "standard attention, with skip": ("standard-attention", {"gamma": "0.70710678"}),
        "standard attention, no skip": ("standard-attention", {"skip": "false"}),
        "shaped attention without centring": ("attention", {"gamma": "0.70710678", "tau0": "1", "centre": "false"}),
        "shaped attention (τ0 = 1, γ² = 1/2)": ("attention", {"gamma": "0.70710678", "tau0": "1"}),
    }
    out = {"m": m, "n": n, "layers": L, "samples": samples, "rho0": 0.2, "mean_rho": {}, "regime": {}}
    for label, (var, s) in cases.items():
        blk, _ = build(var, s)
        out["regime"][label] = derive(blk, 2).regime
        Vr, _ = run_networks(blk, V, n, L, samples, backend="torch", record=range(L + 1), seed=1)
        out["mean_rho"][label] = mean_correlation(Vr).tolist()
        _say(f"rank-collapse: {label}: ρ̄ at layer 10 = {out['mean_rho'][label][min(10, L)]:.3f}")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for label, r in out["mean_rho"].items():
        ax.plot(range(L + 1), r, marker=".", label=f"{label} [{out['regime'][label]}]")
    ax.set_xlabel("layer ℓ")
    ax.set_ylabel("mean token correlation ρ̄")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"Rank collapse: m={m}, n={n}, ρ0=0.2 ({samples} networks each)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return out, {"": fig}


def mlp_density(quick):
    """ρ_T of the shaped (p = 1/2) vs unshaped (p = 0) ReLU MLP at T = 1: SDE vs networks."""
    from .numerics import simulate
    from .validate.networks import run_networks
    from .validate.stats import law_test

    # quick: n = 64 (at n = 32 the law test passed with p ≈ 0.04–0.07 at α = 0.01, so close to the finite-width
    # gap that other draws of the SDE rejected; at n = 64, p ≈ 0.8–1 for every seed tried)
    n = 64 if quick else 128
    samples = 300 if quick else 2000
    V0 = np.array([[1.0, 0.2], [0.2, 1.0]])
    shaped, _ = build("mlp", {})
    unshaped, _ = build("mlp", {"p": "0"})
    d = derive(shaped, 2)
    sde = simulate(d, V0, 1.0, dt=0.005, paths=4 * samples, seed=1, progress=False)
    r_sde = rho01(sde.V[-1][sde.alive])
    Vs, _ = run_networks(shaped, V0, n, n, samples, seed=2)
    Vu, _ = run_networks(unshaped, V0, n, n, samples, seed=3)
    lt = law_test(Vs[:, -1], sde.V[-1][sde.alive], alpha=0.01)
    out = {"n": n, "depth": n, "T": 1.0, "samples": samples, "regime_unshaped": derive(unshaped, 2).regime,
           "quantiles": {"sde": quantiles(r_sde), "shaped": quantiles(rho01(Vs[:, -1])), "unshaped": quantiles(rho01(Vu[:, -1]))},
           "shaped_vs_sde": {"min_holm_p": lt["min_holm_p"], "reject": lt["reject"]},
           "unshaped_mean_rho": float(rho01(Vu[:, -1]).mean())}
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(-1, 1, 61)
    ax.hist(r_sde, bins=bins, density=True, alpha=0.35, color="C3", label="shaped-ReLU SDE")
    ax.hist(rho01(Vs[:, -1]), bins=bins, density=True, histtype="step", lw=1.8, label=f"shaped networks n=d={n}")
    ax.hist(rho01(Vu[:, -1]), bins=bins, density=True, histtype="step", lw=1.8, label=f"unshaped ReLU n=d={n}")
    ax.set_xlabel("ρ at T = d/n = 1")
    ax.set_ylabel("density")
    ax.set_title("Correlation law: shaped vs unshaped ReLU MLP")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return out, {"": fig}


def transformer_density(quick):
    """ρ_T of the shaped Transformer: networks at n = 200, d = 150 and n = 800, d = 600 vs the SDE."""
    from .numerics import simulate
    from .validate.networks import run_networks
    from .validate.stats import law_test

    widths = (50, 100) if quick else (200, 800)
    samples = 300 if quick else 2000
    V0 = np.array([[1.0, 0.2], [0.2, 1.0]])
    blk, _ = build("transformer", {"gamma": G8, "tau0": "1"})
    d = derive(blk, 2)
    sde = simulate(d, V0, 0.75, dt=0.005, paths=4 * samples, seed=1, progress=False)
    VT = sde.V[-1][sde.alive]
    out = {"T": 0.75, "gamma2": 0.125, "tau0": 1, "samples": samples, "sde": {"quantiles": quantiles(rho01(VT)),
                                                                              **sde.counts}, "networks": {}}
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(-1, 1, 61)
    ax.hist(rho01(VT), bins=bins, density=True, alpha=0.35, color="C3", label="shaped Transformer SDE")
    for n in widths:
        depth = int(round(0.75 * n))
        Vn, bad = run_networks(blk, V0, n, depth, samples, seed=n)
        good = Vn[~bad, -1]
        lt = law_test(good, VT, alpha=0.01)
        out["networks"][str(n)] = {"depth": depth, "quantiles": quantiles(rho01(good)), "min_holm_p": lt["min_holm_p"],
                                   "reject": lt["reject"], "ks_rho": lt["ks"]["rho_0_1"]["statistic"]}
        ax.hist(rho01(good), bins=bins, density=True, histtype="step", lw=1.8, label=f"networks n={n}, d={depth}")
        _say(f"transformer-density: n={n}: KS(ρ) = {lt['ks']['rho_0_1']['statistic']:.3f}")
    ax.set_xlabel("ρ at T = 0.75")
    ax.set_ylabel("density")
    ax.set_title("Shaped Transformer: ρ_T, networks vs SDE (γ²=1/8, τ0=1)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return out, {"": fig}


def explosion(quick):
    """Fraction of exploded SDE paths against time, V0 = I, shaped attention, several τ0; the
    drift-only ODE's blow-up time marked."""
    from .numerics import simulate, solve_ode

    blk, _ = build("attention", {"gamma": "0.70710678"})
    d = derive(blk, 2)  # τ0 symbolic: one compiled module for every τ0
    taus = (0.3, 0.5, 1.0)
    T, paths = 3.0, (300 if quick else 4000)
    thr = 1e4
    grid = np.linspace(0, T, 61)
    out = {"gamma2": 0.5, "T": T, "paths": paths, "threshold": thr, "tau0": {}}
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for k, tau in enumerate(taus):
        r = simulate(d, np.eye(2), T, dt=0.002, paths=paths, seed=k, params={"tau0": tau}, threshold=thr,
                     progress=False)
        frac = [(r.t_death <= t).mean() for t in grid]
        ode = solve_ode(d, np.eye(2), T, params={"tau0": tau}, threshold=thr)
        out["tau0"][str(tau)] = {"fraction_exploded": frac, "ode_blowup_time": ode.blowup_time, **r.counts}
        line, = ax.plot(grid, frac, label=f"τ0 = {tau}")
        if ode.blowup_time is not None:
            ax.axvline(ode.blowup_time, color=line.get_color(), ls="--", lw=1)
        _say(f"explosion: τ0={tau}: exploded {r.counts['exploded']}/{paths}, ODE blow-up at {ode.blowup_time}")
    out["time"] = grid.tolist()
    ax.set_xlabel("t")
    ax.set_ylabel("fraction of exploded paths")
    ax.set_title("Finite-time blow-up, V0 = I (dashed: drift-only ODE blow-up)")
    ax.legend()
    fig.tight_layout()
    return out, {"": fig}


def tau_sweep(quick):
    """Spread of ρ_T (IQR) and exploded fraction vs τ0 (SDE), beside networks at one width."""
    from .numerics import simulate
    from .validate.networks import run_networks

    blk_sym, _ = build("transformer", {"gamma": G8})
    d = derive(blk_sym, 2)
    taus = (0.1, 1.0, 10.0) if quick else (0.05, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0)
    n = 32 if quick else 100
    samples = 120 if quick else 1000
    T = 0.75
    V0 = np.array([[1.0, 0.2], [0.2, 1.0]])
    rows = []
    for tau in taus:
        r = simulate(d, V0, T, dt=0.002, paths=4 * samples, seed=1, params={"tau0": tau}, progress=False)
        rs = rho01(r.V[-1][r.alive])
        blk, _ = build("transformer", {"gamma": G8, "tau0": str(tau)})
        Vn, bad = run_networks(blk, V0, n, int(round(T * n)), samples, seed=2)
        rn = rho01(Vn[~bad, -1])
        iqr = lambda x: float(np.subtract(*np.quantile(x, [0.75, 0.25]))) if len(x) else None  # noqa: E731
        rows.append({"tau0": tau, "sde_iqr_rho": iqr(rs), "sde_exploded_fraction": r.counts["exploded"] / len(r.status),
                     "net_iqr_rho": iqr(rn), "net_bad_fraction": float(bad.mean())})
        _say(f"tau-sweep: τ0={tau}: IQR(ρ) SDE {rows[-1]['sde_iqr_rho']:.3f}, nets {rows[-1]['net_iqr_rho']:.3f}, "
             f"exploded {rows[-1]['sde_exploded_fraction']:.3f}")
    plt = _plt()
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    t = [r["tau0"] for r in rows]
    ax[0].semilogx(t, [r["sde_iqr_rho"] for r in rows], "o-", label="SDE")
    ax[0].semilogx(t, [r["net_iqr_rho"] for r in rows], "s--", label=f"networks n={n}")
    ax[0].set_xlabel("τ0")
    ax[0].set_ylabel("IQR of ρ_T")
    ax[0].set_title("Spread of ρ_T (T = 0.75, γ² = 1/8)")
    ax[0].legend()
    ax[1].semilogx(t, [r["sde_exploded_fraction"] for r in rows], "o-", color="C3", label="SDE exploded")
    ax[1].semilogx(t, [r["net_bad_fraction"] for r in rows], "s--", color="C2", label="networks blown up")
    ax[1].set_xlabel("τ0")
    ax[1].set_ylabel("fraction")
    ax[1].set_title("Blow-up vs temperature")
    ax[1].legend()
    fig.tight_layout()
    return {"T": T, "n": n, "samples": samples, "rows": rows}, {"": fig}


def gamma_sweep(quick):
    """γ² from 0.05 to 1: laws of ρ_T and log V^{00}_T (SDE vs networks) and the verdict with power."""
    from .validate.validation import validate

    g2s = (0.05, 1.0) if quick else (0.05, 0.125, 0.25, 0.5, 0.75, 1.0)
    n = 32 if quick else 100
    samples = 200 if quick else 1000
    V0 = np.array([[1.0, 0.2], [0.2, 1.0]])
    blk_sym, _ = build("transformer", {"tau0": "1"})
    d = derive(blk_sym, 2)
    rows = []
    for g2 in g2s:
        g = float(np.sqrt(g2))
        blk, _ = build("transformer", {"tau0": "1", "gamma": str(g)})
        rep, smp = validate(blk, d, V0, 0.75, [n], samples=samples, seed=1, power=not quick,
                            onestep_samples=10000 if quick else 40000, values={"gamma": g}, variant="transformer")
        rows.append({"gamma2": g2, "verdict": rep["verdict"], "power": {k: rep["power"][k] for k in ("drift", "diffusion")},
                     "quantiles_sde": rep["quantiles"]["sde"], "quantiles_net": rep["quantiles"][str(n)],
                     "smallest_p": rep["smallest_p"], "exploded": rep["sde"]["exploded"]})
        _say(f"gamma-sweep: γ²={g2}: {rep['verdict']}, power {rows[-1]['power']}")
    plt = _plt()
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    x = [r["gamma2"] for r in rows]
    for j, key in enumerate(("rho_0_1", "logV_0_0")):
        for src, style in (("sde", "-"), ("net", "--")):
            qs = np.array([r[f"quantiles_{src}"][key] for r in rows])
            ax[j].plot(x, qs[:, 2], "o" + style, label=f"median ({'SDE' if src == 'sde' else f'networks n={n}'})")
            ax[j].fill_between(x, qs[:, 1], qs[:, 3], alpha=0.15 if src == "sde" else 0.08)
        ax[j].set_xlabel("γ²")
        ax[j].set_ylabel(key.replace("rho_0_1", "ρ_T").replace("logV_0_0", "log V^00_T") + " (median, IQR band)")
        ax[j].legend(fontsize=8)
    ax[0].set_title("Residual strength vs correlation law (T = 0.75)")
    ax[1].set_title("… and vs the norm (verdicts in the JSON)")
    fig.tight_layout()
    return {"n": n, "samples": samples, "rows": rows}, {"": fig}


def shaped_training(quick):
    """Deep Transformers without normalisation, shaped vs standard attention, trained on a synthetic language."""
    from .validate.training.shaped import shaped_training as run

    return run(quick)


RUNNERS = {"rank-collapse": rank_collapse, "mlp-density": mlp_density, "transformer-density": transformer_density,
           "explosion": explosion, "tau-sweep": tau_sweep, "gamma-sweep": gamma_sweep,
           "shaped-training": shaped_training}


def outputs_exist(name, out):
    """The first of NAME.json, NAME.png that exists in ``out`` (None if neither)."""
    for f in (Path(out) / f"{name}.json", Path(out) / f"{name}.png"):
        if f.exists():
            return str(f)
    return None


def reproduce(name, out=None, quick=False, force=False):
    if name not in RUNNERS:
        raise CovsdeInputError(f"unknown reproduction {name!r} (known: {', '.join(FIGURES)})")
    out = Path(out or f"reproduce-out/{name}")
    if out.exists() and not out.is_dir():
        raise CovsdeInputError(f"reproduce output {out} exists and is not a folder")
    clash = outputs_exist(name, out)
    if clash and not force:
        raise FileExistsError(f"{clash} exists (use --force to overwrite)")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data, figs = RUNNERS[name](quick)
    data.update({"name": name, "quick": quick, "seconds": time.perf_counter() - t0,
                 "command": f"covsde reproduce {name} --out {out}" + (" --quick" if quick else "")})
    for suffix, fig in figs.items():
        fig.savefig(out / f"{name}{suffix}.png", dpi=120)
    write_json(out / f"{name}.json", data)
    return data, out
