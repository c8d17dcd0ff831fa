"""covsde phase: the regime over a grid of two exponents (issue 12's acceptance map for the ResNet)."""
import json

import pytest

from covsde.cli import main
from covsde.derive.errors import CovsdeInputError
from covsde.derive.phase import phase_diagram


def test_resnet_map_shows_the_four_regimes(tmp_path, capsys):
    assert main(["phase", "resnet", "--x", "q=0:1", "--y", "p=0:1", "--steps", "9", "--out", str(tmp_path)]) == 0
    table = json.loads((tmp_path / "phase.json").read_text())
    assert (tmp_path / "phase.png").stat().st_size > 10_000 and len(table["points"]) == 81
    at = {(p["q"], p["p"]): p for p in table["points"]}
    assert at[("0", "1/2")]["regime"] == "sde"
    assert at[("1/2", "0")]["regime"] == "ode" and "fluctuation" in at[("1/2", "0")]["reason"]
    assert at[("0", "0")]["regime"] == "no-limit" and "not near-linear" in at[("0", "0")]["reason"]
    assert at[("1", "0")]["regime"] == "identity" and at[("1", "0")]["reason"]
    # the ODE line is q + p = 1/2 (drift γ0²·n^(−2q)·n^(−2p) per layer = 1/n), no-limit below, identity above
    # except on q = 0, where the activation drops out (p > 1/2) but the linear ResNet keeps its SDE
    for (q, p), pt in at.items():
        s = eval_fraction(q) + eval_fraction(p)
        if (q, p) != ("0", "1/2"):
            want = "ode" if s == 0.5 else ("no-limit" if s < 0.5 else ("sde" if q == "0" else "identity"))
            assert pt["regime"] == want, (q, p, pt)
            if want == "sde":
                assert "drops out" in pt["reason"] and "activation" in pt["reason"], pt
    assert table["shaped_transformer"] == {"q": "0", "p": "1/2"}
    # not clobbered without --force
    assert main(["phase", "resnet", "--x", "q=0:1", "--y", "p=0:1", "--out", str(tmp_path)]) == 2
    assert "exists" in capsys.readouterr().err


def eval_fraction(text):
    from fractions import Fraction

    return Fraction(text)


@pytest.mark.parametrize("x,y,named", [(("zz", 0, 1), ("p", 0, 1), "zz"), (("q", 1, 0), ("p", 0, 1), "below"),
                                       (("q", 0, 1), ("q", 0, 1), "both"), (("tau0", 0, 1), ("p", 0, 1), "tau0"),
                                       (("kappa", 0, 1), ("p", 0, 1), "kappa"), (("e", 0, 1), ("p", 0, 1), "'e'")])
def test_bad_axes_are_named(x, y, named):
    with pytest.raises(CovsdeInputError, match=named):
        phase_diagram("resnet", x, y, steps=3)


def test_cli_bad_axis_is_one_line(capsys, tmp_path):
    assert main(["phase", "resnet", "--x", "q:0:1", "--y", "p=0:1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "NAME=LO:HI" in err and len(err.strip().splitlines()) == 1
