"""derive(): from a block's one-step map to the drift b(V), diffusion Σ(V) and regime.

One layer step gives  V' = V + ε N + ε² D + o(ε²),  ε = n^{-1/2}  (:mod:`.algebra`).  Then

    b(V) = E[D],      Σ^{αβ,γδ}(V) = Cov(N^{αβ}, N^{γδ}),

and N itself, a sum of terms c·A·(L Z_k Lᵀ)^{(T)}·B, is the structured noise.  The regime is read
off the orders: an ε⁰ or ε^{<2} mean term, or an ε^{<1} fluctuation, means no limit.

The expansion runs at the matrix level (``engine="matrix"``, the default): b and the A, B of the
noise are matrix expressions in V, 11ᵀ/m, traces, Hadamard products and kernel maps with m a symbol
(:mod:`.matexpr`), so the cost does not depend on m; the zero tests that decide the regime are
evaluated at the m asked for.  ``engine="entries"`` runs the same expansion on SymPy matrices of
that m (the per-entry reference, m ≤ COVSDE_MAX_M_ENTRIES).
"""
from __future__ import annotations

import hashlib
import pickle
import time

import sympy as sp

from ..common import cache, checks, limits
from ..common.fingerprint import Unfingerprintable, object_fingerprint, source_hash
from .algebra import UNRESOLVED, SymbolicOps
from .algebras import EntryAlgebra, MatrixAlgebra
from .blocks import Block
from .errors import CovsdeInputError, NeedsEntries, NoLimit, NotSupported
from .result import Derivation, MatrixForm, NoiseGroup, NoiseTerm
from .series import EMAX, Ser

ENGINES = ("matrix", "entries")


def derivation_key(block: Block, m: int, engine: str = "matrix") -> str | None:
    """The cache key of a derivation: a hash of everything that decides it — the sources of derive/
    and common/ (and the SymPy version), m, and the block's whole state and code (its classes and
    those of every object it holds, user subclasses included).  None if the block cannot be
    fingerprinted (its derivation is then not cached)."""
    try:
        fp = object_fingerprint(block)
    except Unfingerprintable:
        return None
    return hashlib.sha256(f"{source_hash('derive', 'common')}|{m}|{engine}|{fp}".encode()).hexdigest()[:40]


def _load_cached(key):
    hit = cache.load("derive", key)
    if hit is None:
        return None
    try:
        # stored trees are already canonical: rebuild them without re-evaluating
        with sp.core.parameters.evaluate(False):
            res = pickle.loads(hit)
        if isinstance(res, Derivation) and res.key == key:
            return res
    except Exception:  # noqa: BLE001 - any unreadable entry is rebuilt
        pass
    cache.discard("derive", key)
    return None


def derive(block: Block, m: int, *, use_cache: bool = True, name: str | None = None,
           engine: str = "matrix", kappa=1) -> Derivation:
    """Derive the covariance SDE of ``block`` for m tokens on the time scale t = ℓ/n^κ.

    The drift is the n^(−κ) mean change of V per layer, the noise its n^(−κ/2) fluctuation, both in the
    limit n → ∞ (see the module docstring for how).  Symbols left in the block (``gamma``, ``tau0``)
    stay symbols in the result.

    Arguments:
        block: a :class:`~covsde.derive.Block` (its ``step(x, ops)`` is the one-step map).
        m: the number of tokens, 1 ≤ m ≤ COVSDE_MAX_M (512).
        use_cache: read and write the on-disk cache (``$COVSDE_CACHE_DIR``).
        name: a name for the result (default: the block's repr).
        engine: "matrix" (m a symbol, the default) or "entries" (the per-entry reference engine, m ≤ 16).
        kappa: the depth exponent κ, a rational in (0, 4]: depth d = T·n^κ (default 1).

    Returns:
        Derivation: the regime (``sde``, ``ode``, ``identity``, ``no-limit``) with its reason, the drift and
            the structured noise as matrix formulas, and per entry on request.

    Raises:
        CovsdeInputError: a block that is not a Block, m or kappa out of range, a parameter outside its
            domain.
        NotSupported: a construction the engine cannot carry (named in the message).

    Example:
        ```python
        from covsde.derive import derive, transformer_block, ShapedReLU

        d = derive(transformer_block(ShapedReLU(c_plus=0, c_minus=-1)), m=2)
        print(d.regime, d.parameters)          # sde, the symbols gamma and tau0
        print(d.text())
        ```
    """
    if not isinstance(block, Block):
        raise CovsdeInputError(
            f"block must be a covsde Block (e.g. covsde.derive.variants.build('mlp')[0]), got "
            f"{type(block).__name__} {block!r}")
    if isinstance(m, bool) or not isinstance(m, int):
        raise CovsdeInputError(f"m must be an integer ≥ 1, got m={m!r}")
    m = checks.integer("m", m, 1)
    engine = checks.choice("engine", engine, ENGINES)
    kappa = check_kappa(kappa)
    limits.check_count("m", m, limits.max_m(), "COVSDE_MAX_M", " tokens")
    if engine == "entries":
        limits.check_count("m", m, limits.max_m_entries(), "COVSDE_MAX_M_ENTRIES",
                           " tokens for the per-entry engine (its cost grows like m^3.4; m = 16 takes about 20 s)")
    key = derivation_key(block, m, engine if kappa == 1 else f"{engine}|kappa={kappa}") if use_cache else None
    if key is not None:
        res = _load_cached(key)
        if res is not None:
            res.from_cache = True
            res.name = name or res.name
            return res
    t0 = time.perf_counter()
    try:
        res = _derive(block, m, engine, kappa=kappa)
    except NeedsEntries as exc:  # e.g. a token mask: derived per entry, for this m
        if m > limits.max_m_entries():
            raise NotSupported(f"{exc} — and the per-entry engine takes m ≤ {limits.max_m_entries()} "
                               f"(COVSDE_MAX_M_ENTRIES), not m = {m}") from None
        return derive(block, m, use_cache=use_cache, name=name, engine="entries", kappa=kappa)
    res.name = name or repr(block)
    res.key = key or ""
    res.seconds = time.perf_counter() - t0
    if key is not None:
        if res.has_limit and res.matrix is None:
            res.diffusion  # computed once, stored with the derivation
        cache.store("derive", key, pickle.dumps(res, protocol=pickle.HIGHEST_PROTOCOL))
    return res


