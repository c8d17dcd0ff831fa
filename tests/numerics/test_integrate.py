"""numerics/: generated kernels, integrators and their exact-law checks.

Statistical tests here are seeded; each states its sample size.  KS tests use α = 0.01."""
import math

import numba
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from scipy import stats

from covsde.derive import derive
from covsde.derive.errors import CovsdeInputError
from covsde.derive.variants import build
from covsde.numerics import load_module, simulate, solve_ode
from covsde.numerics.codegen import param_vector
from covsde.numerics.integrate import workspace
from covsde.validate.strategies import psd_matrices


def _d(variant, m, **s):
    blk, _ = build(variant, {k: str(v) for k, v in s.items()})
    return derive(blk, m)


# ---- generated kernels equal SymPy evaluation -------------------------------------------------
KERNEL_CASES = [("mlp", 3, {}, {}), ("transformer", 3, {"gamma": 0.6, "tau0": 0.8}, {}),
                ("resnet", 2, {"gamma": 0.5}, {}),
                ("transformer", 2, {}, {"gamma": 0.45, "tau0": 0.7}),  # symbolic parameters, run-time values
                ("mlp", 2, {"c_plus": "c_plus", "c_minus": "c_minus"}, {"c_plus": 0.3, "c_minus": -1.7})]


@pytest.mark.parametrize("variant,m,s,values", KERNEL_CASES)
def test_generated_kernels_match_sympy(variant, m, s, values):
    d = _d(variant, m, **s)
    mod = load_module(d)
    P = param_vector(d, values)
    fn = d.numeric_fn()
    rng = np.random.default_rng(7)

    @settings(max_examples=25, deadline=None)
    @given(psd_matrices(m))
    def check(V):
        b = np.empty((m, m))
        mats, cf, ws, wv = workspace(mod, m)
        mod.coeffs(V, P, b, mats, cf, ws, wv)
        sub = {sym: V[i, j] for sym, (i, j) in zip(d.symbols, [(i, j) for i in range(m) for j in range(i, m)])}
        sub.update({sym: values[sym.name] for sym in d.parameters})
        ref = np.array(d.drift.xreplace(sub).evalf(30), dtype=float)
        np.testing.assert_allclose(b, ref, rtol=1e-12, atol=1e-12 * max(1.0, np.abs(ref).max()))
        # noise: module vs the lambdified structured noise, same Z
        L = np.linalg.cholesky(V)
        Z = rng.standard_normal((mod.NGROUPS, m, m))
        out, t1, t2, zh = (np.empty((m, m)) for _ in range(4))
        mod.noise(V, L, Z, mats, cf, t1, t2, zh, out)
        _, groups = fn(V, values)
        N = np.zeros((m, m))
        for g, grp in enumerate(groups):
            Zg = Z[g]
            if mod.SYM[g]:  # S drawn directly from the upper triangle; (Z'+Z'ᵀ)/√2 = S with Z' = S/√2
                S = np.triu(Zg, 1) + np.triu(Zg, 1).T + np.diag(np.sqrt(2) * np.diag(Zg))
                Zg = S / np.sqrt(2)
            Zh = L @ Zg @ L.T
            for c, A, T, B in grp:
                N += c * (np.eye(m) if A is None else A) @ (Zh.T if T else Zh) @ (np.eye(m) if B is None else B)
        np.testing.assert_allclose(out, N, rtol=1e-12, atol=1e-12 * max(1.0, np.abs(N).max()))

    check()


def test_one_module_serves_all_parameter_values():
    """Parameters are run-time inputs: symbolic γ, τ0 → one module; values change the result."""
    blk, _ = build("attention", {})
    d = derive(blk, 2)
    V0 = np.array([[1.0, 0.2], [0.2, 1.0]])
    a = simulate(d, V0, 0.5, paths=200, seed=1, params={"gamma": 0.5, "tau0": 1.0})
    b = simulate(d, V0, 0.5, paths=200, seed=1, params={"gamma": 0.5, "tau0": 0.3})
    assert not np.array_equal(a.V, b.V)
    with pytest.raises(CovsdeInputError, match="tau0"):
        simulate(d, V0, 0.5, params={"gamma": 0.5})
    # same coefficients (kernel level) and same law as the derivation with numbers substituted
    from covsde.numerics.integrate import drift_function

    dn = derive(build("attention", {"gamma": "0.5", "tau0": "0.3"})[0], 2)
    for V in (V0, np.array([[2.0, -0.3], [-0.3, 0.7]])):
        np.testing.assert_allclose(drift_function(d, {"gamma": 0.5, "tau0": 0.3})(V), drift_function(dn)(V),
                                   rtol=1e-12)
        np.testing.assert_allclose(d.numeric(V, {"gamma": 0.5, "tau0": 0.3})[1], dn.numeric(V)[1], rtol=1e-12)
    x = simulate(d, V0, 0.5, paths=3000, seed=1, params={"gamma": 0.5, "tau0": 0.3}).V[-1]
    y = simulate(dn, V0, 0.5, paths=3000, seed=2).V[-1]
    assert stats.ks_2samp(x[:, 0, 1], y[:, 0, 1]).pvalue > 0.01


