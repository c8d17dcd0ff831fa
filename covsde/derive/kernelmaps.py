"""Gaussian kernel maps as objects: each map carries its own evaluation for every backend.

A *kernel map* is a function of a Gram matrix, K(V), that the matrix algebra carries as an atom
(:mod:`.matexpr`, the element-wise map ``("F", off, dia, X)``).  Where its entries have a closed form in
elementary functions (the arc-cosine kernel of the ReLU family) they are plain SymPy expressions, and
the only thing a backend must know is how to spell their special functions: :data:`ARC_COSINE` says
so, once, for NumPy, the generated Numba kernels (per path and per lane), torch and JAX.  Where they do
not, an entry is one SymPy function atom, :class:`GaussKernel`, applied to (X_aa, X_ab, X_bb); its
class carries the map (a :class:`ElementwiseMap`), which prints itself (text, LaTeX and its defining
expectation) and evaluates itself in each backend that has an evaluation — NumPy (``numpy``), the
Numba kernels (``numba_source``); a backend without one raises :class:`~.errors.NotSupported` naming
the map when the code is generated.

**Elementwise maps** (:class:`ElementwiseMap`, from :func:`elementwise_map`):

    K_φ(V)_ab = c_φ · E[φ(u_a) φ(u_b)],   u ~ N(0, V),   c_φ = 1 / E[φ(g)²], g ~ N(0, 1),

so that K_φ(V)_aa = 1 at V_aa = 1 (ReLU's c = 2).  Closed forms: erf, (2/π)·arcsin(2c/√((1+2a)(1+2b)));
GELU (φ = x·Φ(x)), with Δ = (1+a)(1+b) − c² and θ = arcsin(c/√((1+a)(1+b))),
E = c/4 + (c·θ + (c² + a·b·Δ)/((1+a)(1+b)√Δ))/(2π) (a = V_aa, b = V_bb, c = V_ab).  Any other φ of the
safe grammar (:mod:`covsde.common.expr`): the quadrature :func:`gauss_expectation`, stated there with
its measured error.  A polynomial φ gives a polynomial map (Isserlis), left to the ε-series engine.

A matrix-valued (not element-wise) map, e.g. an attention map K(V) = E[softmax(S) V softmax(S)ᵀ], fits
the same base class with ``elementwise = False``: its ``numpy(X)`` returns the m×m value and its
``numba_source`` a routine ``(X, out)``; the matrix algebra then needs one more atom kind calling them.

Example::

    >>> k = elementwise_map("gelu")
    >>> round(float(k.numpy(1.0, 0.3, 0.8)), 12) == round(float(k.closed(1.0, 0.3, 0.8)) * k.c, 12)
    True
"""
from __future__ import annotations

import functools
import hashlib
import math

import numpy as np
import sympy as sp

from ..common.expr import FUNCTIONS, fold_numbers, parse_expr
from .errors import CovsdeInputError, NotSupported

X = sp.Symbol("x", real=True)

#: Named activations (``--set activation=NAME``) and their expressions in x.
NAMED = {
    "gelu": "x*(1 + erf(x/sqrt(2)))/2",
    "gelu_tanh": "x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x**3)))/2",
    "silu": "x/(1 + exp(-x))",
    "tanh": "tanh(x)",
    "erf": "erf(x)",
    "sin": "sin(x)",
}

# ---- the quadrature: rule and nodes ------------------------------------------------------------------
#: Gauss–Legendre nodes per piece, and the half-width of the truncated standard normal range.
#: Measured (tanh, SiLU, GELU, gelu_tanh, erf; variances 0.01…100, |ρ| up to 1 − 1e-12; against 250 nodes per
#: piece and an independent composite Gauss–Legendre reference): ≤ 6e-12 absolute at 80 nodes (3e-9 at 60,
#: 2e-6 at 40).
QUAD_NODES = 80
QUAD_HALF_WIDTH = 9.0  # standard-normal mass beyond ±9: 2.3e-19


