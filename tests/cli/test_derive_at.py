"""`covsde derive … --at V`: the drift (and Σ for regime sde) at a point, checked against independent
numbers — the GELU ResNet's b = γ0²(K_gelu(V) − V) from the reference's closed form (to 1e-10), the tanh one
from the reference's quadrature; bad V and bad activations exit 2 with one line."""
import json

import numpy as np
import pytest
import sympy as sp

from covsde.cli import main

from ..derive import reference_kernels as ref

V = [[1, 0.3], [0.3, 0.8]]
BASE = ["derive", "resnet", "--set", "p=0", "--set", "q=1/2", "--set", "gamma=0.8"]


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("act, kernel", [
    ("gelu", lambda V: ref.normaliser(ref.gelu) * ref.k_gelu_closed(V)),
    ("x*(1+erf(x/sqrt(2)))/2", lambda V: ref.normaliser(ref.gelu) * ref.k_gelu_closed(V)),
    ("tanh", lambda V: ref.normaliser(ref.tanh) * ref.k_numeric(ref.tanh, V)),
    ("x/(1+exp(-x))", lambda V: ref.normaliser(ref.silu) * ref.k_numeric(ref.silu, V))])
def test_at_gives_the_kernel_map_ode_drift(capsys, act, kernel):
    code, out, err = run(capsys, *BASE, "--set", f"activation={act}", "--at", json.dumps(V), "--format", "json")
    assert code == 0, err
    r = json.loads(out)
    assert r["regime"] == "ode" and r["at"]["V"] == V and "diffusion" not in r["at"]
    Vn = np.array(V)
    np.testing.assert_allclose(np.array(r["at"]["drift"]), 0.64 * (kernel(Vn) - Vn), rtol=0, atol=1e-10)


def test_at_from_a_file_and_for_an_sde(capsys, tmp_path):
    f = tmp_path / "V.npy"
    np.save(f, np.array(V))
    code, out, err = run(capsys, "derive", "resnet", "--set", "gamma=0.5", "--at", f"@{f}", "--format", "json")
    assert code == 0, err
    r = json.loads(out)
    assert r["regime"] == "sde" and set(r["at"]) == {"V", "drift", "diffusion"}
    assert set(r["at"]["diffusion"]) == set(r["diffusion"])  # keyed "a,b;c,d" like the per-entry Σ
    # the numbers equal the per-entry SymPy formulas of the same output evaluated at V (another code path)
    sub = {sp.Symbol(f"V_{a}_{b}"): sp.Float(V[a][b]) for a in range(2) for b in range(a, 2)}
    for key, text in r["diffusion"].items():
        assert abs(r["at"]["diffusion"][key] - float(sp.parse_expr(text).xreplace(sub))) < 1e-12
    for i in range(2):
        for j in range(2):
            assert abs(r["at"]["drift"][i][j] - float(sp.parse_expr(r["drift"][i][j]).xreplace(sub))) < 1e-12


@pytest.mark.parametrize("at, named", [("[[1,0.3],[0.3,0.8],[1,1,1]]", "--at"), ("[[1,2],[2,1]]", "positive definite"),
                                       ("[[1]]", "m = 2"), ("[[1,0.3],[0.2,1]]", "symmetric"),
                                       ("[[1,NaN],[NaN,1]]", "--at"), ("@/nonexistent/V.json", "no such file")])
def test_bad_at_is_one_line_exit_2(capsys, at, named):
    code, out, err = run(capsys, *BASE, "--set", "activation=gelu", "--at", at)
    assert code == 2 and out == "" and named in err and err.count("\n") == 1


def test_at_needs_numeric_parameters(capsys):
    code, _, err = run(capsys, "derive", "resnet", "--set", "p=0", "--set", "q=1/2", "--at", json.dumps(V))
    assert code == 2 and "gamma" in err


@pytest.mark.parametrize("act, named", [("exp(x**2)", "exp(x**2)"), ("x^2", "x^2"), ("exp(x**2/4)", "second moment"),
                                        ("__import__('os').system('true')", "activation")])
def test_bad_activation_at_p0_is_one_line_exit_2(capsys, act, named):
    code, out, err = run(capsys, *BASE, "--set", f"activation={act}")
    assert code == 2 and named in err and err.count("\n") == 1


def test_previously_refused_unshaped_activations_now_derive(capsys):
    for act in ("tanh", "x*(1+erf(x/sqrt(2)))/2", "gelu_tanh", "silu", "erf"):
        code, out, err = run(capsys, "derive", "resnet", "--set", "p=0", "--set", "q=1/2", "--set", f"activation={act}",
                             "--format", "json")
        assert code == 0, (act, err)
        r = json.loads(out)
        assert r["regime"] == "ode" and any("E[φ(u_a)φ(u_b)]" in line for line in r["matrix"]["maps"])
    # the shaping condition still applies where the activation is shaped (p > 0)
    code, _, err = run(capsys, "derive", "resnet", "--set", "activation=gelu")
    assert code == 2 and "φ'(0)=1" in err


@pytest.mark.parametrize("act, kernel", [
    ("gelu", lambda V: ref.normaliser(ref.gelu) * ref.k_gelu_closed(V)),
    ("gelu_tanh", lambda V: ref.normaliser(ref.gelu_tanh) * ref.k_numeric(ref.gelu_tanh, V))])
def test_simulate_ode_integrates_the_kernel_map_drift(capsys, act, kernel):
    """`covsde simulate … --ode` (DOP853, rtol 1e-10) against SciPy's RK45 on the reference's drift
    γ0²(K(V) − V), m = 2, T = 1: the mean at T agrees to 1e-7."""
    from scipy.integrate import solve_ivp

    code, out, err = run(capsys, "simulate", *BASE[1:], "--set", f"activation={act}", "--V0", json.dumps(V), "--T", "1",
                         "--ode", "--format", "json")
    assert code == 0, err
    got = np.array(json.loads(out)["mean"])

    def f(t, y):
        X = y.reshape(2, 2)
        return (0.64 * (kernel(X) - X)).ravel()

    want = solve_ivp(f, (0, 1), np.array(V, dtype=float).ravel(), rtol=1e-9, atol=1e-11).y[:, -1].reshape(2, 2)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-7)
    assert np.abs(want - np.array(V)).max() > 1e-2  # the drift moved V: the comparison means something
