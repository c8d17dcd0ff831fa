"""Truncated ε-series of random m×m matrices, ε = n^{-1/2}.

A :class:`Ser` is  M = Σ_e ε^e (D_e + N_e)  where D_e is a deterministic SymPy matrix and N_e is
a *fluctuation*: a sum of terms  c · A · Ẑ_k^{(T)} · B  that are linear in a Gaussian matrix

    Ẑ_k = L Z_k Lᵀ,   L = chol(V),   Z_k ∈ R^{m×m} i.i.d. N(0, 1),
    so that   E[Ẑ_ij Ẑ_kl] = V_ik V_jl.

Different k are independent.  Products of two fluctuations only matter through their mean at
order ε^{e1+e2} ≤ ε² (their own fluctuation is o(ε) and does not reach the diffusion), so a
product keeps only the mean, computed with the Wick rules (M deterministic)

    E[Ẑ M Ẑ] = V Mᵀ V,      E[Ẑ M Ẑᵀ] = E[Ẑᵀ M Ẑ] = tr(M V) V,      E[Ẑᵀ M Ẑᵀ] = V Mᵀ V,
    E[(AẐB)∘(CẐD)]_{αβ} = (AVCᵀ)_{αα}(BᵀVD)_{ββ},   E[(AẐB)∘(CẐᵀD)] = (AVD)∘(CVB).

Mean terms are kept up to ε² and fluctuations below ε²; that is all the drift b (the ε² mean)
and the diffusion Σ (covariance of the ε¹ fluctuation) need.  The matrices live in an *algebra*
(:mod:`.algebras`): matrix expressions with m a symbol (the engine's), or SymPy matrices of one m.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import sympy as sp

from .errors import NotSupported

EMAX = sp.Integer(2)


def _mm(*mats):
    """Product of matrices where ``None`` stands for the identity."""
    out = None
    for M in mats:
        if M is None:
            continue
        out = M if out is None else out * M
    return out


def _native(alg, k):
    """The Wick rules here are for Gaussian matrices on V: refuse a product of a foreign one."""
    if k in getattr(alg, "foreign", ()):
        raise NotSupported("a product of two fluctuations built on a Gram other than κV (after an O(1) "
                           "nonlinear map) reaches the limit: not supported yet")


@dataclass
class NoiseRegistry:
    """Hands out ids of independent Gaussian matrices Z_k; remembers where each came from."""

    origin: dict = field(default_factory=dict)
    count: int = 0
    foreign: set = field(default_factory=set)  # ids whose Gaussian matrix is built on a Gram ≠ κV

    def new(self, origin: str, foreign=False) -> int:
        """A new id; ``foreign``: its fluctuation lives on a Gram other than κV (an O(1) nonlinear map
        of V): carried only to check that it vanishes in the limit (its Wick means are not formed)."""
        k = self.count
        self.count += 1
        self.origin[k] = origin
        if foreign:
            self.foreign.add(k)
        return k


class Ser:
    """A random m×m matrix as a truncated ε-series (see module docstring)."""

    __slots__ = ("alg", "det", "noise")

    def __init__(self, alg, det=None, noise=None):
        self.alg = alg  # the matrix algebra (constants, traces, Wick means)
        self.det = det or {}  # exponent -> matrix
        self.noise = noise or {}  # exponent -> {(k, A, T, B): coef}

    # ---- construction ---------------------------------------------------------------------
    @classmethod
    def const(cls, alg, M, e=0):
        s = cls(alg)
        if M is not None:
            s.det[sp.Rational(e)] = alg.imm(M)
        return s

    @classmethod
    def gaussian(cls, alg, k, e, coef=1, A=None, T=0, B=None):
        s = cls(alg)
        s.noise[sp.Rational(e)] = {(k, A, T, B): sp.sympify(coef)}
        return s

    def copy(self):
        return Ser(self.alg, dict(self.det), {e: dict(t) for e, t in self.noise.items()})

    # ---- helpers ---------------------------------------------------------------------------
    def _add_det(self, e, M):
        if e > EMAX or M is None:
            return
        M = self.alg.imm(M)
        if self.alg.is_zero(M):
            return
        if e in self.det:
            M = self.alg.imm(self.det[e] + M)
            if self.alg.is_zero(M):
                del self.det[e]
                return
        self.det[e] = M

    def _add_noise(self, e, key, coef):
        if e >= EMAX:
            return
        k, A, T, B = key
        A, ca = (None, 1) if A is None else self.alg.scalar_part(A)
        B, cb = (None, 1) if B is None else self.alg.scalar_part(B)
        key = (k, A, T, B)
        coef = sp.sympify(coef) * ca * cb
        if coef == 0:
            return
        d = self.noise.setdefault(e, {})
        d[key] = d.get(key, 0) + coef

    def min_exponent(self):
        es = [e for e, M in self.det.items()] + [e for e, t in self.noise.items() if t]
        return min(es) if es else None

    # ---- arithmetic ------------------------------------------------------------------------
    def __add__(self, other):
        if not isinstance(other, Ser):
            raise TypeError("Ser + non-Ser")
        out = self.copy()
        for e, M in other.det.items():
            out._add_det(e, M)
        for e, terms in other.noise.items():
            for key, c in terms.items():
                out._add_noise(e, key, c)
        return out

    def __neg__(self):
        return self.scale(-1)

    def __sub__(self, other):
        return self + (-other)

    def scale(self, c, de=0):
        """c · ε^{de} · self, with c a scalar SymPy expression."""
        c = sp.sympify(c)
        out = Ser(self.alg)
        if c == 0:
            return out
        de = sp.Rational(de)
        for e, M in self.det.items():
            out._add_det(e + de, c * M)
        for e, terms in self.noise.items():
            for key, cc in terms.items():
                out._add_noise(e + de, key, c * cc)
        return out

    @property
    def T(self):
        tr = self.alg.transpose
        out = Ser(self.alg)
        out.det = {e: tr(M) for e, M in self.det.items()}
        for e, terms in self.noise.items():
            for (k, A, t, B), c in terms.items():
                out._add_noise(e, (k, None if B is None else tr(B), 1 - t, None if A is None else tr(A)), c)
        return out

    def __matmul__(self, other):
        alg, V = self.alg, self.alg.V
        out = Ser(alg)
        for (e1, D1), (e2, D2) in itertools.product(self.det.items(), other.det.items()):
            out._add_det(e1 + e2, D1 * D2)
        for (e1, D1), (e2, terms) in itertools.product(self.det.items(), other.noise.items()):
            for (k, A, t, B), c in terms.items():
                out._add_noise(e1 + e2, (k, _mm(D1, A), t, B), c)
        for (e1, terms), (e2, D2) in itertools.product(self.noise.items(), other.det.items()):
            for (k, A, t, B), c in terms.items():
                out._add_noise(e1 + e2, (k, A, t, _mm(B, D2)), c)
        for (e1, t1), (e2, t2) in itertools.product(self.noise.items(), other.noise.items()):
            if e1 + e2 > EMAX:
                continue
            for (k1, A, T1, B), c1 in t1.items():
                for (k2, C, T2, D), c2 in t2.items():
                    if k1 != k2:
                        continue
                    _native(alg, k1)
                    M = _mm(B, C)
                    if M is None:
                        M = alg.eye()
                    if T1 == T2:
                        mean = _mm(A, V, alg.transpose(M), V, D)
                    else:
                        mean = alg.trace(M * V) * _mm(A, V, D)
                    out._add_det(e1 + e2, c1 * c2 * mean)
        return out

    def hadamard(self, other):
        """Element-wise product.  A deterministic D times a fluctuation A Ẑ B is split by the algebra
        into terms of the same form (D ∘ X = Σ_a E_aa X diag(D_a·) per entry; only J ∘ X = X/m at the
        matrix level)."""
        alg, V = self.alg, self.alg.V
        out = Ser(alg)
        for (e1, D1), (e2, D2) in itertools.product(self.det.items(), other.det.items()):
            out._add_det(e1 + e2, alg.hadamard(D1, D2))
        for x, y in ((self, other), (other, self)):
            for (e1, D), (e2, terms) in itertools.product(x.det.items(), y.noise.items()):
                for (k, A, T, B), c in terms.items():
                    for c2, A2, B2 in alg.hadamard_split(D, A, B):
                        out._add_noise(e1 + e2, (k, A2, T, B2), c * c2)
        I = alg.eye()
        for (e1, t1), (e2, t2) in itertools.product(self.noise.items(), other.noise.items()):
            if e1 + e2 > EMAX:
                continue
            for (k1, A, T1, B), c1 in t1.items():
                for (k2, C, T2, D), c2 in t2.items():
                    if k1 != k2:
                        continue
                    _native(alg, k1)
                    A_, B_, C_, D_ = (I if X is None else X for X in (A, B, C, D))
                    if T1 == T2:
                        mean = alg.diag_outer(A_ * V * alg.transpose(C_), alg.transpose(B_) * V * D_)
                    else:
                        mean = alg.hadamard(A_ * V * D_, C_ * V * B_)
                    out._add_det(e1 + e2, c1 * c2 * mean)
        return out

    # ---- views -----------------------------------------------------------------------------
    def det_at(self, e):
        return self.det.get(sp.Rational(e), self.alg.zero())

    def noise_at(self, e):
        return self.noise.get(sp.Rational(e), {})

    def leading(self):
        """The ε⁰ deterministic part (zero matrix if absent)."""
        return self.det_at(0)
