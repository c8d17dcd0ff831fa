"""Generated modules: numbers that Numba can type, keys that cover numerics/, and broken cache files
(a garbled module, garbled Numba cache files) that are rebuilt instead of failing."""
import ast
import os
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from covsde.derive import derive
from covsde.derive.variants import build
from covsde.numerics import codegen, linalg, straight
from covsde.common.expr import fold_numbers
from covsde.numerics.codegen import generate_source, load_module, param_vector

INT64 = 2**63


def _int_literals(source):
    return [n.value for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Constant) and isinstance(n.value, int)
            and not isinstance(n.value, bool)]


def decimal(lo, hi):
    """Decimal text with up to 17 significant digits in [lo, hi]."""
    return st.builds(lambda x, k: f"{x:.{k}g}", st.floats(lo, hi, allow_nan=False), st.integers(1, 17))


CASES = {"mlp": {"c_plus": decimal(-1.5, 1.5), "c_minus": decimal(-1.5, 1.5)},
         "resnet": {"gamma": decimal(0.05, 1.0), "c_minus": decimal(-1.5, 1.5)},
         "attention": {"gamma": decimal(0.05, 1.0), "tau0": decimal(0.3, 3.0)},
         "transformer": {"gamma": decimal(0.05, 1.0), "tau0": decimal(0.3, 3.0), "c_plus": decimal(-1, 1)}}


