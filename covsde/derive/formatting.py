"""A derivation as text, LaTeX and JSON (the `covsde derive --format` outputs, contracts)."""
from __future__ import annotations

import sympy as sp

from ..common import limits
from . import matprint


def _upper_diffusion(d):
    """Σ^{ab,cd} with (a, b) ≤ (c, d): each distinct entry once."""
    return [((a, b, c, e), ex) for (a, b, c, e), ex in d.diffusion.items() if (a, b) <= (c, e)]


def latex(d, per_entry=False) -> str:
    """The matrix-level formula (every m), or with ``per_entry`` b and Σ entry by entry for d.m."""
    if not d.has_limit:
        return r"\text{no SDE limit: " + d.reason.replace("_", r"\_") + "}"
    if d.matrix is not None and not per_entry:
        return "\n".join(matprint.result_lines(d.matrix, True))
    lines = [r"b(V) = " + sp.latex(d.drift)]
    lines += [rf"\Sigma^{{{a}{b},{c}{e}}}(V) = " + sp.latex(ex) for (a, b, c, e), ex in _upper_diffusion(d)]
    return "\n".join(lines)


def text(d, per_entry=False) -> str:
    """Regime, reason and the matrix-level formula (or, with ``per_entry``, b and Σ entry by entry)."""
    out = [f"{d.name or d.block}  (m = {d.m})", f"regime: {d.regime}"]
    if getattr(d, "state", "V") == "correlation":
        out.append("state: correlation (the block ends with a normalisation: V has unit diagonal, fixed; the SDE is "
                   "that of the correlations)")
    if d.reason:
        out.append(f"reason: {d.reason}")
    if d.has_limit and d.matrix is not None and not per_entry:
        out += ["  " + line for line in matprint.result_lines(d.matrix, False)]
    elif d.has_limit:
        out.append("drift b(V):")
        out += [f"  b[{i},{j}] = {d.drift[i, j]}" for i in range(d.m) for j in range(i, d.m)]
        out.append("diffusion Σ(V):")
        out += [f"  Σ[{a}{b},{c}{e}] = {ex}" for (a, b, c, e), ex in _upper_diffusion(d)]
    return "\n".join(out)


def to_json(d, variant, params):
    """The contract of ``covsde derive --format json``: per-entry "drift" and "diffusion" (null beyond
    COVSDE_MAX_M_ENTRIES, with "per_entry" saying why) and the "matrix" section."""
    out = {"variant": variant, "m": d.m, "params": {k: str(v) for k, v in params.items()},
           "regime": d.regime, "reason": d.reason, "drift": None, "diffusion": None, "kappa": d.kappa,
           "time": d.time, "state": getattr(d, "state", "V")}
    if d.has_limit and d.m <= limits.max_m_entries():
        out["drift"] = [[sp.sstr(d.drift[i, j]) for j in range(d.m)] for i in range(d.m)]
        out["diffusion"] = {f"{a},{b};{c},{e}": sp.sstr(ex) for (a, b, c, e), ex in d.diffusion.items()}
    elif d.has_limit:
        out["per_entry"] = (f"omitted: m = {d.m} > COVSDE_MAX_M_ENTRIES = {limits.max_m_entries()} (m² drift and "
                            f"m⁴/4 diffusion expressions); the matrix section holds for every m")
    if d.has_limit and d.matrix is not None:
        out["matrix"] = matrix_json(d.matrix)
    return out


def _terms(M):
    return [{"coef": sp.sstr(c), "traces": [matprint.word_text(t) for t in trs], "word": matprint.word_text(w)}
            for (trs, w), c in M.terms.items()]


def matrix_json(form) -> dict:
    """The matrix-level result: formulas (text, LaTeX) and the terms Σ coef·Π tr(trace words)·word of the
    drift and of every A_t, B_t (words: atoms V, J = 11ᵀ/m, I, dg(w), (u ∘ w), f_k(X) separated by spaces)."""
    text, tex = matprint.result(form, False), matprint.result(form, True)

    def mat(X):
        return None if X is None else {"formula": matprint.text(X), "terms": _terms(X)}

    return {"drift": text["drift"], "noise": text["noise"], "notation": text["notation"], "maps": text["maps"],
            "latex": {"drift": tex["drift"], "noise": tex["noise"]},
            "drift_terms": _terms(form.drift),
            "noise_terms": [[{"coef": sp.sstr(t.coef), "A": mat(t.A), "T": t.T, "B": mat(t.B)} for t in g.terms]
                            for g in form.noise]}


def tex_text(t: str) -> str:
    """Plain text safe inside \\text{...}."""
    for a, b in (("\\", r"\textbackslash "), ("_", r"\_"), ("#", r"\#"), ("%", r"\%"), ("&", r"\&"),
                 ("{", r"\{"), ("}", r"\}"), ("$", r"\$")):
        t = t.replace(a, b)
    return t


def notebook_latex(d, max_entries=12) -> str:
    """A display-math block for notebooks: regime, drift and the first Σ entries (the rest counted)."""
    head = r"\text{" + tex_text(f"{d.name or 'derivation'} (m = {d.m}): regime {d.regime}") + "}"
    if not d.has_limit:
        return "$$" + head + r"\\ \text{" + tex_text(d.reason) + "}$$"
    if d.matrix is not None:
        rows = [head] + matprint.result_lines(d.matrix, True)
        return "$$\\begin{gathered}" + r" \\ ".join(rows) + "\\end{gathered}$$"
    rows = [head, r"b(V) = " + sp.latex(d.drift)]
    entries = _upper_diffusion(d)
    rows += [rf"\Sigma^{{{a}{b},{c}{e}}}(V) = " + sp.latex(ex) for (a, b, c, e), ex in entries[:max_entries]]
    if len(entries) > max_entries:
        rows.append(rf"\text{{… and {len(entries) - max_entries} more entries of }}\Sigma")
    return "$$\\begin{gathered}" + r" \\ ".join(rows) + "\\end{gathered}$$"
