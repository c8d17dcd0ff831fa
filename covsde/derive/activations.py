"""Shaped activations and the ε-series of their Gram map.

An activation is written as a finite sum  φ_s(x) = Σ_i a_i(ε) b_i(x)  of *basis functions*
b_i ∈ {relu(x), relu(−x), x^k} with ε-series coefficients a_i(ε) (ε = n^{-1/2}).  Its Gram map
is the normalised second moment

    g(K)^{αβ} = c(ε) · E[φ_s(x^α) φ_s(x^β)],   x ~ N(0, K),   c(ε) = 1 / E[φ_s(g)²], g ~ N(0, 1),

expanded in ε from the pair moments of the basis (arc-cosine kernel, Isserlis).  Nothing here
knows a drift: the drift comes out of the expansion.

* :class:`ShapedReLU`: φ_s(x) = s₊ max(x,0) + s₋ min(x,0), s± = 1 + c± n^{-p}
  (c = 2/(s₊² + s₋²) exactly).
* :class:`ShapedSmooth`: φ_s(x) = s φ(x/s), s = a n^{q} (q = 1/2), φ(0) = 0, φ'(0) = 1;
  Taylor  φ_s(x) = Σ_k φ^{(k)}(0)/k! · a^{1−k} ε^{2q(k−1)} x^k.
"""
from __future__ import annotations

import math
import weakref

import numpy as np

import sympy as sp

from ..common.expr import FUNCTIONS, fold_numbers, parse_expr
from . import gaussian
from .errors import CovsdeInputError, NotSupported
from .kernelmaps import NAMED
from .symbols import show, value

EMAX = sp.Integer(2)
X = sp.Symbol("x", real=True)
MIN_SMOOTH_P = sp.Rational(1, 10)  # a smooth activation's shaping exponent: 1 + ⌊1/p⌋ Taylor terms


# ---- scalar ε-series as {exponent: coefficient} ------------------------------------------------
def s_mul(a, b, emax=EMAX):
    out = {}
    for ea, ca in a.items():
        for eb, cb in b.items():
            e = ea + eb
            if e <= emax:
                out[e] = out.get(e, 0) + ca * cb
    return out


def s_inv(a, emax=EMAX):
    """1 / a for a series with a[0] ≠ 0 (a[0] may be symbolic)."""
    a0 = a.get(sp.Integer(0), 0)
    rest = {e: c / a0 for e, c in a.items() if e != 0}
    # 1/(a0 (1 + r)) = (1/a0) Σ (−r)^j
    out = {sp.Integer(0): sp.Integer(1)}
    power = {sp.Integer(0): sp.Integer(1)}
    minexp = min(rest) if rest else None
    j = 0
    while rest and minexp > 0 and (j + 1) * minexp <= emax:
        j += 1
        power = s_mul(power, {e: -c for e, c in rest.items()}, emax)
        for e, c in power.items():
            out[e] = out.get(e, 0) + c
    return {e: c / a0 for e, c in out.items()}


class Activation:
    """Base class: subclasses define ``basis()`` → list of (coef_series, kind, arg) where kind is
    'relu' (arg = sign ±1) or 'pow' (arg = k)."""

    name = "activation"

    def basis(self):
        raise NotImplementedError

    def params(self):
        return {}

    # pair moment of two basis functions
    @staticmethod
    def _pair(b1, b2, diagonal):
        (k1, a1), (k2, a2) = b1, b2
        if k1 == "relu" and k2 == "relu":
            return gaussian.relu_relu(a1, a2, diagonal)
        if k1 == "pow" and k2 == "pow":
            if diagonal:
                return gaussian.isserlis_xy(a1 + a2, 0)
            return gaussian.isserlis_xy(a1, a2)
        raise NotImplementedError("an activation mixing relu and polynomial basis functions")

    def moment_series(self, diagonal=False):
        """E[φ_s(x)φ_s(y)] as {exponent: expr in k_xx, k_xy, k_yy}."""
        out = {}
        basis = self.basis()
        for c1, k1, a1 in basis:
            for c2, k2, a2 in basis:
                pm = self._pair((k1, a1), (k2, a2), diagonal)
                if pm == 0:
                    continue
                for e, c in s_mul(c1, c2).items():
                    out[e] = out.get(e, 0) + c * pm
        return {e: sp.expand(c) if not c.has(sp.acos) else c for e, c in out.items()}

    def normaliser_series(self):
        """c(ε) = 1 / E[φ_s(g)²], g ~ N(0,1)."""
        m2 = {e: c.subs(gaussian.kxx, 1) for e, c in self.moment_series(diagonal=True).items()}
        return s_inv(m2)

    def gram_series(self):
        """(off-diagonal, diagonal) Gram-map series {exponent: expr}."""
        c = self.normaliser_series()
        off = s_mul(c, self.moment_series(False))
        dia = s_mul(c, self.moment_series(True))
        simp = lambda d: {e: sp.simplify(v) for e, v in d.items()}  # noqa: E731 - small exprs
        return simp(off), simp(dia)

    # finite-network side -----------------------------------------------------------------
    def numeric(self, n: float):
        """(φ_s as a function of a numpy/torch array, c) at width n — used by validate/."""
        raise NotImplementedError


