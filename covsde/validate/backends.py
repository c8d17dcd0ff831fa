"""Finite-network backends for ``Block.step``: the same one-step map as derive/, on tensors.

X is a batch of B independent networks' representations, a tensor of shape (B, m, n).

* ``mode="weights"``: real Gaussian weight matrices, W ∈ R^{n×k} i.i.d. N(0,1), drawn per layer
  on the fly (memory does not grow with depth): x ↦ x W / √n.
* ``mode="exact"``: the exact-in-law sampler (docs: Concepts and conventions): given x with Gram V = x xᵀ/n,
  x W/√n has i.i.d. N(0, V) columns independent of x's own randomness, so it is drawn as
  chol(V)·ξ with ξ ∈ R^{m×k} i.i.d. N(0,1) — O(m² n) per layer instead of O(m n²).

With ``record=True`` (exact mode) every Gaussian draw also stores its first-order Gram
fluctuations (ξξᵀ/k − I, cross terms U ξᵀ/n against the whitened input and earlier draws,
ξ_Q ξ_Kᵀ/√n_k for logits, and for a ReLU on a fresh projection h the centred (1/√k) Σ h relu(h)ᵀ,
whose mean Cov(h)/2 is a Gaussian identity).  They have mean exactly 0 and are the limits of the derived noise's
Gaussian matrices, so they serve as control variates in one-step moment tests.
"""
from __future__ import annotations

import functools
import math

import sympy as sp
import torch

from ..common.errors import CovsdeInputError
from ..common.expr import to_float
from ..derive.ops import Ops
from ..derive.symbols import WIDTH


@functools.lru_cache(maxsize=4096)
def _float_of(x, name):
    return to_float(x, name)


@functools.lru_cache(maxsize=1024)
def _at_width(c, n):
    """A width-dependent scale factor at width n, as a float."""
    return _float_of(c.xreplace({WIDTH: n}), "scale factor")


def _f(x, name="parameter"):
    """A block parameter as a float (symbolic parameters need a value before networks can run);
    called on every layer, so plain numbers take a fast path and SymPy values are memoized."""
    if type(x) in (int, float) and math.isfinite(x):
        return float(x)
    return _float_of(x, name)


