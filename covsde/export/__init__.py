"""export/: a derivation, with parameter values, as functions for the solvers users already have.

* :func:`to_numpy`, :func:`to_torch`: vectorised drift b(V) and structured noise N(V, Z) over any
  leading batch dimensions (torch: any device and dtype, differentiable);
* :func:`to_torchsde`: a ``torchsde`` SDE module (state: V flattened row-major, shape (batch, m·m));
* :func:`brownian_shape`: the shape (groups, m, m) of the Gaussian matrices Z the noise is linear in.

(Exports to JAX and diffrax are not written yet.)
"""
from .functions import Coefficients, brownian_shape, to_numpy, to_torch
from .sde_torchsde import to_torchsde

__all__ = ["Coefficients", "brownian_shape", "to_numpy", "to_torch", "to_torchsde"]
