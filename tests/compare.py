"""Comparing a JSON report with a golden one (shared by the contract, executor and reproducibility tests).

Floats are compared on the scale of the quantity they belong to, so that a comparison means the same on
every CPU (another SIMD width or BLAS kernel rounds differently):

* a float inside a numeric array (a nested list of numbers, or a dict of numbers keyed by indices, such as a
  diffusion keyed ``"a,b;c,d"``) may differ by ``rel`` × the largest magnitude of that array — an
  entry that is zero by the model's structure (a drift entry, its rounding-noise estimate) is compared on
  the scale of its neighbours, never to an absolute 1e-12;
* a lone float by ``rel`` × its own magnitude.

One figure is reproducible only to about 1e-8: ``drift_se``, the one-step drift's standard error.  It is the
square root of a residual variance that the control variates leave at ~1e-8 of the raw second moment, formed
by cancellation from BLAS sums (Z Zᵀ over the draws) whose order depends on the BLAS kernel and its thread
count; it is compared to ``LOOSE["drift_se"]`` = 1e-6 × its array's scale (still far below its own
statistical error).  Its structural zeros are exact zeros on every CPU (``validate.onestep``).

Everything else — verdicts, counts, integers, strings, booleans, key sets and order — must be equal.
"""
import math
import re
from numbers import Number

UNSTABLE = ("timings", "versions")
LOOSE = {"drift_se": 1e-6}  # the relative tolerance of a figure that BLAS sum order moves (see above)
INDEX_KEY = re.compile(r"[0-9,;]+")  # "a,b;c,d": a diffusion entry


def _is_number(x):
    return isinstance(x, Number) and not isinstance(x, bool)


def _numeric_leaves(x):
    """The numbers of a numeric array (nested lists / a flat dict of numbers), or None if ``x`` is not one."""
    if isinstance(x, list):
        out = []
        for v in x:
            leaves = [v] if _is_number(v) else _numeric_leaves(v) if isinstance(v, list) else None
            if leaves is None:
                return None
            out += leaves
        return out
    if isinstance(x, dict) and x and all(INDEX_KEY.fullmatch(k) and _is_number(v) for k, v in x.items()):
        return list(x.values())
    return None


def array_scale(x):
    """The largest finite magnitude of a numeric array (0.0 for an empty or all-zero one); None if ``x`` is
    not a numeric array."""
    leaves = _numeric_leaves(x)
    if leaves is None:
        return None
    return max((abs(v) for v in leaves if math.isfinite(v)), default=0.0)


def assert_same(want, got, *, rel=1e-9, new_keys=False, path="$", scale=None):
    """Every key of ``want`` in ``got`` with the same value (floats to ``rel`` on the scale of their array;
    UNSTABLE keys skipped).  ``new_keys``: ``got`` may have more keys (the golden ones keep their order);
    else the key sets match."""
    kw = dict(rel=rel, new_keys=new_keys)
    if scale is None:
        scale = array_scale(want)
    if isinstance(want, dict):
        assert isinstance(got, dict), path
        if new_keys:
            assert [k for k in got if k in want] == list(want), (path, list(want), list(got))
        else:
            assert set(want) == set(got), (path, sorted(want), sorted(got))
        for k in want:
            if k not in UNSTABLE:
                sub = dict(kw, rel=max(rel, LOOSE.get(k, 0.0)))
                assert_same(want[k], got[k], path=f"{path}.{k}", scale=scale, **sub)
    elif isinstance(want, list):
        assert isinstance(got, list) and len(want) == len(got), path
        for i, (x, y) in enumerate(zip(want, got)):
            assert_same(x, y, path=f"{path}[{i}]", scale=scale, **kw)
    elif isinstance(want, float) and isinstance(got, float):
        if not (math.isfinite(want) and math.isfinite(got)):
            assert want == got or (math.isnan(want) and math.isnan(got)), (path, want, got)
            return
        tol = rel * max(abs(want), scale or 0.0)
        assert abs(want - got) <= tol, (path, want, got, f"tolerance {tol:.3g}")
    else:
        assert want == got, (path, want, got)
