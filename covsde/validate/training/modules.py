"""Trainable networks: the real-weights interpreter of the block contract made persistent.

:class:`TrainableOps` is :class:`~covsde.validate.backends.TorchOps` in weights mode whose weight matrices are
``torch.nn.Parameter``\\ s, created on the first forward pass (i.i.d. N(0, 1), exactly as the derivation
assumes: every projection is x W / √fan_in) and reused by every later pass, in the order the block's
``step`` asks for them.  So any block's ``step(x, ops)`` becomes a trainable layer, :class:`BlockModule`,
and :class:`TrainableNet` stacks L of them between an input map (a projection of d-dimensional tokens, or
a token embedding) and a readout.

Shapes: a module holds P independent networks (P = 1 for training; P > 1 for statistics over
initialisations, with one input per network); x is (D, m, n) with D the data batch (D = P when P > 1).
"""
from __future__ import annotations

import copy
import functools
import math

import sympy as sp
import torch

from ...common.errors import CovsdeInputError
from ...common.expr import to_float
from ...derive.symbols import WIDTH
from ..backends import TorchOps


@functools.lru_cache(maxsize=4096)
def _sym_float(x, name):
    return to_float(x, name)


def _num(x, name):
    """A block parameter (number or SymPy value) as a float; called on every layer, so SymPy values are
    memoized."""
    if type(x) in (int, float):
        return float(x)
    return _sym_float(x, name)


@functools.lru_cache(maxsize=4096)
def _scale_at(c, n):
    """A scale factor, maybe in the width symbol, at width n."""
    return _sym_float(c.xreplace({WIDTH: n}) if WIDTH in c.free_symbols else c, "scale factor")


class TrainableOps(TorchOps):
    """Weights-mode ops whose weights persist: the k-th projection of a ``step`` is parameter k of
    ``params`` (created on the first pass from ``generator``, N(0, 1) of shape (P, fan_in, fan_out))."""

    def __init__(self, n, m, networks=1, *, params: torch.nn.ParameterList, dtype=torch.float32,
                 device="cpu", generator=None):
        super().__init__(n, m, networks, mode="weights", dtype=dtype, device=device, generator=generator)
        self.params = params
        self.index = 0

    def start(self):
        """Call before each ``step``: the next projection is parameter 0 again."""
        self.index = 0
        return self

    def weight(self, fan_in, fan_out):
        i = self.index
        self.index += 1
        if i == len(self.params):
            w = torch.randn(self.B, fan_in, fan_out, generator=self.gen, dtype=self.dtype, device=self.device)
            self.params.append(torch.nn.Parameter(w))
        W = self.params[i]
        if tuple(W.shape[1:]) != (fan_in, fan_out):
            raise CovsdeInputError(f"projection {i} of the block asked for a {fan_in}×{fan_out} weight, but its "
                                   f"stored weight is {tuple(W.shape[1:])}: the block's step is not deterministic")
        return W

    def linear(self, x, frac=1):
        k = int(round(self.n * _num(frac, "width fraction")))
        if k < 1:
            raise CovsdeInputError(f"width n = {self.n} is too small for a projection to n·{_num(frac, 'frac'):g} "
                                   "columns (e.g. more heads than width)")
        return x @ self.weight(x.shape[-1], k) / math.sqrt(x.shape[-1])

    def logits(self, x, tau0, e):
        tau = _num(tau0, "tau0") * self.n ** _num(e, "e") * math.sqrt(self.n_k)
        q = x @ self.weight(x.shape[-1], self.n_k) / math.sqrt(x.shape[-1])
        k = x @ self.weight(x.shape[-1], self.n_k) / math.sqrt(x.shape[-1])
        return q @ k.transpose(-1, -2) / tau

    def scale(self, c, x):
        c = _scale_at(c, self.n) if isinstance(c, sp.Basic) else _num(c, "scale factor")
        return x if c == 1.0 else c * x


