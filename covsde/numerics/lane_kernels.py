"""The path-vectorised integrator: the loop of :mod:`.kernels` run on a whole chunk of paths at once.

A chunk's n paths are the lanes of structure-of-arrays buffers (``V[i, j, p]``, see :mod:`.lanes`); each
step factors every lane, evaluates the generated ``coeffs_lanes`` and ``noise_lanes`` (the same tape as
the per-path ``coeffs``/``noise``, printed against :mod:`.lanes`), and takes the EM or PSD step, every
loop over lanes innermost so that it runs as SIMD code.  The normals of a step are drawn in bulk, one
tight loop filling ``Z[g, i, j, p]`` from the chunk's ``np.random.Generator`` (lane-major order; Numba's
ziggurat, 2.6 ns a normal — a vectorised xoshiro256+/Box–Muller generator measured 2.1 ns alone but made
the whole step slower), so a chunk's result depends only on its seed, never on the number of threads.

Schemes, stopping rules, statuses (1 exploded, 2 left_psd, 3 non-finite coefficients at V0), ``bscale``,
``nscale``, ``drift_only`` and ``unit_diag`` are those of :mod:`.kernels`.  When the noise is one
Wishart group alone (``WISHART`` ≥ 0, the index of its coefficient) both steps are taken from the drawn S
without storing N (:func:`.lanes.em_wishart`, :func:`.lanes.psd_wishart`: the same steps to rounding); for a
chunk of exactly ``straight_lanes`` lanes, as the straight-line ``straight_step`` of :mod:`.straight` (a
``cfunc`` called through its pointer, built by the caller for the scheme; the same numbers to the last bit),
which writes V' over V itself (no buffer swap or copy), on operands that live in one flat workspace
(``flat``: L, b, Z, V, N, c, live, ok, see :func:`.straight.views`).  With any other noise, such a chunk takes
the PSD scheme's step straight-line too (``straight.step("general-psd", …)``, from the generated N; EM keeps
its one-pass loop).
A stopped lane keeps its last valid V (its buffers go on being computed and are discarded: lanes are not compacted), is saved at the
remaining save times with that V, and the chunk ends early once every lane has stopped.

A generated module holds this file's source after that of :mod:`.kernels`, and its own ``coeffs_lanes``,
``noise_lanes`` (``LANES = True``: every generated module has them; only this file alone says False).
"""
import math

import numpy as np
from numba import njit

from covsde.numerics import lanes
from covsde.numerics import straight as straight_mod


@njit(cache=True, error_model="numpy")
def _draw_lanes(rng, Z, m, substeps):
    """Standard normals for every noise group and lane (the upper triangle only for a SYM group), drawn in
    bulk in (g, i, j, lane) order; with substeps = k > 1 each is the sum of k consecutive arrays of draws
    over √k (k steps of dt/k: the same Brownian path as the run with dt/k)."""
    n = Z.shape[3]
    for g in range(NGROUPS):
        for i in range(m):
            for j in range(i if SYM[g] else 0, m):
                for p in range(n):
                    Z[g, i, j, p] = rng.standard_normal()
    for _ in range(substeps - 1):
        for g in range(NGROUPS):
            for i in range(m):
                for j in range(i if SYM[g] else 0, m):
                    for p in range(n):
                        Z[g, i, j, p] += rng.standard_normal()
    if substeps > 1:
        c = 1.0 / math.sqrt(substeps)
        for g in range(NGROUPS):
            for i in range(m):
                for j in range(m):
                    for p in range(n):
                        Z[g, i, j, p] *= c


@njit(cache=True, error_model="numpy")
def _save(V, Vout, k):
    for p in range(V.shape[2]):
        for i in range(V.shape[0]):
            for j in range(V.shape[1]):
                Vout[k, p, i, j] = V[i, j, p]


@njit(cache=True, error_model="numpy")
def _stop(ok, status, tdeath, code, t):
    """Lanes still running whose flag is off stop now with status ``code`` at time t; how many stopped."""
    stopped = 0
    for p in range(ok.shape[0]):
        if status[p] == 0 and not ok[p]:
            status[p] = code
            tdeath[p] = t
            stopped += 1
    return stopped


@njit(cache=True, error_model="numpy")
def _step(V, L, b, Z, N, cf, scheme, dt, dtb, sq, nscale, threshold, D, W, H, t1, t2, Vn, ok):
    """V → Vn and its acceptance flags: the Wishart steps from S (``WISHART`` ≥ 0), else EM or the PSD
    congruence."""
    r2 = math.sqrt(2.0)  # a Wishart group's coefficient is cf[WISHART]·√2 (see codegen._noise_body)
    if WISHART >= 0 and scheme == 0:
        lanes.em_wishart(V, L, b, Z[0], cf[WISHART], dtb, r2 * sq, threshold, t1, Vn, ok)
    elif WISHART >= 0:
        lanes.psd_wishart(L, b, Z[0], cf[WISHART], dtb, r2 * sq, threshold, t1, t2, W, H, Vn, ok)
    elif scheme == 0:
        lanes.em_accept(V, b, N, dtb, sq, threshold, Vn, ok)
    else:
        lanes.psd_step(L, b, N, dt, dtb, sq, nscale, threshold, D, W, H, Vn, ok)


@njit(cache=True, error_model="numpy")
def _straight_step(straight_step, flat, cf, status, c, live, okf, dtb, sq, q, threshold, ok):
    """The straight-line step of :mod:`.straight` on the operands in ``flat`` (a Wishart step reads its
    coefficient from c and √2·sq, see _step; the general PSD step reads N and q): V' over V on the running
    lanes where it is accepted; the acceptance flags in ok."""
    for p in range(c.shape[0]):
        live[p] = 1.0 if status[p] == 0 else 0.0
    if WISHART >= 0:
        c[:] = cf[WISHART]
    a = math.sqrt(2.0) * sq if WISHART >= 0 else sq
    straight_step(straight_mod.data_ptr(flat), dtb, a, q, threshold)
    for p in range(c.shape[0]):
        ok[p] = okf[p] == 1.0


