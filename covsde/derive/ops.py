"""The block contract: the operations a block's ``step(x, ops)`` may call.

A block states its one-step map once, in terms of these operations; three interpreters implement
them — :class:`covsde.derive.algebra.SymbolicOps` (Gram matrices as ε-series, for derive),
:class:`covsde.validate.backends.TorchOps` with real weight matrices, and the same class as the exact
in-law sampler.  Each declares ``Ops`` as its base, so a type checker (and a reader) sees one
signature per operation.  A new operation is added here first, then to every interpreter.

Shapes refer to one network of the width-n model: an *array* is X ∈ R^{m×n'} (one row per token,
n' a fraction of the width n); an *m×m matrix* acts on the token index.  Every weight matrix is
fresh, i.i.d. N(0, 1) and independent of everything before it.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

Array = Any  # an m×n' array (symbolic node, or a (batch, m, n') tensor)
TokenMatrix = Any  # an m×m matrix acting on tokens (ε-series, or a (batch, m, m) / (m, m) tensor)


@runtime_checkable
class Ops(Protocol):
    """Operations available to ``Block.step(x, ops)``."""

    def linear(self, x: Array, frac=1) -> Array:
        """x W / √n with a fresh W ∈ R^{n'×k}, k = frac·n output columns (heads use frac = 1/H).
        Given X, its columns are i.i.d. N(0, x xᵀ/n'): this is the Gaussian projection of the model."""

    def act(self, x: Array, activation) -> Array:
        """√c · φ_s(x) element-wise, with φ_s the shaped activation and c its normaliser
        (c · E[φ_s(g)²] = 1 for g ~ N(0, 1)); ``activation`` is a :class:`~covsde.derive.activations.Activation`."""

    def logits(self, x: Array, tau0, e) -> TokenMatrix:
        """Attention logits S = (x W^Q/√n)(x W^K/√n)ᵀ / τ with fresh W^Q, W^K ∈ R^{n×n_k} and temperature
        τ = τ0 · n^e · √n_k: an m×m matrix with mean 0 and Cov(S_ab, S_cd) = V_ac V_bd / (τ0² n^{2e})."""

    def softmax(self, S: TokenMatrix, mask=None) -> TokenMatrix:
        """Row-wise softmax of the m×m matrix S; with a :class:`~covsde.derive.masks.Mask`, row a over its
        allowed tokens only (the others get weight 0)."""

    def norm(self, x: Array, kind: str) -> Array:
        """Each token's row normalised across the width to norm √n': ``kind="rms"`` (RMSNorm,
        x_a·√n'/‖x_a‖) or ``"ln"`` (LayerNorm: the row's mean over the width subtracted first); no gain
        or bias (they are 1 and 0 at initialisation)."""

    def mul(self, a: Array, b: Array) -> Array:
        """a ∘ b element-wise, for two arrays of the same width built from independent weights (a gated
        MLP's φ(x W₁) ∘ (x W₂)); the product must be followed by a weight matrix."""

    def matmul(self, A: TokenMatrix, x: Array) -> Array:
        """A x: an m×m token matrix applied to an array (mixes tokens, acts on every width column alike)."""

    def add(self, *xs):
        """The sum of arrays of the same shape (or of m×m token matrices)."""

    def scale(self, c, x: Array) -> Array:
        """c · x for a scalar c: a number or a SymPy expression in the parameters, which may depend on
        the width through :data:`covsde.derive.symbols.WIDTH` (n), e.g. γ0·n^(−q) or √(1 − γ0² n^(−2q));
        the symbolic interpreter expands it in ε = n^(−1/2), the others put in their n."""

    def concat(self, parts) -> Array:
        """Arrays of widths n₁, …, n_H concatenated along the width (the heads of multi-head attention)."""

    def heads(self, head, count) -> Array:
        """``count`` independent copies of ``head(frac)`` (each drawing its own weights; frac = 1/count is
        the width fraction a head's projection should use) concatenated along the width: multi-head
        attention.  ``count`` may be ``sympy.oo``, the infinite-head limit (symbolic interpreter only:
        the heads' own fluctuations average out, their means stay)."""

    def eye(self) -> TokenMatrix:
        """The m×m identity I."""

    def uniform(self, mask=None) -> TokenMatrix:
        """The m×m matrix 11ᵀ/m (every row the uniform average over tokens); with a mask U_M, row a the
        uniform average over a's allowed tokens."""

    def note(self, text: str) -> None:
        """A remark for the regime's reason (used by the symbolic interpreter; others ignore it)."""