def test_acos_printed_domain_safe():
    from covsde.numerics.codegen import NumbaPrinter

    x = sp.Symbol("x")
    assert "_acos(" in NumbaPrinter().doprint(sp.acos(x)) and "_sqrtc(" in NumbaPrinter().doprint(sp.sqrt(x))


# ---- exact laws --------------------------------------------------------------------------------
def test_mlp_log_norm_is_gaussian_and_ks_detects_wrong_diffusion():
    """log V_T ~ N(log V_0 − T, 2T) (LNR22), m = 1, 20 000 paths, T = 1, dt = 0.005."""
    d = _d("mlp", 1)
    V0, T = 1.3, 1.0
    cdf = stats.norm(math.log(V0) - T, math.sqrt(2 * T)).cdf
    r = simulate(d, [[V0]], T, dt=0.005, paths=20000, seed=3)
    assert r.counts["survived"] == 20000
    p_ok = stats.kstest(np.log(r.V[-1][:, 0, 0]), cdf).pvalue
    bad = simulate(d, [[V0]], T, dt=0.005, paths=20000, seed=3, diffusion_scale=1.1)
    p_bad = stats.kstest(np.log(bad.V[-1][:, 0, 0]), cdf).pvalue
    assert p_ok > 0.01, p_ok
    assert p_bad < 0.01, p_bad


def _rho_1d(rho0, T, paths, seed, c=1.0, dt=2e-4):
    """dρ = [ν(ρ) − ½ρ(1−ρ²)]dt + (1−ρ²)dW, ν = c²/(2π)(√(1−ρ²) − ρ arccos ρ), EM with a fine step."""
    rng = np.random.default_rng(seed)
    r = np.full(paths, rho0)
    for _ in range(int(round(T / dt))):
        nu = c**2 / (2 * np.pi) * (np.sqrt(np.clip(1 - r * r, 0, None)) - r * np.arccos(np.clip(r, -1, 1)))
        r = r + (nu - 0.5 * r * (1 - r * r)) * dt + (1 - r * r) * math.sqrt(dt) * rng.standard_normal(paths)
        r = np.clip(r, -1, 1)
    return r


def test_mlp_correlation_law_matches_1d_sde():
    """ρ_T of the m = 2 SDE vs the 1-D correlation SDE (two-sample KS, 20 000 paths each)."""
    d = _d("mlp", 2)
    V0 = np.array([[1.0, 0.2], [0.2, 1.5]]) @ np.diag([1, 1])
    rho0 = 0.2 / math.sqrt(1.5)
    r = simulate(d, V0, 0.5, dt=0.002, paths=20000, seed=5)
    VT = r.V[-1]
    rho = VT[:, 0, 1] / np.sqrt(VT[:, 0, 0] * VT[:, 1, 1])
    ref = _rho_1d(rho0, 0.5, 20000, 6)
    assert stats.ks_2samp(rho, ref).pvalue > 0.01
    # the comparison can fail: a 1-D law with a different drift is rejected
    assert stats.ks_2samp(rho, _rho_1d(rho0, 0.5, 20000, 6, c=2.0)).pvalue < 0.01


def leaky_relu_recursion(V0, d, cp=1.0, cm=-1.0):
    """Infinite-width kernel recursion of a deep leaky-ReLU net, s± = 1 + c±/√d (arc-cosine kernel)."""
    sp_, sm = 1 + cp / math.sqrt(d), 1 + cm / math.sqrt(d)
    c = 2 / (sp_**2 + sm**2)
    K = np.array(V0, float)
    for _ in range(d):
        s = math.sqrt(K[0, 0] * K[1, 1])
        rho = np.clip(K[0, 1] / s, -1, 1)
        Jp = s * (math.sqrt(1 - rho**2) + rho * (math.pi - math.acos(rho))) / (2 * math.pi)
        Jm = s * (math.sqrt(1 - rho**2) - rho * math.acos(rho)) / (2 * math.pi)
        off = c * ((sp_**2 + sm**2) * Jp - 2 * sp_ * sm * Jm)
        K = np.array([[c * (sp_**2 + sm**2) / 2 * K[0, 0], off], [off, c * (sp_**2 + sm**2) / 2 * K[1, 1]]])
    return K


