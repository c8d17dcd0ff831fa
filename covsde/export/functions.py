"""Vectorised drift and structured noise of a derivation, for NumPy and PyTorch.

For V of shape (..., m, m) and Z of shape (..., G, m, m) (G noise groups, i.i.d. N(0, 1) entries):

    drift(V)    = b(V)                                           (..., m, m)
    noise(V, Z) = Σ_g Σ_t c_t A_t (L Z_g Lᵀ)^{(T_t)} B_t,  L = chol V    (..., m, m)

so that dV = b dt + noise(V, dW/dt·…) is the SDE: Cov(noise(V, Z)) = Σ(V) exactly.  A matrix V that is
not positive definite (a path an Euler step pushed out of the cone) gets a NaN noise: that path
fails visibly (count NaN paths) and the others go on; covsde's own PSD scheme avoids this.  Parameter values
are checked as everywhere (:meth:`Derivation.parameter_values`) and substituted; numbers are folded
to floats; square roots and arccos are domain-safe (arguments clipped to the real domain).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import sympy as sp

from ..common.errors import CovsdeInputError
from ..common.expr import fold_numbers
from ..derive.kernelmaps import kernels_in, safe_functions, safe_namespace
from ..derive.points import upper_pairs

SAFE_SQRT = sp.Function("safe_sqrt")


@dataclass
class Coefficients:
    drift: Callable  # V (..., m, m) → b (..., m, m)
    noise: Callable  # (V (..., m, m), Z (..., G, m, m)) → N (..., m, m)
    m: int
    groups: int


def check_derivation(derivation, name="derivation"):
    """The derivation to export, or a CovsdeInputError saying what was given instead (a block, a variant
    name, anything else) and how to get a derivation."""
    from ..derive import Block
    from ..derive.result import Derivation

    if isinstance(derivation, Derivation):
        return derivation
    if isinstance(derivation, Block):
        hint = f"a block ({type(derivation).__name__}): derive it first, covsde.derive.derive(block, m)"
    elif isinstance(derivation, str):
        hint = (f"the variant name {derivation!r}: derive it first, "
                f"covsde.derive.derive(covsde.derive.variants.build({derivation!r})[0], m)")
    else:
        hint = f"{type(derivation).__name__} {str(derivation)[:80]!r}"
    raise CovsdeInputError(f"{name} must be a covsde Derivation (from covsde.derive.derive(block, m)), got {hint}")


def check_params(derivation, params):
    """``params``: None or a dict of the derivation's own parameters (any other name refused)."""
    if params is None:
        return None
    if not isinstance(params, dict):
        raise CovsdeInputError(f"params must be a dict name → number, got {type(params).__name__} {params!r}")
    known = {s.name for s in derivation.parameters}
    extra = sorted(set(map(str, params)) - known)
    if extra:
        raise CovsdeInputError(f"params: {', '.join(map(repr, extra))} not a parameter of this derivation (its "
                               f"parameters: {', '.join(sorted(known)) or 'none'})")
    return params


def check_scale(value, name="diffusion_scale"):
    from ..common import checks

    return checks.real(name, value, nonnegative=True)


def brownian_shape(derivation):
    """The shape (G, m, m) of the Gaussian matrices Z that the structured noise is linear in.

    Arguments:
        derivation: a :class:`~covsde.derive.Derivation` with a limit.

    Returns:
        tuple: (G, m, m), G the number of independent noise groups.
    """
    derivation = check_derivation(derivation)
    return (len(derivation.noise), derivation.m, derivation.m)


def check_array(x, name, tail, is_complex):
    """An array whose trailing dimensions are ``tail`` (e.g. (m, m)) and whose dtype is real; the
    error names the argument, its shape and the expected one (shapes only: works under jit/vmap)."""
    shape = getattr(x, "shape", None)
    if shape is None:
        raise CovsdeInputError(f"{name} must be an array of shape (..., {', '.join(map(str, tail))}), got "
                               f"{type(x).__name__}")
    shape = tuple(shape)
    if len(shape) < len(tail) or shape[len(shape) - len(tail):] != tuple(tail):
        raise CovsdeInputError(f"{name} has shape {shape}: expected (..., {', '.join(map(str, tail))})")
    if is_complex(x):
        raise CovsdeInputError(f"{name} is complex ({x.dtype}): expected a real array of shape "
                               f"(..., {', '.join(map(str, tail))})")
    return x