def derive_at(block: Block, V) -> Derivation:
    """The per-entry expansion at a numeric V (a list of rows or an array; parameters of the block must
    be numbers): b(V) and the structured noise as numbers, by the per-entry engine's own Wick rules — an
    independent check of the matrix-level engine at any m (not cached)."""
    import numpy as np

    A = np.asarray(V, dtype=float)
    m = A.shape[0]
    res = _derive(block, m, "entries", alg=EntryAlgebra(m, sp.Matrix(m, m, lambda i, j: sp.Float(A[i, j], 17))))
    res.name = repr(block)
    return res


def _expand(block, alg, kappa=1):
    """Phase 1: the ε-series of the output Gram matrix G(X', X') (or NoLimit)."""
    ops = SymbolicOps(alg, kappa)
    x = ops.input(Ser.const(alg, alg.V))
    y = block.step(x, ops)
    return ops, ops.cross_gram(y, y)


KAPPA_MAX = 4


def check_kappa(kappa):
    """The depth exponent κ: a rational in (0, KAPPA_MAX] (d = T·n^κ layers).  Beyond 1 (depth ≫ width)
    the classifier reports the orders that are too large (most blocks: the linear layers' O(n^(−1/2))
    fluctuation); a limit there would need the expansion beyond n^(−1) and is refused (NotSupported)."""
    from .symbols import value

    k = value("kappa", kappa, positive=True, number=True)
    if k > KAPPA_MAX:
        raise CovsdeInputError(f"kappa = {k}: at most {KAPPA_MAX} (depth n^κ)")
    return k


def time_scale(kappa) -> str:
    """'l/n' for κ = 1, else 'l/n^(κ)'."""
    return "l/n" if kappa == 1 else f"l/n^({kappa})"


def _per_layer(kappa):
    """(the mean change, the fluctuation) per layer on the time scale, as text."""
    return ("1/n", "n^(-1/2)") if kappa == 1 else (f"n^(-{kappa})", f"n^(-{kappa / 2})")


