"""Training checks (covsde.validate.training): the coordinate check and learning-rate transfer separate
the parameterisations as theory says, the trainable modules' initial Gram is covsde's prediction, and
``covsde train-check`` writes its report and refuses bad input up front.

All runs are seeded (task seed 0, initialisation seeds 0, 1) and small: m = 4 tokens, batches of 32,
depth 2, widths 32 … 256 on CPU."""
import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from covsde.cli import main
from covsde.derive import derive
from covsde.derive.variants import build
from covsde.validate.onestep import compare_moments
from covsde.validate.training.check import coord_check, lr_sweep, curve_distances, module_one_step_moments
from covsde.validate.training.modules import BlockModule, TrainableNet
from covsde.validate.training.params import Parameterisation, make
from covsde.validate.training.tasks import Task

WIDTHS = [32, 64, 128, 256]


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def cfg(param, model="mlp", task="teacher", optimizer="sgd", **kw):
    c = dict(model=model, set={}, param=param, depth=2, task=task, m=4, widths=WIDTHS, seeds=2, coord_steps=4,
             coord_lr=0.005, optimizer=optimizer, seed=0, steps=40, lrs=[0.5])
    c.update(kw)
    return c


@dataclasses.dataclass(frozen=True)
class FastReadout(Parameterisation):
    """μP with the readout's SGD rate one power of n too large (a wrong learning-rate scaling)."""

    def learning_rates(self, optimizer, eta, n, L):
        r = super().learning_rates(optimizer, eta, n, L)
        return {**r, "output": r["output"] * n}


def test_coordinate_check_separates_sp_and_mup():
    """Shaped-ReLU MLP, teacher task, SGD at η = 0.005, 4 steps, 2 seeds: the activation change after the
    last step grows with n under sp (largest slope in log n > 0.3: its readout update is O(√n) too large),
    is flat under mup (|slope| < 0.15), and a μP with the readout rate ×n (FastReadout) fails the flatness."""
    task = Task("teacher", "mlp", {}, 2, 4)
    sp_ = coord_check(cfg(make("sp")), task)
    mup = coord_check(cfg(make("mup")), task)
    assert sp_["widths"] == WIDTHS
    assert sp_["slope"] > 0.3, sp_["layer_slopes"]
    assert abs(mup["slope"]) < 0.15 and all(abs(s) < 0.15 for s in mup["layer_slopes"].values()), mup["layer_slopes"]
    wrong = coord_check(cfg(FastReadout(**vars(make("mup")))), task)
    assert wrong["slope"] > 0.15, wrong["layer_slopes"]


def test_coordinate_check_with_adam_on_the_language_task():
    """The same separation with Adam (η = 0.01) on the seeded Markov-chain language task."""
    task = Task("language", "mlp", {}, 2, 4)
    assert coord_check(cfg(make("sp"), task="language", optimizer="adam", coord_lr=0.01), task)["slope"] > 0.3
    mup = coord_check(cfg(make("mup"), task="language", optimizer="adam", coord_lr=0.01), task)
    assert abs(mup["slope"]) < 0.15, mup["layer_slopes"]


def test_learning_rate_transfer_and_loss_curves():
    """Language task, shaped-ReLU MLP, SGD, 40 steps, grid η = 2^−6 … 2^1: under mup the best rate is the same
    grid point or a neighbour at n = 32 … 256; under sp it moves by at least two grid points (its stable
    rates shrink like 1/n); under mup the loss curve's distance to n = 256's shrinks with n."""
    lrs = [2.0**k for k in range(-6, 2)]
    task = Task("language", "mlp", {}, 2, 4)
    idx = {}
    for p in ("sp", "mup"):
        final, curves, best = lr_sweep(cfg(make(p), task="language", lrs=lrs), task)
        assert set(final) == {str(n) for n in WIDTHS}
        idx[p] = [lrs.index(best[str(n)]) for n in WIDTHS]
        if p == "mup":
            d = curve_distances(WIDTHS, curves, best)
            assert d["distance"]["32"] > d["distance"]["128"] and d["rate"] < 0, d
    assert max(idx["mup"]) - min(idx["mup"]) <= 1, idx
    assert idx["sp"][0] - idx["sp"][-1] >= 2, idx


