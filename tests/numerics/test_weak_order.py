"""Weak order: bias-vs-dt slopes of EM, the PSD scheme and Richardson extrapolation on an SDE with a known law.

The SDE: the `mlp` at m = 1, dV = √2 V dB (geometric Brownian motion), whose solution
V_T = V0·exp(√2 B_T − T) is known path by path.  Every run's Brownian endpoint B_T is rebuilt from its seed
(:func:`covsde.numerics.richardson.brownian_endpoint`), so each path's error log V_T − log V_T^exact is
measured against its own exact solution: the bias of E[log V_T] is resolved to the strong error's noise
(SE 1e-3 … 3e-3 at 100 000 paths) rather than to the spread of log V_T (SE 4.5e-3), and the coupling of
the two Richardson levels (``substeps``) is checked on the way: an uncoupled coarse level would leave
O(√dt) noise and no slope.

Measured (T = 1, V0 = 1, seed 7, 100 000 paths), bias of E[log V_T]:  PSD scheme at dt = 1/16, 1/32, 1/64:
−0.109, −0.046, −0.022 (slope 1.2, still pre-asymptotic); EM at 1/32, 1/64, 1/128: −0.126, −0.053, −0.024
(slope 1.2); Richardson of the PSD scheme at dt = 1/8, 1/16, 1/32: +0.062, +0.017, +0.003 (slope 2.2).
Asserted: EM and PSD slopes in [0.8, 1.4], Richardson slope in [1.6, 3], and the extrapolated bias at
dt = 1/32 (96 steps of work) below a quarter of the PSD bias at dt = 1/64 (64 steps), i.e. the plain
scheme would need more than 4 × 64 steps for it.  Stopped paths (EM leaves the cone at coarse dt) are
counted and at most 0.5 %."""
import numpy as np

from covsde.derive import derive
from covsde.derive.variants import build
from covsde.numerics.richardson import brownian_endpoint, extrapolate

T, PATHS, SEED, CHUNK = 1.0, 100_000, 7, 128


def _log(V):
    return ["logV"], np.log(V[:, 0, :1])


def _slope(points):
    dts, errs = zip(*points)
    return float(np.polyfit(np.log(dts), np.log(np.abs(errs)), 1)[0])


def test_bias_slopes_em_psd_and_richardson():
    d = derive(build("mlp", {})[0], 1)
    runs = {}
    for scheme, levels in (("psd", (8, 16, 32)), ("em", (32, 64))):
        for n in levels:
            ex = extrapolate(d, [[1.0]], T, dt=T / n, paths=PATHS, seed=SEED, statistic=_log, scheme=scheme,
                             chunk=CHUNK, kernel="lanes", progress=False)
            exact = np.sqrt(2.0) * brownian_endpoint(T, 2 * n, PATHS, SEED, CHUNK)[ex.alive] - T
            c, f = (v[:, 0] - exact for v in ex.values)
            runs[scheme, n] = (c.mean(), f.mean(), (2 * f - c).mean(), (2 * f - c).std() / np.sqrt(len(c)))
            assert ex.failed <= PATHS // 200, (scheme, n, ex.failed)
    psd = [(1 / (2 * n), runs["psd", n][1]) for n in (8, 16, 32)]
    em = [(1 / 32, runs["em", 32][0]), (1 / 64, runs["em", 32][1]), (1 / 128, runs["em", 64][1])]
    rich = [(1 / n, runs["psd", n][2]) for n in (8, 16, 32)]
    assert all(abs(r) > 3 * runs["psd", n][3] for (_, r), n in zip(rich, (8, 16, 32))), runs
    s_psd, s_em, s_r = _slope(psd), _slope(em), _slope(rich)
    assert 0.8 <= s_psd <= 1.4 and 0.8 <= s_em <= 1.4, (s_psd, s_em, psd, em)
    assert 1.6 <= s_r <= 3.0, (s_r, rich)
    assert abs(rich[2][1]) < abs(psd[2][1]) / 4, (rich, psd)
