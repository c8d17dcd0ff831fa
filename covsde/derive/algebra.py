"""The symbolic backend of the one-step map: Gram matrices of width-indexed arrays.

A block's ``step(x, ops)`` manipulates m×n arrays (one row per token).  Here an array is a
symbolic node and all that is ever computed is Gram matrices G(a, b) = a bᵀ / n as ε-series
(:class:`~covsde.derive.series.Ser`), by these rules (columns of an input treated as i.i.d.
Gaussian given its Gram, as in the docs' Concepts and conventions):

* fresh projection Y = U W/√n, W ∈ R^{n×fn} i.i.d. N(0,1) (f = width fraction, heads use 1/H):
  G(Y, Y) = G(U, U) + ε f^{-1/2} (Ẑ + Ẑᵀ)/√2 · κ   (Wishart; G(U,U)⁰ = κ V)
  G(Y, B) = ε f^{-1/2} √(κ_U κ_B) Ẑ'               (B not built from W; mean 0)
* activation  Ã = √c φ_s(U):  G(Ã, Ã) = g(G(U, U)), g the activation's Gram map;
* linear combinations and left products by random m×m matrices (attention) are bilinear;
* concatenation of H heads along the width: G = Σ_h (1/H) G_h;
* logits S = Q Kᵀ/τ, τ = τ0 n^e √n_k: S = ε^{2e} (κ/τ0) Ẑ'' (mean 0, E[S S] = V⊗V/(τ0² n^{2e}));
* row softmax near equal logits (its Taylor expansion to second order):
  Softmax(S) = (1/m)[11ᵀ + S P + ½ ((SP)∘(SP)) P] + O(S³),  P = I − 11ᵀ/m.
"""
from __future__ import annotations

import itertools

import sympy as sp

from .errors import NoLimit, NotSupported
from .ops import Ops
from .series import NoiseRegistry, Ser
from .symbols import WIDTH, width_series

UNRESOLVED = "unresolved_"  # prefix of the symbols of terms the expansion carries but cannot resolve


class Arr:
    deps: frozenset = frozenset()


class Input(Arr):
    def __init__(self, gram: Ser):
        self.gram = gram
        self.deps = frozenset()


class Fresh(Arr):
    def __init__(self, src: Arr, wid: int, frac):
        self.src, self.wid, self.frac = src, wid, sp.sympify(frac)
        self.deps = src.deps | {wid}


class ActNode(Arr):
    def __init__(self, src: Arr, activation):
        self.src, self.activation = src, activation
        self.deps = src.deps


class GateNode(Arr):
    """a ∘ b (element-wise) of two arrays built from independent weights."""

    def __init__(self, a: Arr, b: Arr):
        self.a, self.b = a, b
        self.deps = a.deps | b.deps


class LMul(Arr):
    def __init__(self, M: Ser, x: Arr, deps=frozenset()):
        self.M, self.x = M, x
        self.deps = x.deps | deps


class Lin(Arr):
    """Σ c·ε^de·a: terms (c, de, a), c free of the width (a width-dependent scale is expanded first)."""

    def __init__(self, terms):
        self.terms = [(sp.sympify(c), sp.Rational(de), a) for c, de, a in terms]
        self.deps = frozenset().union(*(a.deps for _, _, a in self.terms))


class IIDHeads(Arr):
    """Infinitely many i.i.d. copies of a head concatenated: ``part`` is one head computed with width
    fraction 1/H (H the symbol ``H``); noise ids from ``k0`` on belong to the head."""

    def __init__(self, part, H, k0):
        self.part, self.H, self.k0 = part, H, k0
        self.deps = part.deps


class Concat(Arr):
    def __init__(self, parts):
        self.parts = list(parts)
        self.deps = frozenset().union(*(p.deps for p in self.parts))


class RandMat(Ser):
    """A random m×m matrix produced by the ops (attention logits / matrices); remembers which
    weights it depends on."""


