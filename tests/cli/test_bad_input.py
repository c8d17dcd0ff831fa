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


# ---- issue 23: the newer surfaces (masks, exponents, presets, phase, --V0 @FILE, suites, Dask flags) ----
DEEP = "[" * 60000 + "]" * 60000
NEWER = [
    # array input: the safe literal reader
    (["simulate", "mlp", "--V0", '[[1,.2],[.2,"x"]]', "--T", "0.1"], "'\"x\"'"),
    (["simulate", "mlp", "--V0", '__import__("os")', "--T", "0.1"], "'__import__'"),
    (["simulate", "mlp", "--V0", "[[1,.2],[.2,1]", "--T", "0.1"], "never closed"),
    (["simulate", "mlp", "--V0", "[[1, 2*3], [0, 1]]", "--T", "0.1"], "'*3'"),
    (["simulate", "mlp", "--V0", "[[nan, 0], [0, 1]]", "--T", "0.1"], "'nan'"),
    (["simulate", "mlp", "--V0", "[[1e308, 0], [0, 1e308]]", "--T", "0.1"], "1e+308"),
    (["simulate", "mlp", "--V0", "[[]]", "--T", "0.1"], "shape (1, 0)"),
    (["simulate", "mlp", "--V0", DEEP, "--T", "0.1"], "nested more than"),
    # hangs: exponents bounded up front
    (["derive", "resnet", "--set", "q=1e-300", "--set", "gamma=0.5"], "q=1e-300"),
    (["derive", "mlp", "--set", "p=1e-300"], "p=1e-300"),
    (["derive", "resnet", "--set", "q=1e300", "--set", "gamma=0.5"], "q=1e300"),
    (["derive", "resnet", "--set", "q=1/100000", "--set", "gamma=0.5"], "1/100000"),
    (["derive", "mlp", "--set", "activation=tanh", "--set", "p=1/20"], "p=1/20"),
    (["derive", "attention", "--set", "e=1/1000", "--set", "gamma=0.5"], "e=1/1000"),
    (["derive", "transformer", "--preset", "bordelon", "--set", "alphaL=1e-300"], "alphaL=1e-300"),
    (["phase", "resnet", "--x", "q=0:1/100000", "--y", "p=0:1", "--out", "OUT"], "1/100000"),
    (["phase", "resnet", "--x", "q=0:1/3", "--y", "p=0:1", "--steps", "65", "--out", "OUT"], "1/192"),
    # internal errors before
    (["derive", "mlp", "--set", "kappa=sqrt(2)/2"], "kappa=sqrt(2)/2 must be a rational"),
    (["derive", "resnet", "--set", "q=sqrt(2)", "--set", "gamma=0.5"], "q=sqrt(2) must be a rational"),
    (["phase", "resnet", "--x", "q=0:sqrt(2)", "--y", "p=0:1", "--out", "OUT"], "q=sqrt(2)"),
    (["derive", "attention", "--set", "gamma=0.5", "--set", f"mask={DEEP}"], "mask is nested"),
    (["derive", "attention", "--set", "gamma=0.5", "--set", 'mask=[[1,0],[1,"x"]]'], "'\"x\"'"),
    (["validate", "attention", "--set", "heads=4", "--set", "gamma=0.5", "--set", "tau0=1", "--V0", V0, "--T",
      "0.1", "--widths", "6", "--samples", "20"], "width 6 is not a multiple of heads = 4"),
    (["simulate", "mlp", "--V0", "@/proc/self/status", "--T", "0.1"], "/proc/self/status"),
    (["simulate", "mlp", "--V0", "@/dev/zero", "--T", "0.1"], "not a regular file"),
    (["suite", "quick", "--executor", "dask", "--scheduler", "tcp://127.0.0.1:abc", "--out", "OUT"], "'abc'"),
    (["suite", "quick", "--executor", "dask", "--scheduler", "ftp://host:1", "--out", "OUT"], "'ftp'"),
    (["suite", "quick", "--executor", "dask", "--scheduler", "tcp://127.0.0.1", "--out", "OUT"], "no port"),
    (["suite", "quick", "--executor", "dask", "--scheduler", "", "--out", "OUT"], "--scheduler is empty"),
    (["suite", "quick", "--executor", "dask", "--scheduler", "tcp://h:99999", "--out", "OUT"], "'99999'"),
    # silently accepted before
    (["simulate", "mlp", "--m", "", "--V0", V0, "--T", "0.1"], "--m must be an integer, got ''"),
    (["derive", "mlp", "--m", ""], "--m must be an integer, got ''"),
    (["simulate", "mlp", "--threshold", "", "--V0", V0, "--T", "0.1"], "--threshold must be a number, got ''"),
    (["simulate", "mlp", "--out", "", "--V0", V0, "--T", "0.1"], "--out is empty"),
    (["suite", "quick", "--out", ""], "--out is empty"),
    (["suite", "quick", "--scheduler", "tcp://127.0.0.1:8786", "--out", "OUT"], "--scheduler needs --executor dask"),
    (["suite", "quick", "--cluster", "slurm", "--out", "OUT"], "--cluster needs --executor dask"),
    # limits not kept before: the estimate counts every buffer (both levels of --weak-order 2)
    (["simulate", "mlp", "--V0", V0, "--T", "0.1", "--paths", "10000000", "--max-memory", "600M"], "600 MiB"),
    (["simulate", "mlp", "--V0", V0, "--T", "0.1", "--paths", "1300000", "--weak-order", "2", "--max-memory",
      "600M"], "2 step sizes"),
    (["validate", "mlp", "--V0", V0, "--T", "1e-300", "--widths", "8", "--samples", "20"], "less than one layer"),
]


