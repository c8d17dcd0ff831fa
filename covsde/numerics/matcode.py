"""Code generation from the matrix form: the body of ``coeffs(V, P, b, mats, cf, ws, wv)`` as a tape of
calls to the kernels of :mod:`.kernels`, with m a run-time size.

Cost per evaluation: a word with 11ᵀ/m in it is rank one, u J v = (u1)(vᵀ1)ᵀ/m, so it and its trace
are O(m²) (matrix-vector products); Dg(·) scales rows or columns, O(m²); a trace of a product of two
dense factors is Σ A_ij B_ji, O(m²); only products of dense factors (V·V, V·f(V), …) are O(m³), and
go through BLAS from :data:`~.kernels.BLAS_M` on.  Every dense matrix, vector and trace is computed once
per call (memo by word) into the work arrays ws (m×m) and wv (length m), allocated once per chunk.
Element-wise kernel maps become small functions ``_map_k(X, P, out)`` looping over the entries.
"""
from __future__ import annotations

import sympy as sp

from ..common.expr import fold_numbers
from ..derive.gaussian import kxx, kxy, kyy
from ..derive.matexpr import J_ATOM, M_SYM, word_T

XA, XAB, XB = sp.symbols("xa xab xb")
SA, SB = sp.symbols("sa sb", positive=True)  # √xa, √xb: the lane maps read them precomputed per row
IA, IB = sp.symbols("ia ib", positive=True)  # 1/√xa, 1/√xb: likewise (a product instead of a division)


