"""The export API checks its arguments: a CovsdeInputError naming the argument and the expected shape, never
an AttributeError/IndexError from deep inside (issue 23)."""
import numpy as np
import pytest
import torch

from covsde.common.errors import CovsdeInputError
from covsde.derive import derive
from covsde.derive.variants import build
from covsde.export import brownian_shape, diffrax_brownian_shape, to_diffrax, to_jax, to_numpy, to_torch, to_torchsde

D = derive(build("mlp", {})[0], 2)
DA = derive(build("attention", {})[0], 2)
V = np.array([[1.0, 0.2], [0.2, 1.0]])
BLOCK = build("mlp", {})[0]

CASES = [
    (lambda: to_numpy(D).drift(np.eye(3)), "V has shape (3, 3): expected (..., 2, 2)"),
    (lambda: to_numpy(D).drift(np.ones((2, 3))), "V has shape (2, 3)"),
    (lambda: to_numpy(D).drift(V * (1 + 1j)), "V is complex"),
    (lambda: to_numpy(D).drift(1.0), "V has shape ()"),
    (lambda: to_numpy(D).noise(V, np.zeros((5, 2, 2))), "Z has shape (5, 2, 2): expected (..., 1, 2, 2)"),
    (lambda: to_numpy(D).noise(V, np.zeros((2, 2))), "Z has shape (2, 2)"),
    (lambda: to_numpy(D).noise(V, np.zeros((1, 2, 2)) * 1j), "Z is complex"),
    (lambda: to_torch(D).drift(torch.eye(3, dtype=torch.float64)), "V has shape (3, 3)"),
    (lambda: to_torch(D).drift(torch.tensor(V, dtype=torch.complex128)), "V is complex"),
    (lambda: to_torch(D).noise(torch.tensor(V), torch.zeros(3, 3, 3, dtype=torch.float64)), "Z has shape (3, 3, 3)"),
    (lambda: to_torchsde(D, diffusion_scale=-1), "diffusion_scale must be ≥ 0"),
    (lambda: to_torchsde(D, diffusion_scale=float("nan")), "diffusion_scale must be a finite number"),
    (lambda: to_torchsde(D, diffusion_scale="x"), "diffusion_scale must be a number"),
    (lambda: to_torchsde(D).f(0, torch.zeros(3, 9, dtype=torch.float64)), "has shape (3, 9): expected (..., 4)"),
    (lambda: to_numpy(D, {"gamma": 0.5}), "'gamma' not a parameter of this derivation (its parameters: none)"),
    (lambda: to_numpy(DA, {"gamma": 0.5, "tau0": 1, "bogus": 1}), "'bogus' not a parameter"),
    (lambda: to_numpy(DA, [0.5, 1]), "params must be a dict"),
    (lambda: to_torch(DA, {"gamma": float("nan"), "tau0": 1}), "gamma=nan"),
    (lambda: to_numpy(BLOCK), "got a block (DenseLayer): derive it first"),
    (lambda: to_torch("mlp"), "got the variant name 'mlp'"),
    (lambda: to_torchsde("mlp"), "got the variant name 'mlp'"),
    (lambda: brownian_shape("mlp"), "got the variant name 'mlp'"),
    (lambda: diffrax_brownian_shape(BLOCK), "got a block"),
    (lambda: to_numpy(None), "got NoneType"),
]


@pytest.mark.parametrize("call,named", CASES, ids=[c[1][:40] for c in CASES])
def test_bad_export_arguments_name_the_argument_and_the_shape(call, named):
    with pytest.raises(CovsdeInputError) as exc:
        call()
    assert named in str(exc.value)


def test_good_arguments_still_work_after_the_checks():
    cn = to_numpy(D)
    np.testing.assert_allclose(cn.drift(V), D.numeric(V)[0], rtol=1e-12, atol=1e-13)
    assert cn.noise(np.stack([V, V]), np.zeros((2,) + brownian_shape(D))).shape == (2, 2, 2)
    assert to_torchsde(D).f(0, torch.tensor(V).reshape(1, 4)).shape == (1, 4)


def test_jax_and_diffrax_arguments_are_checked():
    jax = pytest.importorskip("jax")
    diffrax = pytest.importorskip("diffrax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    cj = to_jax(D)
    with pytest.raises(CovsdeInputError, match=r"V has shape \(3, 3\)"):
        cj.drift(jnp.eye(3))
    with pytest.raises(CovsdeInputError, match=r"Z has shape \(7, 2, 2\)"):
        cj.noise(jnp.asarray(V), jnp.zeros((7, 2, 2)))
    with pytest.raises(CovsdeInputError, match="got a block"):
        to_jax(BLOCK)
    with pytest.raises(CovsdeInputError, match=r"brownian must be a diffrax Brownian path of shape \(1, 2, 2\)"):
        to_diffrax(D, None, None)

    def bm(shape):
        return diffrax.VirtualBrownianTree(0.0, 1.0, tol=1e-3, shape=jax.ShapeDtypeStruct(shape, jnp.float64),
                                           key=jax.random.PRNGKey(0))

    with pytest.raises(CovsdeInputError, match=r"brownian has shape \(3, 2, 2\): expected \(1, 2, 2\)"):
        to_diffrax(D, None, bm((3, 2, 2)))
    with pytest.raises(CovsdeInputError, match="diffusion_scale must be ≥ 0"):
        to_diffrax(D, None, bm((1, 2, 2)), diffusion_scale=-2)
    with pytest.raises(CovsdeInputError, match="got the variant name"):
        to_diffrax("mlp", None, bm((1, 2, 2)))
    to_diffrax(D, None, bm((1, 2, 2)))  # the right one is accepted
