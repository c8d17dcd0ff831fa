"""Exports of a derivation whose drift holds a kernel map without closed form (tanh ResNet, p = 0): NumPy
evaluates it (equal to the derivation's own numbers at random V), torch and JAX refuse it by the map's name
before building anything."""
import numpy as np
import pytest

from covsde.derive import derive
from covsde.derive.errors import NotSupported
from covsde.derive.variants import build
from covsde.export import to_numpy, to_torch


def _d():
    return derive(build("resnet", {"p": "0", "q": "1/2", "gamma": "0.8", "activation": "tanh"})[0], 2)


def test_numpy_export_evaluates_the_map():
    d = _d()
    f = to_numpy(d)
    rng = np.random.default_rng(3)
    Vs = []
    for _ in range(3):
        A = rng.normal(size=(2, 2))
        Vs.append(A @ A.T + 0.2 * np.eye(2))
    got = f.drift(np.stack(Vs))
    for V, b in zip(Vs, got):
        np.testing.assert_allclose(b, d.numeric(V, {})[0], rtol=0, atol=1e-12)


def test_torch_export_names_the_map_it_cannot_evaluate():
    pytest.importorskip("torch")
    with pytest.raises(NotSupported, match="kernel map tanh .*no torch evaluation"):
        to_torch(_d())