def _safe(expr):
    """Numbers folded to floats, √ and the closed-form kernel maps' special functions (arccos) replaced by
    domain-safe functions (:func:`covsde.derive.kernelmaps.safe_functions`; one spelling for the three
    array backends)."""
    expr = fold_numbers(expr)
    expr = expr.replace(lambda e: isinstance(e, sp.Pow) and e.exp == sp.Rational(1, 2), lambda e: SAFE_SQRT(e.base))
    expr = expr.replace(lambda e: isinstance(e, sp.Pow) and e.exp == -sp.Rational(1, 2),
                        lambda e: 1 / SAFE_SQRT(e.base))
    return safe_functions(expr, "numpy")


def _substituted(derivation, params):
    params = check_params(derivation, params)
    if not derivation.has_limit:
        raise CovsdeInputError(f"no SDE limit to export (regime no-limit): {derivation.reason}")
    vals = derivation.parameter_values(params)
    sub = {s: vals[s.name] for s in derivation.parameters}
    m = derivation.m
    drift = [_safe(derivation.drift[i, j].xreplace(sub)) for i in range(m) for j in range(m)]
    groups = [[(_safe(sp.sympify(t.coef).xreplace(sub)),
                None if t.A is None else [_safe(x.xreplace(sub)) for x in t.A], t.T,
                None if t.B is None else [_safe(x.xreplace(sub)) for x in t.B]) for t in g.terms]
              for g in derivation.noise]
    return drift, groups


def _build(derivation, params, xp, lam, full, chol, matmul, transpose, is_complex, asarray=lambda x: x,
           backend="numpy"):
    """Drift and noise functions over an array library ``xp`` (numpy or torch), their arguments checked; a
    kernel map without an evaluation for ``backend`` raises NotSupported naming it, before anything is built."""
    derivation = check_derivation(derivation)
    m = derivation.m
    syms = list(derivation.symbols)
    drift_exprs, groups = _substituted(derivation, params)
    if backend != "numpy":
        for k in kernels_in(drift_exprs):
            raise k.unsupported(backend)
    pairs = upper_pairs(m)
    f_drift = lam(syms, drift_exprs)
    f_groups = [[(lam(syms, [c]), None if A is None else lam(syms, A), T, None if B is None else lam(syms, B))
                 for c, A, T, B in g] for g in groups]

    def args(V):
        return [V[..., i, j] for i, j in pairs]

    def matrix(f, V):
        return full(f(*args(V)), V).reshape(V.shape[:-2] + (m, m))

    G = len(groups)

    def drift(V):
        V = check_array(asarray(V), "V", (m, m), is_complex)
        return matrix(f_drift, V)

    def noise(V, Z):
        V = check_array(asarray(V), "V", (m, m), is_complex)
        Z = check_array(asarray(Z), "Z", (G, m, m), is_complex)
        L = chol(V)
        out = 0 * V
        for g, terms in enumerate(f_groups):
            Zh = matmul(matmul(L, Z[..., g, :, :]), transpose(L))
            for fc, fA, T, fB in terms:
                X = transpose(Zh) if T else Zh
                if fA is not None:
                    X = matmul(matrix(fA, V), X)
                if fB is not None:
                    X = matmul(X, matrix(fB, V))
                out = out + full(fc(*args(V)), V).reshape(V.shape[:-2] + (1, 1)) * X
        return out

    return Coefficients(drift, noise, m, len(groups))


def _chol_numpy(V):
    """chol(V) per matrix; NaN for the matrices that are not positive definite."""
    import numpy as np

    try:
        return np.linalg.cholesky(V)
    except np.linalg.LinAlgError:
        flat = V.reshape((-1,) + V.shape[-2:])
        out = np.full(flat.shape, np.nan)
        for k, A in enumerate(flat):
            try:
                out[k] = np.linalg.cholesky(A)
            except np.linalg.LinAlgError:
                pass
        return out.reshape(V.shape)


def _chol_torch(V):
    """chol(V) per matrix; NaN for the matrices that are not positive definite."""
    import torch

    L, info = torch.linalg.cholesky_ex(V)
    return torch.where((info != 0)[..., None, None], torch.full_like(L, float("nan")), L)


