"""The lane kernel's normals (:mod:`covsde.numerics.normals`): xoshiro256++ per lane and a 256-layer
ziggurat.  The tables satisfy their defining equations; the draws are standard normal (a KS test and the
first four moments on 10⁶ draws, seeded); lanes and consecutive draws are uncorrelated; the tail beyond
the ziggurat's base R comes out at its exact rate; a chunk's draws depend on its seed only."""
import math

import numpy as np
from scipy import stats

from covsde.numerics import normals

N_DRAWS = 1_000_000  # 7 812 rows of 128 lanes


def _draws(seed=1, rows=N_DRAWS // 128, lanes=128):
    out = np.empty((rows, lanes))
    normals.rows(normals.states(np.random.SeedSequence(seed).spawn(1), lanes)[0], out)
    return out


def test_ziggurat_tables_solve_their_equations():
    """Every layer has the same area v (the base layer's tail included), and the top layer ends at 0."""
    x = normals.WIDTH * 2.0**52
    f = np.exp(-0.5 * x**2)
    v = normals.R * math.exp(-0.5 * normals.R**2) + math.sqrt(math.pi / 2) * math.erfc(normals.R / math.sqrt(2))
    assert abs(x[0] * math.exp(-0.5 * normals.R**2) - v) < 1e-15  # layer 0: width x_0 at height f(R)
    areas = x[1:] * (np.append(f[2:], 1.0) - f[1:])  # layer i ≥ 1: width x_i, from f(x_i) to f(x_{i+1})
    np.testing.assert_allclose(areas, v, rtol=1e-9)
    assert np.all(np.diff(x) < 0) and 0 < x[-1] < 0.25
    assert normals.BOUND[0] == int(2.0**52 * normals.R / x[0])


def _standard(z):
    """Seeded checks on n draws, each at 4.5 SE (≈ 7e-6 false alarms each) or α = 0.001 (KS): KS against
    N(0, 1) (detects a shift of 0.005 σ: D ≈ 0.4 δ > 1.95/√n at n = 10⁶); mean, variance (detects a scale
    error of 0.35 %), skewness and kurtosis near 0, 1, 0, 3."""
    n = z.size
    return (stats.kstest(z, "norm").pvalue > 1e-3 and abs(z.mean()) < 4.5 / math.sqrt(n)
            and abs(z.var() - 1) < 4.5 * math.sqrt(2 / n) and abs(stats.skew(z)) < 4.5 * math.sqrt(6 / n)
            and abs(stats.kurtosis(z)) < 4.5 * math.sqrt(24 / n))


def test_draws_are_standard_normal():
    """10⁶ draws pass :func:`_standard`; negative controls: the same draws shifted by 0.01 σ, or scaled by
    1.005, fail it."""
    z = _draws().ravel()
    assert _standard(z)
    assert not _standard(z + 0.01) and not _standard(1.005 * z)


def test_tail_rate_and_independence():
    """The fraction beyond ±R (drawn by the exact tail branch) is 2Φ(−R) = 2.6e-4 within 4.5 SE; lanes and
    consecutive draws of a lane are uncorrelated (|r| < 4.5/√n over all pairs of neighbours)."""
    z = _draws(seed=2)
    p, n = 2 * stats.norm.sf(normals.R), z.size
    assert abs((np.abs(z) > normals.R).mean() - p) < 4.5 * math.sqrt(p / n)
    assert abs(np.corrcoef(z[:, :-1].ravel(), z[:, 1:].ravel())[0, 1]) < 4.5 / math.sqrt(n)
    assert abs(np.corrcoef(z[:-1].ravel(), z[1:].ravel())[0, 1]) < 4.5 / math.sqrt(n)


def test_a_chunks_draws_depend_on_its_seed_only():
    a, b = _draws(seed=3, rows=50), _draws(seed=3, rows=50)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, _draws(seed=4, rows=50))
    few = _draws(seed=3, rows=50, lanes=128)[:, :5]  # a short last chunk draws its first lanes' streams
    out = np.empty((50, 5))
    normals.rows(normals.states(np.random.SeedSequence(3).spawn(1), 128)[0], out)
    np.testing.assert_array_equal(out, few)
