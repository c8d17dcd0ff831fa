"""The result of a derivation: drift, diffusion, structured noise, regime, LaTeX, checks."""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from ..common.expr import to_expr
from .domain import domain_atoms, parameter_values
from .errors import CovsdeInputError
from .symbols import V_matrix, param_symbols, v_symbols


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
        sub = {s.name: values[s.name] for s in self.parameters if s.name in values}
        checked = parameter_values([s for s in self.parameters if s.name in sub], [], sub)
        for s in self.parameters:
            if s.name in values:
                rep[s] = to_expr(values[s.name], s.name)
                if not rep[s].is_number:
                    rep[s] = sp.Float(checked[s.name])
        new_noise = [NoiseGroup([NoiseTerm(sp.sympify(t.coef).xreplace(rep),
                                           None if t.A is None else t.A.xreplace(rep), t.T,
                                           None if t.B is None else t.B.xreplace(rep)) for t in g.terms])
                     for g in self.noise]
        return Derivation(self.m, self.block, self.regime, self.reason, self.drift.xreplace(rep), new_noise,
                          self.name, self.key + "|" + repr(sorted(values.items())))

    # ---- numbers -----------------------------------------------------------------------------
    def numeric(self, V, params=None):
        """(b, Σ) as numpy arrays at a numeric V (Σ as an (m, m, m, m) array)."""
        self._require()
        V = np.asarray(V, dtype=float)
        sub = {s: V[i, j] for s, (i, j) in zip(self.symbols, _pairs(self.m))}
        vals = self.parameter_values(params)
        for s in self.parameters:
            sub[s] = vals[s.name]
        b = np.array(self.drift.xreplace(sub).evalf(), dtype=float)
        m = self.m
        Sig = np.zeros((m, m, m, m))
        for (a, bb, c, d), ex in self.diffusion.items():
            val = float(sp.sympify(ex).xreplace(sub).evalf())
            for i, j in {(a, bb), (bb, a)}:
                for k, l in {(c, d), (d, c)}:
                    Sig[i, j, k, l] = val
        return b, Sig

    def numeric_fn(self):
        """A fast numeric view: f(V, params) → (b, groups, Σ-entries) with numpy arrays, where
        groups = [[(coef, A, T, B), ...], ...] (A, B = None for the identity)."""
        self._require()
        if getattr(self, "_numfn", None) is not None:
            return self._numfn
        params = self.parameters
        m = self.m
        exprs, layout = [sp.Matrix(self.drift)], []
        for g in self.noise:
            gl = []
            for t in g.terms:
                gl.append((len(exprs), t.A is not None, t.T, t.B is not None))
                exprs.append(sp.Matrix([[t.coef]]))
                exprs.append(sp.Matrix(t.A) if t.A is not None else sp.zeros(1, 1))
                exprs.append(sp.Matrix(t.B) if t.B is not None else sp.zeros(1, 1))
            layout.append(gl)
        f = sp.lambdify(list(self.symbols) + params, exprs, "numpy", cse=True)
        pairs = _pairs(m)

        def fn(V, values=None):
            V = np.asarray(V, dtype=float)
            args = [V[i, j] for i, j in pairs]
            checked = self.parameter_values(values)
            args.extend(checked[s_.name] for s_ in params)
            out = f(*args)
            b = np.array(out[0], dtype=float)
            groups = [[(float(np.asarray(out[k]).reshape(-1)[0]), np.array(out[k + 1], dtype=float) if hasA else None, T,
                        np.array(out[k + 2], dtype=float) if hasB else None) for k, hasA, T, hasB in gl]
                      for gl in layout]
            return b, groups

        self._numfn = fn
        return fn

    def __getstate__(self):
        d = dict(self.__dict__)
        d.pop("_numfn", None)
        d.pop("_domain", None)
        return d

    # ---- printing ----------------------------------------------------------------------------
    def latex(self) -> str:
        if not self.has_limit:
            return r"\text{no SDE limit: " + self.reason.replace("_", r"\_") + "}"
        lines = [r"b(V) = " + sp.latex(self.drift)]
        for (a, b, c, d), ex in self.diffusion.items():
            if (a, b) <= (c, d):
                lines.append(rf"\Sigma^{{{a}{b},{c}{d}}}(V) = " + sp.latex(ex))
        return "\n".join(lines)

    def text(self) -> str:
        out = [f"{self.name or self.block}  (m = {self.m})", f"regime: {self.regime}"]
        if self.reason:
            out.append(f"reason: {self.reason}")
        if self.has_limit:
            out.append("drift b(V):")
            for i in range(self.m):
                for j in range(i, self.m):
                    out.append(f"  b[{i},{j}] = {self.drift[i, j]}")
            out.append("diffusion Σ(V):")
            for (a, b, c, d), ex in self.diffusion.items():
                if (a, b) <= (c, d):
                    out.append(f"  Σ[{a}{b},{c}{d}] = {ex}")
        return "\n".join(out)

    def to_json(self, variant, params):
        d = {"variant": variant, "m": self.m, "params": {k: str(v) for k, v in params.items()},
             "regime": self.regime, "reason": self.reason, "drift": None, "diffusion": None}
        if self.has_limit:
            d["drift"] = [[sp.sstr(self.drift[i, j]) for j in range(self.m)] for i in range(self.m)]
            d["diffusion"] = {f"{a},{b};{c},{d_}": sp.sstr(ex) for (a, b, c, d_), ex in self.diffusion.items()}
        return d

    # ---- checks ------------------------------------------------------------------------------
    def check(self, drift=None, diffusion=None, *, npoints=5, seed=0, tol=1e-9, symbolic=None, params=None):
        """Compare with a user-supplied formula.

        ``drift``: an m×m SymPy matrix in the V symbols, or a callable V ↦ matrix;
        ``diffusion``: a callable (V, a, b, c, d) ↦ expression.  Compared numerically at ``npoints``
        random PSD V (and random positive parameter values), and symbolically (simplify of the
        difference) when ``symbolic`` (default: m ≤ 2).  Returns a :class:`CheckReport`."""
        self._require()
        m, V = self.m, self.V
        symbolic = (m <= 2) if symbolic is None else symbolic
        D = None
        if drift is not None:
            D = sp.Matrix(drift(V) if callable(drift) else drift).applyfunc(lambda x: _user_expr(x, self.m))
            if D.shape != (m, m):
                raise CovsdeInputError(f"drift must be {m}×{m}, got {D.shape}")
        rng = random.Random(seed)
        errs = {"drift": 0.0, "diffusion": 0.0}
        syms = set(self.parameters)
        if D is not None:
            syms |= D.free_symbols - set(self.symbols)
        for _ in range(npoints):
            Vn = random_psd(m, rng)
            sub = {s: Vn[i, j] for s, (i, j) in zip(self.symbols, _pairs(m))}
            for s in syms:
                sub[s] = (params or {}).get(s.name, rng.uniform(0.2, 0.9))
            if D is not None:
                diff = np.array((self.drift - D).xreplace(sub).evalf(), dtype=complex)
                ref = max(1.0, float(np.abs(np.array(D.xreplace(sub).evalf(), dtype=complex)).max()))
                errs["drift"] = max(errs["drift"], float(np.abs(diff).max()) / ref)
            if diffusion is not None:
                for (a, b, c, d), ex in self.diffusion.items():
                    other = _user_expr(diffusion(V, a, b, c, d), self.m)
                    val = complex((ex - other).xreplace(sub).evalf())
                    ref = max(1.0, abs(complex(other.xreplace(sub).evalf())))
                    errs["diffusion"] = max(errs["diffusion"], abs(val) / ref)
        sym_ok = None
        if symbolic:
            sym_ok = True
            if D is not None:
                sym_ok &= all(sp.simplify(x) == 0 for x in (self.drift - D))
            if diffusion is not None:
                sym_ok &= all(sp.simplify(ex - _user_expr(diffusion(V, a, b, c, d), m)) == 0
                              for (a, b, c, d), ex in self.diffusion.items())
        ok = errs["drift"] < tol and errs["diffusion"] < tol and sym_ok is not False
        return CheckReport(ok, errs, sym_ok, npoints)