class ShapedReLU(Activation):
    r"""φ_s(x) = s₊ max(x, 0) + s₋ min(x, 0),  s± = 1 + c±/n^p  (p = 1/2 is critical).

    c₊ = c₋ is linear; c₊ = 0, c₋ = −1, p = 0 is the unshaped ReLU."""

    name = "relu"

    def __init__(self, c_plus=0, c_minus=-1, p=sp.Rational(1, 2)):
        self.c_plus = value("c_plus", c_plus)
        self.c_minus = value("c_minus", c_minus)
        self.p = value("p", p, nonneg=True, number=True)

    def params(self):
        return {"c_plus": self.c_plus, "c_minus": self.c_minus, "p": self.p}

    def basis(self):
        e = 2 * self.p
        if e == 0:
            return [({0: 1 + self.c_plus}, "relu", 1), ({0: -(1 + self.c_minus)}, "relu", -1)]
        return [({sp.Integer(0): 1, e: self.c_plus}, "relu", 1),
                ({sp.Integer(0): -1, e: -self.c_minus}, "relu", -1)]

    def numeric(self, n):
        cp, cm, p = float(self.c_plus), float(self.c_minus), float(self.p)
        sp_, sm = 1 + cp / n**p, 1 + cm / n**p
        c = 2.0 / (sp_**2 + sm**2)

        def phi(x):
            return sp_ * x.clip(min=0) + sm * x.clip(max=0)

        return phi, c

    def __repr__(self):
        return f"ShapedReLU(c_plus={self.c_plus}, c_minus={self.c_minus}, p={self.p})"


# per-width numerics of smooth activations (closures and a quadrature), kept outside the object so
# that its state (pickled with derivations, fingerprinted for cache keys) is only its definition
_NUMERIC = weakref.WeakKeyDictionary()


class ShapedSmooth(Activation):
    r"""φ_s(x) = s·φ(x/s) with s = a·n^q (q = 1/2), for smooth φ with φ(0) = 0, φ'(0) = 1.

    Only φ''(0) and φ'''(0) reach the ε² order."""

    name = "smooth"

    def __init__(self, phi="tanh", a=1, q=sp.Rational(1, 2)):
        if isinstance(phi, str):
            name = phi.strip()
            if name in FUNCTIONS:  # a bare function name: φ = f(x)
                phi_expr = FUNCTIONS[name](X)
            elif name in NAMED:  # gelu, silu, …: the label stays the name
                phi_expr = parse_expr(NAMED[name], "activation", {"x": X})
            else:
                phi_expr = parse_expr(phi, "activation", {"x": X})
        elif isinstance(phi, sp.Expr):
            phi_expr = phi
        else:
            raise CovsdeInputError(f"activation must be an expression in x (text or SymPy), got {phi!r}")
        free = {s.name for s in phi_expr.free_symbols}
        if free - {"x"}:
            raise CovsdeInputError(f"activation={show(phi)!r} must be an expression in x only (found {sorted(free)})")
        phi_expr = phi_expr.subs({s: X for s in phi_expr.free_symbols})
        self.phi = phi_expr
        self.label = phi.strip() if isinstance(phi, str) else str(phi_expr)
        self.a = value("a", a, positive=True)
        self.q = value("p", q, positive=True, number=True)  # the shaping exponent p (stored as q)
        if self.q < MIN_SMOOTH_P:
            raise CovsdeInputError(f"p={self.q} with a smooth activation: its series needs 1 + ⌊1/p⌋ Taylor terms of φ "
                                   f"(more than 11 take minutes): p must be ≥ {MIN_SMOOTH_P}")
        d0 = self.phi.subs(X, 0)
        d1 = sp.diff(self.phi, X).subs(X, 0)
        if sp.simplify(d0) != 0 or sp.simplify(d1 - 1) != 0:
            raise CovsdeInputError(
                f"activation={self.label!r} must satisfy φ(0)=0 and φ'(0)=1 (got φ(0)={d0}, φ'(0)={d1})")

    def params(self):
        return {"activation": self.label, "a": self.a, **({"p": self.q} if self.q != sp.Rational(1, 2) else {})}

    def basis(self):
        K = 1 + int(math.floor(1 / float(self.q)))
        out = []
        for k in range(1, K + 1):
            d = sp.diff(self.phi, X, k).subs(X, 0)
            if d == 0:
                continue
            coef = d / sp.factorial(k) / self.a ** (k - 1)
            out.append(({2 * self.q * (k - 1): coef}, "pow", k))
        return out

    def numeric(self, n):
        """(φ_s, c) at width n; cached per n (c needs a quadrature).  The torch version of φ is
        built on first use, so derive/ never imports torch."""
        cache = _NUMERIC.setdefault(self, {})
        if n in cache:
            return cache[n]
        import numpy as np
        from scipy import integrate

        a, q = float(self.a), float(self.q)
        s = a * n**q
        phi_num = fold_numbers(self.phi)  # numbers as floats: torch functions take tensors, not sqrt(2)
        f = sp.lambdify(X, phi_num, "numpy")
        torch_f = []

        def phi(x):
            if type(x).__module__.startswith("torch"):
                if not torch_f:
                    import torch

                    torch_f.append(sp.lambdify(X, phi_num, [{
                        "tanh": torch.tanh, "sin": torch.sin, "cos": torch.cos, "exp": torch.exp, "log": torch.log,
                        "sqrt": torch.sqrt, "erf": torch.erf}, "math"]))
                return s * torch_f[0](x / s)
            return s * f(x / s)

        m2 = integrate.quad(lambda g: (s * f(g / s)) ** 2 * np.exp(-g * g / 2) / np.sqrt(2 * np.pi),
                            -np.inf, np.inf, epsabs=1e-13, epsrel=1e-13)[0]
        cache[n] = (phi, 1.0 / m2)
        return cache[n]

    def __repr__(self):
        q = "" if self.q == sp.Rational(1, 2) else f", p={self.q}"
        return f"ShapedSmooth(phi={self.label!r}, a={self.a}{q})"


