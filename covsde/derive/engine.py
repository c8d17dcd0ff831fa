"""derive(): from a block's one-step map to the drift b(V), diffusion Σ(V) and regime.

One layer step gives  V' = V + ε N + ε² D + o(ε²),  ε = n^{-1/2}  (:mod:`.algebra`).  Then

    b(V) = E[D],      Σ^{αβ,γδ}(V) = Cov(N^{αβ}, N^{γδ}),

and N itself, a sum of terms c·A·(L Z_k Lᵀ)^{(T)}·B, is the structured noise.  The regime is read
off the orders: an ε⁰ or ε^{<2} mean term, or an ε^{<1} fluctuation, means no limit.
"""
from __future__ import annotations

import hashlib
import pickle
import time

import sympy as sp

from ..common import cache, checks, limits
from ..common.fingerprint import Unfingerprintable, object_fingerprint, source_hash
from .algebra import SymbolicOps
from .blocks import Block
from .errors import CovsdeInputError, NoLimit
from .result import Derivation, NoiseGroup, NoiseTerm
from .series import Ser
from .symbols import V_matrix


def derivation_key(block: Block, m: int) -> str | None:
    """The cache key of a derivation: a hash of everything that decides it — the sources of derive/
    and common/ (and the SymPy version), m, and the block's whole state and code (its classes and
    those of every object it holds, user subclasses included).  None if the block cannot be
    fingerprinted (its derivation is then not cached)."""
    try:
        fp = object_fingerprint(block)
    except Unfingerprintable:
        return None
    return hashlib.sha256(f"{source_hash('derive', 'common')}|{m}|{fp}".encode()).hexdigest()[:40]


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


def derive(block: Block, m: int, *, use_cache: bool = True, name: str | None = None) -> Derivation:
    """Derive the covariance SDE of ``block`` for m tokens (see module docstring)."""
    if not isinstance(block, Block):
        raise CovsdeInputError(
            f"block must be a covsde Block (e.g. covsde.derive.variants.build('mlp')[0]), got "
            f"{type(block).__name__} {block!r}")
    if isinstance(m, bool) or not isinstance(m, int):
        raise CovsdeInputError(f"m must be an integer ≥ 1, got m={m!r}")
    m = checks.integer("m", m, 1)
    limits.check_count("m", m, limits.max_m(), "COVSDE_MAX_M",
                       " tokens for the per-entry derivation (its cost grows like m^3.4; m = 16 takes about 20 s)")
    key = derivation_key(block, m) if use_cache else None
    if key is not None:
        res = _load_cached(key)
        if res is not None:
            res.from_cache = True
            res.name = name or res.name
            return res
    t0 = time.perf_counter()
    res = _derive(block, m)
    res.name = name or repr(block)
    res.key = key or ""
    res.seconds = time.perf_counter() - t0
    if key is not None:
        if res.has_limit:
            res.diffusion  # computed once, stored with the derivation
        cache.store("derive", key, pickle.dumps(res, protocol=pickle.HIGHEST_PROTOCOL))
    return res


def _derive(block, m):
    V = V_matrix(m)
    ops = SymbolicOps(m, V)
    x = ops.input(Ser.const(m, V, V))
    base = dict(m=m, block=repr(block))
    try:
        y = block.step(x, ops)
        G = ops.cross_gram(y, y)
    except NoLimit as exc:
        return Derivation(**base, regime="no-limit", reason=exc.reason, drift=None, noise=None)

    probe = ops.probe
    notes = ops.notes
    # O(1) mean change
    D0 = G.leading() - V
    if not probe.matrix_is_zero(D0):
        entry = sp.simplify(D0[0, 0]) if m < 4 else D0[0, 0]
        reason = "; ".join(notes) if notes else (
            f"E[ΔV] has an O(1) part (e.g. ΔV^{{00}} = {entry}): the layer changes V by O(1), "
            "there is no limit in t = ℓ/n")
        return Derivation(**base, regime="no-limit", reason=reason, drift=None, noise=None)
    for e, M in sorted(G.det.items()):
        if 0 < e < 2 and not probe.matrix_is_zero(M):
            return Derivation(**base, regime="no-limit", drift=None, noise=None, reason=(
                f"E[ΔV] has a term of order n^(-{e / 2}) ≫ 1/n (a deterministic change that does not "
                f"vanish on the time scale t = ℓ/n): " + ("; ".join(notes) or f"e.g. {M[0, min(1, m - 1)]}")))
    for e, terms in sorted(G.noise.items()):
        if e < 1 and any(not probe.is_zero(c) for c in terms.values()):
            return Derivation(**base, regime="no-limit", drift=None, noise=None, reason=(
                f"the one-step fluctuation of V is of order n^(-{e / 2}) ≫ n^(-1/2)"))
    drift = sp.ImmutableMatrix(G.det_at(2))
    groups = _group_noise(G.noise_at(1), probe)
    res = Derivation(**base, regime="sde", reason="", drift=drift, noise=groups)
    dropped = [what for what, status in ops.nonlinear if status == "dropped"]
    zero_drift = probe.matrix_is_zero(drift)
    zero_noise = not groups
    if dropped:
        res.regime = "identity"
        res.reason = ("drops out in the limit (its effect is o(1/n) per layer): " + ", ".join(sorted(set(dropped)))
                      + "; what remains is the SDE of the network without it")
    elif zero_drift and zero_noise:
        res.regime, res.reason = "identity", "V' = V + o(1/n): the block drops out in the limit"
    elif zero_noise:
        res.regime, res.reason = "ode", "no O(n^(-1/2)) fluctuation: the limit is the drift-only ODE"
    return res


def _group_noise(terms: dict, probe) -> list[NoiseGroup]:
    """Collect the ε¹ fluctuation by Gaussian matrix, and merge independent groups that are
    proportional in structure: c₁N(Z₁) + c₂N(Z₂) has the law of √(c₁² + c₂²) N(Z)."""
    by_k = {}
    for (k, A, T, B), c in terms.items():
        if probe.is_zero(c):
            continue
        by_k.setdefault(k, []).append((c, A, T, B))
    merged = {}
    for k, lst in by_k.items():
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