def to_numpy(derivation, params=None):
    """The drift and the structured noise as vectorised NumPy functions.

    Arguments:
        derivation: a :class:`~covsde.derive.Derivation` with a limit.
        params: numbers for the symbols left in it (checked as everywhere).

    Returns:
        Coefficients: ``drift(V)`` for V of shape (..., m, m), ``noise(V, Z)`` for Z of shape
            (..., G, m, m) with i.i.d. N(0, 1) entries (G = ``groups``), whose covariance is Σ(V).

    Raises:
        CovsdeInputError: missing or out-of-domain parameter values, m beyond COVSDE_MAX_M_ENTRIES.

    Example:
        ```python
        import numpy as np
        from covsde.derive import derive
        from covsde.derive.variants import build
        from covsde.export import brownian_shape, to_numpy

        d = derive(build("mlp", {})[0], 2)
        f = to_numpy(d)
        V = np.array([[1.0, 0.2], [0.2, 1.0]])
        print(f.drift(V), f.noise(V, np.random.default_rng(0).standard_normal(brownian_shape(d))))
        ```
    """
    import numpy as np

    ns = {"safe_sqrt": lambda x: np.sqrt(np.maximum(x, 0.0)), **safe_namespace("numpy", np)}

    def lam(syms, exprs):
        return sp.lambdify(syms, exprs, [ns, "numpy"])

    def full(vals, V):
        return np.stack([np.broadcast_to(np.asarray(v, dtype=float), V.shape[:-2]) for v in vals], axis=-1)

    return _build(derivation, params, np, lam, full, _chol_numpy, np.matmul, lambda X: np.swapaxes(X, -1, -2),
                  np.iscomplexobj, np.asarray)


def to_torch(derivation, params=None):
    """:class:`Coefficients` over torch tensors (any device and dtype; differentiable in V).

    Arguments:
        derivation: a :class:`~covsde.derive.Derivation` with a limit.
        params: numbers for the symbols left in it.

    Returns:
        Coefficients: ``drift(V)`` and ``noise(V, Z)`` over tensors, as :func:`to_numpy`.

    Raises:
        CovsdeInputError: missing or out-of-domain parameter values.

    Example:
        ```python
        import torch
        from covsde.derive import derive
        from covsde.derive.variants import build
        from covsde.export import to_torch

        f = to_torch(derive(build("mlp", {})[0], 2))
        V = torch.tensor([[1.0, 0.2], [0.2, 1.0]], dtype=torch.float64, requires_grad=True)
        f.drift(V).sum().backward()
        print(V.grad)
        ```
    """
    import torch

    ns = {"safe_sqrt": lambda x: torch.sqrt(torch.clamp(x, min=0.0)), **safe_namespace("torch", torch)}

    from sympy.printing.pytorch import TorchPrinter

    printer = TorchPrinter()
    printer.mapping = {**TorchPrinter.mapping, SAFE_SQRT: "safe_sqrt",
                       **{sp.Function(name): name for name in safe_namespace("torch", torch)}}

    def lam(syms, exprs):
        return sp.lambdify(syms, exprs, [ns, "torch"], printer=printer)

    def full(vals, V):
        batch = V.shape[:-2]
        return torch.stack([torch.as_tensor(v, dtype=V.dtype, device=V.device).expand(batch) for v in vals], dim=-1)

    return _build(derivation, params, torch, lam, full, _chol_torch, torch.matmul, lambda X: X.transpose(-1, -2),
                  lambda X: torch.is_complex(X) if torch.is_tensor(X) else False, backend="torch")


def to_jax(derivation, params=None):
    """:class:`Coefficients` over JAX arrays (jit/vmap/grad-compatible; JAX's Cholesky already gives NaN
    for a matrix that is not positive definite).  For float64 states enable
    ``jax.config.update("jax_enable_x64", True)`` first."""
    import jax.numpy as jnp

    ns = {"safe_sqrt": lambda x: jnp.sqrt(jnp.maximum(x, 0.0)), **safe_namespace("jax", jnp)}

    def lam(syms, exprs):
        return sp.lambdify(syms, exprs, [ns, "jax"])

    def full(vals, V):
        return jnp.stack([jnp.broadcast_to(jnp.asarray(v, dtype=V.dtype), V.shape[:-2]) for v in vals], axis=-1)

    return _build(derivation, params, jnp, lam, full, jnp.linalg.cholesky, jnp.matmul, lambda X: jnp.swapaxes(X, -1, -2),
                  jnp.iscomplexobj, backend="jax")
