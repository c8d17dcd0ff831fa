"""``covsde demo``: the toolkit end to end, in a few minutes on a laptop-class CPU.

1. derive the shaped Transformer SDE (printed, and written as LaTeX);
2. simulate it (many paths, PSD-preserving scheme);
3. validate it against finite networks at modest widths (with the power of the test);
4. the failure it was built to understand: rank collapse of standard attention;
5. write DIR/report.md embedding the plots, every figure with the command that reproduces it.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

G8 = "0.35355339"


def _step(k, n, msg):
    print(f"[demo {k}/{n}] {msg}", file=sys.stderr, flush=True)


V0 = np.array([[1.0, 0.2], [0.2, 1.0]])
V0S = "[[1,0.2],[0.2,1]]"
STEPS = 5


def _prepare(out, force):
    from .common.errors import CovsdeInputError

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CovsdeInputError(f"demo output {out} exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not force:
        raise FileExistsError(f"{out} exists and is not empty (use --force to overwrite)")
    (out / "validation").mkdir(parents=True, exist_ok=True)
    return out


def _derive(out):
    from .derive import derive
    from .derive.variants import build

    _step(1, STEPS, "deriving the shaped Transformer SDE (m = 2, γ and τ0 symbolic)")
    d = derive(build("transformer", {})[0], 2, name="transformer")
    print(d.text())
    (out / "transformer_sde.tex").write_text(d.latex() + "\n")
    return d


def _plot_sde(VT, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .common.stats import rho01

    rho = rho01(VT)
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].hist(rho, bins=60, density=True, color="C3", alpha=0.6)
    ax[0].axvline(0.2, color="k", ls="--", lw=1, label="ρ0 = 0.2")
    ax[0].set_xlabel("ρ at T = 0.75")
    ax[0].set_ylabel("density")
    ax[0].set_title(f"Shaped Transformer SDE: law of ρ_T ({len(rho)} paths)")
    ax[0].legend()
    ax[1].hist(np.log(VT[:, 0, 0]), bins=60, density=True, color="C0", alpha=0.6)
    ax[1].set_xlabel("log V^00 at T = 0.75")
    ax[1].set_ylabel("density")
    ax[1].set_title("… and of the log-norm of token 0")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _simulate(d, out, quick):
    from .numerics import simulate

    _step(2, STEPS, "simulating it: γ² = 1/8, τ0 = 1, V0 = [[1, .2], [.2, 1]], T = 0.75")
    paths = 1000 if quick else 8000
    sim = simulate(d, V0, 0.75, dt=0.005, paths=paths, seed=0, params={"gamma": float(G8), "tau0": 1.0})
    _plot_sde(sim.V[-1][sim.alive], out / "sde.png")
    return sim, paths


def _validate(d, out, quick):
    from .derive.variants import build
    from .validate.outputs import write_outputs
    from .validate.validation import validate

    _step(3, STEPS, "validating against finite networks (exact-in-law sampler)")
    widths = [25, 50] if quick else [50, 100]
    samples = 300 if quick else 1000
    blk, params = build("transformer", {"gamma": G8, "tau0": "1"})
    rep, draws = validate(blk, d, V0, 0.75, widths, samples=samples, seed=0, power=not quick, progress=True,
                          onestep_samples=10000 if quick else 40000, values={"gamma": float(G8), "tau0": 1.0},
                          variant="transformer", params=params)
    write_outputs(rep, draws, out / "validation")
    return rep, widths, samples


def _rank_collapse(out):
    import matplotlib.pyplot as plt

    from .common.cache import write_json
    from .reproduce import rank_collapse

    _step(4, STEPS, "rank collapse: standard vs shaped attention")
    rc, figs = rank_collapse(quick=True)
    figs[""].savefig(out / "rank_collapse.png", dpi=110)
    plt.close(figs[""])
    write_json(out / "rank_collapse.json", rc)
    return rc


def run_demo(out="demo-out", force=False, quick=False):
    """The demo's phases: derive, simulate, validate, rank collapse, then the report."""
    out = _prepare(out, force)
    t_all = time.perf_counter()
    d = _derive(out)
    sim, paths = _simulate(d, out, quick)
    rep, widths, samples = _validate(d, out, quick)
    rc = _rank_collapse(out)
    _step(5, STEPS, "writing the report")
    (out / "report.md").write_text(_report(out, d, sim, paths, rep, widths, samples, rc, time.perf_counter() - t_all))
    print(f"wrote {out}/report.md ({time.perf_counter() - t_all:.0f} s)")
    return 0


