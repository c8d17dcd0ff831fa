"""The straight-line Wishart steps (numerics/straight.py): the same numbers as the lane loops they replace,
to the last bit, lane by lane and through whole runs, with controls that show the comparison can fail."""
import math

import numpy as np
import pytest
from numba import njit

from covsde.derive import derive
from covsde.derive.variants import build
from covsde.numerics import integrate, lanes, simulate, straight


@njit
def _call(step, flat, dtb, sq, q, threshold):
    step(straight.data_ptr(flat), dtb, sq, q, threshold)


def _operands(m, n, seed):
    """A flat workspace holding random V (positive definite), L its Cholesky factors, symmetric b, Z, a noise
    N (not symmetric) and lane coefficients c; lane 1 has a NaN in b, lane 2 a noise large enough to cross
    the threshold, lane 3 is not running (live = 0)."""
    rng = np.random.default_rng(seed)
    flat = np.zeros(straight.offsets(m, n, 1)[-1])
    L, b, Z, V, N, c, live, okf = straight.views(flat, m, n, 1)
    A = rng.standard_normal((m, m, n)) * 0.4
    V[...] = np.einsum("ikp,jkp->ijp", A, A) + np.eye(m)[:, :, None]
    ok = np.empty(n, np.bool_)
    lanes.chol(V, L, ok)
    B = rng.standard_normal((m, m, n))
    b[...] = B + B.transpose(1, 0, 2)
    b[0, m - 1, 1] = b[m - 1, 0, 1] = np.nan
    Z[...] = rng.standard_normal((1, m, m, n))
    Z[0, :, :, 2] *= 1e3
    N[...] = rng.standard_normal((m, m, n))
    N[..., 2] *= 1e4
    c[...] = rng.uniform(0.5, 1.5, n)
    live[...] = 1.0
    live[3] = 0.0
    return flat, (L, b, Z, V, N, c, live, okf)


def _reference(kind, ops, dtb, sq, q, threshold):
    """V' and the flags of the lane loops (lanes.em_wishart / lanes.psd_wishart / lanes.psd_step)."""
    L, b, Z, V, N, c = ops[:6]
    m, n = L.shape[0], L.shape[2]
    work = [np.empty((m, m, n)) for _ in range(5)]
    ok = np.empty(n, np.bool_)
    if kind == "em":
        lanes.em_wishart(V, L, b, Z[0], c, dtb, sq, threshold, work[0], work[4], ok)
    elif kind == "psd":
        lanes.psd_wishart(L, b, Z[0], c, dtb, sq, threshold, *work[:4], work[4], ok)
    else:  # psd_step's q is ¼ dt nscale², from its dt and nscale arguments
        lanes.psd_step(L, b, N, 4 * q, dtb, sq, 1.0, threshold, *work[:3], work[4], ok)
    return work[4], ok


ARGS = (1e-3, 0.05 * math.sqrt(2), 2.5e-4, 50.0)


@pytest.mark.parametrize("kind", straight.KINDS)
@pytest.mark.parametrize("m", [1, 2, 3, 5, 8])
def test_the_straight_steps_equal_the_lane_loops(kind, m):
    """On every lane the flag equals the lane loops' and, where the lane runs and V' is accepted, V is
    overwritten with their V' bit for bit, elsewhere left as it was (m up to MAX_M, 16 lanes: a NaN lane,
    an over-threshold lane and a stopped lane among them)."""
    n = 16
    flat, ops = _operands(m, n, seed=m)
    before = ops[3].copy()
    ref, ok = _reference(kind, ops, *ARGS)
    _call(straight.step(kind, m, n), flat, *ARGS)
    assert (ops[7] == 1.0).tolist() == ok.tolist()
    assert not ok[1] and not ok[2] and ok.sum() >= n - 4  # the flag is exercised both ways
    moved = ok & (ops[6] == 1.0)
    assert not moved[3] and moved.sum() >= n - 5
    np.testing.assert_array_equal(ops[3][..., moved], ref[..., moved])
    np.testing.assert_array_equal(ops[3][..., ~moved], before[..., ~moved])


