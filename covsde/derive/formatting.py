"""A derivation as text, LaTeX and JSON (the `covsde derive --format` outputs, contracts)."""
from __future__ import annotations

import sympy as sp


def _upper_diffusion(d):
    """Σ^{ab,cd} with (a, b) ≤ (c, d): each distinct entry once."""
    return [((a, b, c, e), ex) for (a, b, c, e), ex in d.diffusion.items() if (a, b) <= (c, e)]


def latex(d) -> str:
    if not d.has_limit:
        return r"\text{no SDE limit: " + d.reason.replace("_", r"\_") + "}"
    lines = [r"b(V) = " + sp.latex(d.drift)]
    lines += [rf"\Sigma^{{{a}{b},{c}{e}}}(V) = " + sp.latex(ex) for (a, b, c, e), ex in _upper_diffusion(d)]
    return "\n".join(lines)


def text(d) -> str:
    out = [f"{d.name or d.block}  (m = {d.m})", f"regime: {d.regime}"]
    if d.reason:
        out.append(f"reason: {d.reason}")
    if d.has_limit:
        out.append("drift b(V):")
        out += [f"  b[{i},{j}] = {d.drift[i, j]}" for i in range(d.m) for j in range(i, d.m)]
        out.append("diffusion Σ(V):")
        out += [f"  Σ[{a}{b},{c}{e}] = {ex}" for (a, b, c, e), ex in _upper_diffusion(d)]
    return "\n".join(out)


def to_json(d, variant, params):
    out = {"variant": variant, "m": d.m, "params": {k: str(v) for k, v in params.items()},
           "regime": d.regime, "reason": d.reason, "drift": None, "diffusion": None}
    if d.has_limit:
        out["drift"] = [[sp.sstr(d.drift[i, j]) for j in range(d.m)] for i in range(d.m)]
        out["diffusion"] = {f"{a},{b};{c},{e}": sp.sstr(ex) for (a, b, c, e), ex in d.diffusion.items()}
    return out


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
    rows = [head, r"b(V) = " + sp.latex(d.drift)]
    entries = _upper_diffusion(d)
    rows += [rf"\Sigma^{{{a}{b},{c}{e}}}(V) = " + sp.latex(ex) for (a, b, c, e), ex in entries[:max_entries]]
    if len(entries) > max_entries:
        rows.append(rf"\text{{… and {len(entries) - max_entries} more entries of }}\Sigma")
    return "$$\\begin{gathered}" + r" \\ ".join(rows) + "\\end{gathered}$$"