@functools.lru_cache(maxsize=4)
def _legendre(n):
    t, w = np.polynomial.legendre.leggauss(n)
    return t, w


def _pieces(lo, hi, n):
    """Gauss–Legendre nodes and weights on [lo, hi] (arrays broadcast over a leading axis)."""
    t, w = _legendre(n)
    half, mid = (hi - lo) / 2, (hi + lo) / 2
    return half[..., None] * t + mid[..., None], half[..., None] * w


def _pdf(z):
    return np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _outer_rule(n=QUAD_NODES, L=QUAD_HALF_WIDTH):
    """Nodes z and weights w·pdf(z) of E[f(z)], z ~ N(0, 1): [−L, 0] and [0, L], n nodes each."""
    t, w = _legendre(n)
    z = np.concatenate([L / 2 * t - L / 2, L / 2 * t + L / 2])
    wz = np.concatenate([L / 2 * w, L / 2 * w]) * _pdf(z)
    return z, wz


def gauss_expectation(phi, a, c, b, n=QUAD_NODES, L=QUAD_HALF_WIDTH):
    r"""E[φ(u)φ(v)] for (u, v) ~ N(0, [[a, c], [c, b]]), by a deterministic product rule.

    The rule: u = √a·z₁ (a ≥ b, the pair swapped otherwise) and v = (c/√a)·z₁ + s·z₂ with
    s = √(b − c²/a), z₁, z₂ i.i.d. N(0, 1) truncated to [−L, L] (L = 9); the outer integral over z₁ is
    Gauss–Legendre with n nodes on each of [−L, 0] and [0, L] (both φ(u) and the inner mean have their
    feature at z₁ = 0); the inner mean E[φ(μ + s z₂)] is Gauss–Legendre with n nodes on each of
    [−L, z*] and [z*, L], z* = −μ/s the point where φ's argument crosses 0 (0 if |z*| ≥ L).  Both ends
    of each piece are where φ has its features, where Gauss–Legendre's nodes cluster, so a sharp φ
    (tanh at variance 100: a transition of width 0.1 in z) and a kink at 0 are resolved.  At s = 0
    (|ρ| = 1, the diagonal) the rule is one-dimensional: E[φ(√a z₁) φ((c/√a) z₁)].  Cost: 4n² = 25 600
    evaluations of φ per entry (2n = 160 on the diagonal).

    Measured error (n = 80): ≤ 6e-12 absolute for tanh, SiLU, GELU, gelu_tanh and erf at variances 0.01
    to 100 and |ρ| up to 1 − 1e-12 (against n = 250, an adaptive nested SciPy quadrature and an
    independent composite Gauss–Legendre rule; 3e-9 at n = 60, 2e-6 at n = 40; the tests assert 1e-10).
    Cost in NumPy: 8–20 ms per entry on one core.

    Arguments:
        phi: a NumPy-vectorised function of one array.
        a, c, b: arrays (broadcast together) of V_aa, V_ab, V_bb; a, b ≥ 0 and c² ≤ a·b up to rounding.
        n, L: nodes per piece and truncation.

    Returns:
        An array of E[φ(u)φ(v)], of the broadcast shape.

    Example::

        >>> round(float(gauss_expectation(lambda x: x, 2.0, 0.5, 1.0)), 12)  # E[uv] = c
        0.5
    """
    a, c, b = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (a, c, b)))
    shape = a.shape
    a, c, b = (x.reshape(-1) for x in (a, c, b))
    swap = b > a
    a, b = np.where(swap, b, a), np.where(swap, a, b)
    out = np.empty(a.shape)
    z1, w1 = _outer_rule(n, L)
    for lo in range(0, a.size, 32):  # chunks bound the (entries × 2n × 2n) work arrays
        sl = slice(lo, lo + 32)
        out[sl] = _chunk(phi, a[sl], c[sl], b[sl], z1, w1, n, L)
    return out.reshape(shape)


