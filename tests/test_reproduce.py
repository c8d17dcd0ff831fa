"""`covsde reproduce NAME --quick` for every NAME, checking the numbers it produces."""
import json
import subprocess
import sys

import numpy as np

from covsde.reproduce import reproduce


def run(name, tmp_path):
    data, out = reproduce(name, tmp_path / name, quick=True)
    assert (out / f"{name}.png").exists()
    assert json.loads((out / f"{name}.json").read_text())["name"] == name
    return data


def test_rank_collapse(tmp_path):
    d = run("rank-collapse", tmp_path)
    r = d["mean_rho"]
    assert r["standard attention, with skip"][10] > 0.9
    shaped = [k for k in r if k.startswith("shaped attention (")][0]
    assert max(r[shaped]) < 0.4
    assert d["regime"]["standard attention, with skip"] == "no-limit" and d["regime"][shaped] == "sde"


def test_mlp_density(tmp_path):
    """Quick mlp-density: 300 shaped networks (n = d = 64, seed 2) against 1200 SDE paths (seed 1), law test at
    α = 0.01 (no rejection; p ≈ 0.8 here, ≈ 0.04 at n = 32 — its power is not measured here); contrast: the
    unshaped ReLU networks (seed 3) collapse, median ρ > 0.9, while the shaped stay below 0.8."""
    d = run("mlp-density", tmp_path)
    assert d["regime_unshaped"] == "no-limit"
    assert d["quantiles"]["unshaped"][2] > 0.9  # ρ → 1 without shaping
    assert d["quantiles"]["shaped"][2] < 0.8
    assert not d["shaped_vs_sde"]["reject"]


def test_transformer_density(tmp_path):
    d = run("transformer-density", tmp_path)
    assert all(not v["reject"] for v in d["networks"].values())
    assert d["sde"]["left_psd"] == 0


def test_explosion(tmp_path):
    d = run("explosion", tmp_path)
    t = d["tau0"]
    assert t["0.3"]["exploded"] > t["1.0"]["exploded"]
    assert t["0.3"]["ode_blowup_time"] is not None and t["0.3"]["ode_blowup_time"] < 1.0
    f = np.array(t["0.3"]["fraction_exploded"])
    assert np.all(np.diff(f) >= 0) and f[-1] > 0


def test_tau_sweep(tmp_path):
    rows = run("tau-sweep", tmp_path)["rows"]
    assert rows[0]["tau0"] < rows[-1]["tau0"]
    assert rows[0]["sde_exploded_fraction"] > rows[-1]["sde_exploded_fraction"]


def test_gamma_sweep(tmp_path):
    rows = run("gamma-sweep", tmp_path)["rows"]
    iqr = [r["quantiles_sde"]["rho_0_1"][3] - r["quantiles_sde"]["rho_0_1"][1] for r in rows]
    assert iqr[0] < iqr[-1]  # more residual strength, more spread of ρ_T
    assert [r["verdict"] for r in rows] == ["pass", "pass"]  # networks (n = 32, 200) agree with the SDE


def test_unknown_name_and_no_clobber(tmp_path):
    r = subprocess.run([sys.executable, "-m", "covsde.cli", "reproduce", "nope"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown reproduction" in r.stderr
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "explosion.json").write_text("{}")
    r = subprocess.run([sys.executable, "-m", "covsde.cli", "reproduce", "explosion", "--quick", "--out",
                        str(tmp_path / "x")], capture_output=True, text=True)
    assert r.returncode == 2 and "exists" in r.stderr


def test_demo_quick(tmp_path):
    from covsde.demo import run_demo

    assert run_demo(tmp_path / "demo", quick=True) == 0
    md = (tmp_path / "demo" / "report.md").read_text()
    for f in ("sde.png", "validation/densities.png", "rank_collapse.png"):
        assert f in md and (tmp_path / "demo" / f).exists()
