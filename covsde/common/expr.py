"""Safe parsing of user text into SymPy expressions: nothing is ever evaluated as code.

Every string that becomes a SymPy expression (CLI ``--set`` values, suite files, activation
expressions, parameter values given to the Python API) goes through :func:`parse_expr`, which reads
the text with Python's ``ast`` parser and builds the SymPy tree itself from an allow-list:

* numbers (decimal literals are read exactly: ``0.35355339059327373`` is that rational),
* the names it is given (``x``, the parameter symbols) and the constants ``pi`` and ``E``,
* the elementary functions in :data:`FUNCTIONS`, called with positional arguments,
* ``+ - * / **`` and unary ``+ -``.

Anything else — attribute access, subscripts, lambdas, comprehensions, keywords, strings, other
names (``__import__``, ``inf``, ``nan``), ``^`` — is refused with a :class:`CovsdeInputError` that
names the value.  Size limits keep parsing bounded: at most :data:`MAX_CHARS` characters,
:data:`MAX_NODES` syntax nodes and :data:`MAX_DIGITS` digits per literal; a power's exponent must
be at most :data:`MAX_EXPONENT` in size, and a number may not exceed 10^:data:`MAX_LOG10` in size
(``10**10**10`` is refused at once, never computed).
"""
from __future__ import annotations

import ast
import math
from decimal import Decimal
from fractions import Fraction
from numbers import Integral, Real

import sympy as sp

from .errors import CovsdeInputError

MAX_CHARS = 2000
MAX_NODES = 400
MAX_DIGITS = 40
MAX_EXPONENT = 1000
MAX_LOG10 = 300

FUNCTIONS = {
    "sqrt": sp.sqrt, "exp": sp.exp, "log": sp.log, "sin": sp.sin, "cos": sp.cos, "tan": sp.tan,
    "sinh": sp.sinh, "cosh": sp.cosh, "tanh": sp.tanh, "asin": sp.asin, "acos": sp.acos, "atan": sp.atan,
    "asinh": sp.asinh, "atanh": sp.atanh, "erf": sp.erf, "Abs": sp.Abs, "abs": sp.Abs,
}
CONSTANTS = {"pi": sp.pi, "E": sp.E}
_BINOPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
           ast.Div: lambda a, b: a / b}


def _bad(name, text, why):
    return CovsdeInputError(f"{name}={text!r}: {why}")


def _log10_abs(x: sp.Expr) -> float:
    """log10 |x| for a SymPy number, without evaluating huge powers."""
    if x == 0:
        return -math.inf
    if x.is_Rational:
        p, q = abs(int(x.p)), int(x.q)
        return (len(str(p)) - len(str(q))) if max(p, q) > 10**30 else math.log10(p / q)
    return math.log10(abs(complex(sp.N(x, 20)))) if sp.N(x, 20) != 0 else -math.inf


def _check_magnitude(x, name, text):
    if x.is_number and x != 0:
        if x.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
            raise _bad(name, text, "is not finite")
        lg = _log10_abs(x)
        if lg > MAX_LOG10:
            raise _bad(name, text, f"is larger than 1e{MAX_LOG10} in size")
    return x


def _literal(node: ast.Constant, src: str, name: str, text: str):
    v = node.value
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _bad(name, text, f"{v!r} is not a real number")
    seg = (ast.get_source_segment(src, node) or repr(v)).replace("_", "")
    if sum(c.isdigit() for c in seg) > MAX_DIGITS:
        raise _bad(name, text, f"a number with more than {MAX_DIGITS} digits")
    if isinstance(v, int):
        return sp.Integer(v)
    if not math.isfinite(v):
        raise _bad(name, text, "is not finite")
    return _check_magnitude(sp.Rational(seg) if seg[:1].isdigit() or seg[:1] == "." else sp.Rational(repr(v)),
                            name, text)


def _pow(base, expo, name, text):
    if expo.is_number:
        if _log10_abs(expo) > math.log10(MAX_EXPONENT):
            raise _bad(name, text, f"the exponent {expo} is larger than {MAX_EXPONENT}")
        if base.is_number and base != 0:
            if float(sp.N(expo)) * _log10_abs(base) > MAX_LOG10:
                raise _bad(name, text, f"{base}**{expo} exceeds 1e{MAX_LOG10}")
    return base**expo


class _Builder:
    def __init__(self, src, name, symbols, functions):
        self.src, self.name, self.symbols, self.functions = src, name, symbols, functions

    def __call__(self, node):
        n, t = self.name, self.src
        if isinstance(node, ast.Expression):
            return self(node.body)
        if isinstance(node, ast.Constant):
            return _literal(node, t, n, t)
        if isinstance(node, ast.Name):
            if node.id in self.symbols:
                return self.symbols[node.id]
            if node.id in CONSTANTS:
                return CONSTANTS[node.id]
            if node.id in self.functions:
                raise _bad(n, t, f"the function {node.id!r} must be called, e.g. {node.id}(x)")
            known = sorted(self.symbols) + sorted(CONSTANTS)
            raise _bad(n, t, f"unknown name {node.id!r} (allowed: numbers, {', '.join(known) or 'no names'}, "
                             f"and the functions {', '.join(sorted(self.functions))})")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            v = self(node.operand)
            return v if isinstance(node.op, ast.UAdd) else -v
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.BitXor):
                raise _bad(n, t, "'^' is not a power here: write '**'")
            if isinstance(node.op, ast.Pow):
                return _pow(self(node.left), self(node.right), n, t)
            if type(node.op) in _BINOPS:
                a, b = self(node.left), self(node.right)
                if isinstance(node.op, ast.Div) and b == 0:
                    raise _bad(n, t, "division by zero")
                return _check_magnitude(_BINOPS[type(node.op)](a, b), n, t)
        if isinstance(node, ast.Call):
            f = node.func
            if not isinstance(f, ast.Name) or f.id not in self.functions:
                what = ast.get_source_segment(t, f) or "?"
                raise _bad(n, t, f"calling {what!r} is not allowed (functions: {', '.join(sorted(self.functions))})")
            if node.keywords or any(isinstance(a, ast.Starred) for a in node.args) or len(node.args) != 1:
                raise _bad(n, t, f"{f.id}() takes exactly one positional argument")
            return _check_magnitude(self.functions[f.id](self(node.args[0])), n, t)
        raise _bad(n, t, f"{type(node).__name__} syntax is not allowed (only numbers, names, + - * / ** and calls)")


