"""Matrix expressions printed as a paper would write them (text and LaTeX).

A :class:`~.matexpr.MatExpr` is printed as  C · [ S₁ (w₁ + w₂) + S₂ w₃ + … ]: the common scalar factor
C pulled out, the words collected by their scalar factor (a polynomial in traces), words sharing one
factor written together.  Notation: J = 11ᵀ/m, dg(X) = I ∘ X (the diagonal of X as a diagonal matrix),
∘ the Hadamard product, tr the trace; an element-wise kernel map is named f₁, f₂, … and defined
after the formula.  Scalars are printed by SymPy's own printers, the traces entering them as symbols
whose printed names are given through the printers' settings (``symbol_names`` for LaTeX)."""
from __future__ import annotations

import sympy as sp
from sympy.printing.str import StrPrinter

from .gaussian import kxx, kxy, kyy
from .matexpr import M_SYM, MatExpr


class _Names:
    """Printed names of traces and kernel maps, shared by the formulas of one result."""

    def __init__(self, latex):
        self.latex = latex
        self.maps = {}  # atom -> name
        self.syms = {}  # trace word -> Symbol
        self.tex = {}  # Symbol -> LaTeX

    def trace(self, t):
        if t not in self.syms:
            s = sp.Symbol(f"tr({self.word(t, False)})")
            self.syms[t] = s
            self.tex[s] = rf"\operatorname{{tr}}({self.word(t, True)})"
        return self.syms[t]

    def atom(self, a, tex):
        tag = a[0]
        if tag in ("V", "J"):
            return tag
        if tag == "D":
            return (r"\operatorname{dg}(" if tex else "dg(") + self.word(a[1], tex) + ")"
        if tag == "H":
            return "(" + self.word(a[1], tex) + (r" \circ " if tex else " ∘ ") + self.word(a[2], tex) + ")"
        if a not in self.maps:
            self.maps[a] = len(self.maps) + 1
        k = self.maps[a]
        return (f"f_{{{k}}}" if tex else f"f{k}") + "(" + formula(a[3], tex, self, bare=True) + ")"

    def word(self, w, tex):
        return (r" \, " if tex else " ").join(self.atom(a, tex) for a in w) or "I"

    def scalar(self, e):
        if self.latex:
            return sp.latex(e, symbol_names=self.tex)
        return StrPrinter().doprint(e)


def _common_factor(coefs):
    """(C, [c_i / C]): the factor common to every coefficient."""
    ds = sp.symbols(f"_d0:{len(coefs)}")
    tot = sp.factor_terms(sum(c * d for c, d in zip(coefs, ds)))
    C = sp.Integer(1)
    if isinstance(tot, sp.Mul):
        C = sp.Mul(*[f for f in tot.args if not (f.free_symbols & set(ds))])
    return C, [sp.simplify(c / C) for c in coefs]


def formula(M: MatExpr, tex: bool, names: _Names | None = None, bare=False) -> str:
    """The expression as one formula (see the module docstring)."""
    names = names or _Names(tex)
    if M.is_zero():
        return "0"
    if bare and len(M.terms) == 1 and M.terms.get(((), next(iter(M.terms))[1])) == 1:
        return names.word(next(iter(M.terms))[1], tex)
    items = sorted(M.terms.items(), key=lambda kv: (len(kv[0][1]), str(kv[0])))
    C, rel = _common_factor([c for _, c in items])
    by_word = {}
    for ((trs, w), _), c in zip(items, rel):
        s = c
        for t in trs:
            s = s * names.trace(t)
        by_word[w] = by_word.get(w, 0) + s
    groups = {}
    for w, s in by_word.items():
        s = sp.factor_terms(s)
        sign = -1 if sp.Mul(s).could_extract_minus_sign() else 1
        groups.setdefault(sign * s, []).append((sign, w))
    body = ""
    for s, ws in groups.items():
        gsign = -1 if all(sign < 0 for sign, _ in ws) else 1
        inner = ""
        for k, (sign, w) in enumerate(ws):
            if k:
                inner += " - " if sign * gsign < 0 else " + "
            elif sign * gsign < 0:
                inner += "-"
            inner += names.word(w, tex)
        if len(ws) > 1:
            inner = (r"\left(" if tex else "(") + inner + (r"\right)" if tex else ")")
        term = inner if s == 1 else f"{_paren(names.scalar(s), s)} {inner}"
        body += ((" - " if gsign < 0 else " + ") if body else ("-" if gsign < 0 else "")) + term
    if C == 1:
        return body
    lb, rb = (r"\left[", r"\right]") if tex else ("[", "]")
    return f"{_paren(names.scalar(C), C)} {lb}{body}{rb}"


def _paren(text, e):
    return f"({text})" if isinstance(e, sp.Add) else text


def map_definitions(names: _Names) -> list[str]:
    """The definitions of the kernel maps f_k used in the printed formulas."""
    out = []
    for a, k in sorted(names.maps.items(), key=lambda kv: kv[1]):
        xaa, xab, xbb = sp.symbols("X_aa X_ab X_bb")
        off = a[1].xreplace({kxx: xaa, kxy: xab, kyy: xbb}).xreplace({M_SYM: sp.Symbol("m")})
        dia = a[2].xreplace({kxx: xaa})
        if names.latex:
            out.append(rf"f_{{{k}}}(X)_{{ab}} = {sp.latex(off)} \ (a \ne b), \quad f_{{{k}}}(X)_{{aa}} = {sp.latex(dia)}")
        else:
            out.append(f"f{k}(X)[a,b] = {StrPrinter().doprint(off)}  (a ≠ b);  f{k}(X)[a,a] = {StrPrinter().doprint(dia)}")
    return out


def text(M: MatExpr) -> str:
    names = _Names(False)
    body = formula(M, False, names)
    defs = map_definitions(names)
    return body + ("  where " + "; ".join(defs) if defs else "")


def latex(M: MatExpr) -> str:
    names = _Names(True)
    body = formula(M, True, names)
    defs = map_definitions(names)
    return body + (r", \quad " + r", \quad ".join(defs) if defs else "")


def new_names(tex: bool) -> _Names:
    return _Names(tex)