class SymbolicOps(Ops):
    """The symbolic interpreter of the block contract (:class:`~covsde.derive.ops.Ops`): arrays are
    nodes, and what is computed is their Gram ε-series (see the module docstring)."""

    def __init__(self, alg, kappa=1):
        self.alg = alg  # the matrix algebra (:mod:`.algebras`)
        self.kappa = sp.Rational(kappa)  # the depth exponent: terms up to n^(−κ) matter
        self.m, self.V = alg.m, alg.V
        self.registry = NoiseRegistry()
        alg.foreign = self.registry.foreign  # the Wick products refuse these (series._native)
        self.probe = alg.probe
        self._wid = itertools.count()
        self._memo = {}
        self._keep = []  # keep nodes alive so that id() keys stay valid
        self._act_cache = {}
        self.notes = []  # remarks used in the regime's reason
        self.nonlinear = []  # (description, deviation ε-series)
        self.unresolved = []  # descriptions of the unresolved terms (symbols UNRESOLVED<k>_<i>)

    # ---- constructors used by blocks --------------------------------------------------------
    def input(self, gram: Ser):
        return self._k(Input(gram))

    def _k(self, node):
        self._keep.append(node)
        return node

    def linear(self, x, frac=1):
        """x W / √n with a fresh W ∈ R^{n × frac·n}."""
        return self._k(Fresh(x, next(self._wid), frac))

    def act(self, x, activation):
        """√c φ_s(x), element-wise."""
        return self._k(ActNode(x, activation))

    def scale(self, c, x):
        return self._k(Lin([(ce, e, x) for e, ce in width_series(c).items()]))

    def add(self, *xs):
        terms = []
        for x in xs:
            terms.append((1, 0, x))
        return self._k(Lin(terms))

    def matmul(self, A, x):
        return self._k(LMul(A, x, getattr(A, "deps", frozenset())))

    def norm(self, x, kind):
        """RMSNorm is a row scaling: norm(x) = S x with S = dg(G)^(−1/2), G the Gram of x — a token
        matrix, expanded in ε where G fluctuates (:meth:`_inv_sqrt_diag`).  LayerNorm first subtracts each
        row's mean over the width: for arrays whose columns have mean 0 (projections, the stream) every
        Gram with it shrinks by (1 − 1/n) in mean, its fluctuation is O(1/n); a row scaling that the
        normalisation then undoes, so LayerNorm = RMSNorm to the orders kept (derived, not assumed: the
        centring is the scale √(1 − 1/n))."""
        if kind not in ("rms", "ln"):
            raise NotImplementedError(f"norm kind must be rms or ln, got {kind!r}")
        if kind == "ln":
            if isinstance(x, (ActNode, GateNode)):
                raise NotSupported("LayerNorm of an activation's output (its columns have a non-zero mean over "
                                   "the width): not supported yet")
            x = self.scale(sp.sqrt(1 - 1 / WIDTH), x)
        S = self._inv_sqrt_diag(self.cross_gram(x, x))
        return self._k(LMul(S, x, frozenset()))

    def _inv_sqrt_diag(self, G: Ser) -> Ser:
        """dg(G)^(−1/2) as an ε-series: with d = dg(G) = d₀ + δ and X = δ d₀^(−1),
        d^(−1/2) = d₀^(−1/2) (I − X/2 + 3X²/8) (diagonal matrices commute)."""
        from .gaussian import kxx

        alg = self.alg
        G0 = G.leading()
        S0 = Ser.const(alg, alg.emap(G0, 0, 1 / sp.sqrt(kxx)))
        D0inv = Ser.const(alg, alg.emap(G0, 0, 1 / kxx))
        delta = G - Ser.const(alg, G0)
        if delta.min_exponent() is None:
            return S0
        I = Ser.const(alg, alg.eye())
        X = I.hadamard(delta) @ D0inv
        return S0 @ (I - X.scale(sp.Rational(1, 2)) + (X @ X).scale(sp.Rational(3, 8)))

    def mul(self, a, b):
        """a ∘ b: its Gram is the O(1) map Ka ∘ Kb (see :meth:`_gate_gram`)."""
        if (a.deps - b.deps) == frozenset() or (b.deps - a.deps) == frozenset():
            raise NotImplementedError("ops.mul needs two arrays with their own fresh weights (e.g. φ(x W₁) and x W₂)")
        return self._k(GateNode(a, b))

    def concat(self, parts):
        return self._k(Concat(parts))

    def heads(self, head, count):
        if count is sp.oo:
            H = sp.Symbol("H", positive=True)
            k0 = self.registry.count
            return self._k(IIDHeads(head(1 / H), H, k0))
        outs = [head(sp.Rational(1, count)) for _ in range(count)]
        return outs[0] if count == 1 else self.concat(outs)

    def eye(self):
        return Ser.const(self.alg, self.alg.eye())

    def uniform(self, mask=None):
        """11ᵀ/m, or with a mask U_M (each row uniform over its allowed tokens)."""
        return Ser.const(self.alg, self.alg.masked_uniform(mask))

    def note(self, text):
        if text not in self.notes:
            self.notes.append(text)

    def logits(self, x, tau0, e):
        """S = (X W^Q/√n)(X W^K/√n)ᵀ / (τ0 n^e √n_k): mean 0, Cov = G⊗G / (τ0² n^{2e})."""
        f = self._factor(x)
        if f is None:
            self._kappa(self.cross_gram(x, x).leading(), "attention input")  # raises NoLimit with the reason
        kappa, A = f
        k = self.registry.new("logits")
        S = Ser.gaussian(self.alg, k, 2 * sp.nsimplify(e), coef=kappa / sp.sympify(tau0), A=A,
                         B=None if A is None else self.alg.transpose(A))
        wq, wk = next(self._wid), next(self._wid)
        out = RandMat(self.alg, S.det, S.noise)
        out.deps = x.deps | {wq, wk}
        return out

    def softmax(self, S, mask=None):
        """Row-wise softmax of small logits, to second order (its Taylor expansion); with a mask, over each row's
        allowed tokens (:meth:`_masked_softmax`)."""
        e0 = S.min_exponent()
        if e0 is None:
            return self.uniform(mask)
        if e0 <= 0:
            raise NoLimit(
                "logits are O(1) (temperature τ = τ0·√n_k, e = 0): Softmax(Y/τ) is an O(1) random "
                "matrix, not 11ᵀ/m + O(n^{-1/2}), so V changes by O(1) in one layer (rank collapse: "
                "A X averages the tokens and ρ → 1 within a few layers)")
        if e0 < self.kappa:
            k = self.kappa
            raise NoLimit(
                f"logit fluctuations are O(n^(-{e0 / 2})) with e = {e0 / 2} < {k / 2}: the one-step noise "
                f"is larger than O(n^(-{k / 2})) and the drift larger than O(n^(-{k}))" if k != 1 else
                f"logit fluctuations are O(n^(-{e0 / 2})) with e = {e0 / 2} < 1/2: the one-step noise "
                f"is larger than O(n^(-1/2)) and the drift larger than O(1/n)")
        if mask is not None:
            return self._masked_softmax(S, mask)
        P = Ser.const(self.alg, self.alg.centring())
        SP = S @ P
        first = SP.scale(1 / sp.sympify(self.m))
        second = (SP.hadamard(SP) @ P).scale(1 / (2 * sp.sympify(self.m)))
        dev = first + second
        self._record("softmax attention", dev)
        out = self.uniform() + dev
        res = RandMat(self.alg, out.det, out.noise)
        res.deps = getattr(S, "deps", frozenset())
        return res

    def _masked_softmax(self, S, mask):
        """softmax over allowed tokens, U = U_M: A_ab = U_ab e^{S_ab} / Σ_c U_ac e^{S_ac}, to second order:

            A = U + (U∘S − dg(u) U) + (½ U∘S∘S − dg(u)(U∘S) − ½ dg(w) U + dg(u)² U),
            u = (U∘S) 1,  w = (U∘S∘S) 1;

        with U = 11ᵀ/m this is the unmasked expansion (tests/derive/test_masks.py)."""
        alg = self.alg
        U = self.uniform(mask)
        I = Ser.const(alg, alg.eye())
        ones = Ser.const(alg, alg.uniform()).scale(sp.sympify(self.m))  # 11ᵀ

        def dg_rows(X):
            return I.hadamard(X @ ones)  # dg(X 1)

        US = U.hadamard(S)
        US2 = U.hadamard(S.hadamard(S))
        Du = dg_rows(US)
        first = US - Du @ U
        second = US2.scale(sp.Rational(1, 2)) - Du @ US - (dg_rows(US2) @ U).scale(sp.Rational(1, 2)) + Du @ Du @ U
        dev = first + second
        self._record(f"softmax attention ({mask!r} mask)", dev)
        out = U + dev
        res = RandMat(alg, out.det, out.noise)
        res.deps = getattr(S, "deps", frozenset())
        return res

    # ---- bookkeeping ------------------------------------------------------------------------
    def _record(self, what, dev: Ser):
        """Remember a nonlinear piece's deviation from linear; the engine decides, at the m derived,
        whether it is felt in the limit (else the regime is ``identity`` for it)."""
        self.nonlinear.append((what, dev))

    def _kappa(self, K, what, foreign_ok=False):
        """K = κ V at leading order; return κ (else the limit is not of the covariance-SDE form; with
        ``foreign_ok`` None: the caller builds a foreign fluctuation on K instead)."""
        kappa = self.alg.kappa(K)
        if kappa is None and foreign_ok:
            return None
        if kappa is None or self.probe.is_zero(kappa):
            reason = "; ".join(self.notes) or (
                f"the leading-order Gram of the {what} is not proportional to V: the layer changes V by O(1)")
            raise NoLimit(reason)
        return kappa

    # ---- Gram matrices ----------------------------------------------------------------------
    def cross_gram(self, a, b):
        """G(a, b) = a bᵀ/n as an ε-series (memoized; G(b, a) = G(a, b)ᵀ)."""
        key = (id(a), id(b))
        if key in self._memo:
            return self._memo[key]
        if (id(b), id(a)) in self._memo:
            return self._memo[(id(b), id(a))].T
        out = self._gram(a, b)
        self._memo[key] = out
        return out

    def _gram(self, a, b):
        alg = self.alg
        if isinstance(a, Lin):
            out = Ser(alg)
            for c, de, x in a.terms:
                out = out + self.cross_gram(x, b).scale(c, de)
            return out
        if isinstance(b, Lin):
            return self.cross_gram(b, a).T
        if isinstance(a, LMul):
            return a.M @ self.cross_gram(a.x, b)
        if isinstance(b, LMul):
            return self.cross_gram(b, a).T
        if isinstance(a, Fresh) and a is b:
            G = self.cross_gram(a.src, a.src)
            f = self._factor(a.src)
            if f is None:  # a Wishart on the Gram f(V) of an O(1) nonlinear map
                return G + Ser.gaussian(alg, self.registry.new("wishart on f(V)", foreign=True), 1)
            kappa, A = f
            At = None if A is None else alg.transpose(A)
            k = self.registry.new("wishart")
            c = kappa / sp.sqrt(2 * a.frac)
            noise = Ser.gaussian(alg, k, 1, c, A=A, B=At) + Ser.gaussian(alg, k, 1, c, A=A, T=1, B=At)
            return G + noise
        if isinstance(a, Fresh) and a.wid not in b.deps:
            return self._cross(a, b)
        if isinstance(b, Fresh) and b.wid not in a.deps:
            return self._cross(b, a).T
        if isinstance(a, Input) and a is b:
            return a.gram
        if isinstance(a, ActNode) and a is b:
            return self._act_gram(a)
        if isinstance(a, GateNode) and a is b:
            return self._gate_gram(a)
        if isinstance(a, IIDHeads):
            return self._iid(self.cross_gram(a.part, a.part if a is b else b), a)
        if isinstance(b, IIDHeads):
            return self.cross_gram(b, a).T
        if isinstance(a, Concat) and a is b:
            out = Ser(alg)
            for part in a.parts:
                out = out + self.cross_gram(part, part).scale(sp.Rational(1, len(a.parts)))
            return out
        if isinstance(a, Concat):
            out = Ser(alg)
            for part in a.parts:
                out = out + self.cross_gram(part, b).scale(sp.Rational(1, len(a.parts)))
            return out
        if isinstance(b, Concat):
            return self.cross_gram(b, a).T
        raise NotImplementedError(
            f"Gram of {type(a).__name__} with {type(b).__name__}: an activation output must be "
            "followed by a weight matrix before it is combined with other arrays")

    def _iid(self, G: Ser, node: IIDHeads) -> Ser:
        """The average of H → ∞ i.i.d. heads: means unchanged; a head's own fluctuations (ids ≥ k0)
        scaled by H^(−1/2) (H independent copies, weight 1/H each), then the limit H → ∞."""
        H, alg = node.H, self.alg

        def lim(c):
            return sp.limit(c, H, sp.oo) if H in sp.sympify(c).free_symbols else c

        out = Ser(alg)
        for e, M in G.det.items():
            out._add_det(e, alg.map_coefs(M, lim))
        for e, terms in G.noise.items():
            for (k, A, T, B), c in terms.items():
                A, B = (None if X is None else alg.map_coefs(X, lim) for X in (A, B))
                out._add_noise(e, (k, A, T, B), lim(c / sp.sqrt(H) if k >= node.k0 else c))
        return out

    def _cross(self, f: Fresh, b: Arr) -> Ser:
        f1, f2 = self._factor(f.src), self._factor(b)
        if f1 is None or f2 is None:
            return Ser.gaussian(self.alg, self.registry.new("cross on f(V)", foreign=True), 1)
        (k1, A1), (k2, A2) = f1, f2
        k = self.registry.new("cross")
        return Ser.gaussian(self.alg, k, 1, sp.sqrt(k1 * k2 / f.frac), A=A1,
                            B=None if A2 is None else self.alg.transpose(A2))

    def _factor(self, node):
        """(κ, A) with Gram(node) = κ·A V Aᵀ at leading order (A None: the identity), or None.  A is
        found through the nodes that act linearly at leading order — a token matrix (a normalisation's
        row scaling dg(G)^(−1/2)), a scale, a near-linear activation — and checked numerically; the
        Gaussian projections of such a node are then c·A Ẑ Aᵀ, structured noise like any other."""
        alg = self.alg
        G0 = self.cross_gram(node, node).leading()
        k = alg.kappa(G0)
        if k is not None and not self.probe.is_zero(k):
            return k, None
        inner = None
        if isinstance(node, LMul):
            f = self._factor(node.x)
            if f is not None:
                M0 = node.M.leading()
                inner = (f[0], M0 if f[1] is None else M0 * f[1])
        elif isinstance(node, Lin) and len({id(y) for _, _, y in node.terms}) == 1:
            c0 = sum(c for c, de, _ in node.terms if de == 0)
            f = self._factor(node.terms[0][2])
            if f is not None and c0 != 0:
                inner = (c0**2 * f[0], f[1])
        elif isinstance(node, ActNode):
            ka = self._act_kappa(node.activation)
            f = self._factor(node.src) if ka is not None else None
            if f is not None:
                inner = (ka * f[0], f[1])
        if inner is None or inner[1] is None:
            return None
        kappa, A = inner
        if self.probe.matrix_is_zero(G0 - kappa * (A * alg.V * alg.transpose(A))):
            return kappa, A
        return None

    def _unshaped_gram(self, act, K, off, dia) -> Ser:
        """An activation that is not near-linear (p = 0): its Gram is the O(1) kernel map g(K) — a
        legitimate drift inside a branch whose prefactor makes its effect small.  The fluctuation of K
        passes through g's Jacobian, which the structured noise cannot express: it is carried as a
        foreign fluctuation of the same order, to check that it vanishes in the limit.  Likewise an
        n-dependent shift of K's mean (K = K0 + O(n^(−e/2)), after an earlier sublayer) moves g(K) by
        O(n^(−e/2)): carried as an *unresolved* deterministic term δ₁I + δ₂V + δ₃11ᵀ/m with fresh
        symbols δ (see :data:`UNRESOLVED`), so that the engine can check it does not reach the limit."""
        self.note(f"the activation {act!r} is not near-linear at this scaling (unshaped, p = 0): "
                  "c·E[φ(x)φ(y)] − V is O(1), so the correlation map contracts ρ towards 1 by an O(1) "
                  "amount each layer; there is no SDE limit")
        alg = self.alg
        out = Ser.const(alg, alg.emap(K.leading(), off.get(sp.Integer(0), 0), dia.get(sp.Integer(0), 0)))
        shifted = sorted(e for e, M in K.det.items() if e > 0 and not self.probe.matrix_is_zero(M))
        if shifted:
            out = out + self._unresolved(f"the response of {act!r} to the O(n^(-{shifted[0] / 2})) shift of its Gram",
                                         shifted[0])
        for e in sorted(e for e, terms in K.noise.items() if terms)[:1]:
            out = out + Ser.gaussian(alg, self.registry.new("fluctuation through g", foreign=True), e)
        return out

    def _unresolved(self, what, e) -> Ser:
        """A deterministic term of order ε^e the expansion cannot resolve: δ₁I + δ₂V + δ₃11ᵀ/m with fresh
        symbols (:data:`UNRESOLVED`), so that the engine can check it does not reach the limit."""
        alg = self.alg
        d = [sp.Symbol(f"{UNRESOLVED}{len(self.unresolved)}_{i}") for i in range(3)]
        self.unresolved.append(what)
        return Ser.const(alg, d[0] * alg.eye() + d[1] * alg.V + d[2] * alg.uniform(), e)

    def _gate_gram(self, g: GateNode) -> Ser:
        """Gram of a ∘ b, a and b with independent weights: given the input, the columns of a and b are
        independent, so E[(a∘b)(a∘b)ᵀ/n] = Ka ∘ Kb — an O(1) nonlinear (at least quadratic) map of V, a
        legitimate drift only inside a small branch.  Carried like an unshaped activation: the leading
        Ka₀ ∘ Kb₀; an unresolved term at the first order where Ka's or Kb's mean moves; the column
        average's own fluctuation (O(n^(−1/2)), on a Gram other than κV, which also carries Ka's and Kb's)
        as a foreign one."""
        alg = self.alg
        Ka, Kb = self.cross_gram(g.a, g.a), self.cross_gram(g.b, g.b)
        self.note("a gated product φ(x W₁) ∘ (x W₂) has the Gram map Ka ∘ Kb, O(1) and not near-linear: "
                  "V changes by O(1) per layer unless the branch is scaled down (q > 0)")
        out = Ser.const(alg, alg.hadamard(Ka.leading(), Kb.leading()))
        moved = sorted(e for K in (Ka, Kb) for e, M in K.det.items() if e > 0 and not self.probe.matrix_is_zero(M))
        if moved:
            out = out + self._unresolved(f"the gated product's response to the O(n^(-{min(moved) / 2})) change of its "
                                         "inputs' Grams", min(moved))
        return out + Ser.gaussian(alg, self.registry.new("gate column average", foreign=True), 1)

    def _act_series(self, act):
        key = repr(act)
        if key not in self._act_cache:
            self._act_cache[key] = act.gram_series()
        return self._act_cache[key]

    def _act_kappa(self, act):
        """κ if the activation's Gram map is κ·K at leading order (near-linear), else None."""
        from .gaussian import kxx, kxy, kyy

        off, dia = self._act_series(act)
        g0_off, g0_dia = off.get(sp.Integer(0), 0), dia.get(sp.Integer(0), 0)
        kappa = sp.simplify(g0_off / kxy)
        linear = not (kappa.free_symbols & {kxx, kxy, kyy}) and sp.simplify(g0_dia - kappa * kxx) == 0
        return kappa if linear else None

    def _act_gram(self, a: ActNode) -> Ser:
        K = self.cross_gram(a.src, a.src)
        act = a.activation
        off, dia = self._act_series(act)
        kappa = self._act_kappa(act)
        if kappa is None:
            return self._unshaped_gram(act, K, off, dia)
        K0 = K.leading()
        out = K.scale(kappa)
        dev = Ser(self.alg)
        for e in sorted(set(off) | set(dia)):
            if e == 0 or e > 2:
                continue
            dev = dev + Ser.const(self.alg, self.alg.emap(K0, off.get(e, 0), dia.get(e, 0)), e)
        self._record(f"activation {act!r}", dev)
        return out + dev
