"""The golden comparison (tests/compare.py) is not so wide that it checks nothing, and not so narrow that
it encodes one CPU's rounding: planted changes of 1e-6 relative in a drift, and one flipped verdict, fail;
rounding-size noise on an entry that is zero by the model's structure passes."""
import copy
import json
from pathlib import Path

import pytest

from .compare import array_scale, assert_same

pytestmark = pytest.mark.golden
GOLDEN = Path(__file__).parent / "validate" / "golden" / "quick" / "mlp.json"


@pytest.fixture
def report():
    return json.loads(GOLDEN.read_text())


def _fails(want, got):
    with pytest.raises(AssertionError):
        assert_same(want, got, rel=1e-9)


@pytest.mark.parametrize("field", ["drift_est", "drift_ref"])
def test_a_planted_relative_change_of_1e_6_in_a_drift_fails(report, field):
    bad = copy.deepcopy(report)
    bad["onestep"][field][0][1] *= 1 + 1e-6
    _fails(report, bad)


def test_a_planted_change_in_a_structural_zero_fails_on_the_scale_of_its_array(report):
    se = report["onestep"]["drift_se"]
    assert se[0][0] == 1e-300  # zero by the block's structure (stored as 0 + 1e-300)
    bad = copy.deepcopy(report)
    bad["onestep"]["drift_se"][0][0] = 1e-5 * array_scale(se)  # drift_se is compared to 1e-6 (compare.LOOSE)
    _fails(report, bad)


def test_rounding_noise_on_a_structural_zero_passes(report):
    noisy = copy.deepcopy(report)
    scale = array_scale(report["onestep"]["drift_est"])
    noisy["onestep"]["drift_est"][0][0] += 1e-13 * scale
    noisy["onestep"]["drift_se"][0][0] = 1e-12 * array_scale(report["onestep"]["drift_se"])
    assert_same(report, noisy, rel=1e-9)


def test_a_planted_change_of_1e_5_in_a_standard_error_fails(report):
    bad = copy.deepcopy(report)
    bad["onestep"]["drift_se"][0][1] *= 1 + 1e-5
    _fails(report, bad)


@pytest.mark.parametrize("path", [("verdict",), ("onestep", "drift_ok"), ("tests", "32", "reject")])
def test_one_flipped_verdict_fails(report, path):
    bad = copy.deepcopy(report)
    node = bad
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = {"pass": "fail", "fail": "pass", True: False, False: True}[node[path[-1]]]
    _fails(report, bad)


def test_a_count_off_by_one_fails(report):
    bad = copy.deepcopy(report)
    bad["sde"]["survived"] -= 1
    _fails(report, bad)
