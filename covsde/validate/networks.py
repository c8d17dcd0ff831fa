"""Finite networks for every block, and a batched runner that records V_ℓ = X_ℓ X_ℓᵀ / n.

:class:`BlockLayer` is an ordinary ``torch.nn.Module``: its forward pass is the block's one-step
map (the same ``step`` code derive/ expands) with real weight matrices W ∈ R^{n×k}, i.i.d.
N(0, 1), drawn afresh for each call (one layer of many independent networks at once, batched
matmuls); the weights of the last call are kept in ``last_weights``.  :func:`run_networks`
stacks d layers, drawing weights per layer on the fly (memory does not grow with depth), with
either backend:

* ``"torch"``: the real modules (O(B·m·n²) per layer);
* ``"exact"``: the exact-in-law sampler, x W/√n ≡ chol(x xᵀ/n) ξ (O(B·m²·n) per layer).

Devices: CUDA when available (``device=None``), else CPU; float64 by default, ``dtype=torch.float32``
is the documented fast option on GPU.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from ..common.progress import Progress
from .backends import TorchOps, whitened_input


class _RecordingOps(TorchOps):
    """TorchOps in weights mode that keeps the weight matrices it draws."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.weights = []

    def randn(self, *shape):
        w = super().randn(*shape)
        self.weights.append(w)
        return w


class BlockLayer(torch.nn.Module):
    """One layer of B independent finite networks of a block (real Gaussian weights)."""

    def __init__(self, block, n, m, batch=1, n_k=None, dtype=torch.float64, device="cpu", generator=None):
        super().__init__()
        self.block, self.n, self.m, self.batch, self.n_k = block, int(n), int(m), int(batch), n_k
        self.dtype, self.device, self.generator = dtype, device, generator
        self.last_weights = []

    def forward(self, x):
        ops = _RecordingOps(self.n, self.m, x.shape[0], mode="weights", n_k=self.n_k, dtype=self.dtype,
                            device=self.device, generator=self.generator)
        y = self.block.step(x, ops)
        self.last_weights = [w for w in ops.weights if w.dim() == 3]
        return y


