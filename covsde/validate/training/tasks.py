"""Seeded synthetic tasks for training checks, and the model builder shared by them.

* ``teacher``: regression of y = T(x) for m-token inputs x ∈ R^{m×d}, tokens i.i.d. N(0, I_d), with T a
  fixed random network of the same family as the student (width ``TEACHER_WIDTH``, standard
  parameterisation, its own seed), its outputs scaled to unit variance; loss ½·mean (f − y)².
* ``language``: next-token prediction on a seeded random Markov chain over ``VOCAB`` tokens (each row of
  the transition matrix a softmax of 2.5·N(0, 1) logits), sequences of m + 1 tokens from its stationary
  law; the loss is the cross-entropy of token t + 1 given tokens ≤ t (attention is made causal), whose
  minimum is the chain's entropy rate, reported as ``floor``.

Batch t of the data stream is a function of (task seed, t) alone: every width and every learning rate
sees the same inputs in the same order.
"""
from __future__ import annotations

import torch

from ...common.errors import CovsdeInputError
from ...derive.variants import USES, build
from .modules import TrainableNet

TASKS = ("teacher", "language")
D_IN = 8
VOCAB = 16
TEACHER_WIDTH = 64


def blocks_for(variant, given, param, depth, task):
    """L blocks of ``variant`` with the block settings ``given`` (--set), completed by the parameterisation:
    the branch γ (and λ), the logit exponent e = α_A − 1/2 (n_k = n), τ0 = 1, and a causal mask for
    ``language``; user settings win."""
    if variant not in USES:
        raise CovsdeInputError(f"unknown model {variant!r} (known: {', '.join(USES)})")
    use, full = USES[variant], dict(given)
    g, lam = param.branch(depth)
    if "gamma" in use and "gamma" not in given:
        full["gamma"] = repr(float(g))
        if lam is not None and "lam" not in given:
            full["lam"] = repr(float(lam))
    if "tau0" in use and "tau0" not in given:
        full["tau0"] = "1"
    if "e" in use and "e" not in given and param.alpha_A is not None:
        full["e"] = repr(float(param.alpha_A) - 0.5)
    if "mask" in use and "mask" not in given and task == "language":
        full["mask"] = "causal"
    block, _ = build(variant, full)
    return [block] * depth


def make_net(variant, given, param, n, depth, task, m, *, seed=0, networks=1, dtype=torch.float32, device="cpu"):
    """The student network of ``task`` at width n (parameterisation ``param``, weights from ``seed``)."""
    blocks = blocks_for(variant, given, param, depth, task)
    io = {"d_in": D_IN, "out": 1} if task == "teacher" else {"vocab": VOCAB, "out": VOCAB}
    return TrainableNet(blocks, n, m, **io, c_out=param.c_out(n), gamma0=param.gamma0, centre=param.centre,
                        networks=networks, seed=seed, dtype=dtype, device=device)


class Task:
    """A seeded data stream: ``batch(t)`` → (inputs, targets), ``loss(f, targets)``."""

    def __init__(self, name, variant, given, depth, m, *, batch=32, seed=0, dtype=torch.float32, device="cpu"):
        if name not in TASKS:
            raise CovsdeInputError(f"unknown task {name!r} (known: {', '.join(TASKS)})")
        from .params import make

        self.name, self.m, self.size, self.seed, self.dtype, self.device = name, m, batch, seed, dtype, device
        self.floor = 0.0
        if name == "teacher":
            self.teacher = make_net(variant, given, make("sp"), TEACHER_WIDTH, depth, name, m, seed=10**6 + seed,
                                    dtype=dtype, device=device)
            with torch.no_grad():
                x, _ = self._inputs(-1, 512)
                self.y_scale = float(self.teacher(x).std()) or 1.0
        else:
            g = torch.Generator().manual_seed(10**6 + seed)
            P = torch.softmax(2.5 * torch.randn(VOCAB, VOCAB, generator=g, dtype=torch.float64), dim=-1)
            pi = torch.full((VOCAB,), 1.0 / VOCAB, dtype=torch.float64)
            for _ in range(500):
                pi = pi @ P
            self.P, self.pi = P, pi
            self.floor = float(-(pi[:, None] * P * torch.log(P)).sum())

    def _gen(self, t):
        return torch.Generator().manual_seed(int(self.seed) * 1_000_003 + 7919 * (int(t) + 2))

    def _inputs(self, t, size):
        g = self._gen(t)
        return torch.randn(size, self.m, D_IN, generator=g).to(self.dtype).to(self.device), g

    def batch(self, t, size=None):
        size = size or self.size
        if self.name == "teacher":
            x, _ = self._inputs(t, size)
            with torch.no_grad():
                y = self.teacher(x) / self.y_scale
            return x, y
        g = self._gen(t)
        tok = torch.empty(size, self.m + 1, dtype=torch.int64)
        tok[:, 0] = torch.multinomial(self.pi, size, replacement=True, generator=g)
        for i in range(self.m):
            tok[:, i + 1] = torch.multinomial(self.P[tok[:, i]], 1, generator=g)[:, 0]
        tok = tok.to(self.device)
        return tok[:, :-1], tok[:, 1:]

    def loss(self, f, target):
        if self.name == "teacher":
            return 0.5 * ((f - target) ** 2).mean()
        return torch.nn.functional.cross_entropy(f.reshape(-1, f.shape[-1]), target.reshape(-1))