class Tape:
    """Statements computing the values of matrix words, vectors, traces and kernel maps."""

    def __init__(self, printer, params, lib="linalg"):
        self.pr, self.params, self.lib = printer, params, lib
        self.lanes = lib == "lanes"  # values of every lane at once: arrays gain a last (lane) axis
        self.lines, self.maps = [], []
        self.nws, self.nwv, self.nsc = 0, 1, 0  # wv[0] holds the vector of ones
        self._dense, self._right, self._diag, self._trace, self._map = {}, {}, {}, {}, {}
        self._sym = {}  # kernel map name → whether it is symmetric (writes the upper triangle, mirrored)

    # ---- storage -----------------------------------------------------------------------------------
    def _mat(self):
        self.nws += 1
        return f"ws[{self.nws - 1}]"

    def _vec(self):
        self.nwv += 1
        return f"wv[{self.nwv - 1}]"

    def scalar(self, expr):
        """A local variable holding a SymPy scalar (parameters and m are locals)."""
        self.nsc += 1
        name = f"s{self.nsc - 1}"
        text = self.pr.doprint(fold_numbers(sp.sympify(expr)))
        self.lines.append(f"    {name} = {f'float({text})' if self.lanes else text}")  # lanes: one float type
        return name

    # ---- values -----------------------------------------------------------------------------------
    def dense(self, w):
        """An m×m buffer holding the word w (w ≠ I)."""
        if w in self._dense:
            return self._dense[w]
        if len(w) == 1 and w[0] == ("V",):
            return "V"
        out = self._mat()
        if J_ATOM in w:
            i = w.index(J_ATOM)
            self.lines.append(f"    {self.lib}.outer({self.right(w[:i])}, {self.right(word_T(w[i + 1:]))}, 1.0 / m, {out})")
        elif len(w) == 1:
            self._atom_dense(w[0], out)
        elif w[0][0] == "D":
            self.lines.append(f"    {self.lib}.diag_left({self.diag(w[0][1])}, {self.dense(w[1:])}, {out})")
        elif w[-1][0] == "D":
            self.lines.append(f"    {self.lib}.diag_right({self.dense(w[:-1])}, {self.diag(w[-1][1])}, {out})")
        else:
            self.lines.append(f"    {self.lib}.mm({self.dense(w[:-1])}, {self.dense(w[-1:])}, {out})")
        self._dense[w] = out
        return out

    def _atom_dense(self, a, out):
        if a[0] == "D":
            self.lines.append(f"    {self.lib}.diag_mat({self.diag(a[1])}, {out})")
        elif a[0] == "H":
            self.lines.append(f"    {self.lib}.had({self.dense(a[1])}, {self.dense(a[2])}, {out})")
        else:
            self.lines.append(f"    {self.kernel_map(a)}({self.value_dense(a[3])}, P, {out})")

    def right(self, u):
        """A vector buffer holding u·1 (u without J)."""
        if not u:
            return "wv[0]"
        if u in self._right:
            return self._right[u]
        x, a, out = self.right(u[1:]), u[0], self._vec()
        if a[0] == "D":
            self.lines.append(f"    {self.lib}.vmul({self.diag(a[1])}, {x}, 1.0, {out})")
        else:
            self.lines.append(f"    {self.lib}.mv({self.dense((a,))}, {x}, {out})")
        self._right[u] = out
        return out

    def diag(self, w):
        """A vector buffer holding the diagonal of the word w."""
        if w in self._diag:
            return self._diag[w]
        out = self._vec()
        if not w:
            self.lines.append(f"    {self.lib}.fill({out}, 1.0)")
        elif J_ATOM in w:
            i = w.index(J_ATOM)
            self.lines.append(f"    {self.lib}.vmul({self.right(w[:i])}, {self.right(word_T(w[i + 1:]))}, 1.0 / m, {out})")
        elif len(w) == 1 and w[0][0] == "D":
            return self.diag(w[0][1])
        else:
            self.lines.append(f"    {self.lib}.diagv({self.dense(w)}, {out})")
        self._diag[w] = out
        return out

    def trace(self, t):
        """A local variable holding tr(t)."""
        if t in self._trace:
            return self._trace[t]
        self.nsc += 1
        name = f"s{self.nsc - 1}"
        if t[0] == J_ATOM:
            fn, args = "vsum", [self.right(t[1:])]
        elif len(t) == 1:
            fn, args = "trace", [self.dense(t)]
        else:
            fn, args = "trace_prod", [self.dense(t[:-1]), self.dense(t[-1:])]
        if self.lanes:  # a lane array sc[k], written by the lane kernel (vsum takes its 1/m as an argument)
            out = f"sc[{self.nsc - 1}]"
            args += ["1.0 / m", out] if fn == "vsum" else [out]
            self.lines += [f"    lanes.{fn}({', '.join(args)})", f"    {name} = {out}"]
        else:
            self.lines.append(f"    {name} = linalg.{fn}({', '.join(args)}){' / m' if fn == 'vsum' else ''}")
        self._trace[t] = name
        return name

    def value_dense(self, M):
        """A buffer holding a whole matrix expression (the argument of a kernel map)."""
        if len(M.terms) == 1:
            (trs, w), c = next(iter(M.terms.items()))
            if not trs and c == 1 and w:
                return self.dense(w)
        out = self._mat()
        self.accumulate(M, out)
        return out

    def accumulate(self, M, out):
        """out = M."""
        self.lines.append(f"    {self.lib}.fill({out}, 0.0)")
        for (trs, w), c in sorted(M.terms.items(), key=lambda kv: str(kv[0])):
            s = self.scalar(c)
            for t in trs:
                s = f"{s} * {self.trace(t)}"
            if not w:
                self.lines.append(f"    {self.lib}.acc_eye({s}, {out})")
            elif J_ATOM in w:
                i = w.index(J_ATOM)
                self.lines.append(f"    {self.lib}.outer_acc({self.right(w[:i])}, {self.right(word_T(w[i + 1:]))}, "
                                  f"({s}) / m, {out})")
            else:
                self.lines.append(f"    {self.lib}.acc({self.dense(w)}, {s}, {out})")

    def direct(self, M, out):
        """out = M when M is one symmetric kernel map with coefficient 1 (the MLP's drift): the map writes
        out itself — no zero fill, accumulation or symmetrisation pass over it (the numbers those passes
        give: 0 + 1·x and ½(x + x) are x).  The word's value is then out (never written again).  False,
        and nothing emitted, for any other M."""
        if len(M.terms) != 1:
            return False
        (trs, w), c = next(iter(M.terms.items()))
        if trs or c != 1 or len(w) != 1 or w[0][0] != "F" or w in self._dense:
            return False
        name = self.kernel_map(w[0])
        if not self._sym[name]:
            return False
        self.lines.append(f"    {name}({self.value_dense(w[0][3])}, P, {out})")
        self._dense[w] = out
        return True

    # ---- kernel maps ------------------------------------------------------------------------------
    def kernel_map(self, a):
        """The name of a generated function out = f(X) element-wise."""
        if a in self._map:
            return self._map[a]
        name = f"_map{len(self._map)}" + ("_lanes" if self.lanes else "")
        self._map[a] = name
        memo = {}
        off = fold_numbers(a[1].xreplace({kxx: XA, kxy: XAB, kyy: XB, M_SYM: sp.Symbol("m")}), memo)
        dia = fold_numbers(a[2].xreplace({kxx: XA, M_SYM: sp.Symbol("m")}), memo)
        sym = sp.simplify(off - off.xreplace({XA: XB, XB: XA})) == 0 if off.free_symbols else True
        self._sym[name] = sym
        if self.lanes:  # half-integer powers of xa, xb through sa = √xa, sb = √xb, read from sd (m square
            off, dia = _roots(off), _roots(dia)  # roots per call, not two per entry); xa, xb stay as they are
        repl, (off_r, dia_r) = sp.cse([off, dia], symbols=sp.numbered_symbols("y"))
        body = [f"    {s.name} = P[{k}]" for k, s in enumerate(self.params)]
        body += ["    m = float(X.shape[0])", "    for i in range(X.shape[0]):"]
        cse = [f"{s} = {self.pr.doprint(e)}" for s, e in repl]
        dia_v, off_v = self.pr.doprint(dia_r), self.pr.doprint(off_r)
        if self.lanes:  # the entry's value on every lane: the innermost loop, one per branch
            body[-1:] = ["    sd = np.empty((2, X.shape[0], X.shape[2]))", "    for i in range(X.shape[0]):",
                         "        for p in range(X.shape[2]):", "            sd[0, i, p] = _sqrtc(X[i, i, p])",
                         "            sd[1, i, p] = 1.0 / sd[0, i, p]", "    for i in range(X.shape[0]):"]
            lane = ["for p in range(X.shape[2]):", "    xa = X[i, i, p]", "    xb = X[j, j, p]", "    sa = sd[0, i, p]",
                    "    sb = sd[0, j, p]", "    ia = sd[1, i, p]", "    ib = sd[1, j, p]", "    xab = X[i, j, p]"]
            lane += ["    " + c for c in cse]
            body += [f"        for j in range({'i' if sym else '0'}, X.shape[0]):", "            if i == j:"]
            body += ["                " + x for x in lane + [f"    out[i, j, p] = {dia_v}"]]
            body += ["            else:"]
            body += ["                " + x for x in lane + [f"    out[i, j, p] = {off_v}"]]
            if sym:
                body.append("                    out[j, i, p] = out[i, j, p]")
        else:
            body += ["        xa = X[i, i]", f"        for j in range({'i' if sym else '0'}, X.shape[0]):",
                     "            xb = X[j, j]", "            xab = X[i, j]"]
            body += ["            " + c for c in cse]
            body += ["            if i == j:", f"                out[i, j] = {dia_v}", "            else:",
                     f"                out[i, j] = {off_v}"]
            if sym:  # a symmetric map of a symmetric matrix (a Gram): the upper triangle, mirrored
                body.append("                out[j, i] = out[i, j]")
        self.maps.append(f'\n\n@njit(cache=True, error_model="numpy")\ndef {name}(X, P, out):\n' + "\n".join(body))
        return name