def parse_expr(text: str, name: str = "value", symbols: dict | None = None, functions: bool = True) -> sp.Expr:
    """Parse ``text`` into a SymPy expression without evaluating code (see the module docstring).

    ``symbols`` maps the allowed names to SymPy symbols; ``functions=False`` allows no function calls."""
    if not isinstance(text, str):
        raise CovsdeInputError(f"{name}={text!r} must be a string")
    src = text.strip()
    if not src:
        raise CovsdeInputError(f"{name} is empty")
    if len(src) > MAX_CHARS:
        raise CovsdeInputError(f"{name}: an expression of {len(src)} characters (the limit is {MAX_CHARS})")
    try:
        tree = ast.parse(src, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        raise CovsdeInputError(f"{name}={text!r} is not a number or an expression") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise CovsdeInputError(f"{name}: the expression has more than {MAX_NODES} parts")
    builder = _Builder(src, name, dict(symbols or {}), FUNCTIONS if functions else {})
    try:
        out = builder(tree)
    except RecursionError:
        raise CovsdeInputError(f"{name}={text!r} is nested too deeply") from None
    out = sp.sympify(out)
    return _check_magnitude(out, name, text)


def to_expr(value, name: str = "value", symbols: dict | None = None) -> sp.Expr:
    """A SymPy expression from a number, a SymPy object or a string (parsed with :func:`parse_expr`).

    Python floats are read exactly as their shortest decimal representation (``0.1`` → 1/10);
    NaN, ±inf, booleans and other types are refused, naming the value."""
    if isinstance(value, bool):
        raise CovsdeInputError(f"{name}={value!r} is not a number")
    if isinstance(value, str):
        return parse_expr(value, name, symbols)
    if isinstance(value, sp.Basic):
        if not isinstance(value, sp.Expr):
            raise CovsdeInputError(f"{name}={value!r} is not an expression")
        if value.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
            raise CovsdeInputError(f"{name}={value} is not finite")
        if value.is_number and value.is_real is False:
            raise CovsdeInputError(f"{name}={value} is not real")
        return _check_magnitude(value, name, value)
    if isinstance(value, Integral):
        if len(str(abs(int(value)))) > MAX_DIGITS:
            raise CovsdeInputError(f"{name}: an integer with more than {MAX_DIGITS} digits")
        return sp.Integer(int(value))
    if isinstance(value, Fraction):
        return _check_magnitude(sp.Rational(value.numerator, value.denominator), name, value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise CovsdeInputError(f"{name}={value} is not finite")
        return _check_magnitude(sp.Rational(str(value)), name, value)
    if isinstance(value, Real):
        v = float(value)
        if not math.isfinite(v):
            raise CovsdeInputError(f"{name}={value} is not finite")
        return _check_magnitude(sp.Rational(repr(v)), name, value)
    raise CovsdeInputError(f"{name} must be a number or an expression, got {type(value).__name__} {value!r}")


def to_float(value, name: str = "value") -> float:
    """A finite real float from a number, a numeric SymPy expression or a numeric string."""
    if type(value) in (int, float):
        if not math.isfinite(value):
            raise CovsdeInputError(f"{name}={value} is not finite")
        return float(value)
    x = to_expr(value, name)
    if not x.is_number:
        raise CovsdeInputError(f"{name}={value} is symbolic: give it a number")
    v = complex(sp.N(x, 20))
    if abs(v.imag) > 1e-12 * max(1.0, abs(v.real)) or not math.isfinite(v.real):
        raise CovsdeInputError(f"{name}={value} is not a finite real number")
    return float(v.real)


INT_EXACT = 2**53


def fold_numbers(expr, memo=None):
    """Every numeric sub-expression of ``expr`` as one Float (exponents of powers stay exact, so
    that x**(1/2) still prints as a square root); small integers stay integers.  ``memo``: a dict
    shared across calls on expressions with common parts."""
    memo = {} if memo is None else memo
    expr = sp.sympify(expr)
    hit = memo.get(expr)
    if hit is not None:
        return hit
    if expr.is_Atom:
        out = expr
        if (expr.is_Number or expr.is_NumberSymbol) and not (expr.is_Integer and abs(expr) < INT_EXACT):
            out = sp.Float(expr, 17)
    elif expr.is_number:
        out = sp.Float(sp.N(expr, 20), 17)
    elif isinstance(expr, sp.Pow):
        b, e = expr.args
        out = sp.Pow(fold_numbers(b, memo), e if e.is_Rational and abs(e.q) < 1000 else fold_numbers(e, memo))
    else:
        out = expr.func(*[fold_numbers(a, memo) for a in expr.args])
    memo[expr] = out
    return out
