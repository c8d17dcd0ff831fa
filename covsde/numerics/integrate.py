"""Solving a derived covariance SDE: many paths in parallel, and the drift-only ODE.

    res = simulate(derivation, V0, T, dt=0.01, paths=4096, seed=0, scheme="psd", params={...})
    res.V[-1]          # (paths, m, m) at T — dead paths keep their last valid V, see res.alive
    res.summary()      # quantiles of ρ^{αβ}_T and log V^{αα}_T over surviving paths, counts
    sol = solve_ode(derivation, V0, T, params={...})    # dV/dt = b(V), SciPy DOP853

Numerical failures are counted, never hidden: ``exploded`` (non-finite or max|V| > threshold)
and ``left_psd`` (Cholesky failed); statistics use surviving paths only.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..common import checks, limits
from ..common.errors import CovsdeInputError
from ..common.progress import Progress
from ..common.stats import features, quantiles
from . import straight
from .codegen import load_module, param_vector

SCHEMES = {"em": 0, "psd": 1}
KERNELS = ("auto", "lanes", "paths")
LANES_CHUNK = 128  # lanes of the lane kernel per chunk (B1: 0.62 s at 128 and 256, 0.70 s at 64)
STRAIGHT_MAX_M = straight.MAX_M  # the straight-line steps up to here (its compile time grows as m³)
LANES_MAX_M = 48  # auto: lanes up to here (Transformer, 256 paths: m = 48 lanes 0.72 s vs per path 0.88 s;
#                   m = 64: 2.13 s vs 1.82 s — the lane buffers outgrow the caches, BLAS wins)


MAX_V0_ENTRY = 1e100  # larger entries overflow the checks (V − Vᵀ, eigenvalues) and every step


def check_V0(V0, m=None, name="V0", state="V"):
    """A symmetric positive-definite finite m×m float array (with ``state="correlation"``: unit diagonal),
    or a CovsdeInputError naming the problem."""
    try:
        A = np.asarray(V0, dtype=float)
    except (TypeError, ValueError, OverflowError, RecursionError):
        raise CovsdeInputError(f"{name} must be a square matrix of numbers, got {str(V0)[:200]}") from None
    if A.ndim == 0:
        A = A.reshape(1, 1)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] == 0:
        raise CovsdeInputError(f"{name} must be a square matrix (at least 1×1), got shape {A.shape}")
    limits.check_count(f"the size of {name}", A.shape[0], limits.max_m(), "COVSDE_MAX_M")
    if m is not None and A.shape[0] != m:
        raise CovsdeInputError(f"{name} is {A.shape[0]}×{A.shape[0]} but m = {m}")
    if not np.all(np.isfinite(A)):
        i, j = np.argwhere(~np.isfinite(A))[0]
        raise CovsdeInputError(f"{name} has non-finite entries (NaN or inf), e.g. {name}[{i}][{j}] = {A[i, j]}")
    if A.size and np.abs(A).max() > MAX_V0_ENTRY:
        i, j = np.unravel_index(np.argmax(np.abs(A)), A.shape)
        raise CovsdeInputError(f"{name}[{i}][{j}] = {A[i, j]:g} is too large (entries at most {MAX_V0_ENTRY:g} in size)")
    if not np.allclose(A, A.T, rtol=1e-10, atol=1e-12):
        i, j = np.unravel_index(np.argmax(np.abs(A - A.T)), A.shape)
        raise CovsdeInputError(f"{name} is not symmetric: {name}[{i}][{j}]={A[i, j]} but {name}[{j}][{i}]={A[j, i]}")
    w = np.linalg.eigvalsh(A)
    if w.min() <= 0:
        raise CovsdeInputError(f"{name} is not positive definite (smallest eigenvalue {w.min():.3g})")
    if state == "correlation" and not np.allclose(np.diag(A), 1.0, rtol=0, atol=1e-12):
        raise CovsdeInputError(f"{name} must be a correlation matrix (unit diagonal) for a normalised block, whose "
                               f"state is the correlation: its diagonal is {np.diag(A).tolist()}")
    return 0.5 * (A + A.T)


def check_time(T, dt=None, paths=None):
    """(T, dt, paths, number of steps), checked: T, dt finite > 0, dt ≤ T, steps ≤ the step limit."""
    T = checks.real("T", T, positive=True)
    nsteps = None
    if dt is not None:
        dt = checks.real("dt", dt, positive=True)
        if dt > T:
            raise CovsdeInputError(f"dt must not exceed T, got dt={dt} > T={T}")
        nsteps = T / dt
        limits.check_count("the number of time steps T/dt", nsteps, limits.max_steps(),
                           "COVSDE_MAX_STEPS", f" (T = {T:g}, dt = {dt:g})")
        nsteps = max(1, int(round(nsteps)))
    if paths is not None:
        paths = checks.integer("paths", paths, 1)
    return T, dt, paths, nsteps


RNG_BYTES = 3200  # one seeded generator per chunk: a NumPy Generator (~1 KB) and its numba typed-list entry


def simulation_bytes(paths, nsaved, m, levels=1, chunk=None):
    """The peak memory of a simulation and its summary, every buffer counted (per path, in bytes):

    * each level (``levels`` = 2 for Richardson extrapolation: both runs are kept): V at the saved times,
      the status and the death time, 8·(nsaved·m² + 2);
    * a generator per chunk of ``chunk`` paths (default the smallest default chunk, 64): RNG_BYTES/chunk;
    * the summary of the paths at T: the survivors' copy, the correlations and a temporary of the same
      size, and the features with their stacked copy, 8·(3m² + 2k + m), k = m(m+1)/2;
    * with two levels, the extrapolation's statistics of the survivors (the copy of V, the correlations, and
      the (paths, m(m+1)) values of both levels and their pairs), 8·(4m² + 3m(m+1)).

    The lane kernel's per-thread buffers are checked apart (they depend on the chunk, not on the paths)."""
    chunk = max(1, int(chunk or 64))
    k = m * (m + 1) // 2
    per = levels * 8.0 * (nsaved * m * m + 2) + RNG_BYTES / chunk + 8.0 * (3 * m * m + 2 * k + m)
    if levels > 1:
        per += 8.0 * (4 * m * m + 3 * m * (m + 1))
    return float(paths) * per


