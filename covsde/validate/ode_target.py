"""The ``ode`` target of a validation: finite networks at growing width concentrate on the solution
of the drift-only ODE dV/dt = b(V) (regimes ``ode`` and ``identity``).

Per width n (depth d = T·n^κ): the network mean's distance to V_ode(T), with its standard error, and
the spread (the largest per-entry standard deviation of V_T over the networks).  The theory says the
spread is O(n^(−r)) with r the derivation's ``spread`` (exact, or a lower bound when the leading
fluctuation lies beyond the orders the series keeps); the fitted rate is compared with −r.

Checks (each at level α/2, Bonferroni over the entries):

* *mean*: at the largest width every entry of the mean is within z·SE + ODE_BIAS·s·n^(−min(κ, 1/2)) of
  V_ode(T), where s = max|V_ode(T) − V0| (the ODE's own movement: the depth discretisation, d = T·n^κ
  steps of size n^(−κ), and the curvature of b over the O(n^(−r)) spread bias the mean by that order);
* *spread*: the fitted rate of the spread in n is within ``SPREAD_SLACK`` + 3 SE of −r (or below
  −r + that when r is a bound);
* *one step*: n^κ·E[ΔV] at V0 against b(V0) (validate's one-step drift test; the one-step covariance,
  0 in the limit, is reported, not tested).

Power: the smallest δ of the grid at which the ODE with its drift scaled by 1 ± δ (equivalently
V_ode(T(1 ± δ))) is rejected by the mean or one-step check."""
from __future__ import annotations

import math

import numpy as np
import scipy.stats as st
import sympy as sp

ODE_BIAS = 1.0
SPREAD_SLACK = 0.15


def kappa_of(derivation) -> float:
    return float(sp.Rational(getattr(derivation, "kappa", "1")))


def depth_at(T, n, kappa) -> int:
    """d = T·n^κ layers (at least 1)."""
    return max(1, int(round(T * n**kappa)))


def ode_path(run, scales):
    """V_ode(s·T) for each s in ``scales`` (the drift scaled by s is the ODE run to s·T); the numerics' ODE
    solver on the derivation's numeric drift (no compiled module needed at the small m of a validation)."""
    from ..numerics.integrate import solve_ode

    times = sorted({float(s) * run.T for s in scales})
    sol = solve_ode(run.derivation, run.V0, max(times), params=run.values, t_eval=times, compiled=False)
    if sol.blowup_time is not None or not sol.success:
        raise ArithmeticError(f"the ODE could not be solved to t = {max(times)}: {sol.message}")
    return {s: sol.V[times.index(float(s) * run.T)] for s in scales}


def _mean_check(nets_n, V_target, n, kappa, scale, z):
    mean = nets_n.mean(0)
    se = nets_n.std(0, ddof=1) / math.sqrt(len(nets_n))
    slack = ODE_BIAS * scale * n ** (-min(kappa, 0.5))
    dist = np.abs(mean - V_target)
    ratio = float((dist / (z * se + slack + 1e-300)).max())
    return mean, se, dist, slack, ratio


def concentration(run, nets, V_ode):
    """Per width: distance of the mean to V_ode(T), spread, and the fitted spread rate vs the theory."""
    kappa = kappa_of(run.derivation)
    m = run.V0.shape[0]
    z = float(st.norm.isf(run.alpha / 2 / (2 * m * (m + 1) // 2)))
    scale = float(np.abs(V_ode - run.V0).max())
    per, spreads = {}, []
    for n in run.widths:
        mean, se, dist, slack, ratio = _mean_check(nets[n], V_ode, n, kappa, scale, z)
        spread = float(nets[n].std(0, ddof=1).max())
        spreads.append(spread)
        per[str(n)] = {"depth": depth_at(run.T, n, kappa), "networks": int(len(nets[n])), "mean": mean.tolist(),
                       "distance": float(dist.max()), "distance_se": float(se.max()), "allowance": slack,
                       "ratio": ratio, "spread": spread}
    r = float(sp.Rational(run.derivation.spread))
    rate = rate_se = None
    ok_spread = True
    if len(run.widths) > 1:
        w = np.log(np.array(run.widths, float))
        rate = float(np.polyfit(w, np.log(spreads), 1)[0])
        N = min(len(nets[n]) for n in run.widths)
        rate_se = math.sqrt(2) / math.sqrt(2 * (N - 1)) / (w[-1] - w[0])
        tol = SPREAD_SLACK + 3 * rate_se
        ok_spread = (rate <= -r + tol) if not run.derivation.spread_exact else abs(rate + r) <= tol
    top = per[str(run.widths[-1])]
    return {"V_T": V_ode.tolist(), "z_crit": z, "movement": scale, "per_width": per,
            "spread_rate": rate, "spread_rate_se": rate_se, "spread_rate_theory": -r,
            "spread_theory": "exact" if run.derivation.spread_exact else "bound",
            "mean_ok": bool(top["ratio"] <= 1), "spread_ok": bool(ok_spread)}


def mean_rejects(run, nets_top, V_target, z, scale) -> bool:
    n = run.widths[-1]
    return _mean_check(nets_top, V_target, n, kappa_of(run.derivation), scale, z)[4] > 1


def rescale_moments(mom, kappa):
    """n·E[ΔV], n·Cov[ΔV] → n^κ·E[ΔV], n^κ·Cov[ΔV] (the time step is n^(−κ))."""
    f = float(mom["n"]) ** (kappa - 1)
    out = dict(mom)
    for k in ("mean", "mean_se", "cov", "cov_se"):
        out[k] = np.asarray(mom[k]) * f
    return out


def plot_concentration(report, path):
    """Distance of the mean to the ODE and the spread vs n (log–log), with the theory's slope."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plots import finish_width_plot

    c = report["ode"]
    w = np.array(report["widths"], float)
    per = [c["per_width"][str(int(n))] for n in w]
    dist = np.array([p["distance"] for p in per])
    se = np.array([p["distance_se"] for p in per])
    spread = np.array([p["spread"] for p in per])
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.errorbar(w, dist, yerr=se, fmt="o-", capsize=4, label="max |mean − V_ode(T)| (± SE)")
    ax.plot(w, spread, "s-", label="spread (largest std of V_T)")
    ax.plot(w, spread[0] * (w / w[0]) ** c["spread_rate_theory"], "k:",
            label=f"theory ∝ n^{c['spread_rate_theory']:.2f}" + (" (bound)" if c["spread_theory"] == "bound" else ""))
    ax.set_yscale("log")
    ax.set_title(f"{report['variant']} (m={report['m']}, T={report['T']}): concentration on the ODE")
    finish_width_plot(fig, ax, w, path, plt)