def _ids(case):
    return " ".join(a if len(a) < 40 else a[:20] + "…" for a in case[0])[:90]


@pytest.mark.parametrize("args,named", NEWER, ids=[_ids(c) for c in NEWER])
def test_newer_surfaces_bad_input_is_one_line_exit_2(capsys, tmp_path, args, named):
    args = [str(tmp_path / "out") if a == "OUT" else a for a in args]
    code, out, err, secs = run_cli(capsys, *args)
    assert code == 2, (args[:6], err)
    assert named in err, (named, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and err.startswith("covsde: error: ")
    assert out == "" and secs < 20


@pytest.mark.parametrize("make,named", [
    (lambda p: np.save(p, np.zeros((0, 0))), "shape (0, 0)"),
    (lambda p: np.save(p, np.ones(3)), "shape (3,)"),
    (lambda p: np.save(p, np.full((2, 2), 1e308)), "1e+308"),
    (lambda p: np.save(p, np.eye(2) * (1 + 1j)), "complex128"),
    (lambda p: p.write_bytes(np.lib.format.magic(1, 0) + _header("{'descr': '<f8', 'fortran_order': False, "
                                                                  "'shape': (100000, 100000), }")), "(100000, 100000)"),
    (lambda p: p.write_bytes(np.lib.format.magic(1, 0) + _header("{'descr': '<f8', 'fortran_order': False, "
                                                                  "'shape': (3, 3), }") + b"\0" * 16), "truncated"),
    (lambda p: p.write_bytes(b""), "is empty"),
], ids=["empty", "vector", "1e308", "complex", "header-1e10", "truncated", "zero-bytes"])
def test_bad_npy_files_are_one_line_exit_2(capsys, tmp_path, make, named):
    path = tmp_path / "v.npy"
    make(path)
    code, out, err, _ = run_cli(capsys, "simulate", "mlp", "--V0", f"@{path}", "--T", "0.1")
    assert code == 2 and named in err and len(err.strip().splitlines()) == 1, err


def _header(text):
    h = text.encode("latin1")
    pad = 64 - (10 + len(h) + 1) % 64
    h += b" " * pad + b"\n"
    return len(h).to_bytes(2, "little") + h


def test_a_fifo_for_V0_is_refused_without_waiting(capsys, tmp_path):
    import os

    fifo = tmp_path / "v.json"
    os.mkfifo(fifo)
    code, _, err, secs = run_cli(capsys, "simulate", "mlp", "--V0", f"@{fifo}", "--T", "0.1")
    assert code == 2 and "not a regular file" in err and secs < 20


def test_python_style_V0_is_read_like_json():
    from covsde.cli.common import parse_V0

    a = parse_V0("[[1,.2],[.2,1]]")
    np.testing.assert_array_equal(a, parse_V0("[[1, 0.2], [0.2, 1]]"))
    np.testing.assert_array_equal(parse_V0("((1e-3, -0.,), (-0., 2_0))"), [[1e-3, 0], [0, 20]])
    np.testing.assert_array_equal(parse_V0("4"), [[4.0]])


@pytest.mark.parametrize("text", ['[[1,.2],[.2,"x"]]', '__import__("os")', "[[1, 0], [0, True]]", "[[1,0],[0,1]] [1]",
                                  "[1,,2]", "[[1, 0x10], [0, 1]]", "(lambda: 1)()", "[[1,0],[0,1e999]]"])
def test_V0_text_that_is_not_a_list_of_numbers_says_the_expected_form(text):
    from covsde.cli.common import V0_FORM, parse_V0

    with pytest.raises(CovsdeInputError) as exc:
        parse_V0(text)
    assert V0_FORM in str(exc.value) and "--V0" in str(exc.value)


def test_the_literal_reader_bounds_length_depth_and_count_before_parsing():
    from covsde.common.literal import read_numbers

    with pytest.raises(CovsdeInputError, match="characters long"):
        read_numbers("[" + "1," * 100 + "1]", "x", max_chars=50)
    with pytest.raises(CovsdeInputError, match="nested more than 3"):
        read_numbers("[[[[1]]]]", "x", max_depth=3)
    with pytest.raises(CovsdeInputError, match="more than 10 numbers"):
        read_numbers("[" + "1," * 20 + "1]", "x", max_items=10)
    with pytest.raises(CovsdeInputError, match="more than 400 digits"):
        read_numbers("[1" + "0" * 500 + "]", "x")
    assert read_numbers("[[true, 0], [1, False]]", "mask", booleans=True) == [[True, 0], [1, False]]


ENTRY = """[[entry]]
name = "a"
variant = "mlp"
T = 0.1
V0 = [[1.0, 0.2], [0.2, 1.0]]
widths = [8]
samples = 20
power = false
"""


@pytest.mark.parametrize("extra,named", [
    ('device = "cuda"', "device='cuda'"),
    ("samples = 1000000000000000", "entry 'a': 4000000000000000 paths"),
    ("onestep_samples = 1000000000000000", "entry 'a': the one-step test"),
    ("widths = [1000000000]", "width must be ≤ 65536"),
    ("T = 1e300", "COVSDE_MAX_STEPS"),
    ("T = 1e-300", "less than one layer"),
    ("seed = 1180591620717411303424", "seed must be ≤ 9223372036854775807"),
    ("V0 = [[1e308, 0.0], [0.0, 1e308]]", "1e+308"),
    ('set = { q = "1e-300" }', "q=1e-300"),
    ("V0 = " + "[" * 5000 + "]" * 5000, "nested 5000 deep"),
    ('variant = "attention"\nset = { mask = "[[1,0],[1,1]]", gamma = "0.5", tau0 = "1" }\n'
     "V0 = [[1.0, 0.2, 0.1], [0.2, 1.0, 0.1], [0.1, 0.1, 1.0]]", "entry 'a': the mask is 2×2 but m = 3"),
], ids=["cuda", "samples", "onestep", "widths", "T-huge", "T-tiny", "seed", "V0", "set-q", "deep-toml", "mask-m"])
def test_suite_entries_are_checked_before_the_first_runs(capsys, tmp_path, extra, named):
    """Every entry's request is checked before anything runs or prints: one line, exit 2."""
    if extra.startswith("device") and __import__("torch").cuda.is_available():
        pytest.skip("this machine has a GPU")
    base = ENTRY.replace("[[entry]]", "[defaults]").replace('name = "a"\n', "")
    if extra.startswith("set"):
        extra = 'variant = "resnet"\nset = { gamma = "0.5", q = "1e-300" }'
    (tmp_path / "s.toml").write_text(base + '[[entry]]\nname = "a"\n' + extra + "\n")
    code, out, err, secs = run_cli(capsys, "suite", str(tmp_path / "s.toml"), "--out", str(tmp_path / "o"), "--quiet")
    assert code == 2 and named in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o" / "a").exists() and secs < 30


def test_an_unreachable_scheduler_is_one_line_within_the_timeout(capsys, tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setenv("COVSDE_DASK_TIMEOUT", "1")
    (tmp_path / "s.toml").write_text(ENTRY)
    code, _, err, secs = run_cli(capsys, "suite", str(tmp_path / "s.toml"), "--out", str(tmp_path / "o"),
                                 "--executor", "dask", "--scheduler", "tcp://127.0.0.1:1")
    assert code == 2 and "cannot reach the Dask scheduler 'tcp://127.0.0.1:1' within 1 s" in err
    assert len(err.strip().splitlines()) == 1 and secs < 30


def test_a_bad_input_on_a_worker_is_returned_not_raised():
    """On a Dask worker a CovsdeInputError becomes a value (no retries, no worker traceback in the log);
    the client turns it into one error naming the entry."""
    from covsde.validate.suite import TaskError, _entry_task

    e = {"name": "a", "variant": "mlp", "T": 0.1, "V0": [[1.0, 0.2], [0.2, 1.0]], "widths": [8], "samples": 20,
         "device": "tpu"}
    r = _entry_task((e, None))
    assert isinstance(r, TaskError) and "'tpu'" in r.message


def test_run_networks_refuses_a_width_the_heads_do_not_divide():
    from covsde.derive.variants import build
    from covsde.validate.networks import head_counts, run_networks
    from covsde.validate.validation import onestep_width

    blk = build("transformer", {"heads": "3", "gamma": "0.35", "tau0": "1"})[0]
    assert head_counts(blk) == {3}
    with pytest.raises(CovsdeInputError, match="width n = 8 is not a multiple of heads = 3"):
        run_networks(blk, np.eye(2), 8, 1, 2)
    assert onestep_width([9], 3) == 72 and onestep_width([100], 3) == 801 and onestep_width([100]) == 800
