"""The `covsde derive` contract: JSON keys, parseable expressions, exit code 2 on bad input."""
import json
import subprocess
import sys

import pytest
import sympy as sp


def cli(*args):
    return subprocess.run([sys.executable, "-m", "covsde.cli", *args], capture_output=True, text=True)


def test_derive_transformer_json():
    r = cli("derive", "transformer", "--m", "3", "--format", "json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert set(d) == {"variant", "m", "params", "regime", "reason", "drift", "diffusion", "matrix", "kappa", "time",
                      "state"}
    assert d["variant"] == "transformer" and d["m"] == 3 and d["regime"] == "sde"
    assert len(d["drift"]) == 3 and all(len(row) == 3 for row in d["drift"])
    assert len(d["diffusion"]) == 36  # a ≤ b, c ≤ d for m = 3
    allowed = {f"V_{a}_{b}" for a in range(3) for b in range(a, 3)} | {"gamma", "tau0"}
    local = {name: sp.Symbol(name) for name in allowed}  # 'gamma' would otherwise be Γ(·)
    for s in [d["drift"][0][1], d["diffusion"]["0,1;1,2"]]:
        assert {x.name for x in sp.parse_expr(s, local_dict=local).free_symbols} <= allowed


def test_derive_no_limit_json():
    d = json.loads(cli("derive", "standard-attention", "--format", "json").stdout)
    assert d["regime"] == "no-limit" and "rank collapse" in d["reason"] and d["drift"] is None


@pytest.mark.parametrize("args,bad", [(["foo"], "foo"), (["mlp", "--m", "0"], "0"), (["mlp", "--m", "x"], "x"),
                                      (["mlp", "--set", "zz=1"], "zz"), (["attention", "--set", "tau0=-1"], "tau0"),
                                      (["mlp", "--set", "p=nan"], "p"), (["mlp", "--set", "activation=cos"], "cos"),
                                      (["attention", "--set", "heads=1.5"], "heads"), (["mlp", "--set", "c_plus"], "c_plus"),
                                      (["mlp", "--format", "xml"], "xml")])
def test_derive_bad_input(args, bad):
    r = cli("derive", *args)
    assert r.returncode == 2
    assert bad in r.stderr and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_derive_latex_and_text():
    assert "b(V) =" in cli("derive", "mlp", "--format", "latex").stdout
    assert "regime: sde" in cli("derive", "resnet").stdout