def _report(out, d, sim, paths, rep, widths, samples, rc, seconds):
    """report.md, every figure with the command that reproduces it."""
    q = sim.summary()["quantiles"]
    t = rep["tests"][str(widths[-1])]
    lab_std = "standard attention, with skip"
    lab_sh = [k for k in rc["mean_rho"] if k.startswith("shaped attention (")][0]
    md = f"""# covsde demo report

Everything below was computed by `covsde demo --out {out}` in {seconds:.0f} s.

## 1. The shaped Transformer SDE, derived

`covsde derive transformer --m 2 --format latex` — regime **{d.regime}**; derivation took
{d.seconds:.2f} s (0 if it came from the cache). LaTeX: [transformer_sde.tex](transformer_sde.tex).
The drift b(V) and diffusion Σ(V) are exact SymPy expressions in V and the parameters γ, τ0
(and c₊ = 0, c₋ = −1).

## 2. Solved for {paths} paths

`covsde simulate transformer --set gamma={G8} --set tau0=1 --V0 '{V0S}' --T 0.75 --dt 0.005 --paths {paths}`

Survived {sim.counts['survived']}, exploded {sim.counts['exploded']}, left the PSD cone {sim.counts['left_psd']}.
Quantiles (5, 25, 50, 75, 95 %) of ρ_T: {', '.join(f'{x:.3f}' for x in q['rho_0_1'])};
of log V^00_T: {', '.join(f'{x:.3f}' for x in q['logV_0_0'])}.

![SDE laws](sde.png)

## 3. Finite networks agree with it

`covsde validate transformer --set gamma={G8} --set tau0=1 --V0 '{V0S}' --T 0.75 --widths {','.join(map(str, widths))} --samples {samples}`

Verdict: **{rep['verdict'].upper()}** (α = {rep['alpha']}). At n = {widths[-1]} (depth {t['depth']}): largest KS
statistic {t['discrepancy']:.3f}, smallest Holm-adjusted p-value {t['min_holm_p']:.3g}, energy-test p-value
{t['energy']['pvalue']:.3g}; one-step moments at V0 (n = {rep['onestep']['n']}, {rep['onestep']['samples']} layers):
drift {'agrees' if rep['onestep']['drift_ok'] else 'REJECTED'}, diffusion {'agrees' if rep['onestep']['diffusion_ok'] else 'REJECTED'}.
**Power:** with these sample sizes the same procedure rejects the SDE with its drift scaled by 1 ± {rep['power']['drift']}
and with its diffusion scaled by 1 ± {rep['power']['diffusion']} (smallest δ on the grid {rep['power']['grid']}
rejected for both signs; `None` = not detected on the grid). A pass therefore means: no error as large as these.

![densities](validation/densities.png)
![QQ](validation/qq.png)
![discrepancy](validation/discrepancy.png)

## 4. What goes wrong without shaping: rank collapse

`covsde reproduce rank-collapse --quick` (m = {rc['m']}, n = {rc['n']}, ρ0 = 0.2, {rc['samples']} real-weight networks)

Mean token correlation at layer 10: standard attention with skip {rc['mean_rho'][lab_std][10]:.3f};
shaped attention {rc['mean_rho'][lab_sh][10]:.3f}. The derivation reports standard attention as
`{rc['regime'][lab_std]}` (logits O(1): an O(1) change of V per layer).

![rank collapse](rank_collapse.png)
"""
    return md