class TorchOps(Ops):
    """The tensor interpreters of the block contract (:class:`~covsde.derive.ops.Ops`) on a batch of
    B networks, x of shape (B, m, n'): real weights (``mode="weights"``) or the exact sampler."""

    def __init__(self, n: int, m: int, batch: int, *, mode="exact", n_k=None, dtype=torch.float64,
                 device="cpu", generator: torch.Generator | None = None, record=False):
        if mode not in ("exact", "weights"):
            raise CovsdeInputError(f"mode must be 'exact' or 'weights', got {mode!r}")
        for name, v in (("width n", n), ("m", m), ("batch", batch), ("n_k", n_k or n)):
            if isinstance(v, bool) or int(v) != v or v < 1:
                raise CovsdeInputError(f"{name} must be an integer ≥ 1, got {v!r}")
        self.n, self.m, self.B, self.mode = int(n), int(m), int(batch), mode
        self.n_k = int(n_k or n)
        self.dtype, self.device, self.gen = dtype, torch.device(device), generator
        self.record = record
        self.stats = []  # (tag, stat): tag = index of the draw whose conditional mean makes stat zero
        self._tag = 0
        self.features = []  # (tag, g): functions of the draws up to tag (no mean needed), see stats_matrix
        self._basis = []
        self.failed = torch.zeros(self.B, dtype=torch.bool, device=self.device)  # singular Gram met
        self._fresh = {}  # id → (fresh projection, its chol factor), for activation control variates
        self._act_cache = {}
        self._masks = {}  # repr(mask) → its boolean m×m tensor

    # ---- randomness ------------------------------------------------------------------------
    def randn(self, *shape):
        return torch.randn(*shape, generator=self.gen, dtype=self.dtype, device=self.device)

    def begin(self, x):
        """Call with the block input before ``step`` when recording control variates."""
        if self.record:
            L = self.chol(self.gram(x))
            self._basis = [torch.linalg.solve_triangular(L, x, upper=False)]
        return x

    def gram(self, x):
        return x @ x.transpose(-1, -2) / x.shape[-1]

    def chol(self, G):
        """chol(G); networks whose G is not positive definite get the identity and are flagged in
        ``failed`` (they have degenerated: the caller must not use them)."""
        L, info = torch.linalg.cholesky_ex(G)
        bad = info != 0
        if bool(bad.any()):
            self.failed |= bad
            eye = torch.eye(G.shape[-1], dtype=G.dtype, device=G.device).expand_as(G)
            L = torch.where(bad[:, None, None], eye, torch.nan_to_num(L))
        return L

    def _draw(self, x, k):
        """x W/√n (weights) or chol(x xᵀ/n) ξ (exact), with k output columns."""
        if self.mode == "weights":
            W = self.randn(self.B, x.shape[-1], k)
            return x @ W / math.sqrt(x.shape[-1])
        L = self.chol(self.gram(x))
        xi = self.randn(self.B, self.m, k)
        if self.record:
            self._tag += 1
            eye = torch.eye(self.m, dtype=self.dtype, device=self.device)
            self.stats.append((self._tag, (xi @ xi.transpose(-1, -2) / k - eye) * math.sqrt(k)))
            for b in self._basis:
                if b.shape[-1] == k:
                    self.stats.append((self._tag, b @ xi.transpose(-1, -2) / math.sqrt(k)))
            self._basis.append(xi)
            y = L @ xi
            self._fresh[id(y)] = (y, L, self._tag)
            return y
        return L @ xi

    # ---- the ops used by blocks ---------------------------------------------------------------
    def linear(self, x, frac=1):
        k = int(round(self.n * _f(frac, "width fraction")))
        if k < 1:
            raise CovsdeInputError(f"width n = {self.n} is too small for a projection to n·{_f(frac):g} columns "
                                   f"(e.g. more heads than width)")
        return self._draw(x, k)

    def act(self, x, activation):
        key = repr(activation)
        if key not in self._act_cache:
            self._act_cache[key] = activation.numeric(self.n)
        phi, c = self._act_cache[key]
        out = phi(x)
        if self.record:  # the activation's Gram, a function of the draws so far
            self.features.append((self._tag, (out @ out.transpose(-1, -2)) / math.sqrt(x.shape[-1])))
        if self.record and id(x) in self._fresh and getattr(activation, "name", "") == "relu":
            # E[h_α relu(h_β)] = Cov(h_α, h_β)/2 for a Gaussian projection h = L ξ (exact):
            # (1/√k) Σ_j [h_αj relu(h_βj)] − √k (L Lᵀ)_αβ / 2 has mean 0
            _, L, tag = self._fresh[id(x)]
            k = x.shape[-1]
            self.stats.append((tag, (x @ x.clamp(min=0).transpose(-1, -2)) / math.sqrt(k)
                               - math.sqrt(k) * (L @ L.transpose(-1, -2)) / 2))
        return math.sqrt(c) * out

    def logits(self, x, tau0, e):
        tau = _f(tau0, "tau0") * self.n ** _f(e, "e") * math.sqrt(self.n_k)
        if self.mode == "weights":
            q = self._draw(x, self.n_k)
            k = self._draw(x, self.n_k)
        else:
            L = self.chol(self.gram(x))
            xq, xk = self.randn(self.B, self.m, self.n_k), self.randn(self.B, self.m, self.n_k)
            if self.record:
                self._tag += 1
                self.stats.append((self._tag, xq @ xk.transpose(-1, -2) / math.sqrt(self.n_k)))
            q, k = L @ xq, L @ xk
        return q @ k.transpose(-1, -2) / tau

    def _allowed(self, mask):
        key = repr(mask)
        if key not in self._masks:
            self._masks[key] = torch.tensor(mask.allowed(self.m), dtype=torch.bool, device=self.device)
        return self._masks[key]

    def softmax(self, S, mask=None):
        if mask is not None:
            S = S.masked_fill(~self._allowed(mask), float("-inf"))
        return torch.softmax(S, dim=-1)

    def matmul(self, A, x):
        return A @ x

    def mul(self, a, b):
        return a * b

    def norm(self, x, kind):
        if kind == "ln":
            x = x - x.mean(dim=-1, keepdim=True)
        elif kind != "rms":
            raise CovsdeInputError(f"norm kind must be rms or ln, got {kind!r}")
        return x * (math.sqrt(x.shape[-1]) / torch.linalg.vector_norm(x, dim=-1, keepdim=True))

    def add(self, *xs):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out

    def scale(self, c, x):
        if isinstance(c, sp.Basic) and WIDTH in c.free_symbols:
            c = _at_width(c, self.n)
        c = _f(c)
        return x if c == 1.0 else c * x

    def concat(self, parts):
        return torch.cat(parts, dim=-1)

    def heads(self, head, count):
        if count is sp.oo:
            raise CovsdeInputError("heads = inf is a limit: finite networks need a finite number of heads "
                                   "(e.g. --set heads=64)")
        if self.n % count:
            raise CovsdeInputError(f"width n = {self.n} is not a multiple of heads = {count} (each head gets n/heads "
                                   f"columns of W^V)")
        outs = [head(sp.Rational(1, count)) for _ in range(count)]
        return outs[0] if count == 1 else self.concat(outs)

    def eye(self):
        return torch.eye(self.m, dtype=self.dtype, device=self.device)

    def uniform(self, mask=None):
        if mask is None:
            return torch.full((self.m, self.m), 1.0 / self.m, dtype=self.dtype, device=self.device)
        M = self._allowed(mask).to(self.dtype)
        return M / M.sum(-1, keepdim=True)

    def note(self, text):
        pass

    def _pairs(self):
        """Index pairs whose products have mean 0: two stats from different draws (the later one has
        conditional mean 0 given all earlier draws), and a feature with a stat of a later draw."""
        st = [(t, "s", i) for i, (t, _) in enumerate(self.stats)]
        ft = [(t, "f", i) for i, (t, _) in enumerate(self.features)]
        pairs = [(a, b) for ia, a in enumerate(st) for b in st[ia + 1:] if a[0] != b[0]]
        return pairs + [(f, a) for f in ft for a in st if a[0] > f[0]]

    def n_control_variates(self, products=False):
        size = {("s", i): s.numel() // s.shape[0] for i, (_, s) in enumerate(self.stats)}
        size.update({("f", i): f.numel() // f.shape[0] for i, (_, f) in enumerate(self.features)})
        p = sum(v for (k, _), v in size.items() if k == "s")
        if products:
            p += sum(size[a[1:]] * size[b[1:]] for a, b in self._pairs())
        return p

    def stats_matrix(self, products=False):
        """(B, p) matrix of recorded control variates (mean 0).  With ``products``, also the
        products of entries of stats from different draws and of features (functions of earlier
        draws, e.g. the Gram of an activation) with stats of later draws: the later factor has
        conditional mean 0 given all earlier draws, so each product has mean 0 too.  They absorb the
        second-order (product-of-fluctuations) noise of a block made of several random maps, or of an
        activation acting on the stream itself."""
        if not self.stats:
            return torch.zeros(self.B, 0, dtype=self.dtype, device=self.device)
        flat = {("s", i): s.reshape(self.B, -1) for i, (_, s) in enumerate(self.stats)}
        flat.update({("f", i): f.reshape(self.B, -1) for i, (_, f) in enumerate(self.features)})
        cols = [v for (k, _), v in flat.items() if k == "s"]
        if products:
            for a, b in self._pairs():
                A, Bm = flat[a[1:]], flat[b[1:]]
                cols.append((A[:, :, None] * Bm[:, None, :]).reshape(self.B, -1))
        return torch.cat(cols, dim=1)


def whitened_input(V, n, batch, *, dtype=torch.float64, device="cpu", generator=None, centred=False):
    """B inputs X ∈ R^{m×n} with X Xᵀ/n = V exactly and Gaussian-looking columns:
    X = chol(V) · chol(G Gᵀ/n)^{-1} G, G i.i.d. N(0,1).  ``centred``: every token's row has mean 0 over
    the width (G's rows centred first), as the output of a LayerNorm has."""
    V = torch.as_tensor(V, dtype=dtype, device=device)
    m = V.shape[-1]
    G = torch.randn(batch, m, n, generator=generator, dtype=dtype, device=device)
    if centred:
        G = G - G.mean(-1, keepdim=True)
    Lg = torch.linalg.cholesky(G @ G.transpose(-1, -2) / n)
    U = torch.linalg.solve_triangular(Lg, G, upper=False)
    return torch.linalg.cholesky(V) @ U