@pytest.mark.parametrize("kind,edit", [("psd", ("0.5 * dtb", "0.45 * dtb")), ("em", ("+ dtb *", "+ 0.9 * dtb *")),
                                       ("general-psd", ("- q *", "- 0.9 * q *"))])
def test_a_changed_step_is_caught(kind, edit):
    """Negative control: the generated text with one factor changed (the drift's; the Itô term's) no longer
    matches."""
    m, n = 3, 16
    text = straight.source(kind, m, n)
    assert edit[0] in text
    ns = {}
    exec(compile(text.replace(*edit).replace("cache=True", "cache=False"), "<changed>", "exec"), ns)  # our own text
    flat, ops = _operands(m, n, seed=0)
    ref, _ = _reference(kind, ops, *ARGS)
    _call(ns["step"], flat, *ARGS)
    assert not np.array_equal(ops[3][..., 0], ref[..., 0])


@pytest.mark.parametrize("variant,values,scheme,kind", [("mlp", {"c_plus": "1", "c_minus": "-1"}, "em", "em"),
                                                        ("mlp", {"c_plus": "1", "c_minus": "-1"}, "psd", "psd"),
                                                        ("attention", {"gamma": "1", "tau0": "1"}, "psd", "general-psd")])
def test_runs_are_the_same_with_and_without_it(monkeypatch, variant, values, scheme, kind):
    """simulate (m = 3, chunks of 16 over 40 paths: two full chunks take the straight step, the third the
    loops) equals the run with the straight step off, bit for bit — including the paths stopped by a low
    threshold, which keep their last valid V."""
    d = derive(build(variant, values)[0], 3)
    V0 = [[1.0, 0.6, 0.2], [0.6, 1.2, 0.5], [0.2, 0.5, 0.9]]
    kw = dict(dt=0.02, paths=40, chunk=16, seed=5, threshold=2.0, save_at=[0.5, 1.0], progress=False,
              kernel="lanes", scheme=scheme)
    on = simulate(d, V0, 1.0, **kw)
    assert integrate._straight(integrate.load_module(d), 3, scheme, 16, 40) == (straight.step(kind, 3, 16), 16)
    monkeypatch.setattr(integrate, "STRAIGHT_MAX_M", 0)
    assert integrate._straight(integrate.load_module(d), 3, scheme, 16, 40)[1] == 0
    off = simulate(d, V0, 1.0, **kw)
    assert 0 < on.counts["exploded"] < 40
    np.testing.assert_array_equal(on.V, off.V)
    np.testing.assert_array_equal(on.status, off.status)
    np.testing.assert_array_equal(on.t_death, off.t_death)


def test_general_em_takes_the_loops():
    """EM with a noise other than one Wishart group has no straight step (its step is one pass already)."""
    d = derive(build("attention", {"gamma": "1", "tau0": "1"})[0], 3)
    assert integrate._straight(integrate.load_module(d), 3, "em", 16, 40)[1] == 0


def test_the_module_key_covers_the_numerics_sources(monkeypatch):
    name = straight.module_name("psd", 3, 16)
    others = [straight.module_name(k, 3, 16) for k in ("em", "general-psd")]
    others += [straight.module_name("psd", 3, 32), straight.module_name("psd", 4, 16)]
    assert name not in others
    monkeypatch.setattr(straight, "source_hash", lambda *pkgs: "edited numerics")
    assert straight.module_name("psd", 3, 16) != name


def test_sizes_outside_its_range_are_refused():
    with pytest.raises(ValueError, match="m = 9"):
        straight.step("psd", straight.MAX_M + 1, 128)
    with pytest.raises(ValueError, match="n = 0"):
        straight.step("em", 3, 0)
    with pytest.raises(ValueError, match="'milstein'"):
        straight.step("milstein", 3, 16)
