"""Safe parsing: a corpus of injection strings, none of which runs; bounded parsing; exact decimals.

Every string is tried through every door that turns text into SymPy: the parser itself, a CLI
`--set` value, a parameter value and an activation in a suite file, `ShapedSmooth("...")`,
`Residual(..., gamma="...")`, `Derivation.subs` / simulate parameter values.  Each attempt must raise
CovsdeInputError (or exit 2 with one line) and leave the sentinel file uncreated."""
import subprocess
import sys
import time

import pytest
import sympy as sp

from covsde.common.errors import CovsdeInputError
from covsde.common.expr import parse_expr, to_expr, to_float

SENTINEL = "covsde_pwned"


def corpus(path):
    p = str(path).replace("\\", "/")
    cmd = f"touch {p}"
    return [
        f"__import__('os').system('{cmd}')",
        f"__import__(\"os\").system(\"{cmd}\")",
        f"exec(\"import os; os.system('{cmd}')\")",
        f"eval(\"__import__('os').system('{cmd}')\")",
        "().__class__.__base__.__subclasses__()",
        f"(lambda: __import__('os').system('{cmd}'))()",
        f"[x for x in __import__('os').system('{cmd}')]",
        f"open('{p}', 'w').write('x')",
        f"sqrt(__import__('os').system('{cmd}'))",
        "Symbol('x').__class__",
        "x.__globals__",
        "gamma.func.__globals__['__builtins__']",
        f"getattr(__builtins__, 'exec')(\"open('{p}','w')\")",
        f"1 if __import__('os').system('{cmd}') else 2",
        f"f'{{__import__(\"os\").system(\"{cmd}\")}}'",
        f"sympify(\"__import__('os').system('{cmd}')\")",
        f"Function('exec')(\"open('{p}','w')\")",
        f"S(\"__import__('os').system('{cmd}')\")",
        "2**3**4**5",
        "10**10**10",
        "9" * 5000,
        "(" * 500 + "1" + ")" * 500,
        "inf", "nan", "oo", "zoo", "-1e400", "I", "True", "'text'", "1j",
    ]


def _no_sentinel(path):
    return not path.exists()


def test_parser_refuses_every_injection_string(tmp_path):
    target = tmp_path / SENTINEL
    for text in corpus(target):
        with pytest.raises(CovsdeInputError):
            parse_expr(text, "gamma", {"x": sp.Symbol("x"), "gamma": sp.Symbol("gamma")})
        assert _no_sentinel(target), text


def test_python_api_doors_refuse_injection(tmp_path):
    from covsde.derive import Residual, ShapedSmooth, derive
    from covsde.derive.blocks import Attention, Linear
    from covsde.derive.variants import build
    from covsde.numerics.codegen import param_vector

    target = tmp_path / SENTINEL
    d = derive(build("attention", {})[0], 2)
    for text in corpus(target):
        for attempt in (lambda: ShapedSmooth(text), lambda: Residual(Linear(), gamma=text),
                        lambda: Attention(tau0=text), lambda: build("mlp", {"c_plus": text}),
                        lambda: build("mlp", {"activation": text}), lambda: d.subs({"gamma": text}),
                        lambda: param_vector(d, {"gamma": text, "tau0": 1}), lambda: to_float(text, "v")):
            with pytest.raises(CovsdeInputError):
                attempt()
            assert _no_sentinel(target), text


def test_cli_and_suite_doors_refuse_injection(tmp_path):
    target = tmp_path / SENTINEL
    texts = corpus(target)[:8]
    for text in texts:
        r = subprocess.run([sys.executable, "-m", "covsde.cli", "derive", "mlp", "--set", f"c_plus={text}"],
                           capture_output=True, text=True, cwd=tmp_path)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
        assert _no_sentinel(target), text
    from covsde.validate.suite import load_suite

    text = texts[1]  # double quotes only: fits in a TOML literal string
    for key in ("gamma", "activation"):
        suite = tmp_path / "s.toml"
        suite.write_text(f'[[entry]]\nname = "a"\nvariant = "resnet"\nT = 0.1\nV0 = [[1.0]]\nwidths = [8]\n'
                         f"set = {{ {key} = '{text}' }}\n")
        with pytest.raises(CovsdeInputError):
            load_suite(str(suite))
        assert _no_sentinel(target)


def test_huge_powers_are_refused_at_once():
    t0 = time.perf_counter()
    for text in ("10**10**10", "2**3**4**5", "(10**300)**(10**300)", "exp(exp(exp(100)))", "9" * 41):
        with pytest.raises(CovsdeInputError):
            parse_expr(text, "gamma")
    assert time.perf_counter() - t0 < 2.0


def test_allowed_expressions_parse_exactly():
    g = sp.Symbol("gamma", positive=True)
    x = sp.Symbol("x")
    assert parse_expr("0.35355339059327373", "gamma") == sp.Rational(35355339059327373, 10**17)
    assert parse_expr("sqrt(2)/4", "gamma") == sp.sqrt(2) / 4
    assert parse_expr("1e-3", "gamma") == sp.Rational(1, 1000)
    assert parse_expr("-2**2", "gamma") == -4
    assert parse_expr("gamma/2 + pi", "v", {"gamma": g}) == g / 2 + sp.pi
    assert parse_expr("x*(1 + erf(x/sqrt(2)))", "activation", {"x": x}) == x * (1 + sp.erf(x / sp.sqrt(2)))
    assert to_expr(0.1, "v") == sp.Rational(1, 10)
    assert to_float("sqrt(2)", "v") == pytest.approx(2**0.5, rel=1e-15)
    with pytest.raises(CovsdeInputError, match="unknown name 'y'"):
        parse_expr("x + y", "activation", {"x": x})
    with pytest.raises(CovsdeInputError, match=r"\*\*"):
        parse_expr("x^2", "activation", {"x": x})