@dataclass
class CheckReport:
    ok: bool
    max_rel_error: dict
    symbolic: bool | None
    npoints: int

    def __bool__(self):
        return self.ok


def _user_expr(x, m):
    """A user formula entry: SymPy or a number; text is parsed safely (names: V_a_b and parameters)."""
    if isinstance(x, str):
        names = {str(s): s for s in v_symbols(m)}
        names.update(param_symbols())
        return to_expr(x, "formula", names)
    return sp.sympify(x, strict=True) if not isinstance(x, sp.Basic) else x


def _pairs(m):
    return [(a, b) for a in range(m) for b in range(a, m)]


def random_psd(m, rng=None):
    """A random well-conditioned SPD matrix (numpy), used for numerical checks."""
    rng = rng or random.Random(0)
    A = np.array([[rng.gauss(0, 1) for _ in range(m)] for _ in range(m)])
    return A @ A.T / m + np.eye(m) * (0.3 + rng.random())


def diffusion_from_noise(groups, m) -> dict:
    r"""Σ^{αβ,γδ} = Σ_g Σ_{t,s ∈ g} c_t c_s · { (A_t V C_sᵀ)_{αγ} (B_tᵀ V D_s)_{βδ}   if T_t = T_s
                                               { (A_t V D_s)_{αδ} (C_s V B_t)_{γβ}    otherwise
    (terms t = c_t A_t Ẑ^{T_t} B_t, s = c_s C_s Ẑ^{T_s} D_s, E[Ẑ_ij Ẑ_kl] = V_ik V_jl)."""
    V = V_matrix(m)
    idx = _pairs(m)
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
