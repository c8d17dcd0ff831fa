"""Notebook rendering, progress output in logs, and the convergence report's interval and noise floor."""
import io

import numpy as np
import sympy as sp

from covsde.common.progress import Progress
from covsde.derive import derive
from covsde.derive.variants import build
from covsde.validate.stats import discrepancy_interval, max_ks, noise_floor


def test_derivation_renders_as_latex_in_a_notebook():
    d = derive(build("attention", {})[0], 2, name="attention_x")
    tex = d._repr_latex_()
    assert tex.startswith("$$") and tex.endswith("$$")
    assert d.latex().splitlines()[0] in tex and r"\hat Z_{2}" in tex and r"attention\_x" in tex
    assert "regime sde" in tex
    entries = derive(build("attention", {})[0], 2, engine="entries")._repr_latex_()  # per-entry form
    assert sp.latex(d.drift) in entries or r"\Sigma^{00,00}(V)" in entries
    nolim = derive(build("standard-attention", {})[0], 2)
    assert "rank collapse" in nolim._repr_latex_()


def test_progress_in_a_log_is_periodic_lines(monkeypatch):
    stream = io.StringIO()  # not a terminal
    clock = iter(range(0, 1000, 4))
    monkeypatch.setattr("covsde.common.progress.time.perf_counter", lambda: next(clock))
    p = Progress(100, "simulate", "paths", stream=stream, every=10.0)
    for _ in range(10):
        p.update(10)
    p.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and 3 <= len(lines) <= 5
    assert lines[-1].startswith("[simulate] 100/100 paths (100 %")
    quiet = io.StringIO()
    q = Progress(10, "x", "y", enabled=False, stream=quiet)
    q.update(10)
    q.close()
    assert quiet.getvalue() == ""


def test_noise_floor_and_interval_describe_the_null():
    """Two samples of one law (2000 and 4000 draws, 3 features, seeded): the discrepancy is below the
    floor's 95 % quantile; the floor matches the known scale of a max of 3 KS statistics
    (0.87·√(1/2000 + 1/4000) ≈ 0.024 for one); the error bar's half-width is of the order of the null's
    spread; a 0.3 shift of one feature is far above the floor (the comparison can fail)."""
    rng = np.random.default_rng(5)
    B = rng.normal(size=(4000, 3))
    A = rng.normal(size=(2000, 3))
    mean, q95 = noise_floor(B, len(A), seed=1)
    d = max_ks(A, B)
    lo, hi = discrepancy_interval(A, B, seed=2)
    assert 0.024 < mean < q95 < 0.05 and d < q95
    half = (hi - lo) / 2
    assert 0.3 * (q95 - mean) < half < 3 * (q95 - mean)
    assert max_ks(A + np.array([0.3, 0.0, 0.0]), B) > 2 * q95