def test_ode_reproduces_width_first_kernel_recursion():
    """With s± = 1 ± 1/√d one layer of the recursion is exactly an Euler step of dK/dτ = b(K) with
    step 1/(d+1), so recursion − ODE = O(1/d): measured 1.17e-4 at d = 1000, halving with d, and the
    Richardson extrapolation 2K(2d) − K(d) agrees with the ODE to < 1e-5."""
    d = _d("mlp", 2, c_plus=1, c_minus=-1)
    V0 = np.array([[1.0, 0.3], [0.3, 1.0]])
    sol = solve_ode(d, V0, 1.0)
    assert sol.success
    ode = sol.V[-1][0, 1]
    k1, k2, k4 = (leaky_relu_recursion(V0, n)[0, 1] for n in (1000, 2000, 4000))
    e1, e2, e4 = abs(ode - k1), abs(ode - k2), abs(ode - k4)
    assert e1 < 1.5e-4
    assert 0.4 < e2 / e1 < 0.6 and 0.4 < e4 / e2 < 0.6  # first-order convergence to the ODE
    assert abs(ode - (2 * k2 - k1)) < 1e-5
    assert abs(ode - (2 * k4 - k2)) < 3e-6
    # and it is a real comparison: a 10 % shorter time is far off
    assert abs(solve_ode(d, V0, 0.9).V[-1][0, 1] - k1) > 1e-3


# ---- PSD, stopping rules, reproducibility ---------------------------------------------------------
@pytest.mark.parametrize("variant", ["mlp", "transformer"])
def test_default_scheme_never_leaves_psd_cone(variant, capsys):
    m = 8
    d = _d(variant, m, **({"gamma": 0.35355339, "tau0": 1} if variant == "transformer" else {}))
    V0 = np.array([[0.7 ** abs(i - j) for j in range(m)] for i in range(m)])
    psd = simulate(d, V0, 1.0, dt=0.01, paths=4096, seed=2, scheme="psd")
    em = simulate(d, V0, 1.0, dt=0.01, paths=4096, seed=2, scheme="em")
    with capsys.disabled():
        print(f"\n[{variant} m=8 T=1 dt=0.01 4096 paths] psd: {psd.counts}  em: {em.counts}")
    assert psd.counts["left_psd"] == 0
    assert np.all(np.isfinite(psd.V))


def test_explosion_is_counted_not_hidden():
    d = _d("mlp", 1, activation="x + x**2", a=0.5)  # 𝔟 = 3/4 / a² = 3 > 0: finite-time blow-up
    r = simulate(d, [[2.0]], 2.0, dt=0.005, paths=2000, seed=1, threshold=1e4)
    c = r.counts
    assert c["exploded"] > 100 and c["survived"] + c["exploded"] + c["left_psd"] == 2000
    assert np.all(np.isfinite(r.V)) and np.all(r.t_death[r.status == 1] <= 2.0)


def test_same_seed_same_output_with_one_and_two_threads():
    d = _d("mlp", 3)
    V0 = np.array([[1.0, 0.3, 0.1], [0.3, 1.0, 0.2], [0.1, 0.2, 1.0]])
    outs = []
    for nt in (1, 2):
        numba.set_num_threads(nt)
        outs.append(simulate(d, V0, 0.5, dt=0.01, paths=1000, seed=42).V)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert np.array_equal(outs[0], outs[1])
    assert not np.array_equal(outs[0], simulate(d, V0, 0.5, dt=0.01, paths=1000, seed=43).V)


@pytest.mark.parametrize("V0,msg", [([[1, 0.5], [0.4, 1]], "not symmetric"), ([[1, 2], [2, 1]], "positive definite"),
                                    ([[1, 0], [0, float("nan")]], "non-finite"), ([[1, 0, 0]], "square"),
                                    ([[1.0]], "but m = 2")])
def test_bad_V0(V0, msg):
    d = _d("mlp", 2)
    with pytest.raises(CovsdeInputError, match=msg):
        simulate(d, V0, 1.0)


@pytest.mark.parametrize("kw,msg", [({"T": -1}, "T must be"), ({"dt": 0}, "dt must be"), ({"dt": 2.0}, "exceed"),
                                    ({"paths": 0}, "paths")])
def test_bad_times(kw, msg):
    d = _d("mlp", 2)
    args = dict(T=1.0, dt=0.01, paths=10)
    args.update(kw)
    with pytest.raises(CovsdeInputError, match=msg):
        simulate(d, np.eye(2), args["T"], dt=args["dt"], paths=args["paths"])


def test_no_limit_is_refused():
    with pytest.raises(CovsdeInputError, match="no-limit"):
        simulate(_d("standard-attention", 2), np.eye(2), 1.0)
