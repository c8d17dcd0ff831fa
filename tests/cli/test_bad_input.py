"""Every bad input named in the trust issue: exit code 2 and one line naming the bad value (CLI), or
a CovsdeInputError naming it (Python API) — never a traceback, a hang or a wrong answer with exit 0.
The CLI cases run in-process through covsde.cli.main (one also as a real subprocess)."""
import subprocess
import sys
import time

import numpy as np
import pytest

from covsde.cli import main
from covsde.common.errors import CovsdeInputError, ResourceLimitError

V0 = "[[1,0.2],[0.2,1]]"


def run_cli(capsys, *args):
    t0 = time.perf_counter()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err, time.perf_counter() - t0


CASES = [
    # silent nonsense
    (["derive", "attention", "--set", "gamma=2"], "gamma = 2 > 1"),
    (["simulate", "attention", "--set", "gamma=2", "--set", "tau0=1", "--V0", V0, "--T", "0.1"], "gamma"),
    (["derive", "attention", "--set", "gamma=1e400"], "gamma"),
    (["derive", "mlp", "--set", "c_plus=inf"], "'inf'"),
    (["derive", "mlp", "--set", "c_plus=nan"], "'nan'"),
    (["derive", "transformer", "--set", "gamma2=1.5"], "gamma2"),
    # hangs and memory
    (["simulate", "mlp", "--V0", V0, "--T", "1", "--paths", "1000000000000"], "--max-memory"),
    (["validate", "mlp", "--V0", V0, "--T", "1", "--widths", "100000000"], "100000000"),
    (["derive", "mlp", "--m", "1000"], "COVSDE_MAX_M"),
    (["derive", "attention", "--set", "gamma=10**10**10"], "10**10**10"),
    (["derive", "attention", "--set", "heads=1000000000"], "heads"),
    (["simulate", "mlp", "--V0", V0, "--T", "1", "--dt", "1e-300"], "COVSDE_MAX_STEPS"),
    # tracebacks before
    (["simulate", "mlp", "--V0", "[" * 5000 + "]" * 5000, "--T", "1"], "--V0"),
    (["simulate", "mlp", "--V0", V0, "--T", "1", "--out", "/proc/covsde-nope/x.npz"], "--out"),
    (["simulate", "mlp", "--V0", V0, "--T", "1", "--seed", "-1"], "seed"),
    (["validate", "mlp", "--V0", V0, "--T", "0.1", "--widths", "8", "--samples", "x"], "samples"),
]


@pytest.mark.parametrize("args,named", CASES)
def test_cli_bad_input_is_one_line_exit_2(capsys, args, named):
    code, out, err, secs = run_cli(capsys, *args)
    assert code == 2, (args, err)
    assert named in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert out == "" and secs < 20


def test_out_checked_before_the_work(capsys, tmp_path):
    (tmp_path / "f").write_text("x")
    code, _, err, _ = run_cli(capsys, "simulate", "mlp", "--V0", V0, "--T", "1", "--out", str(tmp_path), "--force")
    assert code == 2 and "is a folder" in err
    code, _, err, _ = run_cli(capsys, "demo", "--out", str(tmp_path / "f"))
    assert code == 2 and "not a folder" in err
    code, _, err, _ = run_cli(capsys, "validate", "mlp", "--V0", V0, "--T", "0.1", "--widths", "8",
                              "--out", str(tmp_path / "f"))
    assert code == 2 and "not a folder" in err


