"""The files a validation writes into its folder: report.json (written last: its presence marks the
validation done) and three plots."""
from __future__ import annotations

from pathlib import Path

from ..common.cache import write_json

OUTPUTS = {"report": "report.json", "densities": "densities.png", "qq": "qq.png", "discrepancy": "discrepancy.png"}


def existing_outputs(folder) -> list[str]:
    d = Path(folder)
    return [str(d / f) for f in OUTPUTS.values() if (d / f).exists()]


def write_outputs(report, samples, folder) -> None:
    """Plots, then report.json (atomically)."""
    from .validation import plot_report

    d = Path(folder)
    plot_report(report, samples, {k: d / v for k, v in OUTPUTS.items() if k != "report"})
    write_json(d / OUTPUTS["report"], report)