class BlockModule(torch.nn.Module):
    """One layer: the block's one-step map with persistent N(0, 1) weights (P networks)."""

    def __init__(self, block, n, m, networks=1, *, dtype=torch.float32, device="cpu", generator=None):
        super().__init__()
        self.block, self.n, self.m = block, int(n), int(m)
        self.weights = torch.nn.ParameterList()
        self.ops = TrainableOps(n, m, networks, params=self.weights, dtype=dtype, device=device,
                                generator=generator)
        with torch.no_grad():  # create the parameters now, so that optimisers see them
            self(torch.randn(networks, m, n, generator=generator, dtype=dtype, device=device))

    def forward(self, x):
        return self.block.step(x, self.ops.start())


class TrainableNet(torch.nn.Module):
    r"""Input map → L block layers → readout, for one parameterisation's multipliers.

    * input: tokens x ∈ R^{m×d} ↦ x W_in · c_in/√d (``vocab`` None), or a token embedding E[t] · c_in
      (``vocab`` = number of token ids), W_in, E i.i.d. N(0, 1);
    * L layers of :class:`BlockModule` (covsde's own 1/√fan_in scales inside);
    * readout f = h_L W_out · c_out, W_out ∈ R^{n×out} i.i.d. N(0, 1) (c_out = n^(−1/2) standard,
      n^(−1) μP), then (f − f0)/γ0 when ``centre`` (f0 the output at initialisation).

    ``forward(x, record=False)`` returns f, or (f, [h_0, …, h_L, f]) with ``record``."""

    def __init__(self, blocks, n, m, *, d_in=None, vocab=None, out=1, c_in=1.0, c_out=None, gamma0=1.0,
                 centre=False, networks=1, seed=0, dtype=torch.float32, device="cpu"):
        super().__init__()
        if (d_in is None) == (vocab is None):
            raise CovsdeInputError("give exactly one of d_in (real token vectors) and vocab (token ids)")
        gen = torch.Generator(device=device).manual_seed(int(seed))
        self.n, self.m, self.vocab, self.networks = int(n), int(m), vocab, int(networks)
        fan = vocab if vocab is not None else d_in
        self.w_in = torch.nn.Parameter(torch.randn(networks, fan, n, generator=gen, dtype=dtype, device=device))
        self.c_in = float(c_in) / (1.0 if vocab is not None else math.sqrt(d_in))
        self.layers = torch.nn.ModuleList(BlockModule(b, n, m, networks, dtype=dtype, device=device, generator=gen)
                                          for b in blocks)
        self.w_out = torch.nn.Parameter(torch.randn(networks, n, out, generator=gen, dtype=dtype, device=device))
        self.c_out = float(n ** -0.5 if c_out is None else c_out)
        self.gamma0, self.centre = float(gamma0), bool(centre)
        self.f0 = None
        if self.centre:  # a frozen copy of the initial network, in a list: not a submodule, never trained
            self.f0 = [copy.deepcopy(self)]
            self.f0[0].centre = False
            for p in self.f0[0].parameters():
                p.requires_grad_(False)

    def groups(self):
        """{"input": [...], "hidden": [...], "output": [...]}: the parameter groups of the learning rates."""
        hidden = [p for layer in self.layers for p in layer.parameters()]
        return {"input": [self.w_in], "hidden": hidden, "output": [self.w_out]}

    def embed(self, x):
        if self.vocab is not None:
            if x.dtype not in (torch.int64, torch.int32):
                raise CovsdeInputError("a network with a token embedding takes integer token ids")
            w = self.w_in[0] if self.networks == 1 else self.w_in
            return (w[x] if self.networks == 1 else torch.gather(
                w, 1, x[..., None].expand(*x.shape, self.n))) * self.c_in
        return x @ self.w_in * self.c_in

    def raw(self, x):
        hs = [self.embed(x)]
        for layer in self.layers:
            hs.append(layer(hs[-1]))
        f = hs[-1] @ self.w_out * self.c_out
        return f, hs

    def forward(self, x, record=False):
        f, hs = self.raw(x)
        if self.centre:
            with torch.no_grad():
                f0 = self.f0[0].raw(x)[0]
            f = f - f0
        f = f / self.gamma0
        return (f, hs + [f]) if record else f
