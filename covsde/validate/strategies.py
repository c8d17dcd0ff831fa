"""Hypothesis strategies for covsde: random PSD matrices and random variants.

    from covsde.validate.strategies import psd_matrices, variants
    @given(psd_matrices(3), variants())
    def test_something(V, variant): ...

A variant is a dict {"name": ..., "set": {NAME: value}} accepted by
``covsde.derive.variants.build(name, set)``; numeric values are chosen in ranges where the SDE is
well behaved (γ ∈ [0.2, 0.9], τ0 ∈ [0.5, 3], c± ∈ [−1.5, 1.5], heads ∈ {1, 2}).
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st


@st.composite
def psd_matrices(draw, m=None, min_m=1, max_m=5, cond_max=50.0):
    """Symmetric positive-definite m×m numpy matrices (condition number ≤ cond_max)."""
    if m is None:
        m = draw(st.integers(min_m, max_m))
    entries = draw(st.lists(st.floats(-2, 2, allow_nan=False, allow_infinity=False), min_size=m * m, max_size=m * m))
    A = np.array(entries).reshape(m, m)
    V = A @ A.T / m
    scale = draw(st.floats(0.3, 3.0))
    w = np.linalg.eigvalsh(V)
    V = V + np.eye(m) * max(w.max() / cond_max - w.min(), 0) + np.eye(m) * 0.05
    return scale * V / np.mean(np.diag(V))


@st.composite
def variants(draw, names=("mlp", "resnet", "attention", "transformer"), activations=("relu", "tanh", "sin")):
    name = draw(st.sampled_from(names))
    s = {}
    if name in ("mlp", "resnet", "transformer"):
        act = draw(st.sampled_from(activations))
        s["activation"] = act
        if act == "relu":
            s["c_plus"] = round(draw(st.floats(-1.5, 1.5)), 3)
            s["c_minus"] = round(draw(st.floats(-1.5, 1.5)), 3)
        else:
            s["a"] = round(draw(st.floats(0.7, 2.0)), 3)
    if name in ("resnet", "attention", "transformer"):
        s["gamma"] = round(draw(st.floats(0.2, 0.9)), 3)
    if name in ("attention", "transformer"):
        s["tau0"] = round(draw(st.floats(0.5, 3.0)), 3)
        s["heads"] = draw(st.sampled_from([1, 2]))
    return {"name": name, "set": {k: str(v) for k, v in s.items()}}
