"""A derivation as diffrax terms: ``to_diffrax(d, params, brownian)`` is a ``diffrax.MultiTerm`` of
the drift (an ``ODETerm``) and the structured noise (a ``ControlTerm`` whose vector field is the
matrix-free lineax operator Z ↦ noise(V, Z)), driven by ``brownian``, a diffrax Brownian path of
shape :func:`diffrax_brownian_shape` = (G, m, m).  The state is the m×m matrix V.

    jax.config.update("jax_enable_x64", True)
    bm = diffrax.VirtualBrownianTree(0.0, T, tol=1e-3, shape=jax.ShapeDtypeStruct(diffrax_brownian_shape(d),
                                     jnp.float64), key=key)
    sol = diffrax.diffeqsolve(to_diffrax(d, params, bm), diffrax.Euler(), 0.0, T, dt0=0.01, y0=V0)
"""
from __future__ import annotations

from ..common.errors import CovsdeInputError
from .functions import brownian_shape, check_derivation, check_scale, to_jax


def diffrax_brownian_shape(derivation):
    """The shape of the Brownian path the noise needs: (G, m, m), G the number of noise groups."""
    return brownian_shape(derivation)


def _check_brownian(brownian, shape, diffrax):
    """A diffrax Brownian path (an AbstractPath) of shape (G, m, m)."""
    if brownian is None or not isinstance(brownian, diffrax.AbstractPath):
        raise CovsdeInputError(f"brownian must be a diffrax Brownian path of shape {shape} (e.g. "
                               f"diffrax.VirtualBrownianTree(t0, t1, tol, shape=jax.ShapeDtypeStruct({shape}, "
                               f"jnp.float64), key=key)), got {type(brownian).__name__}")
    got = getattr(getattr(brownian, "shape", None), "shape", None)
    if got is not None and tuple(got) != tuple(shape):
        raise CovsdeInputError(f"brownian has shape {tuple(got)}: expected {shape} = (noise groups, m, m), see "
                               "diffrax_brownian_shape(derivation)")


def to_diffrax(derivation, params, brownian, diffusion_scale=1.0):
    """diffrax.MultiTerm(ODETerm(drift), ControlTerm(noise operator, brownian)); state V (m×m).
    ``diffusion_scale`` multiplies Σ (for power checks)."""
    import diffrax
    import jax
    import lineax

    shape = brownian_shape(check_derivation(derivation))
    scale = check_scale(diffusion_scale) ** 0.5
    _check_brownian(brownian, shape, diffrax)
    coef = to_jax(derivation, params)

    def noise_operator(t, y, args):
        return lineax.FunctionLinearOperator(lambda Z: scale * coef.noise(y, Z), jax.ShapeDtypeStruct(shape, y.dtype))

    return diffrax.MultiTerm(diffrax.ODETerm(lambda t, y, args: coef.drift(y)),
                             diffrax.ControlTerm(noise_operator, brownian))
