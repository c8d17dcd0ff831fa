"""Matrix expressions with m a symbol: the representation of the matrix-level derive engine.

A :class:`MatExpr` is a finite sum  Σ c · τ₁⋯τ_k · w  of *monomials*: c a SymPy scalar (in the
parameters and the symbol ``m``), τ_i traces of words, and w a *word*, a product of atoms

* ``V``            the covariance;
* ``J``            11ᵀ/m (so P = I − J is never stored, only printed);
* ``Dg(u)``        I ∘ u, the diagonal of a word as a diagonal matrix;
* ``Had(u, w)``    u ∘ w, the Hadamard product of two words;
* ``Map(f, g, X)`` an element-wise kernel map of a matrix expression X: f(X_ii, X_ij, X_jj) off the
  diagonal, g(X_ii) on it (f, g SymPy expressions in k_xx, k_xy, k_yy of :mod:`.gaussian`);

the empty word is the identity I.  Canonical forms: words are reduced with JJ = J and
J u J = tr(J u) J; a trace is rotated (and transposed) to its least representative, with
tr(I) = m, tr(J) = 1, tr(J u J w) = tr(J u) tr(J w); Dg and Had are expanded linearly with
Dg(J) = I/m, I ∘ u = Dg(u), J ∘ u = u/m.  Equal canonical forms are equal matrices for every m; the
converse is decided numerically (:mod:`.matnum`).
"""
from __future__ import annotations

import functools

import sympy as sp

from .gaussian import kxx, kyy

M_SYM = sp.Symbol("m", positive=True, integer=True)
V_ATOM = ("V",)
J_ATOM = ("J",)


# ---- atoms and words ----------------------------------------------------------------------------
@functools.lru_cache(maxsize=200_000)
def akey(a) -> str:
    """A total order on atoms (by a canonical string)."""
    tag = a[0]
    if tag in ("V", "J"):
        return tag
    if tag == "D":
        return f"D({wkey(a[1])})"
    if tag == "H":
        return f"H({wkey(a[1])},{wkey(a[2])})"
    return f"F({a[1]};{a[2]};{a[3].key()})"


def wkey(w) -> str:
    return ".".join(akey(a) for a in w) or "I"


def word_T(w):
    """The transpose of a word."""
    return tuple(atom_T(a) for a in reversed(w))


def atom_T(a):
    tag = a[0]
    if tag in ("V", "J", "D"):
        return a
    if tag == "H":
        return had_atom(word_T(a[1]), word_T(a[2]))
    return ("F", a[1].xreplace({kxx: kyy, kyy: kxx}), a[2], a[3].T)


def had_atom(u, w):
    return ("H", u, w) if wkey(u) <= wkey(w) else ("H", w, u)


def sym_canon(w):
    """The least of w and wᵀ (for matrices that do not change under transposition: Dg(w), tr(w))."""
    t = word_T(w)
    return w if wkey(w) <= wkey(t) else t


def _split_js(w):
    """For a word starting with J: the pieces u_i of J u_1 J u_2 ⋯ J u_k."""
    out, cur = [], []
    for a in w[1:]:
        if a == J_ATOM:
            out.append(tuple(cur))
            cur = []
        else:
            cur.append(a)
    out.append(tuple(cur))
    return out


def trace_word(w):
    """tr(w) as (coefficient, trace words): tr(I) = m, tr(J) = 1, tr(Dg(u)) = tr(u), tr(J u J w) =
    tr(J u) tr(J w), and otherwise the least rotation of w or wᵀ."""
    if not w:
        return M_SYM, ()
    if len(w) == 1 and w[0][0] == "D":
        return trace_word(w[0][1])
    if J_ATOM in w:
        i = w.index(J_ATOM)
        rot = w[i:] + w[:i]
        words = []
        for u in _split_js(rot):
            if u:
                words.append(sym_canon_j((J_ATOM,) + u))
        return sp.Integer(1), tuple(sorted(words, key=wkey))
    cands = []
    for x in (w, word_T(w)):
        cands += [x[i:] + x[:i] for i in range(len(x))]
    return sp.Integer(1), (min(cands, key=wkey),)


def sym_canon_j(w):
    """tr(J u) = tr(J uᵀ): the least of the two."""
    t = (J_ATOM,) + word_T(w[1:])
    return w if wkey(w) <= wkey(t) else t


