"""The JSON that scripts read is a contract: real outputs of derive, simulate, validate, phase and suite
(the README's examples, at small sizes) validate against the schemas shipped in covsde/schemas/, and one
deliberately broken output per schema is rejected."""
from __future__ import annotations

import contextlib
import copy
import io
import json
from importlib import resources

import pytest

from covsde.cli import main

jsonschema = pytest.importorskip("jsonschema")

V0 = "[[1,0.2],[0.2,1]]"
SMALL_SUITE = """
[defaults]
T = 0.25
V0 = [[1.0, 0.2], [0.2, 1.0]]
widths = [16, 32]
samples = 100
power = false
onestep_samples = 2000
[[entry]]
name = "mlp"
variant = "mlp"
"""


def schema(name):
    return json.loads((resources.files("covsde") / "schemas" / f"{name}.json").read_text())


def _stdout(argv):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(argv) == 0, argv
    return json.loads(buf.getvalue())


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """{(schema, case): a real output of the command}."""
    tmp = tmp_path_factory.mktemp("schemas")
    out = {("derive", "transformer m=3"): _stdout(["derive", "transformer", "--m", "3", "--format", "json"]),
           ("derive", "mlp"): _stdout(["derive", "mlp", "--format", "json"]),
           ("simulate", "mlp"): _stdout(["simulate", "mlp", "--V0", V0, "--T", "1", "--paths", "500", "--format",
                                         "json", "--quiet"]),
           ("simulate", "weak order 2"): _stdout(["simulate", "mlp", "--V0", V0, "--T", "0.5", "--paths", "256",
                                                  "--weak-order", "2", "--format", "json", "--quiet"]),
           ("simulate", "ode"): _stdout(["simulate", "mlp", "--V0", V0, "--T", "0.5", "--ode", "--format", "json"]),
           ("validate", "sde"): _stdout(["validate", "mlp", "--V0", V0, "--T", "0.25", "--widths", "16,32",
                                         "--samples", "100", "--no-power", "--quiet", "--format", "json"]),
           ("validate", "ode"): _stdout(["validate", "resnet", "--set", "p=0", "--set", "q=1/2", "--set", "gamma=0.8",
                                         "--V0", V0, "--T", "0.5", "--widths", "16,32", "--samples", "100",
                                         "--no-power", "--quiet", "--format", "json"])}
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["phase", "resnet", "--x", "q=0:1", "--y", "p=0:1", "--steps", "3", "--out", str(tmp / "ph")]) == 0
        (tmp / "small.toml").write_text(SMALL_SUITE)
        assert main(["suite", str(tmp / "small.toml"), "--out", str(tmp / "su"), "--quiet"]) == 0
    out["phase", "resnet q×p"] = json.loads((tmp / "ph" / "phase.json").read_text())
    out["suite", "small"] = json.loads((tmp / "su" / "summary.json").read_text())
    out["validate", "suite entry"] = json.loads((tmp / "su" / "mlp" / "report.json").read_text())
    return out


NAMES = ("derive", "simulate", "validate", "phase", "suite")


@pytest.mark.parametrize("name", NAMES)
def test_the_schemas_are_valid_json_schemas(name):
    jsonschema.Draft202012Validator.check_schema(schema(name))


def _break(name, doc):
    """One deliberate defect per schema (a wrong value, a missing key, a wrong type)."""
    if name == "derive":
        doc["regime"] = "sde-ish"
    elif name == "simulate":
        del doc["survived"]
    elif name == "validate":
        doc["verdict"] = "ok"
    elif name == "phase":
        del doc["points"][0]["regime"]
    else:
        doc["rows"][0]["verdict"] = 1
    return doc


def test_real_outputs_validate_and_broken_ones_are_rejected(outputs):
    """One test (so that the commands run once, on one worker): every real output validates against its
    schema; one broken copy per schema does not."""
    for name in NAMES:
        cases = [case for (n, case) in outputs if n == name]
        assert cases, name
        validator = jsonschema.Draft202012Validator(schema(name))
        for case in cases:
            errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(outputs[name, case])]
            assert errors == [], (name, case)
        broken = _break(name, copy.deepcopy(outputs[name, cases[0]]))
        assert not validator.is_valid(broken), name
