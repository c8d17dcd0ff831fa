"""Comparing a JSON report with a golden one (shared by the contract and executor tests)."""
import pytest

UNSTABLE = ("timings", "versions")


def assert_same(want, got, *, rel=1e-9, new_keys=False, path="$"):
    """Every key of ``want`` in ``got`` with the same value (floats to ``rel``; UNSTABLE keys skipped).
    ``new_keys``: ``got`` may have more keys (the golden ones keep their order); else the key sets match."""
    if isinstance(want, dict):
        assert isinstance(got, dict), path
        if new_keys:
            assert [k for k in got if k in want] == list(want), (path, list(want), list(got))
        else:
            assert set(want) == set(got), (path, sorted(want), sorted(got))
        for k in want:
            if k not in UNSTABLE:
                assert_same(want[k], got[k], rel=rel, new_keys=new_keys, path=f"{path}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(want) == len(got), path
        for i, (x, y) in enumerate(zip(want, got)):
            assert_same(x, y, rel=rel, new_keys=new_keys, path=f"{path}[{i}]")
    elif isinstance(want, float) and isinstance(got, float):
        assert want == pytest.approx(got, rel=rel, abs=1e-12), (path, want, got)
    else:
        assert want == got, (path, want, got)