def reduce_word(w):
    """(coefficient, trace words, word) with JJ = J and J u J = tr(J u) J applied."""
    coef, trs = sp.Integer(1), []
    while True:
        js = [i for i, a in enumerate(w) if a == J_ATOM]
        if len(js) < 2:
            return coef, tuple(trs), w
        i, j = js[0], js[1]
        inner = w[i + 1:j]
        if inner:
            c, t = trace_word((J_ATOM,) + inner)
            coef, trs = coef * c, trs + list(t)
        w = w[:i] + w[j:]


def dg_word(w):
    """Dg(w) as (coefficient, word)."""
    if not w:
        return sp.Integer(1), ()
    if w == (J_ATOM,):
        return 1 / M_SYM, ()
    if len(w) == 1 and w[0][0] == "D":
        return sp.Integer(1), w
    return sp.Integer(1), (("D", sym_canon(w)),)


def had_words(u, w):
    """u ∘ w as (coefficient, word)."""
    if not u:
        return dg_word(w)
    if not w:
        return dg_word(u)
    if u == (J_ATOM,):
        return 1 / M_SYM, w
    if w == (J_ATOM,):
        return 1 / M_SYM, u
    return sp.Integer(1), (had_atom(u, w),)


def _atoms(w):
    """Every atom in a word, nested ones (inside Dg and Had) included."""
    for a in w:
        yield a
        if a[0] in ("D", "H"):
            for u in a[1:]:
                yield from _atoms(u)


def _sorted_trs(*parts):
    return tuple(sorted((t for p in parts for t in p), key=wkey))


# ---- scalars: polynomials in traces ----------------------------------------------------------------
class Scalar:
    """Σ c · τ₁⋯τ_k: a polynomial in traces of words with SymPy coefficients (what tr(M) returns)."""

    __slots__ = ("terms",)

    def __init__(self, terms):
        self.terms = terms  # {trace words (sorted tuple): coef}

    def __mul__(self, other):
        if isinstance(other, MatExpr):
            return MatExpr._build((c * c2, _sorted_trs(t, t2), w) for t, c in self.terms.items()
                                  for (t2, w), c2 in other.terms.items())
        if isinstance(other, Scalar):
            out = {}
            for t, c in self.terms.items():
                for t2, c2 in other.terms.items():
                    k = _sorted_trs(t, t2)
                    out[k] = out.get(k, 0) + c * c2
            return Scalar({k: c for k, c in out.items() if c != 0})
        c = sp.sympify(other)
        return Scalar({t: c * x for t, x in self.terms.items()} if c != 0 else {})

    __rmul__ = __mul__

    def as_expr(self):
        """The plain SymPy scalar when no trace is left (else None)."""
        if not self.terms:
            return sp.Integer(0)
        if set(self.terms) == {()}:
            return self.terms[()]
        return None


