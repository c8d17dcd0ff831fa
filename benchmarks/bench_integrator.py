"""Integrator speed on one problem (B1), all contenders timed in this run (ratios, no asserts).

Problem: m = 8, 4096 paths, 1000 steps, T = 0.1, the `mlp` SDE with c₊ = 1, c₋ = −1,
V0^{αβ} = 0.7^{|α−β|}.  Contenders:
  * covsde generated kernels, EM and the default PSD scheme, compile time excluded (warm-up run): the
    path-vectorised lane kernel (the default, ``kernel="lanes"``; here every chunk is full, so it takes the
    straight-line Wishart steps of numerics/straight.py) and the per-path loop (``kernel="paths"``);
  * plain NumPy vectorised EM (batched Cholesky, arccos drift);
  * a hand-tuned Numba loop: symmetric noise drawn directly (m(m+1)/2 normals), np.random.Generator
    inside njit, chunks on threads;
  * diffrax and torchsde on the same SDE, when installed (the `bench` extra; else reported as not installed):
    diffrax through covsde's export (Euler, the matrix-free lineax noise operator, vmapped over paths and
    jitted, compilation excluded), torchsde with the dense g a user writes for a general-noise SDE.
Also: the cost per step of the `transformer` SDE at m = 8 relative to `mlp` (target ≤ 2×).
Targets: covsde EM ≤ 0.5× the hand-tuned scalar loop, ≥ 10× faster than diffrax and NumPy;
PSD ≤ 1.3× EM.  The contenders all take EM steps; the same ratios for covsde's default PSD scheme are
printed too.

Run:  .venv/bin/python benchmarks/bench_integrator.py [--paths 4096 --steps 1000]
"""
import argparse
import math
import time

import numba
import numpy as np
from numba import njit, prange

from covsde.derive import derive
from covsde.derive.variants import build
from covsde.numerics import simulate

M = 8
C2 = (1.0 - (-1.0)) ** 2  # (c₊ − c₋)²


def V0_matrix(m=M):
    return np.array([[0.7 ** abs(i - j) for j in range(m)] for i in range(m)])


def numpy_em(V0, T, steps, paths, seed):
    rng = np.random.default_rng(seed)
    dt = T / steps
    m = V0.shape[0]
    V = np.broadcast_to(V0, (paths, m, m)).copy()
    sq = math.sqrt(dt)
    for _ in range(steps):
        d = np.sqrt(np.einsum("pii->pi", V))
        s = d[:, :, None] * d[:, None, :]
        rho = np.clip(V / s, -1, 1)
        b = C2 / (2 * np.pi) * (np.sqrt(1 - rho**2) - rho * np.arccos(rho)) * s
        L = np.linalg.cholesky(V)
        Z = rng.standard_normal((paths, m, m))
        N = L @ (Z + Z.transpose(0, 2, 1)) @ L.transpose(0, 2, 1) / math.sqrt(2)
        V = V + b * dt + N * sq
    return V


@njit(cache=True)
def _hand_chunk(V0, dt, steps, rng, out):
    m = V0.shape[0]
    L = np.zeros((m, m))
    S = np.empty((m, m))
    T1 = np.empty((m, m))
    V = np.empty((m, m))
    sq = math.sqrt(dt)
    c = C2 / (2 * math.pi)
    for p in range(out.shape[0]):
        V[:, :] = V0
        for _ in range(steps):
            for j in range(m):  # Cholesky
                s = V[j, j]
                for k in range(j):
                    s -= L[j, k] * L[j, k]
                dj = math.sqrt(s)
                L[j, j] = dj
                for i in range(j + 1, m):
                    s = V[i, j]
                    for k in range(j):
                        s -= L[i, k] * L[j, k]
                    L[i, j] = s / dj
            for i in range(m):  # symmetric noise drawn directly
                S[i, i] = math.sqrt(2.0) * rng.standard_normal()
                for j in range(i + 1, m):
                    z = rng.standard_normal()
                    S[i, j] = z
                    S[j, i] = z
            for i in range(m):
                for j in range(m):
                    s = 0.0
                    for k in range(i + 1):
                        s += L[i, k] * S[k, j]
                    T1[i, j] = s
            for i in range(m):  # V ← V + b dt + N √dt, the drift read before any entry it uses is updated
                for j in range(m - 1, i - 1, -1):  # off-diagonals of the row first, its diagonal last
                    s = 0.0
                    for k in range(j + 1):
                        s += T1[i, k] * L[j, k]
                    if i == j:
                        V[i, i] += sq * s
                    else:
                        di = math.sqrt(V[i, i] * V[j, j])
                        r = min(1.0, max(-1.0, V[i, j] / di))
                        drift = c * (math.sqrt(1 - r * r) - r * math.atan2(math.sqrt(1 - r * r), r)) * di
                        v = V[i, j] + dt * drift + sq * s
                        V[i, j] = v
                        V[j, i] = v
        out[p] = V


