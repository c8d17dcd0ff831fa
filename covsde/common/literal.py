"""A safe reader of numeric nested lists: JSON, or numbers written as people write them in Python.

    read_numbers("[[1, .2], [.2, 1e-3]]", "--V0")   # → [[1, 0.2], [0.2, 0.001]]

Accepted: brackets ``[...]`` (and tuples ``(...)``) of numbers or of brackets, separated by commas (a
trailing comma is allowed); numbers as JSON or Python write them (``1``, ``.2``, ``1e-3``, ``-0.``,
``+1``, ``1_000``); with ``booleans=True`` also ``true``, ``false``, ``True``, ``False``.  Nothing is
evaluated: a scanner reads those tokens and nothing else, without recursion and without Python's
parser (whose syntax tree takes ~350 bytes per character); anything else — names, calls, strings,
operators — is refused with a :class:`CovsdeInputError` naming the bad token and the form expected.
The length, the nesting depth and the count of numbers are bounded before anything is built.
"""
from __future__ import annotations

import math
import re

from .errors import CovsdeInputError

MAX_CHARS = 64 * 1024**2
MAX_DEPTH = 32
MAX_ITEMS = 4 * 1024**2
MAX_DIGITS = 400  # digits of one number (a float has 17 significant ones)
BOOLEANS = {"true": True, "false": False, "True": True, "False": False}
_TOKEN = re.compile(r"\s*(?:(?P<open>[\[(])|(?P<close>[\])])|(?P<comma>,)|(?P<num>[+-]?(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)"
                    r"(?:[eE][+-]?\d+)?)(?![\w.])|(?P<word>[A-Za-z_]\w*)|(?P<other>\S[^\s,\[\]()]*))")
_CLOSE = {"[": "]", "(": ")"}


def _number(tok):
    t = tok.replace("_", "")
    if sum(c.isdigit() for c in t) > MAX_DIGITS:
        return None, f"has more than {MAX_DIGITS} digits"
    try:
        x = float(t)
    except (ValueError, OverflowError):
        return None, "is not a number"
    if not math.isfinite(x):
        return None, "is too large for a float"
    is_int = re.fullmatch(r"[+-]?\d+", t) is not None
    return (int(t) if is_int and abs(x) < 2**53 else x), None


def nesting_depth(src: str, opens: str = "[(", closes: str = "])") -> int:
    """The deepest nesting of the brackets ``opens`` in ``src`` (an upper bound: brackets inside
    strings count too), found without parsing."""
    depth = deepest = 0
    for ch in src:
        if ch in opens:
            depth += 1
            deepest = max(deepest, depth)
        elif ch in closes:
            depth -= 1
    return deepest


def read_numbers(text, name: str, *, expected: str = "a JSON/Python list of numbers", max_chars: int = MAX_CHARS,
                 max_depth: int = MAX_DEPTH, max_items: int = MAX_ITEMS, booleans: bool = False):
    """A number or nested lists of numbers from ``text`` (see the module docstring); errors name
    ``name``, the bad token and say ``expected``."""
    if not isinstance(text, str):
        raise CovsdeInputError(f"{name} must be text, got {type(text).__name__}")
    src = text.strip()
    if not src:
        raise CovsdeInputError(f"{name} is empty; expected {expected}")
    if len(src) > max_chars:
        raise CovsdeInputError(f"{name} is {len(src)} characters long (the limit is {max_chars}); expected {expected}")
    if nesting_depth(src) > max_depth:
        raise CovsdeInputError(f"{name} is nested more than {max_depth} deep; expected {expected}")
    fast = _json(src, max_items, booleans)
    return fast if fast is not None else _scan(src, name, expected, max_items, booleans)


def _json(src, max_items, booleans):
    """The value when ``src`` is plain JSON of numbers (and booleans) within the bounds, else None (the
    scanner then reads it, or names what is wrong)."""
    import json

    def refuse(_):
        raise ValueError

    try:
        val = json.loads(src, parse_constant=refuse)
    except (ValueError, RecursionError):
        return None
    todo, count = [val], 0
    while todo:
        x = todo.pop()
        if isinstance(x, list):
            todo.extend(x)
            continue
        count += 1
        if count > max_items or (isinstance(x, bool) and not booleans) or not isinstance(x, (int, float)):
            return None
        if isinstance(x, float) and not math.isfinite(x) or isinstance(x, int) and abs(x) >= 2**53:
            return None
    return val


def _scan(src, name, expected, max_items, booleans):
    def bad(tok, why, pos):
        return CovsdeInputError(f"{name}: {tok[:80]!r} (at character {pos + 1}) {why}; expected {expected}")

    stack, top, done, count, pos, need_item = [], None, None, 0, 0, False
    while pos < len(src):
        mt = _TOKEN.match(src, pos)
        if mt is None or mt.end() == pos:
            break
        kind, tok, at = mt.lastgroup, mt.group(mt.lastgroup), mt.start(mt.lastgroup)
        pos = mt.end()
        if done is not None:
            raise bad(tok, "follows the end of the value", at)
        if kind == "open":
            if top and not need_item:
                raise bad(tok, "needs a comma before it", at)
            stack.append((tok, top))
            top, need_item = [], False
            continue
        if kind == "close":
            if not stack or _CLOSE[stack[-1][0]] != tok:
                raise bad(tok, "does not close an open bracket", at)
            parent = stack.pop()[1]
            value, top = top, parent
            if top is None:
                done = value
            else:
                top.append(value)
            need_item = False
            continue
        if kind == "comma":
            if top is None or need_item or not top:
                raise bad(tok, "is out of place", at)
            need_item = True
            continue
        if kind == "num":
            value, why = _number(tok)
        elif kind == "word" and booleans and tok in BOOLEANS:
            value, why = BOOLEANS[tok], None
        else:
            value, why = None, "is not a number"
        if why is not None:
            raise bad(tok, why, at)
        count += 1
        if count > max_items:
            raise CovsdeInputError(f"{name} holds more than {max_items} numbers; expected {expected}")
        if top is None:
            done = value
        elif top and not need_item:
            raise bad(tok, "needs a comma before it", at)
        else:
            top.append(value)
            need_item = False
    if stack:
        raise CovsdeInputError(f"{name}: a bracket {stack[-1][0]!r} is never closed: {src[:200]!r}; expected {expected}")
    if done is None:
        raise CovsdeInputError(f"{name} holds no value: {src[:200]!r}; expected {expected}")
    return done
