"""A derivation as a ``torchsde`` SDE: ``torchsde.sdeint(to_torchsde(d, params), y0, ts, dt=…)``.

State: V flattened row-major, shape (batch, m·m).  Noise type "general" (the structured noise is
neither diagonal, scalar nor additive): g(t, y) is the (batch, m·m, G·m·m) matrix whose column k is
noise(V, E_k), E_k the k-th unit Gaussian matrix — N is linear in Z, so g dW has covariance Σ dt.
"""
from __future__ import annotations

from .functions import check_array, check_scale, to_torch


def to_torchsde(derivation, params=None, diffusion_scale=1.0):
    """A torch.nn.Module with ``f``, ``g``, ``noise_type = "general"``, ``sde_type = "ito"``
    (``diffusion_scale`` multiplies Σ, for power checks)."""
    import torch

    scale = check_scale(diffusion_scale) ** 0.5
    coef = to_torch(derivation, params)
    m, G = coef.m, coef.groups

    def state(y):
        return check_array(y, "y (the state: V flattened row-major)", (m * m,), torch.is_complex).reshape(-1, m, m)

    class CovarianceSDE(torch.nn.Module):
        noise_type = "general"
        sde_type = "ito"
        brownian_size = G * m * m

        def f(self, t, y):
            V = state(y)
            return coef.drift(V).reshape(-1, m * m)

        def g(self, t, y):
            V = state(y)
            B = V.shape[0]
            eye = torch.eye(G * m * m, dtype=V.dtype, device=V.device).reshape(G * m * m, G, m, m)
            Vk = V[:, None].expand(B, G * m * m, m, m)
            cols = coef.noise(Vk, eye[None].expand(B, -1, -1, -1, -1))  # (B, G·m·m, m, m)
            return scale * cols.reshape(B, G * m * m, m * m).transpose(1, 2)

    return CovarianceSDE()
