"""Shared one-step check of the new-op tests: finite networks with real weights agree with b and Σ."""
from covsde.validate.onestep import compare_moments, one_step_moments


def real_weights_agree(blk, V, b, Sig, *, widths=(64, 128), samples=2500, **kw):
    """Real weight matrices at each width (seed = n, ``samples`` layers): b and Σ accepted (Bonferroni
    α = 0.01 plus the finite-width allowance), and Σ × 1.25 rejected."""
    for n in widths:
        mom = one_step_moments(blk, V, n=n, samples=samples, seed=n, mode="weights")
        res = compare_moments(mom, b, Sig, **kw)
        assert res.ok, (n, res.worst)
        assert not compare_moments(mom, b, 1.25 * Sig, **kw).diffusion_ok, n
