"""Shared finishing of the validation plots against the width n."""
from __future__ import annotations


def finish_width_plot(fig, ax, widths, path, plt):
    """A log-scaled width axis labelled by the widths themselves, the legend, and the PNG written."""
    ax.set_xscale("log")
    ax.set_xticks(widths, [str(int(x)) for x in widths])
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_xlabel("width n")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