def _roots(expr):
    """xa^(k/2) → sa^k and xb^(k/2) → sb^k for odd k, then sa^−k → ia^k, sb^−k → ib^k (a rewrite before
    printing the lane maps: ρ = xab/(sa sb) becomes xab·ia·ib, two products instead of a division)."""
    def half(e):
        return e.is_Pow and e.base in (XA, XB) and e.exp.is_Rational and e.exp.q == 2

    def inverse(e):
        return e.is_Pow and e.base in (SA, SB) and e.exp.is_Integer and e.exp < 0

    expr = expr.replace(half, lambda e: (SA if e.base == XA else SB) ** (2 * e.exp))
    return expr.replace(inverse, lambda e: (IA if e.base == SA else IB) ** (-e.exp))


def coeff_body(form, params, mats, coefs, printer, lib="linalg"):
    """(body of coeffs, kernel-map functions, NWS, NWV, NSC) for a matrix form: the drift into b, every
    distinct A_t/B_t into mats[q], every c_t into cf[q].  ``lib="lanes"``: the body of ``coeffs_lanes``
    (every buffer with a last lane axis, traces into the lane arrays sc[k], NSC of them)."""
    tape = Tape(printer, params, lib)
    tape.lines += [f"    {s.name} = P[{k}]" for k, s in enumerate(params)]
    tape.lines += ["    m = float(V.shape[0])", f"    {lib}.fill(wv[0], 1.0)"]
    if not tape.direct(form.drift, "b"):
        tape.accumulate(form.drift, "b")
        tape.lines.append(f"    {lib}.symmetrize(b)")
    for q, M in enumerate(mats):
        tape.accumulate(M, f"mats[{q}]")
    for q, c in enumerate(coefs):
        tape.lines.append(f"    cf[{q}{', :' if tape.lanes else ''}] = {printer.doprint(fold_numbers(sp.sympify(c)))}")
    return "\n".join(tape.lines), "".join(tape.maps), max(tape.nws, 1), tape.nwv, max(tape.nsc, 1)
