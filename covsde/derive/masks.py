"""Attention masks: which tokens each token may attend to.

A mask is a rule giving, for m tokens, an m×m boolean matrix M (row a: the tokens a attends to); every
row must allow at least one token.  With a mask, the softmax is taken over each row's allowed tokens and
the shaped attention's centring subtracts each row's own uniform average over them:

    U_M = D_r^{-1} M,  r_a = Σ_b M_ab      (row-stochastic; U = 11ᵀ/m without a mask).

* :class:`Causal` — token a attends to tokens b ≤ a (a decoder);
* :class:`Explicit` — a user's boolean matrix, for one m.
"""
from __future__ import annotations

from .errors import CovsdeInputError

MAX_MASK_M = 4096


class Mask:
    """Base class: ``allowed(m)`` → tuple of m tuples of m bools."""

    def allowed(self, m: int) -> tuple:
        raise NotImplementedError

    def uniform_rows(self, m: int):
        """U_M as nested lists of (numerator, denominator) pairs: U_ab = M_ab / r_a."""
        M = self.allowed(m)
        return [[(1 if x else 0, sum(row)) for x in row] for row in M]


class Causal(Mask):
    """M_ab = [b ≤ a]."""

    def allowed(self, m):
        return tuple(tuple(b <= a for b in range(m)) for a in range(m))

    def __repr__(self):
        return "causal"

    def __eq__(self, other):
        return isinstance(other, Causal)

    def __hash__(self):
        return hash("causal")


class Explicit(Mask):
    """A given boolean matrix (rows: the attending token); only for its own m."""

    def __init__(self, rows):
        self.rows = _check_rows(rows)

    def allowed(self, m):
        if m != len(self.rows):
            raise CovsdeInputError(f"the mask is {len(self.rows)}×{len(self.rows)} but m = {m}")
        return self.rows

    def __repr__(self):
        return "[" + ",".join("[" + ",".join(str(int(x)) for x in r) + "]" for r in self.rows) + "]"

    def __eq__(self, other):
        return isinstance(other, Explicit) and other.rows == self.rows

    def __hash__(self):
        return hash(self.rows)


def _check_rows(rows):
    if hasattr(rows, "tolist"):  # a numpy array: plain Python numbers
        rows = rows.tolist()
    try:
        rows = [list(r) for r in rows]
    except TypeError:
        raise CovsdeInputError(f"a mask is a square matrix of 0/1 (rows), got {rows!r}") from None
    m = len(rows)
    if m == 0 or m > MAX_MASK_M or any(len(r) != m for r in rows):
        raise CovsdeInputError(f"a mask must be a square matrix of 0/1 (1 ≤ m ≤ {MAX_MASK_M}), got {m} rows of "
                               f"lengths {sorted({len(r) for r in rows})}")
    out = []
    for a, r in enumerate(rows):
        row = []
        for x in r:
            if isinstance(x, bool) or (isinstance(x, int) and x in (0, 1)):
                row.append(bool(x))
            elif isinstance(x, float) and x in (0.0, 1.0):
                row.append(bool(x))
            else:
                raise CovsdeInputError(f"mask row {a}: entries must be 0 or 1, got {x!r}")
        if not any(row):
            raise CovsdeInputError(f"mask row {a} allows no token: the softmax over it is undefined")
        out.append(tuple(row))
    return tuple(out)


def make_mask(spec):
    """None, "none" → no mask; "causal" → :class:`Causal`; a Mask; a square 0/1 matrix (nested lists,
    an array, or its JSON text) → :class:`Explicit`."""
    if spec is None or isinstance(spec, Mask):
        return spec
    if isinstance(spec, str):
        t = spec.strip()
        if t.lower() == "none":
            return None
        if t.lower() == "causal":
            return Causal()
        if t.startswith(("[", "(")):
            from ..common.literal import read_numbers

            rows = read_numbers(t, "mask", expected="none, causal or a 0/1 matrix such as [[1,0],[1,1]]", max_depth=2,
                                max_items=MAX_MASK_M**2, booleans=True)
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise CovsdeInputError(f"mask={spec[:200]!r}: expected a 0/1 matrix (a list of rows) such as [[1,0],[1,1]]")
            return Explicit(rows)
        raise CovsdeInputError(f"mask={spec[:200]!r}: expected none, causal or a 0/1 matrix like [[1,0],[1,1]]")
    if hasattr(spec, "tolist"):
        spec = spec.tolist()
    return Explicit(spec)
