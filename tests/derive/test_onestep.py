"""One-step Monte Carlo check of every CLI variant at n = 2048 (exact-in-law layer sampling).

Sample sizes and power: B = 20 000 layers per variant; the drift estimate uses control variates
(standard error ≈ 0.5–3 % of b here), the covariance a plain sample covariance (≈ 1 %).  Each entry
must agree within a Bonferroni-corrected z (family-wise α = 0.01 over all entries) plus a
finite-width allowance of 1/√n relative.  The same samples must reject the diffusion scaled by 1.1,
and (with the cross-draw product control variates) the attention and Transformer drift scaled by 1.1
and by 0.9 at B = 20 000.
"""
import math

import numpy as np
import pytest

from covsde.derive import derive
from covsde.derive.variants import build
from covsde.validate.onestep import compare_moments, one_step_moments, sample_one_step

V = np.array([[1.0, 0.3], [0.3, 0.8]])
CASES = {
    "mlp": {"c_plus": "1", "c_minus": "-2"},
    "resnet": {"c_plus": "1", "c_minus": "-2", "gamma": "0.8"},
    "attention": {"gamma": "0.8", "tau0": "0.5"},
    "transformer": {"gamma": "0.8", "tau0": "0.5", "c_plus": "1", "c_minus": "-2"},
}


@pytest.mark.parametrize("variant", sorted(CASES))
def test_one_step_moments_agree_and_wrong_diffusion_fails(variant):
    blk, _ = build(variant, CASES[variant])
    d = derive(blk, 2)
    b, Sig = d.numeric(V)
    mom = one_step_moments(blk, V, n=2048, samples=20000, seed=11, n_k=512)
    good = compare_moments(mom, b, Sig)
    assert good.ok, good.worst
    assert not compare_moments(mom, b, 1.1 * Sig).diffusion_ok
    assert not compare_moments(mom, b, 0.9 * Sig).diffusion_ok


@pytest.mark.parametrize("variant", ["attention", "transformer"])
def test_drift_power(variant):
    """n = 1024, B = 20 000 layers, seed 5: the derived drift is accepted and the drift scaled by
    1.1 and by 0.9 is rejected (Bonferroni α = 0.01 plus the 1/√n allowance)."""
    blk, _ = build(variant, CASES[variant])
    d = derive(blk, 2)
    b, Sig = d.numeric(V)
    mom = one_step_moments(blk, V, n=1024, samples=20000, seed=5, n_k=256)
    assert compare_moments(mom, b, Sig).ok
    assert not compare_moments(mom, 1.1 * b, Sig).drift_ok
    assert not compare_moments(mom, 0.9 * b, Sig).drift_ok


def test_product_control_variates_have_mean_zero_and_cut_the_noise():
    """Transformer, n = 256, B = 12 000 layers: every product control variate has mean 0 (z-tests,
    Bonferroni over all columns at α = 0.01); the cross-fitted estimate agrees with the plain mean
    (|z| < 3.5); the product control variates cut the standard error of n·E[ΔV] at least 5×
    (measured: about 18×)."""
    from scipy import stats

    blk, _ = build("transformer", CASES["transformer"])
    dV, C = sample_one_step(blk, V, 256, 12000, seed=2, n_k=64, products=True)
    z = C.mean(0) / (C.std(0) / math.sqrt(len(C)))
    assert np.abs(z).max() < stats.norm.isf(0.01 / (2 * C.shape[1])), np.abs(z).max()
    plain = dV[:, 0, 1] * 256
    cv = one_step_moments(blk, V, n=256, samples=12000, seed=2, n_k=64)
    first = one_step_moments(blk, V, n=256, samples=12000, seed=2, n_k=64, products=False)
    k = cv["idx"].index((0, 1))
    se_plain = plain.std() / math.sqrt(len(plain))
    assert abs(cv["mean"][k] - plain.mean()) < 3.5 * se_plain
    assert cv["mean_se"][k] * 5 < first["mean_se"][k] and cv["mean_se"][k] * 5 < se_plain


def test_standard_attention_has_no_limit_and_changes_V_by_O1():
    """Derivation says no-limit; one layer of the real module changes V by O(1), not O(1/n)."""
    blk, _ = build("standard-attention", {"gamma": "0.5"})
    d = derive(blk, 2)
    assert d.regime == "no-limit" and "rank collapse" in d.reason
    V0 = np.array([[1.0, 0.2], [0.2, 1.0]])
    means = []
    for n in (256, 1024):
        dV, _ = sample_one_step(blk, V0, n, 2000, seed=1, n_k=n)
        means.append(dV[:, 0, 1].mean())
    # an SDE-scaled mean change would shrink 4× from n = 256 to 1024; here it stays O(1)
    assert means[0] > 0.05 and means[1] > 0.05
    assert means[1] / means[0] > 0.6


@pytest.mark.parametrize("m", [2, 3])
def test_control_variate_count_and_product_cap(m):
    """The column count used to decide on products matches the matrix; "auto" keeps products only
    under PRODUCT_CAP columns (Transformer: m = 2 → 780 columns with products, m = 3 → first order)."""
    import torch

    from covsde.validate.backends import TorchOps, whitened_input
    from covsde.validate.onestep import PRODUCT_CAP

    blk, _ = build("transformer", CASES["transformer"])
    Vm = np.eye(m) * 0.8 + 0.2
    ops = TorchOps(64, m, 6, record=True, generator=torch.Generator().manual_seed(0))
    x = whitened_input(Vm, 64, 6, generator=ops.gen)
    ops.begin(x)
    blk.step(x, ops)
    for prod in (False, True):
        assert ops.n_control_variates(prod) == ops.stats_matrix(prod).shape[1]
    mom = one_step_moments(blk, Vm, n=64, samples=400, seed=0, n_k=16, chunk=200)
    expect = ops.n_control_variates(ops.n_control_variates(True) <= PRODUCT_CAP)
    assert mom["control_variates"] == expect
    assert (expect > ops.n_control_variates(False)) == (m == 2)
