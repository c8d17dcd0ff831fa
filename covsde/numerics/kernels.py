"""The integrator kernels, as ordinary Python (Numba-compiled): everything of a generated module
except the derivation's own coefficients.

A generated module (:mod:`.codegen`) is this file's source followed by the derivation-specific part:
the constants ``M, NGROUPS, NMATS, NCOEF, NWS, NWV, PARAMS, SYM, DESCRIPTION`` and the two functions

* ``coeffs(V, P, b, mats, cf, ws, wv)``: the drift b(V), the matrices A_t(V), B_t(V) and coefficients c_t
  of the structured noise (P: the run-time parameter values, in the order of PARAMS; ws, wv: NWS m×m
  and NWV length-m work arrays, allocated once per chunk);
* ``noise(V, L, Z, mats, cf, t1, t2, zh, out)``: out = Σ_g Σ_t c_t A_t (L Z_g Lᵀ)^{(T_t)} B_t.

Those later definitions replace the placeholders at the end of this file (Numba resolves global names
when it compiles, so the loops below call the generated ones).  Imported on its own, this module
integrates the trivial SDE dV = 0 (useful for reading, linting and testing the loops).

Schemes, for dV = b dt + N √dt with N the structured noise:

* ``em`` (Euler–Maruyama, scheme 0):  V' = V + b dt + N √dt.
* ``psd`` (congruence step, scheme 1, the default):  with D = b dt + N √dt − ¼ dt N V⁻¹ N and
  H = ½ D V⁻¹,   V' = (I + H) V (I + H)ᵀ = V + D + ¼ D V⁻¹ D, computed as the Gram matrix
  F Fᵀ, F = L + ½ (L⁻¹ D)ᵀ (L = chol V).
  V' is a congruence of V, so it is positive semidefinite whatever the step; pathwise
  V' = V + b dt + N √dt + O(dt^{3/2}) with odd O(dt^{3/2}) terms, so the weak order is EM's.

Parameter values whose coefficients at V0 are not finite mark every path with status 3 and run
nothing (the caller refuses them).  Stopping: a path whose V is not finite or has max|V| > threshold
is *exploded* (status 1); one whose Cholesky factorisation fails (V left the positive-definite cone)
*left_psd* (status 2).  Both are stopped, counted and timed, and keep their last valid V.  ``bscale``
multiplies the drift and ``nscale`` the noise (Σ × nscale²) at run time, for power analyses.  Paths
run in fixed chunks, each chunk seeded from its own ``np.random.Generator`` (spawned from the user's
seed by SeedSequence), so results do not depend on the number of threads.  Arithmetic follows NumPy's
error model (a division by zero gives inf/NaN, counted as a failure, never an exception).
"""
import math

import numpy as np
from numba import njit

from covsde.numerics import linalg


@njit(cache=True, error_model="numpy", inline="always")
def _sqrtc(x):
    return math.sqrt(x) if x > 0.0 else 0.0


@njit(cache=True, error_model="numpy", inline="always")
def _acos(x):
    if x > 1.0:
        x = 1.0
    elif x < -1.0:
        x = -1.0
    return math.atan2(math.sqrt(1.0 - x * x), x)


@njit(cache=True, error_model="numpy", inline="always")
def _draw(rng, Z, m, substeps):
    """Standard normals for every noise group (the upper triangle only for a SYM group); with substeps = k > 1,
    each is the sum of k consecutive draws over √k (the Brownian increment of k steps of dt/k)."""
    for g in range(NGROUPS):
        for i in range(m):
            for j in range(i if SYM[g] else 0, m):
                Z[g, i, j] = rng.standard_normal()
    for _ in range(substeps - 1):
        for g in range(NGROUPS):
            for i in range(m):
                for j in range(i if SYM[g] else 0, m):
                    Z[g, i, j] += rng.standard_normal()
    if substeps > 1:
        r = 1.0 / math.sqrt(substeps)
        for g in range(NGROUPS):
            for i in range(m):
                for j in range(m):
                    Z[g, i, j] *= r