def _orders(G, ops, kappa=1):
    """Phase 2: the reason there is no limit, read off the orders of G (None if there is one)."""
    alg, probe, notes = ops.alg, ops.probe, ops.notes
    mean, fluct = _per_layer(kappa)
    t = "t = ℓ/n" if kappa == 1 else f"t = ℓ/n^{kappa}"
    D0 = G.leading() - alg.V
    if not probe.matrix_is_zero(D0) and _relaxes(D0, alg, ops.notes):
        raise NotSupported(
            "the layer changes V by O(1) except on correlation matrices: a normalisation makes the norms relax "
            "to 1 within O(1) layers, and only the correlations can have a limit — but the diagonal's fast "
            "O(n^(-1/2)) fluctuations feed the correlations' drift, which is not derived yet (post-normalisation, "
            "or a branch scaled by q ≥ 1/2, is)")
    if not probe.matrix_is_zero(D0):
        return "; ".join(notes) if notes else (
            f"E[ΔV] has an O(1) part (ΔV = {_show(alg.sample(D0))}): the layer changes V by O(1), "
            f"there is no limit in {t}")
    for e, M in sorted(G.det.items()):
        if 0 < e < 2 * kappa and not probe.matrix_is_zero(M):
            depth = "n" if kappa == 1 else f"n^{kappa}"
            return (f"E[ΔV] has a term of order n^(-{e / 2}) ≫ {mean} (a deterministic change that does not "
                    f"vanish on the time scale {t}: V moves by O(1) within n^{e / 2} layers, long before depth "
                    f"{depth}): " + ("; ".join(notes) or f"{_show(alg.sample(M))}"))
    for e, terms in sorted(G.noise.items()):
        if e < kappa and any(_live(key, c, probe) for key, c in terms.items()):
            return f"the one-step fluctuation of V is of order n^(-{e / 2}) ≫ {fluct}"
    foreign = getattr(alg, "foreign", set())
    for e, terms in sorted(G.noise.items()):
        if e <= kappa and any(k in foreign and _live((k, A, T, B), c, probe) for (k, A, T, B), c in terms.items()):
            raise NotSupported(f"a fluctuation of order n^(-{e / 2}) built on a Gram other than κV (after an "
                               "O(1) nonlinear map) reaches the limit: not supported yet")
    return None


def _relaxes(D0, alg, notes):
    """Does the O(1) change vanish on correlation matrices (norms relaxing to 1, correlations kept)?"""
    return not notes and alg.probe.on_correlations().matrix_is_zero(D0)


def _show(M):
    from .matprint import text

    return text(M) if hasattr(M, "terms") else str(M)


def _regime(res, ops, drift, groups, kappa=1):
    """Phase 3: sde, ode or identity, read off the coefficients; a nonlinear piece whose own effect
    vanishes (it acts as its mean, e.g. a softmax of vanishing logits as 11ᵀ/m) is named in the reason."""
    probe = ops.probe
    mean, fluct = _per_layer(kappa)
    dropped = sorted({what for what, dev in ops.nonlinear if not _felt(dev, probe, kappa)})
    note = (f"; drops out in the limit (its own effect is o({mean}) per layer, it acts as its mean): "
            + ", ".join(dropped)) if dropped else ""
    if probe.matrix_is_zero(drift) and not groups:
        res.regime, res.reason = "identity", f"V' = V + o({mean}): the block drops out in the limit" + note
    elif not groups:
        res.regime, res.reason = "ode", f"no O({fluct}) fluctuation: the limit is the drift-only ODE" + note
    elif note:
        res.reason = note[2:]
    return res


def _felt(dev, probe, kappa=1):
    """Is a nonlinear piece felt in the limit (a fluctuation at ε^κ or a mean at ≤ ε^(2κ))?"""
    return (any(not probe.matrix_is_zero(M) for e, M in dev.det.items() if e <= 2 * kappa)
            or any(_live(key, c, probe) for e, terms in dev.noise.items() if e <= kappa for key, c in terms.items()))


def _live(key, c, probe):
    """A noise term c·A Ẑ B that does not vanish at the m derived (P = 0 at m = 1, say)."""
    _, A, _, B = key
    return not probe.is_zero(c) and not any(X is not None and probe.matrix_is_zero(X) for X in (A, B))


def _derive(block, m, engine, alg=None, kappa=1):
    state = block.state()
    if state == "correlation" and alg is None:  # unit diagonal: derived per entry, on correlation matrices
        engine, alg = "entries", EntryAlgebra(m, unit_diagonal=True)
    alg = alg or (MatrixAlgebra(m) if engine == "matrix" else EntryAlgebra(m))
    base = dict(m=m, block=repr(block), engine=engine, kappa=str(kappa), time=time_scale(kappa), state=state)
    try:
        ops, G = _expand(block, alg, kappa)
    except NoLimit as exc:
        return Derivation(**base, regime="no-limit", reason=exc.reason)
    reason = _orders(G, ops, kappa)
    if reason is not None:
        return Derivation(**base, regime="no-limit", reason=reason)
    if 2 * kappa > EMAX:
        raise NotSupported(f"depth n^{kappa} ≫ n: no order below n^(-{kappa}) is too large, but the drift, of order "
                           f"n^(-{kappa}), lies beyond the orders the expansion keeps (n^(-1)): not supported yet")
    drift = G.det_at(2 * kappa)
    groups = _group_noise(G.noise_at(kappa), ops.probe, alg)
    _check_resolved(ops, drift, groups)
    if engine == "matrix":
        drift = drift.map_coefs(lambda c: sp.factor_terms(sp.expand(c)))
        res = Derivation(**base, regime="sde", reason="", matrix=MatrixForm(drift, groups))
    else:
        if state == "correlation":  # the diagonal is fixed: its drift is zero (checked), stated exactly
            drift = sp.Matrix(drift).applyfunc(sp.expand)  # the norm's nested expansions collapse (100× shorter)
            for a in range(m):
                if not ops.probe.is_zero(drift[a, a]):
                    raise AssertionError(f"a normalised block moved V[{a},{a}]: {drift[a, a]}")
                drift[a, a] = 0
            groups = [_merge_right(g, m) for g in groups]
        res = Derivation(**base, regime="sde", reason="", entry_drift=sp.ImmutableMatrix(drift), entry_noise=groups)
    return _spread(_regime(res, ops, drift, groups, kappa), G, ops.probe, kappa)


