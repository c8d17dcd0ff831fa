"""The path-vectorised (lane) kernels: every lane of :mod:`covsde.numerics.lanes` equals the per-path
:mod:`covsde.numerics.linalg` on that lane's matrices; a failing lane is flagged without touching the
others; the vectorisable arccosine is accurate to 1e-15; per-entry modules' lane coefficients equal their
per-path ones; the lane integrator counts a path that ends outside the PSD cone; bad kernel options are
refused; the weak-order option on the CLI."""
import numpy as np
import pytest

from covsde.common.errors import CovsdeInputError
from covsde.derive import derive
from covsde.derive.variants import build
from covsde.numerics import lanes, linalg, simulate

M, N = 5, 7  # matrix size, lanes


def _spd_lanes(seed):
    A = np.random.default_rng(seed).normal(size=(N, M, M))
    V = A @ A.transpose(0, 2, 1) / M + 0.3 * np.eye(M)
    return np.ascontiguousarray(V.transpose(1, 2, 0))  # (M, M, N)


def _lane(x, p):
    return np.ascontiguousarray(x[..., p])


def test_every_lane_equals_the_per_path_kernels():
    V = _spd_lanes(1)
    V[2, 2, 3] = -1.0  # lane 3 is not positive definite
    L, ok = np.zeros_like(V), np.zeros(N, bool)
    lanes.chol(V, L, ok)
    assert ok.tolist() == [p != 3 for p in range(N)]
    rng = np.random.default_rng(2)
    Z, b = rng.normal(size=(M, M, N)), rng.normal(size=(M, M, N))
    b = b + b.transpose(1, 0, 2)
    t, out, acc = np.empty_like(V), np.empty_like(V), np.zeros_like(V)
    lanes.lzl(L, Z, t, out)
    lanes.lsl_sym_acc(L, Z, t, 0.7, acc)
    D, W, H, Vn, Vw = (np.empty_like(V) for _ in range(5))
    N_ = out + out.transpose(1, 0, 2)
    okp, okw = np.zeros(N, bool), np.zeros(N, bool)
    lanes.psd_step(L, b, N_, 1e-3, 1e-3, np.sqrt(1e-3), 1.0, 1e6, D, W, H, Vn, okp)
    c = np.linspace(0.5, 0.9, N)  # a lane-array coefficient: N = c·L S Lᵀ alone, the PSD step from S
    lanes.psd_wishart(L, b, Z, c, 1e-3, np.sqrt(1e-3), 1e6, t, D, W, H, Vw, okw)
    Ew, okew = np.empty_like(V), np.zeros(N, bool)
    lanes.em_wishart(V, L, b, Z, c, 1e-3, np.sqrt(1e-3), 1e6, t, Ew, okew)
    En, okn = np.empty_like(V), np.zeros(N, bool)
    lanes.em_accept(V, b, N_, 1e-3, np.sqrt(1e-3), 1e6, En, okn)
    for p in range(N):
        if p == 3:
            continue
        Lp = np.zeros((M, M))
        assert linalg.chol(_lane(V, p), Lp)
        np.testing.assert_allclose(L[..., p], Lp, rtol=1e-13, atol=1e-14)
        tp, op, ap = np.empty((M, M)), np.empty((M, M)), np.zeros((M, M))
        linalg.lzl(Lp, _lane(Z, p), tp, op)
        linalg.lsl_sym_acc(Lp, _lane(Z, p), tp, 0.7, ap)
        np.testing.assert_allclose(out[..., p], op, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(acc[..., p], ap, rtol=1e-12, atol=1e-13)
        Dp, Wp, Hp, Vp = (np.empty((M, M)) for _ in range(4))
        linalg.psd_step(Lp, _lane(b, p), _lane(N_, p), 1e-3, 1e-3, np.sqrt(1e-3), 1.0, Dp, Wp, Hp, Vp)
        np.testing.assert_allclose(Vn[..., p], Vp, rtol=1e-11, atol=1e-13)
        assert okp[p] and okw[p]
        Np = np.zeros((M, M))
        linalg.lsl_sym_acc(Lp, _lane(Z, p), tp, c[p], Np)
        linalg.psd_step(Lp, _lane(b, p), Np, 1e-3, 1e-3, np.sqrt(1e-3), 1.0, Dp, Wp, Hp, Vp)
        np.testing.assert_allclose(Vw[..., p], Vp, rtol=1e-11, atol=1e-13)
        Ewp = np.empty((M, M))
        linalg.em_step(_lane(V, p), _lane(b, p), Np, 1e-3, np.sqrt(1e-3), Ewp)
        assert okew[p]
        np.testing.assert_allclose(Ew[..., p], Ewp, rtol=1e-13, atol=1e-14)
        assert np.abs(Vw[..., p] - Vn[..., p]).max() > 1e-6  # a different noise: the check can fail
        Ep = np.empty((M, M))
        linalg.em_step(_lane(V, p), _lane(b, p), _lane(N_, p), 1e-3, np.sqrt(1e-3), Ep)
        assert linalg.accept(Ep, 1e6) and okn[p]
        np.testing.assert_allclose(En[..., p], Ep, rtol=1e-13, atol=1e-14)
    En2 = En.copy()
    En2[0, 1, 5] = np.nan
    En2[1, 1, 6] = 2e6
    zero = np.zeros_like(En2)  # b = N = 0: the EM step's acceptance of V itself
    lanes.em_accept(En2, zero, zero, 0.0, 0.0, 1e6, np.empty_like(En2), okn)  # a NaN and an over-threshold lane
    # are flagged, the others are not
    assert okn.tolist() == [True] * 5 + [False, False]


def test_lane_arccosine():
    x = np.concatenate([np.linspace(-1, 1, 200001), [1 - 1e-15, -1 + 1e-15, 1e-300, 1.5, -3.0]])
    got = np.array([lanes.acos(v) for v in x])
    ref = np.arccos(np.clip(x, -1, 1))
    assert np.abs(got - ref).max() < 2e-15
    near1 = (x > 0.999) & (x < 1)  # relative accuracy where acos → 0 (correlations near 1)
    assert np.max(np.abs(got[near1] - ref[near1]) / ref[near1]) < 1e-13


def test_a_path_ending_outside_the_cone_is_counted():
    """EM on dV = √2 V dB with dt = 1/4 leaves V > 0 often; a path whose last step does so used to be
    reported alive with V_T < 0 (the factorisation ran only at the start of a step)."""
    d = derive(build("mlp", {})[0], 1)
    r = simulate(d, [[1.0]], 1.0, dt=0.25, paths=640, seed=3, scheme="em", progress=False, kernel="lanes")
    VT = r.V[-1][:, 0, 0]
    assert r.counts["left_psd"] > 20 and np.all(VT[r.alive] > 0)
    assert np.any(r.t_death[r.status == 2] == 1.0)  # some failed on the final check


@pytest.mark.parametrize("scheme", ["em", "psd"])
def test_wishart_lane_steps_follow_the_drift_of_the_per_path_kernel(scheme):
    """The MLP's noise is one Wishart group, so the lane kernel takes both steps from S without the
    generated noise (lanes.em_wishart / psd_wishart); with the noise off (drift_only) a run is deterministic
    and must equal the per-path kernel's to rounding — the drift part of those steps, in the kernel."""
    d = derive(build("mlp", {"c_plus": "1", "c_minus": "-1"})[0], 3)
    V0 = [[1.0, 0.6, 0.2], [0.6, 1.2, 0.5], [0.2, 0.5, 0.9]]
    kw = dict(dt=0.01, paths=5, scheme=scheme, drift_only=True, progress=False)
    a = simulate(d, V0, 0.5, kernel="lanes", **kw)
    b = simulate(d, V0, 0.5, kernel="paths", **kw)
    assert not np.allclose(a.V[-1][0], V0, atol=1e-3)  # the drift moved it
    np.testing.assert_allclose(a.V[-1], b.V[-1], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("variant,values", [("attention", {"mask": "causal", "gamma": "0.5", "tau0": "1"}),
                                            ("resnet", {"norm": "post-rms", "gamma": "0.5"})])
def test_per_entry_modules_have_lane_coefficients(variant, values):
    """A per-entry derivation (a mask, a correlation state): its coeffs_lanes is coeffs on every lane — the
    generated source run as plain Python (no module compile), 3 lanes at 3 different V."""
    from covsde.numerics.codegen import generate_source, param_vector

    d = derive(build(variant, values)[0], 2)
    ns = {}
    exec(compile(generate_source(d).replace("@njit(", "# @njit("), "<generated>", "exec"), ns)
    assert ns["LANES"] and ns["M"] == 2
    Vs = np.stack([np.array([[1.0, 0.3], [0.3, 1.0]]), np.array([[1.0, -0.6], [-0.6, 1.0]]), np.eye(2)], axis=-1)
    P = param_vector(d)
    bl, matsl, cfl = np.empty((2, 2, 3)), np.zeros((ns["NMATS"], 2, 2, 3)), np.zeros((ns["NCOEF"], 3))
    ns["coeffs_lanes"](Vs, P, bl, matsl, cfl, None, None, None)
    b, mats, cf = np.empty((2, 2)), np.zeros((ns["NMATS"], 2, 2)), np.zeros(ns["NCOEF"])
    for p in range(3):
        ns["coeffs"](np.ascontiguousarray(Vs[..., p]), P, b, mats, cf, None, None)
        np.testing.assert_allclose(bl[..., p], b, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(matsl[..., p], mats, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(cfl[:, p], cf, rtol=1e-12, atol=1e-14)
    assert np.abs(bl).max() > 0


def test_kernel_options_are_checked():
    d = derive(build("mlp", {})[0], 2)
    with pytest.raises(CovsdeInputError, match="kernel"):
        simulate(d, np.eye(2), 0.1, dt=0.05, paths=4, kernel="simd", progress=False)
    with pytest.raises(CovsdeInputError, match="substeps"):
        simulate(d, np.eye(2), 0.1, dt=0.05, paths=4, substeps=0, progress=False)
    # the lane buffers grow with the chunk, not with the stored paths: refused before any work (m = 48, a
    # chunk of 4096 lanes needs GBs; the 4096 stored matrices and their summary 363 MiB), accepted with the
    # default chunk
    d48 = derive(build("mlp", {})[0], 48)
    from covsde.numerics.integrate import LANES_CHUNK, _check_lane_buffers, simulation_bytes

    assert simulation_bytes(4096, 1, 48, chunk=4096) < 400 * 1024**2
    with pytest.raises(CovsdeInputError, match="lane kernel's buffers"):
        simulate(d48, np.eye(48), 0.1, dt=0.05, paths=4096, chunk=4096, max_memory="400MB", progress=False)
    from covsde.numerics import load_module

    _check_lane_buffers(load_module(d48), 48, LANES_CHUNK, "400MB")  # the default chunk fits


def test_weak_order_option_on_the_cli_and_its_checks(capsys):
    """`simulate --weak-order 2` reports the extrapolated means (ρ, log V^αα, V) with their SE, 2·E_{dt/2} − E_dt
    exactly; --ode with it is refused; a statistic of the wrong shape is refused by name."""
    import json

    from covsde.cli import main
    from covsde.numerics.richardson import extrapolate

    args = ["simulate", "mlp", "--V0", "[[1,0.3],[0.3,1]]", "--T", "0.5", "--dt", "0.05", "--paths", "256",
            "--format", "json", "--quiet"]
    assert main(args + ["--weak-order", "2"]) == 0
    rep = json.loads(capsys.readouterr().out)
    ex = rep["extrapolated"]
    assert rep["weak_order"] == 2 and set(ex) == {"rho_0_1", "logV_0_0", "logV_1_1", "V_0_0", "V_0_1", "V_1_1"}
    for v in ex.values():
        assert abs(v["extrapolated"] - (2 * v["dt/2"] - v["dt"])) < 1e-9 and v["se"] > 0
    assert main(args + ["--weak-order", "2", "--ode"]) == 2
    d = derive(build("mlp", {})[0], 2)
    with pytest.raises(CovsdeInputError, match="statistic must return"):
        extrapolate(d, [[1, 0.3], [0.3, 1]], 0.5, dt=0.05, paths=64, progress=False,
                    statistic=lambda V: (["a", "b"], V[:, 0, :1]))
