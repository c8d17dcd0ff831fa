"""--V0 @FILE: V0 read from a JSON or .npy file (a 128×128 V0 does not fit in one argument), for simulate
and validate, with the same checks as an inline V0 and one-line errors for bad files."""
import json

import numpy as np
import pytest

from covsde.cli import main
from covsde.cli.common import parse_V0
from covsde.common.errors import CovsdeInputError


def _V(m, seed=0):
    A = np.random.default_rng(seed).normal(size=(m, m))
    return A @ A.T / m + 0.5 * np.eye(m)


def test_json_and_npy_files_give_the_same_V0(tmp_path):
    V = _V(40)
    (tmp_path / "v.json").write_text(json.dumps(V.tolist()))
    np.save(tmp_path / "v.npy", V)
    a, b = parse_V0(f"@{tmp_path / 'v.json'}"), parse_V0(f"@{tmp_path / 'v.npy'}")
    np.testing.assert_allclose(a, V, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(b, 0.5 * (V + V.T))


@pytest.mark.parametrize("content,named", [
    ("missing", "no such file"),
    ("folder", "folder"),
    ("notjson", "never closed"),
    ("pickle", "got dtype object"),
    ("strings", "must hold numbers"),
    ("notpsd", "not positive definite"),
    ("nan", "non-finite"),
    ("latin1", "neither UTF-8"),
    ("empty", "needs a file name"),
])
def test_bad_files_are_one_line_errors(tmp_path, capsys, content, named):
    path = tmp_path / "v.npy"
    if content == "folder":
        path = tmp_path
    elif content == "notjson":
        path = tmp_path / "v.json"
        path.write_text("[[1, 0.2], [0.2, 1]")
    elif content == "pickle":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif content == "strings":
        np.save(path, np.array([["a", "b"], ["c", "d"]]))
    elif content == "notpsd":
        np.save(path, np.array([[1.0, 2.0], [2.0, 1.0]]))
    elif content == "nan":
        np.save(path, np.array([[1.0, np.nan], [np.nan, 1.0]]))
    elif content == "latin1":
        path = tmp_path / "v.json"
        path.write_bytes("[[1]] \xe9".encode("latin-1"))
    arg = "@" if content == "empty" else f"@{path}"
    with pytest.raises(CovsdeInputError, match=named):
        parse_V0(arg)
    assert main(["simulate", "mlp", "--V0", arg, "--T", "0.1"]) == 2
    err = capsys.readouterr().err
    assert named in err and len(err.strip().splitlines()) == 1


def test_simulate_reads_a_large_V0_from_a_file(tmp_path, capsys):
    """m = 40 (above the BLAS threshold): the module generated from the matrix form runs at this size (the
    `mlp` module, the one the README's m = 2 example compiles: one module serves every m)."""
    np.save(tmp_path / "v.npy", _V(40, 1))
    code = main(["simulate", "mlp", "--V0", f"@{tmp_path / 'v.npy'}", "--T", "0.05",
                 "--paths", "16", "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["m"] == 40 and out["survived"] == 16