def default_device(device=None):
    """'cpu' or 'cuda' (None: CUDA when available); a CovsdeInputError naming any other value."""
    from ..common.errors import CovsdeInputError

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise CovsdeInputError(f"device must be 'cpu' or 'cuda' (or None for the default), got device={device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise CovsdeInputError("device='cuda' requested but no CUDA device is available")
    return device


def head_counts(block, _seen=None) -> set:
    """The finite head counts of the attention layers inside ``block`` (its attributes walked; a width
    must be a multiple of each: head h gets n/H columns of W^V)."""
    from ..derive import Block

    seen = set() if _seen is None else _seen
    if id(block) in seen or len(seen) > 10_000:
        return set()
    seen.add(id(block))
    out = set()
    h = getattr(block, "heads", None)
    if isinstance(h, int) and not isinstance(h, bool) and h > 1:
        out.add(h)
    for v in vars(block).values() if hasattr(block, "__dict__") else ():
        for x in (v if isinstance(v, (list, tuple)) else (v,)):
            if isinstance(x, Block):
                out |= head_counts(x, seen)
    return out


def check_heads(block, n, what="width"):
    """A CovsdeInputError when the width n is not a multiple of every head count of the block."""
    from ..common.errors import CovsdeInputError

    for h in sorted(head_counts(block)):
        if n % h:
            raise CovsdeInputError(f"{what} {n} is not a multiple of heads = {h} (each head gets n/heads columns of "
                                   f"W^V): choose widths divisible by {h}")


def heads_multiple(block) -> int:
    """The least common multiple of the block's head counts (1 without attention)."""
    import math

    return math.lcm(1, *head_counts(block))


DRAWS_PER_LAYER = 6  # an upper estimate of the weight matrices one block step draws (Transformer: 5)


def estimate_networks(m, n, depth, samples, backend):
    """(bytes one network needs at a time, floating-point operations) of run_networks."""
    per_net = 8.0 * (n * n * 2 if backend == "torch" else m * n * 6)
    per_draw = 2.0 * m * n * n if backend == "torch" else 4.0 * m * m * n + m**3
    return per_net, float(samples) * depth * DRAWS_PER_LAYER * per_draw


def run_networks(block, V0, n, depth, samples, *, backend="exact", record=None, seed=0, device=None,
                 dtype=torch.float64, n_k=None, chunk=None, progress=False, desc="networks"):
    """Push ``samples`` independent networks through ``depth`` layers from inputs with Gram V0.

    Returns (Vrec, bad): Vrec of shape (samples, len(record), m, m) with V_ℓ at the layers in
    ``record`` (default [depth]); ``bad`` flags networks whose V became non-finite, huge (> 1e12) or
    singular: they are counted, and their records must not be used."""
    from ..common import checks, limits
    from ..numerics.integrate import check_V0

    checks.choice("backend", backend, ("torch", "exact"))
    n = checks.integer("width n", n, 1, limits.max_width())
    depth = checks.integer("depth", depth, 0)
    samples = checks.integer("samples", samples, 1)
    seed = checks.seed(seed)
    device = default_device(device)
    V0 = check_V0(V0)
    m = V0.shape[0]
    check_heads(block, n, "width n =")
    per_net, flops = estimate_networks(m, n, depth, samples, backend)
    limits.check_memory(per_net + 8.0 * samples * len(record or [depth]) * m * m,
                        f"networks of width {n} ({backend} backend)")
    limits.check_work(flops, f"{samples} networks of width {n} and depth {depth} ({backend} backend)")
    record = [depth] if record is None else list(record)
    recset = {r: i for i, r in enumerate(record)}
    if chunk is None:
        per = m * n * (n if backend == "torch" else 4) * 8
        chunk = int(max(1, min(samples, 2e8 // per)))
    gen = torch.Generator(device=device).manual_seed(int(seed))
    out = np.zeros((samples, len(record), m, m))
    bad = np.zeros(samples, dtype=bool)
    bar = Progress(samples * depth, desc, "network-layers", enabled=bool(progress))
    done = 0
    while done < samples:
        B = min(chunk, samples - done)
        x = whitened_input(V0, n, B, dtype=dtype, device=device, generator=gen)
        ops = TorchOps(n, m, B, mode="weights" if backend == "torch" else "exact", n_k=n_k, dtype=dtype,
                       device=device, generator=gen)
        rec = torch.zeros(B, len(record), m, m, dtype=dtype, device=device)
        if 0 in recset:
            rec[:, recset[0]] = ops.gram(x)
        ok = torch.ones(B, dtype=torch.bool, device=device)
        x0 = x
        for layer in range(1, depth + 1):
            x = block.step(x, ops)
            G = ops.gram(x)
            fin = torch.isfinite(G).all(-1).all(-1) & (G.abs().amax((-1, -2)) < 1e12)
            if backend != "torch":  # the exact sampler needs chol(V); real weights do not
                fin &= (torch.linalg.cholesky_ex(G)[1] == 0) & ~ops.failed
                ops.failed = torch.zeros_like(ops.failed)
            if not bool(fin.all()):  # blown-up or degenerate networks: flagged, restarted to keep the batch sane
                ok &= fin
                x = torch.where(fin[:, None, None], x, x0)
            if layer in recset:
                rec[:, recset[layer]] = G
            bar.update(B)
        out[done:done + B] = rec.cpu().numpy()
        bad[done:done + B] = ~ok.cpu().numpy()
        done += B
    bar.close()
    return out, bad


def throughput(block, V0, n, depth, samples, backend, device=None, dtype=torch.float64):
    """Network-layers per second of ``run_networks``."""
    t0 = time.perf_counter()
    run_networks(block, V0, n, depth, samples, backend=backend, device=device, dtype=dtype)
    if default_device(device) == "cuda":
        torch.cuda.synchronize()
    return samples * depth / (time.perf_counter() - t0)