@njit(parallel=True, cache=True)
def _hand(V0, dt, steps, rngs, chunk, out):
    for c in prange(len(rngs)):
        lo = c * chunk
        hi = min(lo + chunk, out.shape[0])
        _hand_chunk(V0, dt, steps, rngs[c], out[lo:hi])


def hand_numba(V0, T, steps, paths, seed, chunk=64):
    nch = (paths + chunk - 1) // chunk
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(nch)]
    out = np.empty((paths, V0.shape[0], V0.shape[0]))
    _hand(V0, T / steps, steps, numba.typed.List(rngs), chunk, out)
    return out


def timeit(f, repeat=5):
    """The best of ``repeat`` runs (this machine's timings vary by ±10 % between runs; every contender but
    torchsde, which takes minutes, gets the same repeats)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best


def try_diffrax(d, V0, T, steps, paths):
    """diffrax as a competent user runs it: covsde's own export (drift ODETerm + the matrix-free lineax noise
    operator Z ↦ N(V, Z)), Euler with a fixed step, an UnsafeBrownianPath per path, vmapped over paths and
    jit-compiled (compilation excluded: the best of 5 calls after the first); float64."""
    try:
        import diffrax
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    from covsde.export.sde_diffrax import diffrax_brownian_shape, to_diffrax

    shape = jax.ShapeDtypeStruct(diffrax_brownian_shape(d), jnp.float64)
    y0 = jnp.asarray(V0)

    def one(key):
        bm = diffrax.UnsafeBrownianPath(shape=shape, key=key)
        sol = diffrax.diffeqsolve(to_diffrax(d, {}, bm), diffrax.Euler(), 0.0, T, dt0=T / steps, y0=y0,
                                  saveat=diffrax.SaveAt(t1=True), max_steps=steps + 1, adjoint=diffrax.ForwardMode())
        return sol.ys[-1]

    run = jax.jit(jax.vmap(one))
    keys = jax.random.split(jax.random.PRNGKey(0), paths)
    run(keys).block_until_ready()  # compile
    return timeit(lambda: run(keys).block_until_ready())


def try_torchsde(V0, T, steps, paths):
    try:
        import torch
        import torchsde
    except ImportError:
        return None
    m = V0.shape[0]
    iu = np.triu_indices(m)

    class SDE(torch.nn.Module):
        noise_type, sde_type = "general", "ito"

        def f(self, t, y):
            V = self.full(y)
            d = torch.sqrt(torch.diagonal(V, dim1=1, dim2=2))
            s = d[:, :, None] * d[:, None, :]
            rho = torch.clamp(V / s, -1, 1)
            b = C2 / (2 * math.pi) * (torch.sqrt(torch.clamp(1 - rho**2, min=0)) - rho * torch.arccos(rho)) * s
            return b[:, iu[0], iu[1]]

        def g(self, t, y):  # dense Σ^{1/2} on the m(m+1)/2 coordinates: the generic approach
            V = self.full(y)
            L = torch.linalg.cholesky(V)
            cols = []
            for a in range(m):
                for b in range(m):
                    E = torch.zeros(m, m, dtype=V.dtype)
                    E[a, b] = 1.0
                    N = L @ (E + E.T) @ L.transpose(1, 2) / math.sqrt(2)
                    cols.append(N[:, iu[0], iu[1]])
            return torch.stack(cols, dim=-1)

        def full(self, y):
            V = torch.zeros(y.shape[0], m, m, dtype=y.dtype)
            V[:, iu[0], iu[1]] = y
            return V + torch.triu(V, 1).transpose(1, 2)

    y0 = torch.tensor(V0[iu], dtype=torch.float64).repeat(paths, 1)
    ts = torch.tensor([0.0, T], dtype=torch.float64)
    t0 = time.perf_counter()
    torchsde.sdeint(SDE(), y0, ts, method="euler", dt=T / steps)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--paths", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=1000)
    args = ap.parse_args()
    P, S, T = args.paths, args.steps, 0.1
    V0 = V0_matrix()
    blk, _ = build("mlp", {"c_plus": "1", "c_minus": "-1"})
    d = derive(blk, M)
    print(f"problem: mlp SDE m={M}, {P} paths, {S} steps, T={T}, c+=1 c-=-1, V0=0.7^|a-b|; threads={numba.get_num_threads()}")
    for kern in ("lanes", "paths"):  # warm-up / compile
        for sch in ("em", "psd"):
            simulate(d, V0, T, dt=T / S, paths=64, scheme=sch, progress=False, kernel=kern)
    hand_numba(V0, T, 10, 64, 0)

    def gen(scheme, kernel):
        return timeit(lambda: simulate(d, V0, T, dt=T / S, paths=P, scheme=scheme, progress=False, kernel=kernel))

    t_gen_em, t_gen_psd = gen("em", "lanes"), gen("psd", "lanes")
    t_path_em, t_path_psd = gen("em", "paths"), gen("psd", "paths")
    t_hand = timeit(lambda: hand_numba(V0, T, S, P, 0))
    steps_np = max(10, S // 10)
    t_np = timeit(lambda: numpy_em(V0, T, steps_np, P, 0)) * S / steps_np
    rows = [("covsde EM, lane kernel (default)", t_gen_em), ("covsde PSD (default scheme), lane kernel", t_gen_psd),
            ("covsde EM, per-path kernel", t_path_em), ("covsde PSD, per-path kernel", t_path_psd),
            ("hand-tuned scalar Numba loop (EM)", t_hand), (f"NumPy vectorised EM (from {steps_np} steps)", t_np)]
    t_tsde = try_torchsde(V0, T, max(2, S // 100), min(P, 512))
    if t_tsde is not None:
        rows.append(("torchsde Euler, dense g (scaled from 1/100 steps, 1/8 paths)", t_tsde * 100 * P / min(P, 512)))
    else:
        print("torchsde: not installed")
    S_dx = max(2, S // 10)
    t_dx = try_diffrax(d, V0, T, S_dx, P)
    if t_dx is not None:
        rows.append((f"diffrax Euler, matrix-free noise (scaled from {S_dx} steps)", t_dx * S / S_dx))
    else:
        print("diffrax: not installed")
    print(f"{'integrator':<62} {'time [s]':>9} {'vs covsde EM':>13}")
    for name, t in rows:
        print(f"{name:<62} {t:>9.3f} {t / t_gen_em:>12.2f}x")
    print(f"covsde EM / hand-tuned scalar = {t_gen_em / t_hand:.2f} (target ≤ 0.5)")
    print(f"NumPy / covsde EM = {t_np / t_gen_em:.1f}x (target ≥ 10)")
    if t_dx is not None:
        print(f"diffrax / covsde EM = {t_dx * S / S_dx / t_gen_em:.1f}x (target ≥ 10)")
    vs = [f"hand-tuned scalar {t_gen_psd / t_hand:.2f}x (target ≤ 0.5)", f"NumPy {t_np / t_gen_psd:.1f}x faster"]
    if t_dx is not None:
        vs.append(f"diffrax {t_dx * S / S_dx / t_gen_psd:.1f}x faster")
    print("covsde PSD (the default scheme) against the same contenders: " + ", ".join(vs) + " (targets ≥ 10)")
    print(f"covsde PSD / EM = {t_gen_psd / t_gen_em:.2f} (target ≤ 1.3); per-path kernel: "
          f"{t_path_psd / t_path_em:.2f}")
    print(f"lane kernel speed-up over the per-path kernel: EM {t_path_em / t_gen_em:.1f}x, "
          f"PSD {t_path_psd / t_gen_psd:.1f}x")
    # transformer cost per step relative to mlp
    blk_t, _ = build("transformer", {"gamma": "0.35355339", "tau0": "1"})
    dt_ = derive(blk_t, M)
    simulate(dt_, V0, T, dt=T / S, paths=64, scheme="em", progress=False)
    simulate(dt_, V0, T, dt=T / S, paths=64, scheme="psd", progress=False)
    t_tr = timeit(lambda: simulate(dt_, V0, T, dt=T / S, paths=P, scheme="em", progress=False))
    t_tr_psd = timeit(lambda: simulate(dt_, V0, T, dt=T / S, paths=P, scheme="psd", progress=False))
    print(f"transformer / mlp cost per step at m=8: EM {t_tr / t_gen_em:.2f}x, PSD {t_tr_psd / t_gen_psd:.2f}x "
          f"(target ≤ 2)")


if __name__ == "__main__":
    main()