def _chunk(phi, a, c, b, z1, w1, n, L):
    """The rule of :func:`gauss_expectation` for a chunk of entries (a ≥ b)."""
    ra = np.sqrt(np.maximum(a, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(ra > 0, c / ra, 0.0)
        s = np.sqrt(np.maximum(b - np.where(ra > 0, c * c / np.where(ra > 0, a, 1.0), 0.0), 0.0))
    pu = phi(ra[:, None] * z1)  # (E, 2n)
    mu = slope[:, None] * z1  # (E, 2n)
    with np.errstate(divide="ignore", invalid="ignore"):
        zs = np.where(s[:, None] > 0, -mu / s[:, None], 0.0)
    zs = np.where(np.abs(zs) < L, zs, 0.0)
    left, wl = _pieces(np.full(zs.shape, -L), zs, n)
    right, wr = _pieces(zs, np.full(zs.shape, L), n)
    z2, w2 = np.concatenate([left, right], axis=-1), np.concatenate([wl, wr], axis=-1) * _pdf(
        np.concatenate([left, right], axis=-1))
    inner = np.sum(w2 * phi(mu[..., None] + s[:, None, None] * z2), axis=-1)  # (E, 2n)
    flat = s == 0  # |ρ| = 1: one dimension
    if flat.any():
        inner[flat] = phi(mu[flat])
    return np.sum(w1 * pu * inner, axis=-1)


# ---- the base class ------------------------------------------------------------------------------
class KernelMap:
    """A Gaussian kernel map of a Gram matrix, evaluated by each backend through its own method.

    Subclasses set ``name`` (short, used in generated identifiers), ``elementwise`` and implement
    ``numpy``; a backend they do not implement raises :class:`NotSupported` naming the map
    (:meth:`unsupported`)."""

    name = "kernel"
    elementwise = True

    def unsupported(self, backend):
        """The error a printer raises for a backend this map has no evaluation for."""
        return NotSupported(f"the kernel map {self.name} ({self.describe()}) has no {backend} evaluation "
                            f"(it has: {', '.join(self.backends())})")

    def backends(self):
        return ["numpy", "numba"]

    def describe(self):
        return self.name

    def numpy(self, *args):
        raise self.unsupported("numpy")

    def numba_source(self):
        raise self.unsupported("numba")

    def torch(self, *args):
        raise self.unsupported("torch")

    def jax(self, *args):
        raise self.unsupported("jax")


class ClosedFormMap(KernelMap):
    """A map whose entries are SymPy expressions; ``functions`` spells their special functions per
    backend ({SymPy function: {backend: name}}) and ``safe`` gives the array backends' domain-safe
    implementations ({name: f(xp) → function of an array}, xp the array module): all a printer needs to know."""

    def __init__(self, name, functions, description, safe=None):
        self.name, self.functions, self.description = name, functions, description
        self.safe = safe or {}

    def describe(self):
        return self.description

    def backends(self):
        return ["sympy", "numpy", "numba", "lanes", "torch", "jax"]

    def spelling(self, backend):
        """{SymPy function name: the backend's name} for the user_functions of a code printer."""
        return {f.__name__: names[backend] for f, names in self.functions.items() if backend in names}

    def rewrite(self, expr, backend):
        """expr with each special function replaced by an undefined SymPy function of its ``backend`` name."""
        for f, names in self.functions.items():
            if backend in names:
                expr = expr.replace(f, sp.Function(names[backend]))
        return expr

    def namespace(self, backend, xp):
        """{name: implementation} for lambdify over the array module ``xp`` (numpy, torch or jax.numpy)."""
        return {names[backend]: self.safe[(backend, names[backend])](xp) for names in self.functions.values()
                if (backend, names.get(backend)) in self.safe}


#: The arc-cosine kernel of the ReLU family (:func:`.gaussian.relu_relu`): its one special function,
#: arccos, spelled by each backend — the clipped atan2 form ``_acos`` of the per-path kernels, the
#: branch-free polynomial ``lanes.acos`` of the lane kernels, and the clipped arccos of NumPy, torch, JAX.
ARC_COSINE = ClosedFormMap(
    "arccos", {sp.acos: {"numba": "_acos", "lanes": "lanes.acos", "numpy": "safe_acos", "torch": "safe_acos",
                         "jax": "safe_acos"}},
    "the arc-cosine kernel E[relu(u) relu(v)]",
    {("numpy", "safe_acos"): lambda xp: lambda x: xp.arccos(xp.clip(x, -1, 1)),
     ("jax", "safe_acos"): lambda xp: lambda x: xp.arccos(xp.clip(x, -1, 1)),
     ("torch", "safe_acos"): lambda xp: lambda x: xp.acos(xp.clamp(x, -1.0, 1.0))})

CLOSED_FORM_MAPS = (ARC_COSINE,)


def user_functions(backend):
    """The special-function spellings of every closed-form map for one backend (a printer setting).

    Example::

        >>> user_functions("lanes")
        {'acos': 'lanes.acos'}
    """
    out = {}
    for k in CLOSED_FORM_MAPS:
        out.update(k.spelling(backend))
    return out


def safe_functions(expr, backend):
    """expr with the closed-form maps' special functions renamed for an array ``backend``."""
    for k in CLOSED_FORM_MAPS:
        expr = k.rewrite(expr, backend)
    return expr


def safe_namespace(backend, xp):
    """The implementations of :func:`safe_functions`'s names over the array module ``xp``."""
    out = {}
    for k in CLOSED_FORM_MAPS:
        out.update(k.namespace(backend, xp))
    return out


# ---- element-wise maps of any activation -------------------------------------------------------------
def _float_printer():
    """A Python printer for φ's Numba helper: math functions, numbers as exact float literals."""
    from sympy.printing.pycode import PythonCodePrinter

    class _P(PythonCodePrinter):
        def _print_Float(self, e):
            return repr(float(e))

        def _print_Rational(self, e):
            return repr(float(e))

        def _print_Integer(self, e):
            return repr(float(e))

        def _print_Symbol(self, e):
            return e.name

    return _P({"fully_qualified_modules": True, "standard": "python3", "strict": True})


def parse_activation(text, name="activation"):
    """An activation's SymPy expression in x from a name (:data:`NAMED`, or a function of
    :data:`covsde.common.expr.FUNCTIONS`) or an expression of the safe grammar.

    Raises:
        CovsdeInputError: text outside the grammar, or free names other than x.

    Example::

        >>> parse_activation("silu")
        x/(1 + exp(-x))
    """
    if isinstance(text, sp.Expr):
        expr = text
    elif isinstance(text, str):
        t = text.strip()
        if t in NAMED:
            t = NAMED[t]
        elif t in FUNCTIONS:
            t = f"{t}(x)"
        expr = parse_expr(t, name, {"x": X})
    else:
        raise CovsdeInputError(f"{name} must be an expression in x (text or SymPy), got {text!r}")
    free = {s.name for s in expr.free_symbols}
    if free - {"x"}:
        raise CovsdeInputError(f"{name}={str(text)!r} must be an expression in x only (found {sorted(free)})")
    return expr.subs({s: X for s in expr.free_symbols})


def _closed_kind(phi):
    """'erf' or 'gelu' when φ is that activation (as an expression), else None."""
    for kind in ("erf", "gelu"):
        ref = parse_activation(kind)
        if phi == ref or sp.simplify(phi - ref) == 0:
            return kind
    return None


def _gelu_closed(a, c, b):
    """E[gelu(u) gelu(v)] in closed form (see the module docstring)."""
    a, c, b = (np.asarray(x, dtype=float) for x in (a, c, b))
    pa, pb = 1 + a, 1 + b
    delta = pa * pb - c * c
    theta = np.arcsin(np.clip(c / np.sqrt(pa * pb), -1.0, 1.0))
    return c / 4 + (c * theta + (c * c + a * b * delta) / (pa * pb * np.sqrt(delta))) / (2 * math.pi)


def _erf_closed(a, c, b):
    """E[erf(u) erf(v)] = (2/π) arcsin(2c/√((1+2a)(1+2b)))."""
    a, c, b = (np.asarray(x, dtype=float) for x in (a, c, b))
    return (2 / math.pi) * np.arcsin(np.clip(2 * c / np.sqrt((1 + 2 * a) * (1 + 2 * b)), -1.0, 1.0))


_CLOSED = {"gelu": _gelu_closed, "erf": _erf_closed}
_NUMBA_CLOSED = {
    "gelu": ("    pa = 1.0 + xa\n    pb = 1.0 + xb\n    d = pa * pb - xab * xab\n"
             "    th = math.asin(min(1.0, max(-1.0, xab / math.sqrt(pa * pb))))\n"
             "    e = xab / 4.0 + (xab * th + (xab * xab + xa * xb * d) / (pa * pb * math.sqrt(d))) / (2.0 * math.pi)\n"),
    "erf": ("    r = 2.0 * xab / math.sqrt((1.0 + 2.0 * xa) * (1.0 + 2.0 * xb))\n"
            "    e = (2.0 / math.pi) * math.asin(min(1.0, max(-1.0, r)))\n"),
}


class ElementwiseMap(KernelMap):
    """K_φ(V)_ab = c_φ·E[φ(u_a)φ(u_b)], u ~ N(0, V), c_φ = 1/E[φ(g)²] (see the module docstring).

    Arguments:
        phi: φ as a SymPy expression in :data:`X`.
        label: the name it was given (``gelu``, or the text of the expression).

    Raises:
        CovsdeInputError: φ not real and finite on the line, or without a finite non-zero second moment.
    """

    def __init__(self, phi, label):
        self.phi, self.label = phi, label
        digest = hashlib.sha256(sp.srepr(phi).encode()).hexdigest()[:10]
        self.kind = _closed_kind(phi)
        named = [k for k, text in NAMED.items() if parse_activation(text) == phi]  # the name from φ alone
        self.name = named[0] if named else (self.kind or f"phi_{digest}")
        self._f = sp.lambdify(X, fold_numbers(phi), ["scipy", "numpy"])
        self.m2 = self._second_moment()
        self.c = 1.0 / self.m2
        self.function = _function_class(self)

    def describe(self):
        return f"c·E[φ(u_a)φ(u_b)], u ~ N(0, V), φ(x) = {self.phi}"

    def definition(self, tex=False):
        """The map's defining expectation, as a line of text or LaTeX (printed after the formulas)."""
        how = (f"closed form ({self.kind})" if self.kind else
               f"Gauss–Legendre product rule, {2 * QUAD_NODES}×{2 * QUAD_NODES} nodes, measured error ≤ 1e-11")
        if tex:
            name = self.name.replace("_", r"\_")
            return (rf"\mathcal{{K}}_{{\mathrm{{{name}}}}}(a, c, b) = c_\varphi\,\mathbb{{E}}[\varphi(u_a)\varphi(u_b)],"
                    rf"\ u \sim N\!\left(0, \begin{{pmatrix}} a & c \\ c & b \end{{pmatrix}}\right),\ "
                    rf"\varphi(x) = {sp.latex(self.phi)},\ c_\varphi = 1/\mathbb{{E}}[\varphi(g)^2] = {self.c:.12g}"
                    rf"\ \text{{({how})}}")
        return (f"K_{self.name}(a, c, b) = c·E[φ(u_a)φ(u_b)], u ~ N(0, [[a, c], [c, b]]), φ(x) = {self.phi}, "
                f"c = 1/E[φ(g)²] = {self.c:.12g} ({how})")

    def phi_numpy(self, x):
        """φ on a NumPy array (float64)."""
        x = np.asarray(x, dtype=float)
        with np.errstate(all="ignore"):
            return np.broadcast_to(np.asarray(self._f(x), dtype=float), x.shape)

    def _second_moment(self):
        with np.errstate(all="ignore"):
            tails = np.linspace(QUAD_HALF_WIDTH, 40.0, 32)
            probe = np.concatenate([-tails, tails, np.linspace(-QUAD_HALF_WIDTH, QUAD_HALF_WIDTH, 721)])
            try:
                vals = np.asarray(self._f(probe), dtype=float) * np.ones_like(probe)
            except (TypeError, ValueError):
                vals = np.array([np.nan])
            if not np.all(np.isfinite(vals)):
                raise CovsdeInputError(f"activation={self.label!r} is not real and finite on the real line "
                                       "(its Gaussian kernel map is undefined)")
            m2 = float(self.closed(1.0, 1.0, 1.0)) if self.kind else float(gauss_expectation(self.phi_numpy, 1, 1, 1))
            x = probe[:64]  # log of φ(x)²·pdf(x) in the tails (no overflow)
            tail = float(np.max(2 * np.log(np.abs(vals[:64])) - 0.5 * x * x - 0.5 * math.log(2 * math.pi)))
        if not (np.isfinite(m2) and m2 > 0) or tail > math.log(1e-12 * m2):
            raise CovsdeInputError(f"activation={self.label!r} has no finite non-zero second moment E[φ(g)²], "
                                   f"g ~ N(0, 1) (or φ(x)² grows too fast, φ(x)²·e^(-x²/2) beyond |x| = 9 is not "
                                   f"negligible): its kernel map is undefined")
        return m2

    def closed(self, a, c, b):
        """E[φ(u)φ(v)] in closed form (gelu, erf); None for other φ."""
        return _CLOSED[self.kind](a, c, b) if self.kind else None

    def expectation(self, a, c, b):
        """E[φ(u)φ(v)] (unnormalised): the closed form, or :func:`gauss_expectation`."""
        return self.closed(a, c, b) if self.kind else gauss_expectation(self.phi_numpy, a, c, b)

    def numpy(self, a, c, b):
        """K_φ entries c_φ·E[φ(u)φ(v)] for arrays a = X_aa, c = X_ab, b = X_bb."""
        return self.c * self.expectation(a, c, b)

    def numba_source(self):
        """(name, source): an ``@njit`` scalar function name(xa, xab, xb) → K_φ entry, with its helpers."""
        fn = f"_kmap_{self.name}"
        head = f'\n\n@njit(cache=True, error_model="numpy")\ndef {fn}(xa, xab, xb):\n'
        if self.kind:
            return fn, head + _NUMBA_CLOSED[self.kind] + f"    return {self.c!r} * e\n"
        t, w = _legendre(QUAD_NODES)
        z1, w1 = _outer_rule()
        arr = lambda v: "np.array([" + ", ".join(repr(float(x)) for x in v) + "])"  # noqa: E731 - exact bits
        pre = (f"\n\n_KT_{self.name} = {arr(t)}\n_KW_{self.name} = {arr(w)}\n_KZ_{self.name} = {arr(z1)}\n"
               f"_KZW_{self.name} = {arr(w1)}\n\n\n@njit(cache=True, error_model=\"numpy\")\n"
               f"def _phi_{self.name}(x):\n    return {_float_printer().doprint(fold_numbers(self.phi))}\n")
        body = _NUMBA_QUAD.format(name=self.name, L=repr(QUAD_HALF_WIDTH), c=repr(self.c))
        return fn, pre + head + body


_NUMBA_QUAD = """\
    if xb > xa:
        xa, xb = xb, xa
    ra = math.sqrt(max(xa, 0.0))
    slope = xab / ra if ra > 0.0 else 0.0
    s = math.sqrt(max(xb - (xab * xab / xa if ra > 0.0 else 0.0), 0.0))
    T, W, L = _KT_{name}, _KW_{name}, {L}
    tot = 0.0
    for i in range(_KZ_{name}.size):
        z = _KZ_{name}[i]
        mu = slope * z
        if s > 0.0:
            zs = -mu / s
            if not abs(zs) < L:
                zs = 0.0
            h = 0.0
            for lo, hi in ((-L, zs), (zs, L)):
                half = 0.5 * (hi - lo)
                mid = 0.5 * (hi + lo)
                for j in range(T.size):
                    zz = half * T[j] + mid
                    h += half * W[j] * math.exp(-0.5 * zz * zz) * 0.3989422804014327 * _phi_{name}(mu + s * zz)
        else:
            h = _phi_{name}(mu)
        tot += _KZW_{name}[i] * _phi_{name}(ra * z) * h
    return {c} * tot
"""


class GaussKernel(sp.Function):
    """One entry K(X_aa, X_ab, X_bb) of an element-wise kernel map without elementary closed form:
    an atom of the matrix algebra's coefficients.  Each map has its own subclass, whose ``kernel``
    (an :class:`ElementwiseMap`) evaluates and prints it; arguments are ordered (K(b, c, a) = K(a, c, b))."""

    nargs = 3
    kernel = None
    is_real = True

    @classmethod
    def eval(cls, a, c, b):
        if sp.default_sort_key(b) < sp.default_sort_key(a):
            return cls(b, c, a)
        if all(x.is_Number for x in (a, c, b)):
            return sp.Float(float(cls.kernel.numpy(float(a), float(c), float(b))))
        return None

    def _eval_evalf(self, prec):
        vals = [x.evalf(prec) for x in self.args]
        if all(v.is_Number for v in vals):
            return sp.Float(float(self.kernel.numpy(*(float(v) for v in vals))), prec)
        return None

    def _sympystr(self, printer):
        return f"K_{self.kernel.name}({', '.join(printer._print(x) for x in self.args)})"

    def _latex(self, printer):
        name = self.kernel.name.replace("_", r"\_")
        return rf"\mathcal{{K}}_{{\mathrm{{{name}}}}}({', '.join(printer._print(x) for x in self.args)})"

    def __reduce_ex__(self, protocol):
        return (_rebuild, (self.kernel.label, self.kernel.phi, self.args))


def _rebuild(label, phi, args):
    """Unpickling: the entry of the map of φ (the map rebuilt from φ's expression, never from text)."""
    return elementwise_map(label, phi).function(*args)


def kernels_in(exprs):
    """The element-wise maps (:class:`ElementwiseMap`) whose entries occur in SymPy expressions, in a
    stable order."""
    out = {}
    for e in exprs:
        for f in sp.sympify(e).atoms(GaussKernel):
            out.setdefault(f.kernel.name, f.kernel)
    return [out[k] for k in sorted(out)]


def _function_class(kmap):
    """The :class:`GaussKernel` subclass of one map (with the NumPy evaluation lambdify uses)."""
    return type(f"K_{kmap.name}", (GaussKernel,), {"kernel": kmap, "_imp_": staticmethod(kmap.numpy),
                                                   "__module__": __name__})


_MAPS = {}


def elementwise_map(label, phi=None):
    """The :class:`ElementwiseMap` of an activation (one object per φ).

    Arguments:
        label: a name of :data:`NAMED` or an expression's text (parsed by :func:`parse_activation`).
        phi: φ as a SymPy expression (then ``label`` only names it).

    Raises:
        CovsdeInputError: see :class:`ElementwiseMap` and :func:`parse_activation`.

    Example::

        >>> elementwise_map("tanh").name
        'tanh'
    """
    expr = parse_activation(label) if phi is None else phi
    key = sp.srepr(expr)
    if key not in _MAPS:
        _MAPS[key] = ElementwiseMap(expr, label.strip() if isinstance(label, str) else str(expr))
    return _MAPS[key]