@njit(cache=True, error_model="numpy")
def _run_chunk(V0, P, dt, nsteps, save_steps, scheme, threshold, rng, Vout, status, tdeath, drift_only, bscale,
               nscale, unit_diag, substeps):
    m = V0.shape[0]
    V = np.empty((m, m))
    Vn = np.empty((m, m))
    b = np.empty((m, m))
    N = np.empty((m, m))
    D = np.empty((m, m))
    W = np.empty((m, m))
    H = np.empty((m, m))
    t1 = np.empty((m, m))
    t2 = np.empty((m, m))
    zh = np.empty((m, m))
    L = np.zeros((m, m))
    mats = np.zeros((NMATS, m, m))
    cf = np.zeros(NCOEF)
    ws = np.zeros((NWS, m, m))
    wv = np.zeros((NWV, m))
    Z = np.empty((NGROUPS, m, m))
    sq = math.sqrt(dt) * nscale
    dtb = dt * bscale
    for p in range(Vout.shape[1]):
        V[:, :] = V0
        st = 0
        k = 0
        for step in range(nsteps + 1):
            while k < save_steps.shape[0] and save_steps[k] == step:
                Vout[k, p, :, :] = V
                k += 1
            if not linalg.chol(V, L):  # also after the last step: a path ending outside the cone is counted
                st = 2
            if step == nsteps and st == 0:
                break
            if st == 0:
                coeffs(V, P, b, mats, cf, ws, wv)
                if drift_only:
                    N[:, :] = 0.0
                else:
                    _draw(rng, Z, m, substeps)
                    noise(V, L, Z, mats, cf, t1, t2, zh, N)
                if scheme == 0:
                    linalg.em_step(V, b, N, dtb, sq, Vn)
                else:
                    linalg.psd_step(L, b, N, dt, dtb, sq, nscale, D, W, H, Vn)
                if linalg.accept(Vn, threshold):
                    V[:, :] = Vn
                    if unit_diag:  # a correlation state: back onto unit diagonal (the PSD step's quadratic terms move it)
                        for i in range(m):
                            D[i, 0] = 1.0 / math.sqrt(V[i, i])
                        for i in range(m):
                            for j in range(m):
                                V[i, j] *= D[i, 0] * D[j, 0]
                else:
                    st = 1
            if st != 0:
                status[p] = st
                tdeath[p] = step * dt
                while k < save_steps.shape[0]:
                    Vout[k, p, :, :] = V
                    k += 1
                break


@njit(cache=True, error_model="numpy")
def _finite_at(V0, P):
    """The coefficients at V0 are finite numbers."""
    m = V0.shape[0]
    b = np.empty((m, m))
    mats = np.zeros((NMATS, m, m))
    cf = np.zeros(NCOEF)
    ws = np.zeros((NWS, m, m))
    wv = np.zeros((NWV, m))
    coeffs(V0, P, b, mats, cf, ws, wv)
    return np.all(np.isfinite(b)) and np.all(np.isfinite(mats)) and np.all(np.isfinite(cf))


@njit(cache=True, error_model="numpy", nogil=True)
def simulate(V0, P, dt, nsteps, save_steps, scheme, threshold, rngs, chunk, Vout, status, tdeath, drift_only,
             bscale, nscale, unit_diag, substeps):
    npaths = Vout.shape[1]
    nchunks = len(rngs)
    if not _finite_at(V0, P):  # parameter values whose coefficients are not finite: nothing is run
        status[:] = 3
        return
    for c in range(nchunks):  # the caller runs batches of chunks on threads (the GIL is released)
        lo = c * chunk
        hi = min(lo + chunk, npaths)
        _run_chunk(V0, P, dt, nsteps, save_steps, scheme, threshold, rngs[c], Vout[:, lo:hi], status[lo:hi],
                   tdeath[lo:hi], drift_only, bscale, nscale, unit_diag, substeps)


# ---- placeholders: a generated module redefines everything below for its derivation ----------------
M = 1
NGROUPS = 1
NMATS = 1
NCOEF = 1
NWS = 1
NWV = 1
PARAMS = ()
SYM = (False,)
DESCRIPTION = "placeholder: dV = 0"


@njit(cache=True, error_model="numpy")
def coeffs(V, P, b, mats, cf, ws, wv):
    b[:, :] = 0.0


@njit(cache=True, error_model="numpy")
def noise(V, L, Z, mats, cf, t1, t2, zh, out):
    out[:, :] = 0.0
