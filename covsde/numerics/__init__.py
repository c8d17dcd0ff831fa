"""numerics/: derived SDEs compiled into Numba kernels (never imports torch)."""
from .codegen import NumbaPrinter, generate_source, load_module
from .integrate import SimResult, check_V0, simulate, solve_ode, summarize

__all__ = ["NumbaPrinter", "generate_source", "load_module", "SimResult", "check_V0", "simulate", "solve_ode",
           "summarize"]
