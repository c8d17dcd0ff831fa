"""Architecture blocks, each defined only by its one-step map on X ∈ R^{m×n}.

A block's ``step(x, ops)`` says what one layer does, in terms of the operations of the block
contract :class:`covsde.derive.ops.Ops` (``linear``, ``act``, ``logits``, ``softmax``, ``matmul``,
``add``, ``scale``, ``concat``, ``eye``, ``uniform``, ``note``; one docstring each, read there).
The same code runs on the symbolic backend (derive/: Gram ε-series) and on the finite-network
backends (validate/: torch tensors, or the exact-in-law sampler).  No block carries a drift or
a diffusion: derive/ obtains them from this map.
"""
from __future__ import annotations

import sympy as sp

from ..common import checks, limits
from .activations import Activation
from .errors import CovsdeInputError
from .masks import make_mask
from .symbols import WIDTH, show, value


class Block:
    """Base class.  Subclasses implement ``step(x, ops)`` and ``params()``."""

    def step(self, x, ops):
        raise NotImplementedError

    def params(self) -> dict:
        return {}

    def state(self) -> str:
        """What the block's output Gram is a state of: "V" (the covariance), or "correlation" when the
        block ends with a normalisation (unit diagonal: only the correlations evolve)."""
        return "V"

    def centred_rows(self) -> bool:
        """Whether every token's output row has mean 0 over the width (the block ends with a LayerNorm): the
        input the next layer of the same block reads, which one-step tests of finite networks reproduce."""
        return False

    def __repr__(self):
        args = ", ".join(f"{k}={v}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


class Linear(Block):
    r"""X' = X W / √n,  W ∈ R^{n×n} i.i.d. N(0,1)."""

    def step(self, x, ops):
        return ops.linear(x)


class Act(Block):
    r"""X' = √c · φ_s(X) element-wise (on the stream itself; columns taken as N(0, V))."""

    def __init__(self, activation: Activation):
        self.activation = activation

    def step(self, x, ops):
        return ops.act(x, self.activation)

    def params(self):
        return {"activation": self.activation}


class Serial(Block):
    r"""X' = B_k(⋯ B_1(X)): blocks applied one after the other within one layer step."""

    def __init__(self, *blocks):
        for b in blocks:
            if not isinstance(b, Block):
                raise CovsdeInputError(f"Serial takes Blocks, got {type(b).__name__} {b!r}")
        self.blocks = blocks

    def step(self, x, ops):
        for b in self.blocks:
            x = b.step(x, ops)
        return x

    def state(self):
        return self.blocks[-1].state()

    def centred_rows(self):
        return self.blocks[-1].centred_rows()

    def __repr__(self):
        return "Serial(" + ", ".join(map(repr, self.blocks)) + ")"


class Norm(Block):
    r"""X' = norm(X): each token's row scaled to norm √n across the width — ``kind="rms"`` (RMSNorm) or
    ``"ln"`` (LayerNorm, the row's mean subtracted first).  Pre-norm is ``Residual(Serial(Norm, F))``,
    post-norm ``Serial(Residual(F), Norm)``."""

    def __init__(self, kind="rms"):
        if kind not in ("rms", "ln"):
            raise CovsdeInputError(f"norm kind must be rms or ln, got {kind!r}")
        self.kind = kind

    def step(self, x, ops):
        return ops.norm(x, self.kind)

    def params(self):
        return {"kind": self.kind}

    def state(self):
        return "correlation"

    def centred_rows(self):
        return self.kind == "ln"


def with_norm(block: Residual, norm: str | None) -> Block:
    """A residual block with a normalisation placed: None/"none", "pre-rms", "pre-ln" (the branch reads
    the normalised stream), "post-rms", "post-ln" (the sum is normalised)."""
    if norm in (None, "none"):
        return block
    where, _, kind = str(norm).partition("-")
    if where not in ("pre", "post") or kind not in ("rms", "ln"):
        raise CovsdeInputError(f"norm={norm!r}: expected none, pre-rms, pre-ln, post-rms or post-ln")
    if where == "post":
        return Serial(block, Norm(kind))
    import copy

    pre = copy.copy(block)
    pre.branch = Serial(Norm(kind), block.branch)
    return pre


class Residual(Block):
    r"""X' = λ X + γ F(X),  γ = γ0·n^(−q) (``gamma`` is γ0, ``q`` ≥ 0 the branch exponent, default 0),
    λ = √(1 − γ²) by default (then a function of the width when q > 0); F is the branch block.

    ``names`` are the parameter names used in error messages (the Transformer's sublayers use
    ("gamma1", "lam1") and ("gamma2", "lam2"))."""

    def __init__(self, branch: Block, gamma=sp.Symbol("gamma", positive=True), lam=None, *,
                 names=("gamma", "lam"), q=0):
        if not isinstance(branch, Block):
            raise CovsdeInputError(f"the branch of a Residual must be a Block, got {type(branch).__name__} {branch!r}")
        self.branch = branch
        gname, lname = names
        self.gamma = value(gname, gamma, nonneg=True)
        self.q = value("q", q, nonneg=True, number=True)
        g = self.gamma * WIDTH ** (-self.q) if self.q else self.gamma
        if lam is None:
            if self.gamma.is_number and self.gamma > 1 and not self.q:
                raise CovsdeInputError(
                    f"{gname} = {show(gamma)} > 1 makes λ = √(1 − γ²) imaginary: give {lname} explicitly or "
                    f"choose {gname} ≤ 1")
            self.lam = sp.sqrt(1 - g**2)
        else:
            self.lam = value(lname, lam, nonneg=True)
        self.branch_scale = g

    def step(self, x, ops):
        return ops.add(ops.scale(self.lam, x), ops.scale(self.branch_scale, self.branch.step(x, ops)))

    def params(self):
        return {"gamma": self.gamma, "lam": self.lam, **({"q": self.q} if self.q else {})}

    def __repr__(self):
        q = f", q={self.q}" if self.q else ""
        return f"Residual({self.branch!r}, gamma={self.gamma}, lam={self.lam}{q})"


class MLPBranch(Block):
    r"""F(Z) = φ_s(Z W^pre / √n) · √(c/n) · W^post  (the Transformer's MLP sublayer branch)."""

    def __init__(self, activation: Activation):
        self.activation = activation

    def step(self, x, ops):
        return ops.linear(ops.act(ops.linear(x), self.activation))

    def params(self):
        return {"activation": self.activation}


class ResNetBranch(Block):
    r"""F(X) = φ_s(X) · √(c/n) · W  (the ReLU ResNet branch; φ acts on the stream itself)."""

    def __init__(self, activation: Activation):
        self.activation = activation

    def step(self, x, ops):
        return ops.linear(ops.act(x, self.activation))

    def params(self):
        return {"activation": self.activation}


class GatedMLPBranch(Block):
    r"""F(Z) = (√c φ_s(Z W₁/√n) ∘ (Z W₂/√n)) · W₃/√n: a gated MLP (SwiGLU, GeGLU with φ shaped)."""

    def __init__(self, activation: Activation):
        self.activation = activation

    def step(self, x, ops):
        return ops.linear(ops.mul(ops.act(ops.linear(x), self.activation), ops.linear(x)))

    def params(self):
        return {"activation": self.activation}


class Parallel(Block):
    r"""F(X) = (F₁(X) + ⋯ + F_k(X)) / √k: sublayers reading the same input, summed (GPT-J/PaLM's
    parallel attention and MLP inside one :class:`Residual`)."""

    def __init__(self, *branches):
        for b in branches:
            if not isinstance(b, Block):
                raise CovsdeInputError(f"Parallel takes Blocks, got {type(b).__name__} {b!r}")
        if len(branches) < 2:
            raise CovsdeInputError("Parallel needs at least two branches")
        self.branches = branches

    def step(self, x, ops):
        return ops.scale(sp.sqrt(sp.Rational(1, len(self.branches))), ops.add(*(b.step(x, ops) for b in self.branches)))

    def __repr__(self):
        return "Parallel(" + ", ".join(map(repr, self.branches)) + ")"


class DenseLayer(Block):
    r"""LNR22 MLP layer on the post-activation stream Φ:  h' = X W/√n,  X' = √c φ_s(h')."""

    def __init__(self, activation: Activation):
        self.activation = activation

    def step(self, x, ops):
        return ops.act(ops.linear(x), self.activation)

    def params(self):
        return {"activation": self.activation}


def heads_value(heads):
    """A head count: an integer ≥ 1 (at most COVSDE_MAX_HEADS) or ``inf`` (sympy.oo, the infinite-head
    limit)."""
    if heads is sp.oo or (isinstance(heads, str) and heads.strip().lower() in ("inf", "oo", "∞")) or heads == float("inf"):
        return sp.oo
    h = checks.integer("heads", heads, 1)
    limits.check_count("heads", h, limits.max_heads(), "COVSDE_MAX_HEADS", " (each head is derived separately)")
    return h


class Attention(Block):
    r"""Shaped (or standard) softmax attention, H heads concatenated along the width:

        A_h = [I] + Softmax(Y_h / τ) − [11ᵀ/m],   Y_h = (X W^Q_h/√n)(X W^K_h/√n)ᵀ,
        τ = τ0 · n^e · √n_k,   head output A_h X W^V_h / √n,  W^V_h ∈ R^{n×(n/H)}.

    The identity and the centring 11ᵀ/m are switches; standard attention is
    ``identity=False, centre=False, e=0, tau0=1``.  ``mask`` (:mod:`.masks`: None, "causal", a 0/1
    matrix): the softmax runs over each row's allowed tokens and the centring is each row's own uniform
    average over them, U_M.  Use inside :class:`Residual` for the sublayer X' = λX + γ·(attention output)."""

    def __init__(self, tau0=sp.Symbol("tau0", positive=True), e=sp.Rational(1, 2), heads=1,
                 centre=True, identity=True, mask=None):
        self.tau0 = value("tau0", tau0, positive=True)
        self.e = value("e", e, nonneg=True, number=True)
        self.heads = heads_value(heads)
        for nm, flag in (("centre", centre), ("identity", identity)):
            if not isinstance(flag, bool):
                raise CovsdeInputError(f"{nm} must be True or False, got {nm}={flag!r}")
        self.centre, self.identity = centre, identity
        self.mask = make_mask(mask)

    def step(self, x, ops):
        if not self.centre:
            ops.note("without centring A → I + 11ᵀ/m (or 11ᵀ/m without the identity): an O(1) "
                     "deterministic change of V per layer")

        def head(frac):
            A = ops.softmax(ops.logits(x, self.tau0, self.e), self.mask)
            if self.identity:
                A = A + ops.eye()
            if self.centre:
                A = A - ops.uniform(self.mask)
            return ops.matmul(A, ops.linear(x, frac))

        return ops.heads(head, self.heads)

    def params(self):
        return {"tau0": self.tau0, "e": self.e, "heads": self.heads, "centre": self.centre,
                "identity": self.identity, **({"mask": self.mask} if self.mask is not None else {})}


def transformer_block(activation: Activation, gamma1=sp.Symbol("gamma", positive=True), lam1=None,
                      gamma2=None, lam2=None, tau0=sp.Symbol("tau0", positive=True), e=sp.Rational(1, 2),
                      heads=1, centre=True, identity=True, q=0, mask=None, layout="sequential",
                      mlp="plain", norm=None) -> Block:
    r"""Shaped Transformer block:  Z = λ₁X + γ₁ A X W^V/√n,  X' = λ₂Z + γ₂ φ_s(Z W^pre/√n)√(c/n) W^post
    (γ_i = γ_i0·n^(−q)).  ``layout="parallel"``: X' = λX + γ(A X W^V/√n + MLP(X))/√2 (γ₁, λ₁ only);
    ``mlp="gated"``: the MLP is (√c φ_s(Z W₁/√n) ∘ Z W₂/√n) W₃/√n (SwiGLU/GeGLU, φ given); ``norm``
    (see :func:`with_norm`) placed on each residual sublayer."""
    if layout not in ("sequential", "parallel"):
        raise CovsdeInputError(f"layout must be sequential or parallel, got {layout!r}")
    if mlp not in ("plain", "gated"):
        raise CovsdeInputError(f"mlp must be plain or gated, got {mlp!r}")
    attention = Attention(tau0, e, heads, centre, identity, mask)
    branch = MLPBranch(activation) if mlp == "plain" else GatedMLPBranch(activation)
    if layout == "parallel":
        return with_norm(Residual(Parallel(attention, branch), gamma1, lam1, names=("gamma", "lam"), q=q), norm)
    gamma2 = gamma1 if gamma2 is None else gamma2
    if lam2 is None and gamma2 is gamma1:
        lam2 = lam1
    return Serial(with_norm(Residual(attention, gamma1, lam1, names=("gamma1", "lam1"), q=q), norm),
                  with_norm(Residual(branch, gamma2, lam2, names=("gamma2", "lam2"), q=q), norm))
