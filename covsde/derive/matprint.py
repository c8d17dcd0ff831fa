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
from .kernelmaps import kernels_in
from .matexpr import J_ATOM, M_SYM, MatExpr


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


def _parts(M, names):
    """(C, [(scalar s, signed words)]): the common factor and the words grouped by their scalar."""
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
    return C, list(groups.items())


def formula(M: MatExpr, tex: bool, names: _Names | None = None, bare=False) -> str:
    """The expression as one formula (see the module docstring)."""
    names = names or _Names(tex)
    if M.is_zero():
        return "0"
    C, groups = _parts(M, names)
    body = ""
    for s, ws in groups:
        items = _with_p(ws, names, tex)
        gsign = -1 if all(sign < 0 for sign, _ in items) else 1
        inner = ""
        for k, (sign, txt) in enumerate(items):
            if k:
                inner += " - " if sign * gsign < 0 else " + "
            elif sign * gsign < 0:
                inner += "-"
            inner += txt
        if len(items) > 1:
            inner = (r"\left(" if tex else "(") + inner + (r"\right)" if tex else ")")
        term = inner if s == 1 else f"{_paren(names.scalar(s), s)} {inner}"
        body += ((" - " if gsign < 0 else " + ") if body else ("-" if gsign < 0 else "")) + term
    if C == 1:
        return body
    if len(groups) == 1 and groups[0][0] == 1 and len(groups[0][1]) == 1:  # C·w: no brackets
        return f"{_paren(names.scalar(C), C)} {body}"
    lb, rb = (r"\left[", r"\right]") if tex else ("[", "]")
    return f"{_paren(names.scalar(C), C)} {lb}{body}{rb}"


def _with_p(ws, names, tex):
    """Signed words as text, with w − J w printed as P w and w − w J as w P (P = I − J)."""
    sign_of = dict((w, sg) for sg, w in ws)
    used, out = set(), []
    sep = r" \, " if tex else " "
    for sg, w in ws:
        if w in used:
            continue
        left, right = (J_ATOM,) + w, w + (J_ATOM,)
        if w and left not in used and sign_of.get(left) == -sg:
            used |= {w, left}
            out.append((sg, "P" + sep + names.word(w, tex)))
        elif w and right not in used and sign_of.get(right) == -sg:
            used |= {w, right}
            out.append((sg, names.word(w, tex) + sep + "P"))
        else:
            used.add(w)
            out.append((sg, names.word(w, tex)))
    return out


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
    return out + [k.definition(names.latex) for k in kernels_in([x for a in names.maps for x in a[1:3]])]


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




def _factor(M, tex, names):
    """A matrix factor: bare when it is one product (P V, dg(V) J V), else in parentheses."""
    if M is None:
        return ""
    C, groups = _parts(M, names)
    if C == 1 and len(groups) == 1 and groups[0][0] == 1:
        items = _with_p(groups[0][1], names, tex)
        if len(items) == 1 and items[0][0] > 0:
            return items[0][1]
    f = formula(M, tex, names)
    return rf"\left({f}\right)" if tex else f"({f})"


def noise_formula(groups, tex, names) -> str:
    """N = Σ_g Σ_t c_t A_t Ẑ_g^{(T_t)} B_t, Ẑ_g = L Z_g Lᵀ (terms of one group with one coefficient
    written together)."""
    parts = []
    for g, grp in enumerate(groups, 1):
        by_coef = {}
        for t in grp.terms:
            z = (rf"\hat Z_{{{g}}}" + ("^{\\top}" if t.T else "")) if tex else (f"Ẑ{g}" + ("ᵀ" if t.T else ""))
            core = (r" \, " if tex else " ").join(x for x in (_factor(t.A, tex, names), z, _factor(t.B, tex, names)) if x)
            by_coef.setdefault(sp.sympify(t.coef), []).append(core)
        for c, cores in by_coef.items():
            inner = " + ".join(cores)
            if len(cores) > 1:
                inner = (rf"\left({inner}\right)" if tex else f"({inner})")
            parts.append(inner if c == 1 else f"{_paren(names.scalar(c), c)} {inner}")
    return " + ".join(parts) or "0"


def result(form, tex) -> dict:
    """The matrix-level result as formulas: drift, structured noise, notation, kernel-map definitions."""
    names = _Names(tex)
    drift = formula(form.drift, tex, names)
    noise = noise_formula(form.noise, tex, names)
    if tex:
        notation = (r"dV = b(V)\,dt + N(V)\sqrt{dt}, \quad \hat Z_g = L Z_g L^{\top},\ L = \operatorname{chol}(V),\ "
                    r"Z_g \text{ i.i.d. } N(0,1)^{m\times m}, \quad J = \tfrac{1}{m}\mathbf{1}\mathbf{1}^{\top},\ "
                    r"\operatorname{dg}(X) = I \circ X")
    else:
        notation = ("dV = b(V) dt + N(V) √dt,  Ẑg = L Zg Lᵀ, L = chol(V), Zg i.i.d. N(0,1) m×m;  J = 11ᵀ/m, "
                    "dg(X) = I ∘ X (the diagonal of X), ∘ the Hadamard product")
    return {"drift": drift, "noise": noise, "notation": notation, "maps": map_definitions(names)}


def result_lines(form, tex) -> list[str]:
    """The matrix-level result as lines: b(V) = …, N(V) = …, the notation, the kernel maps."""
    r = result(form, tex)
    return [f"b(V) = {r['drift']}", f"N(V) = {r['noise']}", r["notation"]] + r["maps"]


def word_text(w) -> str:
    """A word in the text notation (for machine-readable JSON terms)."""
    return _Names(False).word(w, False)
