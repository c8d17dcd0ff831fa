"""Weak order 2 by Richardson extrapolation: E[f(V_T)] from two step sizes on one Brownian path.

EM and the PSD scheme have weak order 1: E_dt[f(V_T)] = E[f(V_T)] + c dt + O(dt²) for smooth f (Talay and
Tubaro's expansion), so

    E_R[f] = 2 E_{dt/2}[f] − E_dt[f] = E[f(V_T)] + O(dt²).

Both levels are simulated with the same seed: the coarse run draws the fine run's normals two by two
(``substeps=2`` of :func:`.integrate.simulate`), so a path of the coarse level follows the same Brownian
path as its fine partner.  The extrapolated estimate is the mean of the paired values 2 f(V_fine) −
f(V_coarse) over the paths that survived at both levels, and its standard error is that of the paired
values (the coupling keeps it close to the fine level's own).  Cost: 1.5× the fine run.

Statistics: by default the features of :func:`covsde.common.stats.features` (ρ^{αβ}, log V^{αα}, without
the norms for a correlation state) and the entries V^{αβ} (α ≤ β); or a function V (N, m, m) → (N, k)
with its k names.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..common.errors import CovsdeInputError
from ..common.stats import features
from .integrate import simulate


@dataclass
class Extrapolation:
    """The result of :func:`extrapolate`: per statistic the means at dt and dt/2 and their extrapolation.

    Attributes:
        names: the statistics (``rho_a_b``, ``logV_a_a``, ``V_a_b``, or the callable's indices).
        coarse: E_dt[f], one value per statistic.
        fine: E_{dt/2}[f].
        extrapolated: 2·E_{dt/2}[f] − E_dt[f].
        se: the standard errors of the extrapolated means (over the paths alive at both levels).
        dt: the coarse step.
        paths: the paths alive at both levels; ``failed`` those stopped at either.
        runs: the two SimResults (coarse, fine).

    ``to_dict()`` gives {name: {"extrapolated", "se", "dt", "dt/2"}}, the JSON of ``covsde simulate
    --weak-order 2``.
    """

    names: list
    coarse: np.ndarray  # E_dt[f] (k,)
    fine: np.ndarray  # E_{dt/2}[f]
    extrapolated: np.ndarray  # 2 E_{dt/2}[f] − E_dt[f]
    se: np.ndarray  # standard error of the extrapolated means
    dt: float
    paths: int  # paths alive at both levels
    failed: int  # paths stopped (exploded or left the PSD cone) at either level
    alive: np.ndarray  # (paths requested,) bool: alive at both levels
    values: tuple  # (coarse, fine): the statistic of every path alive at both levels, (paths, k) each
    runs: tuple = ()  # (coarse, fine) SimResults

    def to_dict(self):
        return {name: {"extrapolated": float(e), "se": float(s), "dt": float(c), "dt/2": float(f)}
                for name, e, s, c, f in zip(self.names, self.extrapolated, self.se, self.coarse, self.fine)}


def default_statistics(V, state="V"):
    """(names, values (N, k)): ρ, log V^{αα} and the entries V^{αβ} (α ≤ β) of each V."""
    names, cols = features(V, norms=state != "correlation")
    m = V.shape[-1]
    iu = np.triu_indices(m)
    return names + [f"V_{a}_{b}" for a, b in zip(*iu)], np.concatenate([cols, V[:, iu[0], iu[1]]], axis=1)


def _values(stat, V, state):
    names, vals = stat(V) if stat is not None else default_statistics(V, state)
    vals = np.asarray(vals, dtype=float)
    if vals.ndim != 2 or vals.shape[0] != V.shape[0] or vals.shape[1] != len(names):
        raise CovsdeInputError(f"statistic must return (names, array of shape (paths, len(names))), got shape "
                               f"{vals.shape} for {len(names)} names")
    return list(names), vals


def extrapolate(derivation, V0, T, *, dt=0.01, paths=1000, seed=0, statistic=None, **kwargs):
    """Richardson-extrapolated means of a statistic of V_T (weak order 2; see the module docstring).

    Two runs on one Brownian path, at dt/2 and at dt (the coarse run sums the fine run's normals in
    pairs), give 2·E_{dt/2}[f] − E_dt[f] over the paths alive in both.

    Arguments:
        derivation: a :class:`~covsde.derive.Derivation` with a limit.
        V0: the initial m×m Gram.
        T: the terminal time.
        dt: the coarse step (the fine run takes dt/2).
        paths: the number of paths of each run.
        seed: the seed of the shared Brownian path.
        statistic: a callable V_T (paths, m, m) → (paths, k) values, or None for ρ, log V^αα and V.
        **kwargs: passed to :func:`~covsde.numerics.simulate` (scheme, params, chunk, kernel, …);
            ``save_at`` and ``substeps`` are set here.

    Returns:
        Extrapolation: per statistic the extrapolated mean with its standard error and the two levels'
            means (``to_dict()``), and both runs.

    Raises:
        CovsdeInputError: bad arguments, or fewer than 2 paths alive in both runs.

    Example:
        ```python
        from covsde.derive import derive
        from covsde.derive.variants import build
        from covsde.numerics import extrapolate

        d = derive(build("mlp", {})[0], 2)
        ex = extrapolate(d, [[1, .2], [.2, 1]], 0.5, dt=0.02, paths=100, progress=False)
        print(ex.to_dict()["rho_0_1"])
        ```
    """
    for key in ("save_at", "substeps"):
        if key in kwargs:
            raise CovsdeInputError(f"extrapolate sets {key} itself")
    from .integrate import check_simulation_size, check_time

    T, dt, paths, steps = check_time(T, dt, paths)  # the coarse level: steps of T/steps; the fine: half that
    check_simulation_size(paths, 1, derivation.m, 2 * steps, kwargs.get("max_memory"), levels=2,
                          chunk=kwargs.get("chunk"))  # both levels and their statistics, before either runs
    fine = simulate(derivation, V0, T, dt=T / (2 * steps), paths=paths, seed=seed, **kwargs)
    coarse = simulate(derivation, V0, T, dt=T / steps, paths=paths, seed=seed, substeps=2, **kwargs)
    ok = fine.alive & coarse.alive
    if ok.sum() < 2:
        raise CovsdeInputError(f"fewer than 2 paths survived at both levels ({int(ok.sum())} of {paths})")
    state = getattr(derivation, "state", "V")
    names, f1 = _values(statistic, fine.V[-1][ok], state)
    _, f0 = _values(statistic, coarse.V[-1][ok], state)
    paired = 2.0 * f1 - f0
    n = len(paired)
    return Extrapolation(names, f0.mean(0), f1.mean(0), paired.mean(0), paired.std(0, ddof=1) / np.sqrt(n),
                         float(coarse.dt), n, int(paths - n), ok, (f0, f1), (coarse, fine))


def brownian_endpoint(T, steps, paths, seed, chunk=None):
    """B_T of every path of a lane-kernel run with one noise entry (m = 1, a single symmetric noise group),
    ``steps`` steps and substeps 1, rebuilt from the seed: chunk c draws its lanes' normals step by step from
    its own generator (SeedSequence(seed).spawn), as :func:`.integrate.simulate` does (NumPy's normals are
    Numba's).  With it a known-law SDE's exact solution is followed path by path, so weak errors can be
    measured to the strong error's noise (the weak-order test and benchmark)."""
    from .integrate import LANES_CHUNK

    chunk = chunk or LANES_CHUNK
    nch = (paths + chunk - 1) // chunk
    seeds = np.random.SeedSequence(int(seed)).spawn(nch)
    B = [np.random.default_rng(s).standard_normal((steps, min(chunk, paths - c * chunk))).sum(0)
         for c, s in enumerate(seeds)]
    return np.concatenate(B) * np.sqrt(T / steps)
