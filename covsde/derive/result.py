"""The result of a derivation: drift, structured noise, diffusion, regime, parameters.

What is done with a result lives beside it: numbers in :mod:`.evaluate`, text/LaTeX/JSON in
:mod:`.formatting`, comparison with a user's formula in :mod:`.check`, parameter domains in
:mod:`.domain` (the methods below delegate to them)."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import sympy as sp

from ..common.expr import to_expr
from .domain import domain_atoms, parameter_values
from .errors import CovsdeInputError
from .points import upper_pairs
from .symbols import V_matrix, v_symbols


@dataclass(frozen=True)
class NoiseTerm:
    """coef · A · Ẑ^{(T)} · B with Ẑ = L Z Lᵀ, L = chol(V); A, B = None mean the identity."""

    coef: sp.Expr
    A: sp.ImmutableMatrix | None
    T: int
    B: sp.ImmutableMatrix | None


@dataclass
class NoiseGroup:
    """Terms sharing one i.i.d. N(0,1) matrix Z:  N_g = Σ_t coef_t A_t (L Z Lᵀ)^{(T_t)} B_t."""

    terms: list


def _I(M, m):
    return sp.eye(m) if M is None else M


@dataclass
class Derivation:
    r"""Drift b(V) (m×m), diffusion Σ^{αβ,γδ}(V) and the structured noise

        dV = b(V) dt + Σ_g Σ_t c_t A_t (L Z_g Lᵀ)^{(T_t)} B_t √dt,   L = chol(V),

    whose covariance is exactly Σ.  ``regime`` ∈ {sde, ode, identity, no-limit}."""

    m: int
    block: str
    regime: str
    reason: str
    drift: sp.ImmutableMatrix | None
    noise: list | None
    name: str = ""
    key: str = ""
    seconds: float = 0.0
    from_cache: bool = False
    _diffusion: dict | None = field(default=None, repr=False)

    # ---- diffusion ---------------------------------------------------------------------------
    @property
    def has_limit(self):
        return self.regime != "no-limit"

    def _require(self):
        if not self.has_limit:
            raise CovsdeInputError(f"no SDE limit (regime no-limit): {self.reason}")

    @property
    def diffusion(self) -> dict:
        """{(a, b, c, d): Σ^{ab,cd}} for a ≤ b, c ≤ d."""
        self._require()
        if self._diffusion is None:
            self._diffusion = diffusion_from_noise(self.noise, self.m)
        return self._diffusion

    def sigma(self, a, b, c, d):
        a, b = sorted((a, b))
        c, d = sorted((c, d))
        return self.diffusion[(a, b, c, d)]

    @property
    def V(self):
        return V_matrix(self.m)

    @property
    def symbols(self):
        return v_symbols(self.m)

    @property
    def parameters(self):
        syms = set()
        if self.drift is not None:
            syms |= self.drift.free_symbols
            for g in self.noise:
                for t in g.terms:
                    syms |= sp.sympify(t.coef).free_symbols
        return sorted(syms - set(self.symbols), key=lambda s: s.name)

    def domain_atoms(self):
        """Sub-expressions of the parameters alone with a restricted real domain (cached)."""
        self._require()
        if getattr(self, "_domain", None) is None:
            exprs = list(self.drift)
            for g in self.noise:
                for t in g.terms:
                    exprs.append(t.coef)
                    exprs.extend(x for M in (t.A, t.B) if M is not None for x in M)
            self._domain = domain_atoms(exprs, self.parameters)
        return self._domain

    def parameter_values(self, values=None) -> dict:
        """{name: float} for every symbolic parameter, checked: finite, real, within the assumptions
        of the derivation and keeping every coefficient real (else a CovsdeInputError naming it)."""
        self._require()
        return parameter_values(self.parameters, self.domain_atoms(), values)

    def subs(self, values: dict) -> "Derivation":
        """The same derivation with some parameters given numbers (name → value)."""
        self._require()
        if not isinstance(values, dict):
            raise CovsdeInputError(f"values must be a dict name → number, got {values!r}")
        rep = {}
        known = {s.name for s in self.parameters}
        for name in values:
            if name not in known:
                raise CovsdeInputError(f"{name!r} is not a parameter of this derivation (its parameters: "
                                       f"{', '.join(sorted(known)) or 'none'})")
        given = [s for s in self.parameters if s.name in values]
        parameter_values(given, [], values)  # finite real numbers within the assumptions, or an error
        for s in given:
            rep[s] = to_expr(values[s.name], s.name)  # exact (decimals stay rationals)
        new_noise = [NoiseGroup([NoiseTerm(sp.sympify(t.coef).xreplace(rep),
                                           None if t.A is None else t.A.xreplace(rep), t.T,
                                           None if t.B is None else t.B.xreplace(rep)) for t in g.terms])
                     for g in self.noise]
        return Derivation(self.m, self.block, self.regime, self.reason, self.drift.xreplace(rep), new_noise,
                          self.name, self.key + "|" + repr(sorted(values.items())))

    # ---- numbers -----------------------------------------------------------------------------
    def numeric(self, V, params=None):
        """(b, Σ) as numpy arrays at a numeric V (Σ as an (m, m, m, m) array); see :mod:`.evaluate`."""
        from .evaluate import numeric

        self._require()
        return numeric(self, V, params)

    def numeric_fn(self):
        """A fast numeric view f(V, params) → (b, noise groups); see :mod:`.evaluate`."""
        from .evaluate import numeric_fn

        self._require()
        if getattr(self, "_numfn", None) is None:
            self._numfn = numeric_fn(self)
        return self._numfn

    def __getstate__(self):
        d = dict(self.__dict__)
        d.pop("_numfn", None)
        d.pop("_domain", None)
        return d

    # ---- views (see :mod:`.formatting`, :mod:`.check`) ----------------------------------------------
    def latex(self) -> str:
        from .formatting import latex

        return latex(self)

    def text(self) -> str:
        from .formatting import text

        return text(self)

    def to_json(self, variant, params):
        from .formatting import to_json

        return to_json(self, variant, params)

    def _repr_latex_(self):
        """Jupyter: the drift and diffusion as LaTeX (display(derive(...)))."""
        from .formatting import notebook_latex

        return notebook_latex(self)

    def check(self, drift=None, diffusion=None, **kw):
        """Compare with a user-supplied formula (see :func:`covsde.derive.check.check`)."""
        from .check import check

        self._require()
        return check(self, drift, diffusion, **kw)


def diffusion_from_noise(groups, m) -> dict:
    r"""Σ^{αβ,γδ} = Σ_g Σ_{t,s ∈ g} c_t c_s · { (A_t V C_sᵀ)_{αγ} (B_tᵀ V D_s)_{βδ}   if T_t = T_s
                                               { (A_t V D_s)_{αδ} (C_s V B_t)_{γβ}    otherwise
    (terms t = c_t A_t Ẑ^{T_t} B_t, s = c_s C_s Ẑ^{T_s} D_s, E[Ẑ_ij Ẑ_kl] = V_ik V_jl)."""
    V = V_matrix(m)
    idx = upper_pairs(m)
    acc = {(a, b, c, d): sp.Integer(0) for (a, b) in idx for (c, d) in idx if (a, b) <= (c, d)}
    for g in groups:
        for t, s in itertools.product(g.terms, repeat=2):
            A, B, C, D = (_I(X, m) for X in (t.A, t.B, s.A, s.B))
            cc = t.coef * s.coef
            if t.T == s.T:
                L, R = A * V * C.T, B.T * V * D
                for key in acc:
                    a, b, c, d = key
                    acc[key] += cc * L[a, c] * R[b, d]
            else:
                L, R = A * V * D, C * V * B
                for key in acc:
                    a, b, c, d = key
                    acc[key] += cc * L[a, d] * R[c, b]
    out = {}
    for (a, b, c, d), ex in acc.items():
        out[(a, b, c, d)] = ex
        out[(c, d, a, b)] = ex
    return out