@njit(cache=True, error_model="numpy")
def _unit_diag(Vn, keep, d):
    """A correlation state back onto unit diagonal on the lanes that moved (the PSD step's quadratic terms
    move it); d: work, one number per row and lane."""
    m, n = Vn.shape[0], Vn.shape[2]
    for i in range(m):
        for p in range(n):
            d[i, 0, p] = 1.0 / math.sqrt(Vn[i, i, p]) if keep[p] == 1.0 else 1.0
    for i in range(m):
        for j in range(m):
            for p in range(n):
                Vn[i, j, p] *= d[i, 0, p] * d[j, 0, p]


@njit(cache=True, error_model="numpy")
def _run_lanes(V0, P, dt, nsteps, save_steps, scheme, threshold, rng, Vout, status, tdeath, drift_only, bscale,
               nscale, unit_diag, substeps, straight_step, straight_lanes):
    m, n = V0.shape[0], Vout.shape[1]
    flat = np.zeros(straight_mod.offsets(m, n, NGROUPS)[8])  # the operands where a straight step reads them
    L, b, Z, V, N, c, live, okf = straight_mod.views(flat, m, n, NGROUPS)
    Vn, D, W, H = np.empty((m, m, n)), np.empty((m, m, n)), np.empty((m, m, n)), np.empty((m, m, n))
    t1, t2, zh = np.empty((m, m, n)), np.empty((m, m, n)), np.empty((m, m, n))
    mats, cf = np.zeros((NMATS, m, m, n)), np.zeros((NCOEF, n))
    ws, wv, sc = np.zeros((NWS, m, m, n)), np.zeros((NWV, m, n)), np.zeros((NSC, n))
    ok, keep = np.empty(n, np.bool_), np.empty(n, np.float64)
    # the straight step: built for exactly this many lanes (else straight_lanes = 0); Wishart EM or PSD, or
    # the general PSD step
    straight = n == straight_lanes and not unit_diag and (WISHART >= 0 and NGROUPS == 1 or scheme == 1)
    alive = n
    for i in range(m):
        for j in range(m):
            for p in range(n):
                V[i, j, p] = V0[i, j]
    sq, dtb, q = math.sqrt(dt) * nscale, dt * bscale, 0.25 * dt * nscale * nscale
    k = 0
    for step in range(nsteps + 1):
        while k < save_steps.shape[0] and save_steps[k] == step:
            _save(V, Vout, k)
            k += 1
        lanes.chol(V, L, ok)  # also after the last step: a path ending outside the cone is counted
        alive -= _stop(ok, status, tdeath, 2, step * dt)
        if step == nsteps or alive == 0:
            break
        coeffs_lanes(V, P, b, mats, cf, ws, wv, sc)
        if not drift_only:
            _draw_lanes(rng, Z, m, substeps)
            if WISHART < 0:
                noise_lanes(V, L, Z, mats, cf, t1, t2, zh, N)
        if straight:
            _straight_step(straight_step, flat, cf, status, c, live, okf, dtb, sq, q, threshold, ok)
            alive -= _stop(ok, status, tdeath, 1, step * dt)
            continue
        _step(V, L, b, Z, N, cf, scheme, dt, dtb, sq, nscale, threshold, D, W, H, t1, t2, Vn, ok)
        alive -= _stop(ok, status, tdeath, 1, step * dt)
        for p in range(n):
            keep[p] = 1.0 if status[p] == 0 else 0.0
        if unit_diag:
            _unit_diag(Vn, keep, D)
        if alive == n:  # every lane moves on: swap the buffers instead of copying
            V, Vn = Vn, V
        else:
            for i in range(m):
                for j in range(m):
                    for p in range(n):  # stopped lanes keep their last valid V
                        V[i, j, p] = Vn[i, j, p] if keep[p] == 1.0 else V[i, j, p]
    while k < save_steps.shape[0]:
        _save(V, Vout, k)
        k += 1


@njit(cache=True, error_model="numpy", nogil=True)
def simulate_lanes(V0, P, dt, nsteps, save_steps, scheme, threshold, rngs, chunk, Vout, status, tdeath, drift_only,
                   bscale, nscale, unit_diag, substeps, straight_step, straight_lanes):
    """As :func:`.kernels.simulate` (the caller checks the coefficients at V0), each chunk's paths as lanes."""
    npaths = Vout.shape[1]
    for c in range(len(rngs)):
        lo = c * chunk
        hi = min(lo + chunk, npaths)
        _run_lanes(V0, P, dt, nsteps, save_steps, scheme, threshold, rngs[c], Vout[:, lo:hi], status[lo:hi],
                   tdeath[lo:hi], drift_only, bscale, nscale, unit_diag, substeps, straight_step, straight_lanes)


# ---- placeholders: a generated module from the matrix form redefines these --------------------------
LANES = False
NSC = 1


@njit(cache=True, error_model="numpy")
def coeffs_lanes(V, P, b, mats, cf, ws, wv, sc):
    b[...] = 0.0


@njit(cache=True, error_model="numpy")
def noise_lanes(V, L, Z, mats, cf, t1, t2, zh, out):
    out[...] = 0.0


NGROUPS = 1
NMATS = 1
NCOEF = 1
NWS = 1
NWV = 1
SYM = (False,)
WISHART = -1
