"""Exports: the NumPy/PyTorch/JAX functions equal the derivation, the PyTorch drift is differentiable,
and torchsde and diffrax paths from the exported terms agree in law with `covsde simulate`."""
import numpy as np
import pytest
import torch
from scipy import stats

from covsde.derive import derive, random_psd
from covsde.derive.variants import build
from covsde.export import brownian_shape, diffrax_brownian_shape, to_diffrax, to_jax, to_numpy, to_torch, to_torchsde

CASES = [("mlp", {}, None), ("attention", {}, {"gamma": 0.5, "tau0": 0.8}),
         ("transformer", {"gamma": "0.35355339", "tau0": "1"}, None)]


@pytest.mark.parametrize("variant,s,params", CASES)
def test_exported_coefficients_equal_the_derivation(variant, s, params):
    """At 3 random PSD V (m = 3): drift (NumPy, torch, JAX) equals b(V); the torchsde g satisfies
    g gᵀ = Σ(V) (the noise is exact, not an approximation); NumPy noise = torch noise = JAX noise."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    d = derive(build(variant, s)[0], 3)
    cn, ct, cj, sde = to_numpy(d, params), to_torch(d, params), to_jax(d, params), to_torchsde(d, params)
    rng = np.random.default_rng(1)
    for k in range(3):
        V = random_psd(3, __import__("random").Random(k))
        b, Sig = d.numeric(V, params)
        np.testing.assert_allclose(cn.drift(V), b, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(ct.drift(torch.tensor(V)).numpy(), b, rtol=1e-12, atol=1e-13)
        g = sde.g(0.0, torch.tensor(V).reshape(1, 9))[0].numpy()
        np.testing.assert_allclose(g @ g.T, Sig.reshape(9, 9), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(np.asarray(cj.drift(jax.numpy.asarray(V))), b, rtol=1e-12, atol=1e-13)
        Z = rng.standard_normal(brownian_shape(d))
        Nn = cn.noise(V, Z)
        np.testing.assert_allclose(Nn, ct.noise(torch.tensor(V), torch.tensor(Z)).numpy(), rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(Nn, np.asarray(cj.noise(jax.numpy.asarray(V), jax.numpy.asarray(Z))), rtol=1e-12,
                                   atol=1e-13)


def test_a_matrix_outside_the_cone_fails_alone():
    """One non-PD matrix in a batch: its noise is NaN (NumPy and torch), the others are unaffected."""
    d = derive(build("mlp", {})[0], 2)
    V = np.array([[[1.0, 0.2], [0.2, 1.0]], [[1.0, 2.0], [2.0, 1.0]]])
    Z = np.random.default_rng(0).standard_normal((2,) + brownian_shape(d))
    for N in (to_numpy(d).noise(V, Z), to_torch(d).noise(torch.tensor(V), torch.tensor(Z)).numpy()):
        assert np.all(np.isfinite(N[0])) and np.all(np.isnan(N[1]))
        np.testing.assert_allclose(N[0], to_numpy(d).noise(V[:1], Z[:1])[0], rtol=1e-12)


def test_torch_drift_is_differentiable():
    d = derive(build("attention", {})[0], 2)
    ct = to_torch(d, {"gamma": 0.6, "tau0": 0.9})
    V = torch.tensor([[[1.0, 0.3], [0.3, 0.8]], [[1.2, -0.2], [-0.2, 0.9]]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda X: ct.drift(0.5 * (X + X.transpose(-1, -2))), (V,))


def test_torchsde_paths_agree_in_law_with_covsde_simulate():
    """mlp, m = 2, T = 0.5, dt = 0.01, Euler in both, 4000 paths each: two-sample KS on ρ and log V⁰⁰
    at α = 0.01 (Bonferroni over the two); negative control: Σ × 1.5 in torchsde is rejected."""
    torchsde = pytest.importorskip("torchsde")
    from covsde.numerics import simulate

    d = derive(build("mlp", {})[0], 2)
    V0 = np.array([[1.0, 0.2], [0.2, 1.0]])
    ref = simulate(d, V0, 0.5, dt=0.01, paths=4000, seed=3, scheme="em", progress=False).V[-1]

    def torchsde_paths(scale):
        sde = to_torchsde(d, diffusion_scale=scale)
        y0 = torch.tensor(V0).reshape(1, 4).repeat(4000, 1)
        bm = torchsde.BrownianInterval(0.0, 0.5, size=(4000, sde.brownian_size), dtype=torch.float64, entropy=7)
        ys = torchsde.sdeint(sde, y0, torch.tensor([0.0, 0.5], dtype=torch.float64), bm=bm, method="euler", dt=0.01)
        return ys[-1].reshape(-1, 2, 2).numpy()

    def pvalues(VT):
        rho = lambda X: X[:, 0, 1] / np.sqrt(X[:, 0, 0] * X[:, 1, 1])  # noqa: E731
        return (stats.ks_2samp(rho(VT), rho(ref)).pvalue, stats.ks_2samp(np.log(VT[:, 0, 0]), np.log(ref[:, 0, 0])).pvalue)

    assert min(pvalues(torchsde_paths(1.0))) > 0.005
    assert min(pvalues(torchsde_paths(1.5))) < 0.005


def test_diffrax_paths_agree_in_law_with_covsde_simulate():
    """mlp, m = 2, T = 0.5, dt = 0.01, Euler in both, 4000 paths each (diffrax: vmapped solves, each on
    its own VirtualBrownianTree): two-sample KS on ρ and log V⁰⁰ at α = 0.01 (Bonferroni over the two);
    negative control: Σ × 1.5 through the same export is rejected."""
    jax = pytest.importorskip("jax")
    diffrax = pytest.importorskip("diffrax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    from covsde.numerics import simulate

    d = derive(build("mlp", {})[0], 2)
    V0 = np.array([[1.0, 0.2], [0.2, 1.0]])
    ref = simulate(d, V0, 0.5, dt=0.01, paths=4000, seed=3, scheme="em", progress=False).V[-1]
    shape = jax.ShapeDtypeStruct(diffrax_brownian_shape(d), jnp.float64)

    def paths(scale):
        @jax.jit
        @jax.vmap
        def solve(key):
            bm = diffrax.VirtualBrownianTree(0.0, 0.5, tol=1e-3, shape=shape, key=key)
            sol = diffrax.diffeqsolve(to_diffrax(d, None, bm, diffusion_scale=scale), diffrax.Euler(), 0.0, 0.5,
                                      dt0=0.01, y0=jnp.asarray(V0), saveat=diffrax.SaveAt(t1=True))
            return sol.ys[-1]

        return np.asarray(solve(jax.random.split(jax.random.PRNGKey(0), 4000)))

    def pvalues(VT):
        rho = lambda X: X[:, 0, 1] / np.sqrt(X[:, 0, 0] * X[:, 1, 1])  # noqa: E731
        return (stats.ks_2samp(rho(VT), rho(ref)).pvalue, stats.ks_2samp(np.log(VT[:, 0, 0]), np.log(ref[:, 0, 0])).pvalue)

    assert min(pvalues(paths(1.0))) > 0.005
    assert min(pvalues(paths(1.5))) < 0.005
