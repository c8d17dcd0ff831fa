"""export/: a derivation, with parameter values, as functions for the solvers users already have.

* :func:`to_numpy`, :func:`to_torch`, :func:`to_jax`: vectorised drift b(V) and structured noise
  N(V, Z) over any leading batch dimensions (torch: any device and dtype; torch and JAX differentiable);
* :func:`to_torchsde`: a ``torchsde`` SDE module (state: V flattened row-major, shape (batch, m·m));
* :func:`to_diffrax`: a ``diffrax.MultiTerm`` (drift ODETerm + matrix-free ControlTerm) driven by a
  Brownian path of shape :func:`diffrax_brownian_shape` (state: the m×m V);
* :func:`brownian_shape`: the shape (groups, m, m) of the Gaussian matrices Z the noise is linear in.
"""
from .functions import Coefficients, brownian_shape, to_jax, to_numpy, to_torch
from .sde_diffrax import diffrax_brownian_shape, to_diffrax
from .sde_torchsde import to_torchsde

__all__ = ["Coefficients", "brownian_shape", "diffrax_brownian_shape", "to_diffrax", "to_jax", "to_numpy",
           "to_torch", "to_torchsde"]
