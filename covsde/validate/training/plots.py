"""The plots of a training check: coord_check.png, loss_curves.png, lr_transfer.png, initial_kernel.png."""
from __future__ import annotations

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def coord_plot(report, path, plt):
    c = report["coord_check"]
    widths, layers = c["widths"], c["layers"]
    rms, change = np.array(c["rms"]), np.array(c["rms_change"])  # (widths, K+1, layers)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for j, name in enumerate(layers):
        axes[0].plot(widths, rms[:, -1, j], marker="o", label=name)
        axes[1].plot(widths, change[:, -1, j], marker="o", label=f"{name} (slope {c['layer_slopes'][name]:.2f})")
    for ax, what in zip(axes, ("RMS of activations", "RMS of change from init")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("width n")
        ax.set_ylabel(f"{what}, step {c['steps']}")
        ax.legend(fontsize=7)
    fig.suptitle(f"coordinate check: {report['model']}, {report['param']}, {report['optimizer']} lr {c['lr']:g} "
                 f"(largest slope {c['slope']:.2f})" if c["slope"] is not None else "coordinate check")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def curves_panel(ax, loss, symbol, what, floor):
    """One axis of the loss curves: each value's curve at the largest value's best rate, with its distance."""
    if loss["lr"] is not None:
        key = f"{loss['lr']:g}"
        for v, per_lr in loss["curves"].items():
            d = loss["distance"].get(v)
            ax.plot(per_lr[key], label=f"{symbol} = {v}" + (f" (distance {d:.3g})" if d is not None else ""))
        rate = loss["rate"]
        ax.set_title(f"{what}: lr {key}" + (f"; distance ∝ {symbol}^{rate:.2f}" if rate is not None else ""),
                     fontsize=9)
    if floor:
        ax.axhline(floor, color="k", lw=0.6, ls=":", label="entropy rate")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=7)


def curves_plot(report, path, plt):
    """loss_curves.png: a panel for the widths, and one per swept axis (heads H, depth L)."""
    sweeps = report.get("sweeps") or {}
    fig, axes = plt.subplots(1, 1 + len(sweeps), figsize=(6.5 * (1 + len(sweeps)), 4.2), squeeze=False)
    curves_panel(axes[0][0], report["loss"], "n", "across widths (best lr of the largest)", report.get("floor"))
    for ax, (axis, sw) in zip(axes[0][1:], sweeps.items()):
        symbol = "H" if axis == "heads" else "L"
        where = f"n = {sw['width']}" + (f", L = {sw['depth']}" if sw.get("depth") else "")
        curves_panel(ax, sw, symbol, f"across {'heads' if symbol == 'H' else 'depths'} ({where})",
                     report.get("floor"))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def transfer_plot(report, path, plt):
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for n, per_lr in report["loss"]["final"].items():
        lrs = [float(k) for k in per_lr]
        vals = [np.nan if v is None else v for v in per_lr.values()]
        line, = ax.plot(lrs, vals, marker="o", label=f"n = {n}")
        best = report["lr_transfer"]["best_lr"][n]
        if best is not None:
            ax.axvline(best, color=line.get_color(), lw=0.8, ls="--")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("base learning rate η")
    ax.set_ylabel(f"held-out loss after {report['steps']} steps")
    ax.set_title(f"learning-rate transfer: {report['model']}, {report['param']}, {report['optimizer']}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def kernel_plot(report, path, plt):
    k = report["initial_kernel"]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for n in k["network"]:
        G, P = np.array(k["network"][n]), np.array(k["predicted"][n])
        se = np.array(k["network_se"][n])[:, 0, 1]
        line = ax.errorbar(range(len(G)), G[:, 0, 1], yerr=se, marker="o", capsize=3,
                           label=f"networks n = {n} (error {k['error'][n]:.2g})").lines[0]
        ax.plot(P[:, 0, 1], color=line.get_color(), ls="--")
    ax.set_xlabel("layer ℓ")
    ax.set_ylabel(f"V_ℓ[0, 1] (mean over {k.get('networks', '')} networks, ± 1 s.e.)")
    ax.set_title(f"initial kernel vs covsde's drift (dashed), regime {k['regime']}" if "note" not in k
                 else k["note"][:80], fontsize=9)
    if k["network"]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_plots(report, folder):
    plt = _plt()
    coord_plot(report, folder / "coord_check.png", plt)
    curves_plot(report, folder / "loss_curves.png", plt)
    transfer_plot(report, folder / "lr_transfer.png", plt)
    if "initial_kernel" in report:
        kernel_plot(report, folder / "initial_kernel.png", plt)
