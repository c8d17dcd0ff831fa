"""The files a validation writes into its folder: report.json (written last: its presence marks the
validation done) and its plots: three for the SDE target, one (concentration.png) for the ODE target."""
from __future__ import annotations

from pathlib import Path

from ..common.cache import write_json

OUTPUTS = {"report": "report.json", "densities": "densities.png", "qq": "qq.png", "discrepancy": "discrepancy.png",
           "concentration": "concentration.png"}
SDE_PLOTS = ("densities", "qq", "discrepancy")


def existing_outputs(folder) -> list[str]:
    d = Path(folder)
    return [str(d / f) for f in OUTPUTS.values() if (d / f).exists()]


def write_outputs(report, samples, folder) -> None:
    """Plots, then report.json (atomically)."""
    from .ode_target import plot_concentration
    from .validation import plot_report

    d = Path(folder)
    if report.get("target") == "ode":
        plot_concentration(report, d / OUTPUTS["concentration"])
    else:
        plot_report(report, samples, {k: d / OUTPUTS[k] for k in SDE_PLOTS})
    write_json(d / OUTPUTS["report"], report)
