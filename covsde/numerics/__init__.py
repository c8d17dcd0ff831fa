"""numerics/: derived SDEs compiled into Numba kernels (never imports torch).

The public names: :func:`simulate` (many paths of the SDE, EM or the PSD-preserving scheme),
:func:`solve_ode` (the drift-only ODE), :func:`extrapolate` (weak order 2 by Richardson extrapolation
over two coupled runs), their results :class:`SimResult`, :class:`OdeResult`, :class:`Extrapolation`,
and :func:`load_module` (the compiled module of a derivation, for advanced use).  Everything else in
the subpackage's modules is internal: it may change without notice.
"""
from .codegen import load_module
from .integrate import OdeResult, SimResult, simulate, solve_ode
from .richardson import Extrapolation, extrapolate

__all__ = ["simulate", "solve_ode", "extrapolate", "SimResult", "OdeResult", "Extrapolation", "load_module"]