def test_loss_distance_shrinks_under_depth_mup():
    """depth-mup on a residual network (depth 4, β0 = 1, λ = 1), language task, SGD η = 0.5, 40 steps: the loss
    curve's distance to the n = 256 curve is smaller at n = 128 than at n = 32."""
    task = Task("language", "resnet", {}, 4, 4)
    c = cfg(make("depth-mup"), model="resnet", task="language", depth=4, lrs=[0.5])
    _, curves, best = lr_sweep(c, task)
    d = curve_distances(WIDTHS, curves, best)
    assert d["distance"]["32"] > d["distance"]["128"], d


@pytest.mark.parametrize("variant,given,n", [("resnet", {"gamma": "0.6"}, 64), ("resnet", {"gamma": "0.6"}, 128),
                                              ("transformer", {"gamma": "0.5", "tau0": "1"}, 64)])
def test_module_initial_gram_matches_the_derivation(variant, given, n):
    """One layer of the trainable module at init (3000 independent initialisations, seed = n, m = 3) agrees
    with the derived b(V), Σ(V) in validate's one-step test (Bonferroni α = 0.01 plus the finite-width
    allowance), and Σ × 1.25 is rejected."""
    blk, _ = build(variant, given)
    V = np.array([[1.0, 0.3, 0.1], [0.3, 0.8, 0.2], [0.1, 0.2, 1.2]])
    b, Sig = derive(blk, 3).numeric(V)
    mom = module_one_step_moments(blk, V, n, 3000, seed=n)
    res = compare_moments(mom, b, Sig)
    assert res.ok, res.worst
    assert not compare_moments(mom, b, 1.25 * Sig).diffusion_ok


def test_module_weights_persist_and_train():
    """The weights are created once (N(0, 1), shape (networks, fan_in, fan_out)), reused by every pass and
    receive gradients: two passes give the same output, one SGD step changes it."""
    blk, _ = build("transformer", {"gamma": "0.5", "tau0": "1"})
    layer = BlockModule(blk, 32, 4, generator=torch.Generator().manual_seed(0))
    assert len(layer.weights) == 5 and all(w.shape[0] == 1 and w.shape[1] == 32 for w in layer.weights)
    x = torch.randn(8, 4, 32)
    y1, y2 = layer(x), layer(x)
    assert torch.equal(y1, y2)
    net = TrainableNet([blk, blk], 32, 4, d_in=8)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    xin = torch.randn(8, 4, 8)
    f0 = net(xin).detach()
    net(xin).pow(2).mean().backward()
    opt.step()
    assert not torch.allclose(net(xin), f0)


BAD = [
    (["resnet2"], "'resnet2'"), (["mlp", "--param", "foo"], "'foo'"), (["mlp", "--task", "foo"], "'foo'"),
    (["mlp", "--widths", "32,abc"], "'abc'"), (["mlp", "--widths", "64,32"], "[64, 32]"),
    (["mlp", "--widths", "32"], "[32]"), (["mlp", "--lrs", "0.1,-1"], "'-1'"), (["mlp", "--lrs", "0.1,nan"], "'nan'"),
    (["mlp", "--widths", "32,10000000"], "COVSDE_MAX_WIDTH"), (["mlp", "--widths", "32,8192", "--depth", "64"],
                                                             "--max-memory"),
    (["mlp", "--widths", "32,1024", "--steps", "100000"], "COVSDE_MAX_WORK"),
    (["mlp", "--optimizer", "rmsprop"], "'rmsprop'"), (["mlp", "--set", "gamma=0.5"], "'gamma'"),
    (["mlp", "--pset", "alpha_A=1"], "alpha_A"), (["mlp", "--steps", "0"], "--steps"),
    (["mlp", "--device", "tpu"], "'tpu'"),
    (["mlp", "--heads", "1,2"], "'mlp'"), (["resnet", "--heads", "1,2"], "'resnet'"),
    (["attention", "--heads", "1,x"], "'x'"), (["attention", "--heads", "0,2"], "'0'"),
    (["attention", "--heads", "2,1"], "[2, 1]"), (["attention", "--heads", "2"], "[2]"),
    (["attention", "--heads", "1,1000"], "1000"), (["attention", "--widths", "32,64", "--heads", "1,3"], "3 heads"),
    (["attention", "--set", "heads=2", "--heads", "1,2"], "--set heads"),
    (["mlp", "--depths", "2,2.5"], "'2.5'"), (["mlp", "--depths", "4,2"], "[4, 2]"), (["mlp", "--depths=-1,2"], "'-1'"),
    (["mlp", "--depths", "2,1000"], "1000"), (["mlp", "--depths", "2"], "[2]"),
]


