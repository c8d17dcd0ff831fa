"""validate/: finite torch networks against the derived SDE.

The public names: :func:`validate` (networks at several widths against the SDE's law or the ODE,
with the one-step moments and the power search; the report that ``covsde validate`` writes),
:func:`write_outputs` (report.json and the plots), :func:`run_suite` and :func:`load_suite` (suites
of validations, locally or on Dask), :func:`run_networks` (finite networks of a block, real weights
or the exact-in-law sampler), :func:`one_step_check` and :func:`one_step_moments` (the moments of
one layer step against b and Σ) and :func:`run_pieces` (the executor behind them).  Everything else
is internal.

The names are loaded on first use, so that importing a light module of this subpackage (the suite
reader, the output writer) does not import torch.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_WHERE = {"validate": "validation", "write_outputs": "outputs", "run_suite": "suite", "load_suite": "suite",
          "run_networks": "networks", "one_step_check": "onestep", "one_step_moments": "onestep",
          "OneStepResult": "onestep", "run_pieces": "executors"}
__all__ = list(_WHERE)

if TYPE_CHECKING:  # for type checkers and documentation tools
    from .executors import run_pieces
    from .networks import run_networks
    from .onestep import OneStepResult, one_step_check, one_step_moments
    from .outputs import write_outputs
    from .suite import load_suite, run_suite
    from .validation import validate


def __getattr__(name):
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