def _spread(res, G, probe, kappa):
    """Phase 4: the relative order of the one-step mean's correction (the next order of E[ΔV] present,
    at most 1/2), and for an ODE (or identity) the order of the fluctuation left around it at a fixed time:
    per-layer fluctuations of order n^(-e/2) over n^κ layers give O(n^(-(e−κ)/2)).  The series keeps
    fluctuations below ε² only, so without one there the order is a lower bound, (2 − κ)/2."""
    later = [e for e, M in G.det.items() if e > 2 * kappa and not probe.matrix_is_zero(M)]
    res.correction = str(min(sp.Rational(min(later) - 2 * kappa, 2), sp.Rational(1, 2)) if later
                         else min(1 - sp.Rational(kappa), sp.Rational(1, 2)) if kappa < 1 else sp.Rational(1, 2))
    if res.regime in ("ode", "identity"):
        live = sorted(e for e, terms in G.noise.items() if e > kappa and any(_live(k, c, probe) for k, c in terms.items()))
        e = live[0] if live else EMAX
        res.spread, res.spread_exact = str(sp.Rational(e - kappa, 2)), bool(live)
    return res


def _check_resolved(ops, drift, groups):
    """NotSupported if an unresolved term (:data:`.algebra.UNRESOLVED`) reaches the coefficients."""
    exprs = list(drift.coefficients()) if hasattr(drift, "coefficients") else list(drift)
    for g in groups:
        for t in g.terms:
            exprs.append(t.coef)
            exprs += [c for X in (t.A, t.B) if X is not None
                      for c in (X.coefficients() if hasattr(X, "coefficients") else list(X))]
    if any(s.name.startswith(UNRESOLVED) for e in exprs for s in sp.sympify(e).free_symbols):
        raise NotSupported("; ".join(ops.unresolved) + " reaches the limit (the kernel map's derivative "
                           "is not carried): not supported yet")


def _merge_right(g, m):
    """Σ c_t A_t Ẑ^{(T)} B with a shared (T, B) as one term (Σ c_t A_t) Ẑ^{(T)} B, entries expanded (per entry:
    a normalised block's expansion leaves many terms that share a right factor)."""
    merged = {}
    for t in g.terms:
        B = None if t.B is None else sp.ImmutableMatrix(t.B.applyfunc(sp.expand))
        A = sp.eye(m) if t.A is None else t.A
        key = (t.T, B)
        merged[key] = merged.get(key, sp.zeros(m, m)) + t.coef * A
    return NoiseGroup([NoiseTerm(sp.Integer(1), sp.ImmutableMatrix(A.applyfunc(sp.expand)), T, B)
                       for (T, B), A in merged.items() if any(x != 0 for x in A.applyfunc(sp.expand))])


def _group_noise(terms: dict, probe, alg) -> list[NoiseGroup]:
    """Collect the ε¹ fluctuation by Gaussian matrix, and merge independent groups that are
    proportional in structure: c₁N(Z₁) + c₂N(Z₂) has the law of √(c₁² + c₂²) N(Z)."""

    def order(X):
        return "" if X is None else X.key()

    by_k = {}
    for (k, A, T, B), c in terms.items():
        if k in getattr(alg, "foreign", ()) or not _live((k, A, T, B), c, probe):
            continue
        by_k.setdefault(k, []).append((c, A, T, B))
    merged = {}
    for k, lst in by_k.items():
        if alg.symbolic:
            lst.sort(key=lambda t: (t[2], order(t[1]), order(t[3])))
        else:
            lst.sort(key=lambda t: (t[2], hash((t[1], t[3]))))
        c0 = lst[0][0]
        sig = tuple((A, T, B, sp.nsimplify(sp.simplify(c / c0))) for c, A, T, B in lst)
        merged.setdefault(sig, []).append(c0)
    groups = []
    for sig, coefs in merged.items():
        scale = sp.sqrt(sum(c**2 for c in coefs)) if len(coefs) > 1 else coefs[0]
        scale = sp.simplify(scale)
        groups.append(NoiseGroup([NoiseTerm(sp.simplify(scale * r), A, T, B) for A, T, B, r in sig]))
    return groups