@pytest.mark.parametrize("args,named", BAD)
def test_train_check_refuses_bad_input_up_front(capsys, tmp_path, args, named):
    """Exit 2 and one line naming the value, before any output folder is made."""
    out = tmp_path / "out"
    code = main(["train-check", *args, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and named in err and err.count("\n") == 1, err
    assert not out.exists()


def test_train_check_cli_writes_the_report(capsys, tmp_path):
    """A tiny run (widths 16, 32; two rates; 3 steps): report.json with the keys scripts rely on, and the plots."""
    out = tmp_path / "tc"
    code = main(["train-check", "mlp", "--param", "mup", "--widths", "16,32", "--lrs", "0.5,1", "--steps", "3",
                 "--coord-steps", "2", "--seeds", "1", "--m", "3", "--quiet", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    r = json.loads((out / "report.json").read_text())
    assert r["coord_check"]["widths"] == [16, 32] and math.isfinite(r["coord_check"]["slope"])
    assert set(r["lr_transfer"]["best_lr"]) == {"16", "32"}
    assert set(r["loss"]["final"]["16"]) == {"0.5", "1"}
    assert r["initial_kernel"]["regime"] == "sde" and set(r["initial_kernel"]["error"]) == {"16", "32"}
    for f in ("coord_check.png", "loss_curves.png", "lr_transfer.png", "initial_kernel.png"):
        assert (out / f).stat().st_size > 1000
    assert main(["train-check", "mlp", "--out", str(out)]) == 2  # existing outputs need --force


def test_reproduce_shaped_training_quick(tmp_path):
    """`covsde reproduce shaped-training --quick` (n = 32, depth 8, Adam at 10^−3, 10^−2, 10^−1, 12 steps, seed 0):
    both models have a loss curve per rate, and a largest stable rate from the grid (or none), reported as
    measured; at 10^−3 (a small rate) both are stable."""
    from covsde.reproduce import reproduce

    data, out = reproduce("shaped-training", tmp_path / "st", quick=True)
    assert (out / "shaped-training.png").exists()
    assert json.loads((out / "shaped-training.json").read_text())["name"] == "shaped-training"
    for label, r in data["models"].items():
        assert set(r["curves"]) == {"0.001", "0.01", "0.1"}, label
        assert r["largest_stable_lr"] in (0.001, 0.01, 0.1), label
        assert r["final"]["0.001"] is not None and r["final"]["0.001"] < r["curves"]["0.001"][0], label


def test_bordelon_output_is_centred_and_its_coordinate_check_is_flat():
    """bordelon with γ0 = 1/2: the output (f − f0)/γ0 is 0 at init (to rounding) and receives gradients; its
    coordinate check (the sizes of the sp/mup test) is flat in width like μP's."""
    from covsde.validate.training.tasks import make_net

    p = make("bordelon", gamma0=0.5)
    net = make_net("mlp", {}, p, 32, 2, "teacher", 4)
    x = torch.randn(8, 4, 8)
    f = net(x)
    assert float(f.detach().abs().max()) < 1e-6 and f.requires_grad  # 0 up to float32 rounding
    task = Task("teacher", "mlp", {}, 2, 4)
    r = coord_check(cfg(p), task)
    assert abs(r["slope"]) < 0.15, r["layer_slopes"]


SWEEP_SIZE = [(["mlp", "--widths", "32,1024", "--steps", "1000"], ["--depths", "2,4,8,16,32"], "COVSDE_MAX_WORK"),
              (["transformer", "--widths", "64,1024", "--steps", "5", "--max-memory", "4G"], ["--heads", "1,64"],
               "--max-memory")]


@pytest.mark.parametrize("args,sweep,named", SWEEP_SIZE)
def test_sweep_runs_are_counted_in_the_size_check(capsys, tmp_path, monkeypatch, args, sweep, named):
    """The work and memory estimates count the heads and depth sweeps: a check that fits without them (it
    reaches the run, stubbed here) is refused with them (exit 2, one line)."""
    import covsde.validate.training as training
    from covsde.validate.training.report import estimate

    def stub(*a, **k):
        raise SystemExit(99)

    monkeypatch.setattr(training, "train_check", stub)
    with pytest.raises(SystemExit, match="99"):
        main(["train-check", *args, "--out", str(tmp_path / "a")])
    code = main(["train-check", *args, *sweep, "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 2 and named in err and err.count("\n") == 1, err
    base = estimate([32, 64], 2, 4, 32, 10, 2, 2, 1)
    heads = estimate([32, 64], 2, 4, 32, 10, 2, 2, 1, heads=[1, 8])
    deep = estimate([32, 64], 2, 4, 32, 10, 2, 2, 1, depths=[2, 16])
    assert heads[0] > base[0] and heads[1] > base[1] and deep[0] > base[0] and deep[1] > base[1]


def png_width(path):
    return int.from_bytes(path.read_bytes()[16:20], "big")


def test_train_check_cli_sweeps_heads_and_depths(capsys, tmp_path):
    """A tiny attention run (widths 16, 32; --heads 1,2 --depths 2,4; two rates; 3 steps): report.json keeps the
    width keys and gains "sweeps" with, per axis, the values, the width they ran at, the final losses over the
    grid, the best rate and the distance to the largest value's curve; loss_curves.png has three panels (wider
    than a run without sweeps)."""
    common = ["--param", "mup", "--widths", "16,32", "--lrs", "0.5,1", "--steps", "3", "--coord-steps", "2",
              "--seeds", "1", "--m", "3", "--quiet", "--no-kernel"]
    out, plain = tmp_path / "sw", tmp_path / "plain"
    code = main(["train-check", "attention", *common, "--heads", "1,2", "--depths", "2,4", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert "heads sweep at n=32" in capsys.readouterr().out
    r = json.loads((out / "report.json").read_text())
    assert set(r["lr_transfer"]["best_lr"]) == {"16", "32"} and set(r["loss"]["final"]["16"]) == {"0.5", "1"}
    assert set(r["sweeps"]) == {"heads", "depths"}
    for axis, vals in (("heads", ["1", "2"]), ("depths", ["2", "4"])):
        sw = r["sweeps"][axis]
        assert sw["values"] == [int(v) for v in vals] and sw["width"] == 32, sw
        assert set(sw["final"]) == set(vals) and set(sw["final"]["1" if axis == "heads" else "2"]) == {"0.5", "1"}
        assert set(sw["best_lr"]) == set(vals) and set(sw["distance"]) == {vals[0]}
        assert len(sw["curves"][vals[0]]["0.5"]) == 3
    # the two head counts and the two depths are different networks: their curves differ
    assert r["sweeps"]["heads"]["distance"]["1"] > 0 and r["sweeps"]["depths"]["distance"]["2"] > 0
    assert main(["train-check", "attention", *common, "--out", str(plain)]) == 0
    assert json.loads((plain / "report.json").read_text())["sweeps"] == {}
    assert png_width(out / "loss_curves.png") > 2.5 * png_width(plain / "loss_curves.png")


def test_depth_sweep_under_depth_mup_converges_in_depth():
    """Residual networks at n = 64, language task, SGD η = 0.5, 40 steps, depths L = 2, 4, 8, 16 (the axis sweep
    of train-check --depths): under depth-mup (branches (L/L0)^(−1/2), λ = 1) the loss curve's distance to the
    L = 16 curve shrinks with L (measured 0.072, 0.042, 0.035: ∝ L^−0.52); under mup (fixed branch 1/√2, no
    depth factor) at the same rate the L = 16 run diverges."""
    from covsde.validate.training.check import axis_sweep

    task = Task("language", "resnet", {}, 2, 4)
    sw = {p: axis_sweep(cfg(make(p), model="resnet", task="language", widths=[64], lrs=[0.5]), task, "depths",
                        [2, 4, 8, 16]) for p in ("depth-mup", "mup")}
    d = sw["depth-mup"]["distance"]
    assert d["2"] > d["4"] > d["8"] and sw["depth-mup"]["rate"] < -0.3, d
    assert all(v is not None for v in sw["depth-mup"]["final"].values())
    assert sw["mup"]["final"]["16"]["0.5"] is None, sw["mup"]["final"]
