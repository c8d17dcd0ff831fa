"""The result of a derivation: drift, structured noise, diffusion, regime, parameters.

What is done with a result lives beside it: numbers in :mod:`.evaluate`, text/LaTeX/JSON in
:mod:`.formatting`, comparison with a user's formula in :mod:`.check`, parameter domains in
:mod:`.domain` (the methods below delegate to them)."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import sympy as sp

from ..common import limits
from ..common.expr import to_expr
from .domain import domain_atoms, parameter_values
from .errors import CovsdeInputError
from .gaussian import kxx, kxy, kyy
from .matexpr import M_SYM
from .points import upper_pairs
from .symbols import V_matrix, v_symbols

PLACEHOLDERS = {kxx, kxy, kyy, M_SYM}


@dataclass(frozen=True)
class NoiseTerm:
    """coef · A · Ẑ^{(T)} · B with Ẑ = L Z Lᵀ, L = chol(V); A, B = None mean the identity (A, B are
    SymPy matrices in the per-entry form, matrix expressions in the matrix form)."""

    coef: sp.Expr
    A: object
    T: int
    B: object


@dataclass
class NoiseGroup:
    """Terms sharing one i.i.d. N(0,1) matrix Z:  N_g = Σ_t coef_t A_t (L Z Lᵀ)^{(T_t)} B_t."""

    terms: list


def _I(M, m):
    return sp.eye(m) if M is None else M


@dataclass
class MatrixForm:
    r"""The matrix-level result, valid for every m: the drift b(V) and the structured noise as
    :class:`~covsde.derive.matexpr.MatExpr` (A_t, B_t matrix expressions, c_t scalars in m and the
    parameters)."""

    drift: object
    noise: list

    def expressions(self):
        """Every matrix expression in the result."""
        out = [self.drift]
        for g in self.noise:
            for t in g.terms:
                out += [X for X in (t.A, t.B) if X is not None]
        return out

    def coefficients(self):
        out = []
        for M in self.expressions():
            out += M.coefficients()
        out += [t.coef for g in self.noise for t in g.terms]
        return out

    def xreplace(self, rep):
        def one(X):
            return None if X is None else X.xreplace(rep)

        return MatrixForm(self.drift.xreplace(rep),
                          [NoiseGroup([NoiseTerm(sp.sympify(t.coef).xreplace(rep), one(t.A), t.T, one(t.B))
                                       for t in g.terms]) for g in self.noise])


@dataclass
class Derivation:
    r"""Drift b(V) (m×m), diffusion Σ^{αβ,γδ}(V) and the structured noise

        dV = b(V) dt + Σ_g Σ_t c_t A_t (L Z_g Lᵀ)^{(T_t)} B_t √dt,   L = chol(V),

    whose covariance is exactly Σ.  ``regime`` ∈ {sde, ode, identity, no-limit}.  ``matrix`` holds
    the matrix-level form (engine ``matrix``); ``drift``/``noise``/``diffusion`` are the per-entry
    SymPy forms for this m, computed from it on first use (m ≤ COVSDE_MAX_M_ENTRIES)."""

    m: int
    block: str
    regime: str
    reason: str
    name: str = ""
    key: str = ""
    seconds: float = 0.0
    from_cache: bool = False
    engine: str = "matrix"
    kappa: str = "1"  # the depth exponent: time t = ℓ/n^κ
    state: str = "V"  # "V", or "correlation" (a normalised block: V has unit diagonal, only ρ evolves)
    time: str = "l/n"
    # the fluctuation of V around the limit at a fixed time is O(n^(-spread)) ("0" for an SDE; for an
    # ODE the leading vanishing fluctuation; spread_exact False: only a lower bound was resolved)
    spread: str = "0"
    spread_exact: bool = True
    # the one-step moments of width n carry a relative bias O(n^(-correction)) (the next order of E[ΔV])
    correction: str = "1/2"
    matrix: MatrixForm | None = None
    entry_drift: sp.ImmutableMatrix | None = None
    entry_noise: list | None = None
    _diffusion: dict | None = field(default=None, repr=False)

    # ---- per-entry forms ---------------------------------------------------------------------
    @property
    def has_limit(self):
        return self.regime != "no-limit"

    def _require(self):
        if not self.has_limit:
            raise CovsdeInputError(f"no SDE limit (regime no-limit): {self.reason}")

    def _entries(self):
        if self.entry_drift is None and self.matrix is not None:
            from .matnum import Entries

            limits.check_count("m", self.m, limits.max_m_entries(), "COVSDE_MAX_M_ENTRIES",
                               " tokens for the per-entry form (m² drift and m⁴/4 diffusion expressions; the "
                               "matrix form Derivation.matrix holds for every m)")
            ev = Entries(V_matrix(self.m))
            sub = {M_SYM: self.m}

            def mat(X):
                return None if X is None else sp.ImmutableMatrix(ev.value(X))

            self.entry_noise = [NoiseGroup([NoiseTerm(sp.sympify(t.coef).xreplace(sub), mat(t.A), t.T, mat(t.B))
                                            for t in g.terms]) for g in self.matrix.noise]
            self.entry_drift = mat(self.matrix.drift)

    @property
    def drift(self):
        """b(V) per entry, an m×m SymPy matrix (None without a limit)."""
        if not self.has_limit:
            return None
        self._entries()
        return self.entry_drift

    @property
    def noise(self):
        """The structured noise per entry: NoiseGroups of NoiseTerms with SymPy m×m A, B."""
        if not self.has_limit:
            return None
        self._entries()
        return self.entry_noise

    @property
    def diffusion(self) -> dict:
        """{(a, b, c, d): Σ^{ab,cd}} for a ≤ b, c ≤ d."""
        self._require()
        if self._diffusion is None:
            self._diffusion = diffusion_from_noise(self.noise, self.m, self.V)
        return self._diffusion

    def sigma(self, a, b, c, d):
        a, b = sorted((a, b))
        c, d = sorted((c, d))
        return self.diffusion[(a, b, c, d)]

    @property
    def V(self):
        """The symbolic state: V_a_b, with V_a_a = 1 for a correlation state."""
        V = V_matrix(self.m)
        if getattr(self, "state", "V") == "correlation":
            V = sp.ImmutableMatrix(self.m, self.m, lambda a, b: 1 if a == b else V[a, b])
        return V

    @property
    def symbols(self):
        return v_symbols(self.m)

    def _all_coefficients(self):
        if self.matrix is not None:
            return self.matrix.coefficients()
        exprs = list(self.entry_drift)
        for g in self.entry_noise:
            for t in g.terms:
                exprs.append(t.coef)
                exprs.extend(x for M in (t.A, t.B) if M is not None for x in M)
        return exprs

    @property
    def parameters(self):
        if not self.has_limit:
            return []
        syms = set()
        for ex in self._all_coefficients():
            syms |= sp.sympify(ex).free_symbols
        syms = {s for s in syms if not s.name.startswith("V_")} - PLACEHOLDERS
        return sorted(syms, key=lambda s: s.name)

    def domain_atoms(self):
        """Sub-expressions of the parameters alone with a restricted real domain (cached)."""
        self._require()
        if getattr(self, "_domain", None) is None:
            self._domain = domain_atoms(self._all_coefficients(), self.parameters)
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
        out = Derivation(self.m, self.block, self.regime, self.reason, self.name,
                         self.key + "|" + repr(sorted(values.items())), engine=self.engine, kappa=self.kappa,
                         time=self.time)
        if self.matrix is not None:
            out.matrix = self.matrix.xreplace(rep)
            return out

        def one(X):
            return None if X is None else X.xreplace(rep)

        out.entry_drift = self.entry_drift.xreplace(rep)
        out.entry_noise = [NoiseGroup([NoiseTerm(sp.sympify(t.coef).xreplace(rep), one(t.A), t.T, one(t.B))
                                       for t in g.terms]) for g in self.entry_noise]
        return out

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
    def latex(self, per_entry=False) -> str:
        """The matrix-level formula (``per_entry``: b and Σ entry by entry for this m)."""
        from .formatting import latex

        return latex(self, per_entry)

    def text(self, per_entry=False) -> str:
        from .formatting import text

        return text(self, per_entry)

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


def diffusion_from_noise(groups, m, V=None) -> dict:
    r"""Σ^{αβ,γδ} = Σ_g Σ_{t,s ∈ g} c_t c_s · { (A_t V C_sᵀ)_{αγ} (B_tᵀ V D_s)_{βδ}   if T_t = T_s
                                               { (A_t V D_s)_{αδ} (C_s V B_t)_{γβ}    otherwise
    (terms t = c_t A_t Ẑ^{T_t} B_t, s = c_s C_s Ẑ^{T_s} D_s, E[Ẑ_ij Ẑ_kl] = V_ik V_jl)."""
    V = V_matrix(m) if V is None else V
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