# ---- matrix expressions ------------------------------------------------------------------------------
class MatExpr:
    """A canonical sum of monomials (see the module docstring); immutable and hashable."""

    __slots__ = ("terms", "_hash", "_key")

    def __init__(self, terms=None):
        self.terms = terms or {}  # {(trace words, word): coef}, no zero coefficients
        self._hash = None
        self._key = None

    @classmethod
    def _build(cls, triples):
        """From (coef, trace words, word) triples, words reduced and like terms collected."""
        out = {}
        for c, trs, w in triples:
            c2, t2, w2 = reduce_word(w)
            k = (_sorted_trs(trs, t2), w2)
            out[k] = out.get(k, 0) + c * c2
        return cls({k: c for k, c in out.items() if c != 0})

    # ---- constructors --------------------------------------------------------------------------------
    @classmethod
    def word(cls, w, coef=1):
        return cls._build([(sp.sympify(coef), (), tuple(w))])

    @classmethod
    def eye(cls):
        return cls({((), ()): sp.Integer(1)})

    @classmethod
    def V(cls):
        return cls({((), (V_ATOM,)): sp.Integer(1)})

    @classmethod
    def J(cls):
        return cls({((), (J_ATOM,)): sp.Integer(1)})

    @classmethod
    def emap(cls, X, off, dia):
        """The element-wise map of X: f(X_ii, X_ij, X_jj) off the diagonal, g(X_ii) on it."""
        return cls({((), (("F", sp.sympify(off), sp.sympify(dia), X),)): sp.Integer(1)})

    # ---- arithmetic ------------------------------------------------------------------------------------
    def __add__(self, other):
        if not isinstance(other, MatExpr):
            return NotImplemented
        out = dict(self.terms)
        for k, c in other.terms.items():
            out[k] = out.get(k, 0) + c
        return MatExpr({k: c for k, c in out.items() if c != 0})

    def __neg__(self):
        return MatExpr({k: -c for k, c in self.terms.items()})

    def __sub__(self, other):
        return self + (-other)

    def __mul__(self, other):
        if isinstance(other, MatExpr):
            return MatExpr._build((c1 * c2, _sorted_trs(t1, t2), w1 + w2) for (t1, w1), c1 in self.terms.items()
                                  for (t2, w2), c2 in other.terms.items())
        if isinstance(other, Scalar):
            return other * self
        c = sp.sympify(other)
        if c == 0:
            return MatExpr()
        return MatExpr({k: c * x for k, x in self.terms.items()})

    def __rmul__(self, other):
        return self * other

    @property
    def T(self):
        return MatExpr._build((c, t, word_T(w)) for (t, w), c in self.terms.items())

    def trace(self) -> Scalar:
        out = {}
        for (t, w), c in self.terms.items():
            c2, t2 = trace_word(w)
            k = _sorted_trs(t, t2)
            out[k] = out.get(k, 0) + c * c2
        return Scalar({k: c for k, c in out.items() if c != 0})

    def dg(self):
        """I ∘ self (the diagonal part)."""
        return MatExpr._build((c * c2, t, w2) for (t, w), c in self.terms.items() for c2, w2 in [dg_word(w)])

    def hadamard(self, other):
        return MatExpr._build((c1 * c2 * c3, _sorted_trs(t1, t2), w3) for (t1, w1), c1 in self.terms.items()
                              for (t2, w2), c2 in other.terms.items() for c3, w3 in [had_words(w1, w2)])

    def map_coefs(self, f):
        """The same expression with every coefficient c replaced by f(c) (zeros dropped)."""
        out = {k: f(c) for k, c in self.terms.items()}
        return MatExpr({k: c for k, c in out.items() if c != 0})

    def coefficients(self):
        """Every SymPy scalar in the expression: coefficients, and those inside kernel maps."""
        out = []
        for (t, w), c in self.terms.items():
            out.append(c)
            for a in _atoms(w + tuple(x for tr in t for x in tr)):
                if a[0] == "F":
                    out += [a[1], a[2]] + a[3].coefficients()
        return out

    def xreplace(self, rep):
        """Parameters replaced (``rep``: SymPy symbol → value), in coefficients and kernel maps."""
        def atom(a):
            if a[0] == "F":
                return ("F", a[1].xreplace(rep), a[2].xreplace(rep), a[3].xreplace(rep))
            if a[0] in ("D", "H"):
                return (a[0],) + tuple(word(u) for u in a[1:])
            return a

        def word(w):
            return tuple(atom(a) for a in w)

        return MatExpr._build((sp.sympify(c).xreplace(rep), tuple(word(t) for t in trs), word(w))
                              for (trs, w), c in self.terms.items())

    # ---- identity -------------------------------------------------------------------------------------
    def is_zero(self):
        return not self.terms

    def scalar_part(self):
        """c if self = c·I (c a SymPy scalar), else None."""
        if len(self.terms) == 1:
            (t, w), c = next(iter(self.terms.items()))
            if not t and not w:
                return c
        return None

    def coef_of(self, w):
        """The coefficient of the plain word w (no traces), 0 if absent."""
        return self.terms.get(((), tuple(w)), sp.Integer(0))

    def key(self) -> str:
        if self._key is None:
            self._key = " + ".join(sorted(f"{c}*{'|'.join(map(wkey, t))}*{wkey(w)}"
                                          for (t, w), c in self.terms.items()))
        return self._key

    def __eq__(self, other):
        return isinstance(other, MatExpr) and self.terms == other.terms

    def __hash__(self):
        if self._hash is None:
            self._hash = hash(frozenset(self.terms.items()))
        return self._hash

    def __getstate__(self):
        return self.terms

    def __setstate__(self, state):
        self.terms, self._hash, self._key = state, None, None

    def __repr__(self):
        return f"MatExpr({self.key() or '0'})"