def check_simulation_size(paths, nsaved, m, nsteps, max_memory=None, levels=1, chunk=None):
    """Refuse up front a simulation whose buffers (:func:`simulation_bytes`) would not fit in memory."""
    lv = f" at {levels} step sizes" if levels > 1 else ""
    limits.check_memory(simulation_bytes(paths, nsaved, m, levels, chunk),
                        f"{paths} paths × {nsaved} saved times × {m}×{m} matrices{lv} (stored, summarised)", max_memory)
    limits.check_work(float(paths) * nsteps * levels * (20 * m**3 + 200), f"{paths} paths × {nsteps} steps at m = {m}")


@dataclass
class SimResult:
    """Paths of the SDE, as :func:`simulate` returns them.

    Attributes:
        t: the saved times.
        V: V at the saved times, shape (len(t), paths, m, m).
        status: per path 0 alive, 1 exploded (max|V| above the threshold or not finite), 2 left the PSD cone.
        t_death: per path the time it stopped (inf for a path alive at T).
        T: the terminal time; ``dt`` the step, ``seed``, ``scheme`` as given, ``seconds`` the run time.

    ``alive`` (a boolean mask), ``counts`` ({"survived", "exploded", "left_psd"}) and ``summary(k)``
    (quantiles of ρ^{αβ} and log V^{αα} and the mean over the surviving paths at saved time k) read it.
    """

    t: np.ndarray  # saved times
    V: np.ndarray  # (len(t), paths, m, m)
    status: np.ndarray  # 0 alive, 1 exploded, 2 left_psd
    t_death: np.ndarray
    T: float
    dt: float
    seed: int
    scheme: str
    seconds: float = 0.0
    info: dict = field(default_factory=dict)

    @property
    def alive(self):
        return self.status == 0

    @property
    def counts(self):
        return {"survived": int((self.status == 0).sum()), "exploded": int((self.status == 1).sum()),
                "left_psd": int((self.status == 2).sum())}

    def summary(self, k=-1):
        """Quantiles of ρ^{αβ} and log V^{αα} at saved time index k over surviving paths."""
        return summarize(self.V[k][self.alive])

    def __str__(self):
        c = self.counts
        lines = [f"SimResult: {len(self.status)} paths, m = {self.V.shape[-1]}, T = {self.T:g}, dt = {self.dt:g}, "
                 f"scheme {self.scheme}, seed {self.seed} ({self.seconds:.2f} s)",
                 f"survived {c['survived']}, exploded {c['exploded']}, left the PSD cone {c['left_psd']}"]
        for name, q in self.summary()["quantiles"].items():
            lines.append(f"  {name:>10}: median {q[2]:+.4f}, 5–95 % [{q[0]:+.4f}, {q[4]:+.4f}]")
        return "\n".join(lines)

    def _repr_html_(self):
        import html

        return "<pre>" + html.escape(str(self)) + "</pre>"


