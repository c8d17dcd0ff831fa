"""The straight-line Wishart PSD step (numerics/straight.py): the same numbers as the lane loops it replaces,
to the last bit, lane by lane and through whole runs, with a control that shows the comparison can fail."""
import math

import numpy as np
import pytest
from numba import njit

from covsde.derive import derive
from covsde.derive.variants import build
from covsde.numerics import integrate, lanes, simulate, straight


@njit
def _call(step, flat, dtb, sq, threshold):
    step(straight.data_ptr(flat), dtb, sq, threshold)


def _operands(m, n, seed):
    """A flat workspace holding random L (Cholesky factors), symmetric b, Z and lane coefficients c; lane 1
    has a NaN in b, lane 2 a noise large enough to cross the threshold."""
    rng = np.random.default_rng(seed)
    flat = np.zeros(straight.offsets(m, n, 1)[6])
    L, b, Z, Vn, c, okf = straight.views(flat, m, n, 1)
    A = rng.standard_normal((m, m, n)) * 0.4
    ok = np.empty(n, np.bool_)
    lanes.chol(np.einsum("ikp,jkp->ijp", A, A) + np.eye(m)[:, :, None], L, ok)
    B = rng.standard_normal((m, m, n))
    b[...] = B + B.transpose(1, 0, 2)
    b[0, m - 1, 1] = b[m - 1, 0, 1] = np.nan
    Z[...] = rng.standard_normal((1, m, m, n))
    Z[0, :, :, 2] *= 1e3
    c[...] = rng.uniform(0.5, 1.5, n)
    return flat, (L, b, Z, Vn, c, okf)


def _reference(ops, dtb, sq, threshold):
    L, b, Z, _, c, _ = ops
    m, n = L.shape[0], L.shape[2]
    work = [np.empty((m, m, n)) for _ in range(5)]
    ok = np.empty(n, np.bool_)
    lanes.psd_wishart(L, b, Z[0], c, dtb, sq, threshold, *work[:4], work[4], ok)
    return work[4], ok


@pytest.mark.parametrize("m", [1, 2, 3, 5, 8])
def test_the_straight_step_equals_the_lane_loops(m):
    """Every lane of V' and of the acceptance flag equals lanes.psd_wishart's, bit for bit (m up to MAX_M,
    16 lanes, a NaN lane and an over-threshold lane among them)."""
    n, args = 16, (1e-3, 0.05 * math.sqrt(2), 50.0)
    flat, ops = _operands(m, n, seed=m)
    ref, ok = _reference(ops, *args)
    _call(straight.psd_step(m, n), flat, *args)
    np.testing.assert_array_equal(ops[3], ref)
    assert (ops[5] == 1.0).tolist() == ok.tolist()
    assert not ok[1] and not ok[2] and ok.sum() >= n - 4  # the flag is exercised both ways


def test_a_changed_step_is_caught():
    """Negative control: the generated text with the drift's ½ changed to 0.45 no longer matches."""
    m, n, args = 3, 16, (1e-3, 0.05 * math.sqrt(2), 50.0)
    text = straight.source(m, n).replace("0.5 * dtb", "0.45 * dtb").replace("cache=True", "cache=False")
    ns = {}
    exec(compile(text, "<changed>", "exec"), ns)  # our own generated text, not an input
    flat, ops = _operands(m, n, seed=0)
    ref, _ = _reference(ops, *args)
    _call(ns["psd_wishart"], flat, *args)
    assert not np.array_equal(ops[3][..., 0], ref[..., 0])


def test_runs_are_the_same_with_and_without_it(monkeypatch):
    """simulate (mlp, m = 3, PSD, chunks of 16 over 40 paths: two full chunks take the straight step, the
    third the loops) equals the run with the straight step off, bit for bit — including the paths stopped by
    a low threshold, which keep their last valid V."""
    d = derive(build("mlp", {"c_plus": "1", "c_minus": "-1"})[0], 3)
    V0 = [[1.0, 0.6, 0.2], [0.6, 1.2, 0.5], [0.2, 0.5, 0.9]]
    kw = dict(dt=0.02, paths=40, chunk=16, seed=5, threshold=2.0, save_at=[0.5, 1.0], progress=False,
              kernel="lanes")
    on = simulate(d, V0, 1.0, **kw)
    assert integrate._straight(integrate.load_module(d), 3, "psd", 16, 40)[1] == 16
    monkeypatch.setattr(integrate, "STRAIGHT_MAX_M", 0)
    assert integrate._straight(integrate.load_module(d), 3, "psd", 16, 40)[1] == 0
    off = simulate(d, V0, 1.0, **kw)
    assert 0 < on.counts["exploded"] < 40
    np.testing.assert_array_equal(on.V, off.V)
    np.testing.assert_array_equal(on.status, off.status)
    np.testing.assert_array_equal(on.t_death, off.t_death)


def test_the_module_key_covers_the_numerics_sources(monkeypatch):
    name = straight.module_name(3, 16)
    assert straight.module_name(3, 32) != name and straight.module_name(4, 16) != name
    monkeypatch.setattr(straight, "source_hash", lambda *pkgs: "edited numerics")
    assert straight.module_name(3, 16) != name


def test_sizes_outside_its_range_are_refused():
    with pytest.raises(ValueError, match="m = 9"):
        straight.psd_step(straight.MAX_M + 1, 128)
    with pytest.raises(ValueError, match="n = 0"):
        straight.psd_step(3, 0)

