"""The ``ode`` target of validate: finite networks concentrate on the ODE solution (regime ode).

Exact sampler, seeds fixed (seed 0 and the per-width seeds of validate).  Sizes: 200 networks per width;
the mean check resolves z·SE ≈ 0.03 at n = 256, the one-step drift 2 % of max|b| (10 000 layers at
n = 1024), and the stated power (a drift × 1.25 rejected) is asserted, with a negative control (the
ODE of another γ0)."""
import json

import numpy as np
import pytest

from covsde.cli import main
from covsde.common.errors import CovsdeInputError
from covsde.derive import derive
from covsde.derive.variants import build
from covsde.validate.validation import validate

V0 = np.array([[1.0, 0.3], [0.3, 0.8]])


def test_unshaped_resnet_concentrates_on_the_arc_cosine_ode(tmp_path, capsys):
    """ResNet, unshaped ReLU, γ = 0.8·n^(−1/2), κ = 1 (regime ode): the networks' mean is at the ODE
    solution, the spread shrinks like n^(−1/2) (the theory's bound), and a drift × 1.25 is rejected."""
    args = ["validate", "resnet", "--set", "p=0", "--set", "q=1/2", "--set", "gamma=0.8", "--V0", json.dumps(V0.tolist()),
            "--T", "1", "--widths", "64,256", "--samples", "200", "--quiet", "--format", "json", "--out", str(tmp_path)]
    assert main(args) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["target"] == "ode" and r["verdict"] == "pass" and r["kappa"] == "1"
    c = r["ode"]
    assert c["mean_ok"] and c["spread_ok"] and c["spread_theory"] == "bound" and c["spread_rate_theory"] == -0.5
    assert -0.7 < c["spread_rate"] < -0.3
    assert r["power"]["drift"] is not None and r["power"]["drift"] <= 0.25
    assert (tmp_path / "concentration.png").stat().st_size > 10_000 and (tmp_path / "report.json").exists()
    assert r["ode"]["per_width"]["256"]["depth"] == 256


def test_the_ode_of_another_gamma_is_rejected():
    """Negative control: networks with γ0 = 0.8 against the ODE of γ0 = 1 (drift × 1.56)."""
    blk, _ = build("resnet", {"p": "0", "q": "1/2", "gamma": "0.8"})
    wrong = derive(build("resnet", {"p": "0", "q": "1/2", "gamma": "1", "lam": "1"})[0], 2)
    assert wrong.regime == "ode"
    rep, _ = validate(blk, wrong, V0, 1.0, [64, 256], samples=200, power=False)
    assert rep["verdict"] == "fail" and not (rep["ode"]["mean_ok"] and rep["onestep"]["drift_ok"])


def test_depth_n_to_the_kappa_shaped_mlp():
    """LNR22 MLP shaped at p = 1/4 with d = T·n^(1/2) (regime ode on t = ℓ/n^(1/2)): depth 32 at n = 1024, the
    spread's rate is the exact theory's −1/4 (per-layer fluctuation n^(−1/2) over n^(1/2) layers)."""
    blk, p = build("mlp", {"p": "1/4", "kappa": "1/2"})
    d = derive(blk, 2, kappa=p["kappa"])
    assert d.regime == "ode" and d.spread == "1/4" and d.spread_exact
    rep, _ = validate(blk, d, V0, 1.0, [256, 1024], samples=300, power=False)
    c = rep["ode"]
    assert rep["verdict"] == "pass", rep["ode"]
    assert c["per_width"]["1024"]["depth"] == 32 and c["spread_theory"] == "exact"
    assert c["spread_ok"] and abs(c["spread_rate"] + 0.25) < 0.15


def test_a_target_that_does_not_fit_the_regime_is_refused(capsys):
    blk, _ = build("resnet", {"gamma": "0.5"})
    d = derive(blk, 2)
    with pytest.raises(CovsdeInputError, match="target ode does not fit the regime sde"):
        validate(blk, d, V0, 0.5, [16], samples=20, target="ode")
    assert main(["validate", "resnet", "--set", "p=0", "--set", "q=1/2", "--set", "gamma=0.8", "--V0", "[[1,0.3],[0.3,1]]",
                 "--T", "1", "--widths", "16", "--target", "sde"]) == 2
    assert "target sde does not fit the regime ode" in capsys.readouterr().err


@pytest.mark.parametrize("act", ["gelu", "tanh"])
def test_unshaped_smooth_resnet_concentrates_on_its_kernel_map_ode(act, tmp_path, capsys):
    """ResNet, unshaped GELU / tanh (p = 0, no shaping condition), γ = 0.8·n^(−1/2): the networks (φ itself,
    exact sampler, 150 per width, n = 32 and 128) concentrate on the ODE b = γ0²(K_φ(V) − V) (GELU's map in closed form,
    tanh's by quadrature); the one-step drift matches b(V0) to 2 % of max|b|."""
    args = ["validate", "resnet", "--set", "p=0", "--set", "q=1/2", "--set", "gamma=0.8", "--set", f"activation={act}",
            "--V0", json.dumps(V0.tolist()), "--T", "1", "--widths", "32,128", "--samples", "150", "--no-power",
            "--quiet", "--format", "json", "--out", str(tmp_path)]
    assert main(args) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["target"] == "ode" and r["verdict"] == "pass", r["ode"]
    assert r["ode"]["mean_ok"] and r["ode"]["spread_ok"] and r["onestep"]["drift_ok"]


@pytest.mark.parametrize("act", ["gelu", "tanh"])
def test_the_relu_kernel_in_place_of_a_smooth_map_is_rejected(act):
    """Negative control: GELU / tanh networks against the arc-cosine (ReLU) ODE of the same γ0."""
    blk, _ = build("resnet", {"p": "0", "q": "1/2", "gamma": "0.8", "activation": act})
    wrong = derive(build("resnet", {"p": "0", "q": "1/2", "gamma": "0.8"})[0], 2)
    assert "acos" in str(wrong.drift[0, 1])
    rep, _ = validate(blk, wrong, V0, 1.0, [32, 128], samples=150, power=False)
    assert rep["verdict"] == "fail" and not rep["ode"]["mean_ok"] and not rep["onestep"]["drift_ok"]