def summarize(VT):
    """Quantiles (LEVELS) of ρ^{αβ} and log V^{αα} and the mean of a sample VT (paths, m, m)."""
    out = {"quantiles": {}, "mean": None}
    if len(VT) == 0:
        return out
    names, F = features(VT)
    out["quantiles"] = {nm: quantiles(F[:, j]) for j, nm in enumerate(names)}
    out["mean"] = VT.mean(0).tolist()
    return out


def _save_times(save_at, T):
    if save_at is None:
        return [T]
    try:
        times = sorted(checks.real("save_at", t, nonnegative=True, maximum=T) for t in save_at)
    except TypeError:
        raise CovsdeInputError(f"save_at must be a list of times in [0, T], got {save_at!r}") from None
    if not times:
        raise CovsdeInputError("save_at is empty")
    return times


def run_batches(run, nchunks, batches=20):
    """Call run(c0, c1) over about ``batches`` contiguous ranges of chunks on numba's thread count
    (NUMBA_NUM_THREADS) of threads; yields the number of paths of each range as it finishes.  BLAS runs
    single-threaded meanwhile: the paths are the parallelism (a multi-threaded BLAS inside each of
    our threads oversubscribes the cores: 5× slower at m = 128 on 2 cores)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield from _batches(run, nchunks, batches)


def _batches(run, nchunks, batches):
    import numba

    threads = max(1, numba.get_num_threads())
    nb = min(nchunks, max(batches, threads))
    per = (nchunks + nb - 1) // nb
    ranges = [(c0, min(nchunks, c0 + per)) for c0 in range(0, nchunks, per)]
    if threads == 1 or len(ranges) == 1:
        for c0, c1 in ranges:
            yield run(c0, c1)
        return
    from concurrent.futures import ThreadPoolExecutor, as_completed

    with ThreadPoolExecutor(threads) as pool:
        for fut in as_completed([pool.submit(run, c0, c1) for c0, c1 in ranges]):
            yield fut.result()


def simulate(derivation, V0, T, *, dt=0.01, paths=1000, seed=0, scheme="psd", params=None, threshold=1e6,
             save_at=None, chunk=None, progress=None, drift_only=False, drift_scale=1.0, diffusion_scale=1.0,
             max_memory=None, kernel="auto", substeps=1):
    """Integrate dV = b dt + Σ^{1/2} dB for ``paths`` paths (see :mod:`.kernels` for the schemes).

    Arguments:
        derivation: a :class:`~covsde.derive.Derivation` with a limit (not ``no-limit``).
        V0: the initial m×m Gram (symmetric, positive definite; a correlation matrix for a
            ``correlation`` state).
        T: the terminal time t = ℓ/n^κ.
        dt: the time step (T/dt steps, rounded up).
        paths: the number of independent paths.
        seed: the seed of the Brownian paths; the result does not depend on the thread count.
        scheme: "psd" (the congruence step that keeps V positive semidefinite, default) or "em".
        params: numbers for the symbols left in the derivation, e.g. ``{"gamma": 0.35, "tau0": 1}``.
        threshold: a path stops (``exploded``) when max|V| exceeds this.

    Returns:
        SimResult: V at the saved times of every path, each path's status and time of death, the counts
            (``survived``, ``exploded``, ``left_psd``) and ``summary()`` (quantiles of ρ and log V^αα).

    Raises:
        CovsdeInputError: a bad V0, T, dt, seed or parameter value, no limit, or a request beyond the
            memory, step or work limits.

    Example:
        ```python
        from covsde.derive import derive
        from covsde.derive.variants import build
        from covsde.numerics import simulate

        d = derive(build("mlp", {})[0], 2)
        r = simulate(d, [[1, .2], [.2, 1]], T=0.5, paths=100, progress=False)
        print(r.counts, r.summary()["quantiles"]["rho_0_1"])
        ```

    The other keywords:
    ``chunk``: paths per independently seeded chunk (default: LANES_CHUNK for the lane kernel, 64 per path).
    ``kernel``: "lanes" runs each chunk of ``chunk`` paths as the SIMD lanes of one loop
    (:mod:`.lane_kernels`), "paths" one path after another (:mod:`.kernels`), "auto" (default) the lanes up
    to m = LANES_MAX_M (beyond, the per-path loop's BLAS products are faster).  Both draw a chunk's normals from that chunk's own
    generator, so results never depend on the thread count; the two kernels draw them in different orders.

    ``save_at``: times at which V is stored (default: [T]); rounded to the step grid.
    ``progress``: None or True → progress on stderr (a bar on a terminal, else a line every 10 s);
    False → none.
    ``drift_scale``, ``diffusion_scale``: solve dV = s_b·b dt + (s_Σ·Σ)^{1/2} dB instead (power checks).
    ``max_memory``: the memory limit for the stored paths (default: see :mod:`covsde.common.limits`).
    ``substeps``: each step's normals are the sum of ``substeps`` draws over √substeps, i.e. the Brownian
    path of the run with step dt/substeps, the same seed and chunk: runs at several step sizes then share
    one Brownian path (the coupled levels of :func:`.richardson.extrapolate`)."""
    checks.choice("scheme", scheme, tuple(SCHEMES))
    checks.choice("kernel", kernel, KERNELS)
    if not derivation.has_limit:
        raise CovsdeInputError(f"no SDE limit for these parameters (regime no-limit): {derivation.reason}")
    V0 = check_V0(V0, derivation.m, state=getattr(derivation, "state", "V"))
    T, dt, paths, nsteps = check_time(T, dt, paths)
    seed = checks.seed(seed)
    substeps = checks.integer("substeps", substeps, 1, 1024)
    drift_scale = checks.real("drift_scale", drift_scale)
    diffusion_scale = checks.real("diffusion_scale", diffusion_scale, nonnegative=True)
    threshold = checks.real("threshold", threshold, positive=True)
    times = _save_times(save_at, T)
    check_simulation_size(paths, len(times), derivation.m, nsteps, max_memory, chunk=chunk)
    P = param_vector(derivation, params)
    mod = load_module(derivation)
    lanes = _use_lanes(kernel, mod, derivation)
    chunk = _chunk(chunk, lanes, mod, derivation.m, paths, max_memory)
    dt = T / nsteps
    save_steps = np.array([min(nsteps, max(0, int(round(t / dt)))) for t in times], dtype=np.int64)
    nchunks = (paths + chunk - 1) // chunk
    import numba

    rngs = numba.typed.List([np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(nchunks)])
    Vout = np.zeros((len(save_steps), paths, derivation.m, derivation.m))
    status = np.zeros(paths, dtype=np.int64)
    tdeath = np.full(paths, np.inf)
    t0 = time.perf_counter()
    bar = Progress(paths, "simulate", "paths", enabled=progress is None or bool(progress))
    args = (V0, P, dt, nsteps, save_steps, SCHEMES[scheme], float(threshold))
    tail = (bool(drift_only), float(drift_scale), math.sqrt(float(diffusion_scale)),
            getattr(derivation, "state", "V") == "correlation", int(substeps))
    entry = mod.simulate_lanes if lanes else mod.simulate
    tail += _straight(mod, derivation.m, scheme, chunk, paths) if lanes else ()

    def run(c0, c1):
        """Chunks c0..c1-1 (each carries its own seed: the batching does not change the result)."""
        p0, p1 = c0 * chunk, min(paths, c1 * chunk)
        with warnings.catch_warnings():  # numba's Generator seeding casts uint64 → int64 (harmless)
            warnings.simplefilter("ignore", category=numba.NumbaTypeSafetyWarning)
            entry(*args, rngs[c0:c1], chunk, Vout[:, p0:p1], status[p0:p1], tdeath[p0:p1], *tail)
        return p1 - p0

    if lanes and not all(np.all(np.isfinite(x)) for x in lane_coefficients(mod, derivation.m, P)(V0)):
        status[:] = 3  # (the per-path entry checks this itself)
    else:
        for done in run_batches(run, nchunks):
            bar.update(done)
    bar.close()
    _refuse_non_finite(status, derivation, P)
    return SimResult(np.array(times, float), Vout, status, tdeath, float(T), float(dt), int(seed), scheme,
                     time.perf_counter() - t0, {"kernel": "lanes" if lanes else "paths"})


def _refuse_non_finite(status, derivation, P):
    """The kernels mark every path 3 when the coefficients at V0 are not finite: a clear error instead."""
    if np.any(status == 3):
        vals = ", ".join(f"{s.name} = {x:g}" for s, x in zip(derivation.parameters, P))
        raise CovsdeInputError(f"the drift or noise coefficients are not finite at V0 with {vals or 'these values'}")


def _chunk(chunk, lanes, mod, m, paths, max_memory):
    """The chunk size, checked (default LANES_CHUNK for the lane kernel, 64 per path), and the lane
    buffers it implies checked against the memory limit."""
    chunk = checks.integer("chunk", chunk if chunk is not None else (LANES_CHUNK if lanes else 64), 1)
    if lanes:
        _check_lane_buffers(mod, m, min(chunk, paths), max_memory)
    return chunk


def _check_lane_buffers(mod, m, lanes, max_memory):
    """Refuse up front lane buffers that would not fit: per thread, about 12 + NMATS + NWS + NGROUPS m×m
    arrays of ``lanes`` paths each (the chunk size decides them, not the number of paths)."""
    import numba

    per = 8.0 * m * m * lanes * (12 + mod.NMATS + mod.NWS + mod.NGROUPS)
    threads = max(1, numba.get_num_threads())
    limits.check_memory(per * threads, f"the lane kernel's buffers ({threads} threads × {lanes} lanes of {m}×{m} "
                        f"matrices; a smaller chunk needs less)", max_memory)


def _straight(mod, m, scheme, chunk, paths):
    """The lane kernel's last two arguments: the straight-line step of :mod:`.straight` for (m, chunk) and
    ``chunk`` when one applies — m ≤ STRAIGHT_MAX_M, at least one full chunk, and either one Wishart noise
    group (EM or PSD) or the PSD scheme (the general PSD step) — else a step that does nothing and 0 (the
    chunks of another size, and every other run, take the loops of :mod:`.lanes`; the same result to the
    last bit)."""
    if m > STRAIGHT_MAX_M or chunk > paths:
        return straight.none(), 0
    if mod.WISHART >= 0 and mod.NGROUPS == 1:
        return straight.step(scheme, m, chunk), chunk
    if scheme == "psd":
        return straight.step("general-psd", m, chunk), chunk
    return straight.none(), 0


def _use_lanes(kernel, mod, derivation):
    """Whether simulate runs the lane kernel (see its ``kernel`` argument; every generated module has it)."""
    return kernel == "lanes" or (kernel == "auto" and derivation.m <= LANES_MAX_M)


@dataclass
class OdeResult:
    """The drift-only ODE's solution, as :func:`solve_ode` returns it.

    Attributes:
        t: the times reported.
        V: V at each, shape (len(t), m, m).
        blowup_time: the time max|V| passed the threshold (None if it did not).
        success: whether the solver reached T or the blow-up.
        message: the solver's message.
    """

    t: np.ndarray
    V: np.ndarray  # (len(t), m, m)
    blowup_time: float | None
    success: bool
    message: str


def workspace(mod, m):
    """The arrays a generated ``coeffs`` writes into: (mats, cf, ws, wv)."""
    return (np.zeros((mod.NMATS, m, m)), np.zeros(mod.NCOEF), np.zeros((mod.NWS, m, m)), np.zeros((mod.NWV, m)))


def lane_coefficients(mod, m, P):
    """V ↦ (b, mats, cf) at one V through the module's lane code (one lane), so that a module compiles only
    its lane functions for simulate, the ODE and the check at V0."""
    mats, cf = np.zeros((mod.NMATS, m, m, 1)), np.zeros((mod.NCOEF, 1))
    ws, wv, sc = np.zeros((mod.NWS, m, m, 1)), np.zeros((mod.NWV, m, 1)), np.zeros((mod.NSC, 1))

    def coefficients(V):
        b = np.empty((m, m, 1))
        mod.coeffs_lanes(np.ascontiguousarray(V, dtype=float)[:, :, None], P, b, mats, cf, ws, wv, sc)
        return b[:, :, 0], mats[..., 0], cf[:, 0]

    return coefficients


def drift_function(derivation, params=None):
    """b as a numpy function V ↦ b(V) (compiled: the module's lane code on one lane)."""
    coefficients = lane_coefficients(load_module(derivation), derivation.m, param_vector(derivation, params))
    return lambda V: coefficients(V)[0].copy()


def solve_ode(derivation, V0, T, *, params=None, t_eval=None, threshold=1e6, rtol=1e-10, atol=1e-12,
              method="DOP853", compiled=True):
    """The drift-only ODE dV/dt = b(V) with an adaptive high-order solver.

    Arguments:
        derivation: a :class:`~covsde.derive.Derivation` with a limit.
        V0: the initial m×m Gram.
        T: the terminal time.
        params: numbers for the symbols left in the derivation.
        t_eval: the times to report (default: the solver's own steps).
        threshold: the solution stops at blow-up, max|V| > threshold, reported as ``blowup_time``.
        rtol: the solver's relative tolerance.
        atol: the solver's absolute tolerance.
        method: a ``scipy.integrate.solve_ivp`` method (default DOP853).
        compiled: False: the derivation's numeric drift instead of the generated module (no compilation;
            for the small m of a validation).

    Returns:
        OdeResult: the times ``t``, ``V`` at each, ``blowup_time`` (None if none), ``success``, ``message``.

    Raises:
        CovsdeInputError: a bad V0, T or parameter value, or no limit.

    Example:
        ```python
        from covsde.derive import derive
        from covsde.derive.variants import build
        from covsde.numerics import solve_ode

        d = derive(build("resnet", {"p": "0", "q": "1/2", "gamma": "0.8"})[0], 2)   # regime ode
        sol = solve_ode(d, [[1, .3], [.3, .8]], 1.0, compiled=False)
        print(sol.V[-1])
        ```
    """
    from scipy.integrate import solve_ivp

    if not derivation.has_limit:
        raise CovsdeInputError(f"no SDE limit for these parameters (regime no-limit): {derivation.reason}")
    V0 = check_V0(V0, derivation.m, state=getattr(derivation, "state", "V"))
    T = check_time(T)[0]
    threshold = checks.real("threshold", threshold, positive=True)
    m = derivation.m
    if compiled:
        b = drift_function(derivation, params)
    else:
        num = derivation.numeric_fn()

        def b(V):
            return np.asarray(num(V, params or {})[0], dtype=float)

    def f(t, y):
        return b(y.reshape(m, m)).ravel()

    def blow(t, y):
        return threshold - np.abs(y).max()

    blow.terminal = True
    sol = solve_ivp(f, (0.0, T), V0.ravel(), method=method, rtol=rtol, atol=atol, t_eval=t_eval, events=blow)
    tb = float(sol.t_events[0][0]) if len(sol.t_events[0]) else None
    return OdeResult(sol.t, sol.y.T.reshape(-1, m, m), tb, sol.success, sol.message)
