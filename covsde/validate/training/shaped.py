"""Shaped against standard attention in training: deep Transformers without normalisation on the seeded
language task, loss curves over a grid of learning rates and the largest stable rate of each.

* shaped: covsde's shaped Transformer block (Noci et al. 2023, "The shaped Transformer: attention models in
  the infinite depth-and-width limit"): attention I + softmax(q·k/(τ0·n)) − 11ᵀ/m (τ0 = 1, e = 1/2), shaped
  ReLU with slopes 1 + c±/√n (c+ = 0, c− = −1), residual branches γ = 1/√2, λ = √(1 − γ²);
* standard: the same block with softmax(q·k/√n) attention (no identity, no centring) and the plain ReLU
  (p = 0), the same residual weights.

Both use the standard parameterisation (``sp``) with Adam and a causal mask.  A rate is *stable* when its
run never diverged (no non-finite loss, none above 100 times the initial one; a transient spike below that is
allowed) and its final held-out loss is below the initial loss.
"""
from __future__ import annotations

import sys

from ...common.progress import Progress
from .check import lr_sweep
from .params import make
from .tasks import Task

GAMMA = "0.70710678"
MODELS = {
    "shaped attention": {"gamma": GAMMA, "tau0": "1", "e": "1/2"},
    "standard attention": {"gamma": GAMMA, "tau0": "1", "e": "0", "centre": "false", "identity": "false", "p": "0"},
}


def sizes(quick):
    if quick:
        return dict(n=32, depth=8, m=4, steps=12, lrs=[1e-3, 1e-2, 1e-1], batch=16)
    return dict(n=64, depth=32, m=8, steps=150, lrs=[10 ** (k / 4) for k in range(-14, -5)], batch=32)


def largest_stable(final, curve0):
    ok = [float(k) for k, v in final.items() if v is not None and v < curve0[k]]
    return max(ok) if ok else None


def shaped_training(quick=False, log=sys.stderr):
    """(data, {"": figure}) of the reproduction (module docstring)."""
    s = sizes(quick)
    out = {**{k: v for k, v in s.items()}, "task": "language", "param": "sp", "optimizer": "adam", "models": {}}
    for label, given in MODELS.items():
        cfg = dict(model="transformer", set=given, param=make("sp"), depth=s["depth"], task="language", m=s["m"],
                   widths=[s["n"]], lrs=s["lrs"], steps=s["steps"], optimizer="adam", seed=0, batch=s["batch"])
        task = Task("language", "transformer", given, s["depth"], s["m"], batch=s["batch"], seed=0)
        bar = Progress(len(s["lrs"]) * s["steps"], f"shaped-training: {label}", "steps", stream=log)
        final, curves, best = lr_sweep(cfg, task, bar)
        bar.close()
        f, c = final[str(s["n"])], curves[str(s["n"])]
        first = {k: v[0] for k, v in c.items()}
        out["models"][label] = {"final": f, "curves": c, "best_lr": best[str(s["n"])],
                                "largest_stable_lr": largest_stable(f, first), "floor": task.floor}
        print(f"[reproduce] shaped-training: {label}: largest stable lr {out['models'][label]['largest_stable_lr']}, "
              f"best {best[str(s['n'])]}", file=log, flush=True)
    return out, {"": figure(out)}


def figure(out):
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    for ax, (label, r) in zip(axes[:2], out["models"].items()):
        for k, curve in r["curves"].items():
            ax.plot(curve, label=f"lr {float(k):.2g}")
        ax.axhline(r["floor"], color="k", lw=0.6, ls=":")
        ax.set_yscale("log")
        ax.set_ylim(0.8 * r["floor"], 4 * max(c[0] for c in r["curves"].values()))  # spikes clipped
        ax.set_title(f"{label}: largest stable lr {r['largest_stable_lr']}", fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        ax.legend(fontsize=6)
    for label, r in out["models"].items():
        lrs = [float(k) for k in r["final"]]
        axes[2].plot(lrs, [float("nan") if v is None else v for v in r["final"].values()], marker="o", label=label)
    axes[2].set_xscale("log")
    axes[2].xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes[2].set_xlabel("Adam learning rate")
    axes[2].set_ylabel(f"held-out loss after {out['steps']} steps")
    axes[2].legend(fontsize=8)
    fig.suptitle(f"Transformer without normalisation, depth {out['depth']}, width {out['n']}, m = {out['m']}, "
                 "synthetic language")
    fig.tight_layout()
    return fig