class Unshaped(Activation):
    r"""An unshaped activation φ (p = 0), any expression of the safe grammar: its Gram map is the O(1)
    kernel map K_φ(V) = c_φ·E[φ(u)φ(uᵀ)], c_φ = 1/E[φ(g)²] (:class:`.kernelmaps.ElementwiseMap`; a
    legitimate drift only inside a branch made small by q > 0).  No shaping condition applies.  A
    polynomial φ keeps its exact (Isserlis) map through the basis of powers.

    Example::

        >>> Unshaped("tanh").kernel.name
        'tanh'
    """

    name = "unshaped"

    def __init__(self, phi="tanh"):
        from .kernelmaps import elementwise_map, parse_activation

        self.phi = parse_activation(phi)
        self.label = phi.strip() if isinstance(phi, str) else str(self.phi)
        self.kernel = elementwise_map(self.label, self.phi)
        self.poly = self.phi.is_polynomial(X)

    def params(self):
        return {"activation": self.label, "p": sp.Integer(0)}

    def basis(self):
        if not self.poly:
            raise NotImplementedError("a non-polynomial φ has no finite basis")
        P = sp.Poly(self.phi, X)
        return [({sp.Integer(0): sp.sympify(c)}, "pow", k) for (k,), c in P.terms() if k > 0] + \
            ([({sp.Integer(0): sp.sympify(P.coeff_monomial(1))}, "pow", 0)] if P.coeff_monomial(1) != 0 else [])

    def gram_series(self):
        """({0: K_φ entry}, {0: K_φ diagonal entry}): one order, the map itself."""
        if self.poly:
            return super().gram_series()
        from .gaussian import kxx, kxy, kyy

        f = self.kernel.function
        return {sp.Integer(0): f(kxx, kxy, kyy)}, {sp.Integer(0): f(kxx, kxx, kxx)}

    def numeric(self, n):
        """(φ on numpy/torch arrays, c_φ): the same at every width."""
        return _array_function(self.phi), float(self.kernel.c)

    def __getstate__(self):
        d = dict(self.__dict__)
        d.pop("kernel", None)
        return d

    def __setstate__(self, state):
        from .kernelmaps import elementwise_map

        self.__dict__.update(state)
        self.kernel = elementwise_map(self.label, self.phi)

    def __repr__(self):
        return f"Unshaped(phi={self.label!r})"


def _array_function(expr):
    """φ as a function of a NumPy array or a torch tensor (torch imported on first use only)."""
    num = fold_numbers(expr)
    f = sp.lambdify(X, num, ["scipy", "numpy"])
    torch_f = []

    def phi(x):
        if type(x).__module__.startswith("torch"):
            import torch

            if not torch_f:
                names = {k: getattr(torch, k) for k in ("tanh", "sin", "cos", "tan", "exp", "log", "sqrt", "erf", "sinh",
                                                        "cosh", "asin", "acos", "atan", "asinh", "atanh", "abs")}
                names.update(Abs=torch.abs, arcsin=torch.asin, arccos=torch.acos, arctan=torch.atan)
                torch_f.append(sp.lambdify(X, num, [names, "math"]))
            return torch_f[0](x) * torch.ones_like(x)
        return f(x) * np.ones_like(x)

    return phi


def make_activation(name="relu", c_plus=0, c_minus=-1, p=sp.Rational(1, 2), a=1):
    """Activation from the CLI names: ``relu`` | a name of :data:`.kernelmaps.NAMED` (``gelu``,
    ``gelu_tanh``, ``silu``, ``tanh``, ``erf``, ``sin``) | a SymPy expression in x.  At p = 0 a non-ReLU φ
    is :class:`Unshaped` (any φ with a finite second moment), at p > 0 :class:`ShapedSmooth` (φ(0) = 0,
    φ'(0) = 1 required)."""
    if name == "relu":
        return ShapedReLU(c_plus, c_minus, p)
    if sp.sympify(p) == 0:
        return Unshaped(name)
    return ShapedSmooth(name, a, q=p)