@settings(max_examples=24, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(CASES)).flatmap(lambda v: st.tuples(st.just(v), st.fixed_dictionaries(CASES[v]))))
def test_decimal_parameters_print_as_numba_typable_code(case):
    """Any pasted decimal (up to 17 significant digits) for every variant: the generated code has no
    integer literal outside int64; its coefficient function equals SymPy's evaluation of the derivation;
    and a short simulation (4 paths × 3 steps) runs — both with the generated module's own source,
    executed as plain Python (compiling a module per example would take ~10 s each; one compiled run
    is test_the_papers_gamma_simulates)."""
    variant, values = case
    d = derive(build(variant, values)[0], 2)
    src = generate_source(d)
    assert all(abs(v) < INT64 for v in _int_literals(src))
    ns = {}
    exec(compile(src.replace("@njit(", "# @njit("), "<generated>", "exec"), ns)  # plain Python, no Numba
    V = np.array([[1.1, 0.3], [0.3, 0.8]])
    b, mats, cf = np.empty((2, 2)), np.zeros((ns["NMATS"], 2, 2)), np.zeros(ns["NCOEF"])
    ws, wv = np.zeros((ns["NWS"], 2, 2)), np.zeros((ns["NWV"], 2))
    ns["coeffs"](V, param_vector(d), b, mats, cf, ws, wv)
    ref, _ = d.numeric(V)
    np.testing.assert_allclose(b, ref, rtol=1e-12, atol=1e-14)
    Vout, status, tdeath = np.zeros((1, 4, 2, 2)), np.zeros(4, dtype=np.int64), np.full(4, np.inf)
    ns["simulate"](V, param_vector(d), 0.01, 3, np.array([3]), 1, 1e6, [np.random.default_rng(0)], 4, Vout, status,
                   tdeath, False, 1.0, 1.0, False, 1)
    assert np.all(status == 0) and np.all(np.isfinite(Vout)) and not np.array_equal(Vout[0, 0], V)
    if ns["LANES"]:  # the lane coefficients: the per-path ones on every lane (3 lanes at 3 different V)
        Vs = np.stack([V, V * 1.3, np.array([[0.9, -0.2], [-0.2, 1.4]])], axis=-1)
        bl, matsl = np.empty((2, 2, 3)), np.zeros((ns["NMATS"], 2, 2, 3))
        cfl, wsl, wvl = np.zeros((ns["NCOEF"], 3)), np.zeros((ns["NWS"], 2, 2, 3)), np.zeros((ns["NWV"], 2, 3))
        ns["coeffs_lanes"](Vs, param_vector(d), bl, matsl, cfl, wsl, wvl, np.zeros((ns["NSC"], 3)))
        for p in range(3):
            ns["coeffs"](np.ascontiguousarray(Vs[..., p]), param_vector(d), b, mats, cf, ws, wv)
            np.testing.assert_allclose(bl[..., p], b, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(matsl[..., p], mats, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(cfl[:, p], cf, rtol=1e-12, atol=1e-14)
        _check_wishart_flag(ns, variant, V, mats, cf, ws)
        status[:] = 0
        ns["simulate_lanes"](V, param_vector(d), 0.01, 3, np.array([3]), 1, 1e6, [np.random.default_rng(0)], 4, Vout,
                             status, tdeath, False, 1.0, 1.0, False, 1, straight.none(), 0)
        assert np.all(status == 0) and np.all(np.isfinite(Vout)) and not np.array_equal(Vout[0, 0], V)


def _check_wishart_flag(ns, variant, V, mats, cf, ws):
    """WISHART ≥ 0 (the lane kernel then steps from S without the generated noise) only where the noise is
    exactly cf[WISHART]·√2 · L S Lᵀ: set for the MLP and ResNet, not for attention or the Transformer."""
    assert (ns["WISHART"] >= 0) == (variant in ("mlp", "resnet"))
    if ns["WISHART"] >= 0:
        L, Z = np.linalg.cholesky(V), np.random.default_rng(4).normal(size=(ns["NGROUPS"], 2, 2))
        N, ref, t = np.zeros((2, 2)), np.zeros((2, 2)), np.empty((2, 2))
        ns["noise"](V, L, Z, mats, cf, np.empty((2, 2)), np.empty((2, 2)), np.empty((2, 2)), N)
        linalg.lsl_sym_acc(L, Z[0], t, cf[ns["WISHART"]] * np.sqrt(2), ref)
        np.testing.assert_allclose(N, ref, rtol=1e-13, atol=1e-15)


def test_the_papers_gamma_simulates():
    """γ = 0.35355339059327373 (γ² = 1/8 at double precision) used to crash Numba's typing."""
    from covsde.numerics import simulate

    d = derive(build("transformer", {"gamma": "0.35355339059327373", "tau0": "1"})[0], 2)
    r = simulate(d, [[1, 0.2], [0.2, 1]], 0.05, dt=0.01, paths=16, seed=0, progress=False)
    assert r.counts["survived"] == 16 and np.all(np.isfinite(r.V))


def test_fold_numbers():
    x = sp.Symbol("x")
    big = sp.Integer(27942249173427955576579935229276440478831158459570750012638)
    e = fold_numbers(sp.sqrt(big) * x + sp.sqrt(x) + sp.Rational(1, 3) * x**3)
    assert all(abs(a) < 2**53 for a in e.atoms(sp.Integer))
    assert not any(isinstance(a, sp.Rational) and not a.is_Integer for a in e.atoms(sp.Rational) if a != sp.S.Half)
    v = {x: 1.7}
    assert float(e.xreplace(v)) == pytest.approx(float((sp.sqrt(big) * x + sp.sqrt(x) + x**3 / 3).xreplace(v)))
    assert "_sqrtc(x)" in codegen.NumbaPrinter().doprint(e)


def test_module_key_covers_numerics_sources(monkeypatch):
    d = derive(build("mlp", {})[0], 1)
    h = codegen.derivation_hash(d)
    monkeypatch.setattr(codegen, "source_hash", lambda *pkgs: "edited numerics")
    assert codegen.derivation_hash(d) != h


def test_garbled_module_is_regenerated():
    d = derive(build("mlp", {})[0], 1)
    mod = load_module(d)
    path = mod.__covsde_path__
    name = mod.__name__
    with open(path, "wb") as f:
        f.write(b"\xff\xfe\x00 not UTF-8 \x80\x81")
    sys.modules.pop(name)
    codegen._MODULES.clear()
    mod2 = load_module(d)
    assert mod2 is not mod and open(path, "rb").read().startswith(b"# covsde-hash: ")


GARBLED_NUMBA = """
import numpy as np
from covsde.derive import derive
from covsde.derive.variants import build
from covsde.numerics.integrate import drift_function
d = derive(build("mlp", {})[0], 1)
print(float(drift_function(d)(np.array([[1.3]]))[0, 0]))
"""


def test_garbled_numba_cache_files_are_rebuilt(tmp_path):
    """A fresh process compiles the kernel and Numba writes its cache files; after they are garbled
    a second fresh process still gets the drift (the files are checked before import, removed,
    and rewritten by Numba)."""
    env = dict(os.environ, COVSDE_CACHE_DIR=str(tmp_path))
    run = lambda: subprocess.run([sys.executable, "-c", GARBLED_NUMBA], capture_output=True, text=True,  # noqa: E731
                                 env=env)
    r1 = run()
    assert r1.returncode == 0, r1.stderr
    files = list((tmp_path / "numerics" / "__pycache__").glob("*.nb*"))
    assert files
    for f in files:
        f.write_bytes(os.urandom(64))
    r2 = run()
    assert r2.returncode == 0, r2.stderr
    assert r2.stdout == r1.stdout


@pytest.mark.parametrize("variant,values,direct", [("mlp", {"c_plus": "1", "c_minus": "-1"}, True),
                                                   ("resnet", {"gamma": "0.5"}, False)])
def test_a_one_map_drift_is_written_into_b_by_its_map(variant, values, direct):
    """The MLP's drift is one symmetric kernel map with coefficient 1: the map writes b itself (no zero fill,
    accumulation or symmetrisation pass); the ResNet's (coefficient γ²) is accumulated.  Either way the
    generated drift, per path and per lane, equals the matrix form evaluated by numpy at random V (m = 5)."""
    from covsde.numerics.integrate import lane_coefficients, workspace

    d = derive(build(variant, values)[0], 5)
    src = generate_source(d)
    lane_body = src[src.rindex("def coeffs_lanes"):]
    lane_body = lane_body[:lane_body.index("@njit")]
    assert ("_map0_lanes(V, P, b)" in lane_body) == direct and ("lanes.fill(b, 0.0)" in lane_body) != direct
    mod, P = load_module(d), param_vector(d)
    rng = np.random.default_rng(5)
    for _ in range(3):
        A = rng.normal(size=(5, 5))
        V = A @ A.T + 0.5 * np.eye(5)
        ref, _ = d.numeric_fn()(V, {})
        b = np.empty((5, 5))
        mod.coeffs(V, P, b, *workspace(mod, 5))
        np.testing.assert_allclose(b, ref, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(lane_coefficients(mod, 5, P)(V)[0], ref, rtol=1e-12, atol=1e-14)