def test_a_real_subprocess_prints_one_line():
    r = subprocess.run([sys.executable, "-m", "covsde.cli", "derive", "attention", "--set", "gamma=2"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip() == (
        "covsde: error: gamma = 2 > 1 makes λ = √(1 − γ²) imaginary: give lam explicitly or choose gamma ≤ 1")


def test_python_api_errors_name_the_value():
    from covsde.derive import Residual, derive
    from covsde.derive.blocks import Linear
    from covsde.derive.variants import build
    from covsde.numerics import simulate
    from covsde.validate.networks import run_networks
    from covsde.validate.validation import validate

    with pytest.raises(CovsdeInputError, match="'mlp'"):
        derive("mlp", 2)
    with pytest.raises(CovsdeInputError, match="gamma = 2 > 1"):
        Residual(Linear(), gamma=2)
    with pytest.raises(CovsdeInputError, match="centre"):
        build("attention", {"centre": "maybe"})
    blk, _ = build("attention", {})
    d = derive(blk, 2)
    V = np.array([[1.0, 0.2], [0.2, 1.0]])
    with pytest.raises(CovsdeInputError, match="gamma"):
        simulate(d, V, 0.1, params={"gamma": float("nan"), "tau0": 1})
    with pytest.raises(CovsdeInputError, match="gamma = 2.*complex.*lam explicitly"):
        simulate(d, V, 0.1, params={"gamma": 2, "tau0": 1})
    with pytest.raises(CovsdeInputError, match="tau0 = -1 must be > 0"):
        d.numeric(V, {"gamma": 0.5, "tau0": -1})
    mlp = derive(build("mlp", {})[0], 2)
    with pytest.raises(CovsdeInputError, match="seed"):
        simulate(mlp, V, 0.1, seed=-1)
    with pytest.raises(ResourceLimitError, match="memory"):
        simulate(mlp, V, 0.1, paths=10**12)
    with pytest.raises(ResourceLimitError, match="COVSDE_MAX_M"):
        derive(build("mlp", {})[0], 513)
    with pytest.raises(ResourceLimitError, match="COVSDE_MAX_M_ENTRIES"):
        derive(build("mlp", {})[0], 17, engine="entries")
    with pytest.raises(ResourceLimitError, match="COVSDE_MAX_M_ENTRIES"):
        derive(build("mlp", {})[0], 17).drift  # the per-entry form of a matrix-level result
    with pytest.raises(CovsdeInputError, match="'tpu'"):
        run_networks(build("mlp", {})[0], V, 8, 1, 2, device="tpu")
    with pytest.raises(CovsdeInputError, match="'tpu'"):
        validate(build("mlp", {})[0], mlp, V, 0.1, [8], samples=20, device="tpu")
    with pytest.raises(ResourceLimitError, match="memory"):
        validate(build("mlp", {})[0], mlp, V, 0.5, [60000], samples=1000, backend="torch")


def test_resource_limits_can_be_raised(monkeypatch):
    from covsde.derive import derive
    from covsde.derive.variants import build

    blk, _ = build("attention", {"heads": "2"})
    monkeypatch.setenv("COVSDE_MAX_HEADS", "1")
    with pytest.raises(ResourceLimitError, match="COVSDE_MAX_HEADS"):
        build("attention", {"heads": "2"})
    monkeypatch.setenv("COVSDE_MAX_HEADS", "4")
    assert derive(build("attention", {"heads": "2"})[0], 1).has_limit
    from covsde.common.limits import check_memory

    check_memory(3 * 1024**3, "x", "4G")
    with pytest.raises(ResourceLimitError, match="4 GiB"):
        check_memory(5 * 1024**3, "x", "4G")


def test_parameters_with_non_finite_coefficients_are_refused():
    """τ0 = 1e-200 is a finite positive number, but the drift ∝ 1/τ0² overflows: refused, not run."""
    from covsde.derive import derive
    from covsde.derive.variants import build
    from covsde.numerics import simulate

    d = derive(build("attention", {})[0], 2)  # the symbolic module, shared with other tests
    with pytest.raises(CovsdeInputError, match="not finite at V0 with gamma = 0.5, tau0 = 1e-200"):
        simulate(d, np.array([[1.0, 0.2], [0.2, 1.0]]), 0.1, params={"gamma": 0.5, "tau0": 1e-200}, paths=4)
