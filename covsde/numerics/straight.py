"""The lane steps written out for one m: the lane loop outermost, its body straight-line code.

:func:`.lanes.psd_wishart`, :func:`.lanes.em_wishart` and :func:`.lanes.psd_step` run each of their loops
over all lanes of a chunk, so every partial sum of their products goes to memory and back (about three
loads and a store per multiply-add).  Here the loop over lanes is the only loop: its body is the whole
step of one lane with every loop over i, j, k unrolled for a fixed m, the intermediate matrices as scalar
temporaries, and LLVM vectorises that loop over lanes with the temporaries in registers.  Three kinds
(``KINDS``): the Wishart EM and PSD steps (one Wishart noise group, from the drawn S) and the general PSD
congruence step (from the generated N).  Each computes V' with the operations of the lane function it
replaces in the same order, and its acceptance flag (finite, max|V'| ≤ threshold) as that function does,
and writes V' over V where the lane is running (``live``) and V' is accepted — the numbers of the loops to
the last bit (tested, and whole runs with and without these steps).  (Factoring V' in the same body was
tried: the chain of eight square roots and divisions, in a body too long for the processor to overlap two
iterations, doubled the step's time; :func:`.lanes.chol` stays a pass of its own.)

Every operand lives in one flat workspace at offsets fixed when the source is written (:func:`offsets`):
with one array and constant offsets LLVM proves the lanes independent; with separate arrays it needs a
run-time alias check per pair of accesses and gives up from m = 7.

A PSD body grows as m³ (m = 8: ≈ 1200–1300 products, 3–4 s to compile; m = 12: 10 s; m = 16: 34 s), hence
``MAX_M``.  The module for each (kind, m, lanes) is generated once, content-addressed in the cache
(:mod:`.modfile`; the key covers this file) and compiled once (Numba's cache); the general PSD step is
shared by every SDE.  Its step is a ``cfunc``: the lane kernel calls it through a function pointer (type
``SIG``), so it is not linked into — and compiled again with — every generated module.  ``none()`` is a
step of the same type that does nothing, for runs that do not use one.
"""
from __future__ import annotations

import functools
import hashlib

from numba import cfunc, njit, types
from numba.extending import intrinsic

from ..common.fingerprint import source_hash
from . import modfile

MAX_M = 8
SIG = types.void(types.CPointer(types.float64), types.float64, types.float64, types.float64, types.float64)
KINDS = ("em", "psd", "general-psd")  # the Wishart EM and PSD steps, the PSD congruence step given N


SKEW = 80  # numbers between two sections: 640 bytes, so that sections never start at one offset mod 4 KiB


@njit(cache=True)
def offsets(m, n, ngroups):
    """Where the operands start in the flat workspace of a chunk of n lanes — L, b, Z, V, N, c, live, ok — and
    its size.  In memory: L, b, V, N (m×m×n each), c, live, ok (n each), then Z (ngroups m×m×n arrays: the
    Wishart steps read group 0), so that no offset a step reads depends on the number of noise groups.
    Sections are SKEW numbers apart: m×m×n arrays back to back would start at one offset mod 4 KiB (n = 128,
    m = 8: 64 KiB apart), and the loops that read L[i, k] and V[i, j] together would compete for the same
    cache sets (the lane loops measured 10 % slower)."""
    e = m * m * n + SKEW
    oc = 4 * e
    oZ = oc + 3 * (n + SKEW)
    return 0, e, oZ, 2 * e, 3 * e, oc, oc + n + SKEW, oc + 2 * (n + SKEW), oZ + ngroups * m * m * n


@njit(cache=True)
def views(flat, m, n, ngroups):
    """The operands as arrays over ``flat``: L, b (m, m, n), Z (ngroups, m, m, n), V, N (m, m, n), c, live,
    ok (n)."""
    oL, ob, oZ, oV, oN, oc, olive, ook, size = offsets(m, n, ngroups)
    e = m * m * n
    return (flat[oL:oL + e].reshape((m, m, n)), flat[ob:ob + e].reshape((m, m, n)),
            flat[oZ:oZ + ngroups * e].reshape((ngroups, m, m, n)), flat[oV:oV + e].reshape((m, m, n)),
            flat[oN:oN + e].reshape((m, m, n)), flat[oc:oc + n], flat[olive:olive + n], flat[ook:ook + n])


@intrinsic
def data_ptr(typingctx, arr):
    """The address of an array's first element, typed as a pointer (the step's first argument)."""
    def codegen(context, builder, sig, args):
        return context.make_array(sig.args[0])(context, builder, args[0]).data
    return types.CPointer(arr.dtype)(arr), codegen


def _sum(start, terms, op="+"):
    """``((start op t0) op t1) op …`` — left to right, the order of an accumulating loop."""
    acc = start
    for t in terms:
        acc = f"({acc} {op} {t})"
    return acc


class _Layout:
    """Printing the workspace reads and writes of one lane p (constant offsets from :func:`offsets`)."""

    def __init__(self, m, n):
        self.m, self.n = m, n
        oL, ob, oZ, oV, oN, oc, olive, ook, self.size = offsets.py_func(m, n, 1)
        self.at = {"L": oL, "b": ob, "Z": oZ, "V": oV, "N": oN, "c": oc, "live": olive, "ok": ook}

    def __call__(self, a, i=0, j=0):
        return f"ws[{self.at[a] + (i * self.m + j) * self.n} + p]"


def _head(ws):
    """L's lower triangle as L{i}_{k}."""
    m = ws.m
    return [f"L{i}_{k} = {ws('L', i, k)}" for i in range(m) for k in range(i + 1)]


def _psd_lines(ws):
    """V' of :func:`.lanes.psd_wishart` as X{i}_{j} (j ≥ i): a = sq·c, S (√2 on the diagonal),
    G = I + ½a(S − ¼aS²), W = L⁻¹b (forward substitution by 1/L_ii), H = L G + ½dtb Wᵀ, V' = H Hᵀ."""
    m = ws.m
    s = lambda i, j: f"S{min(i, j)}_{max(i, j)}"  # noqa: E731
    lines = [f"a = sq * {ws('c')}"]
    lines += [f"S{i}_{j} = " + (f"r2 * {ws('Z', i, i)}" if i == j else ws("Z", i, j)) for i in range(m)
              for j in range(i, m)]
    for i in range(m):
        for j in range(i, m):
            s2 = _sum("0.0", [f"{s(i, k)} * {s(j, k)}" for k in range(m)])
            lines.append(f"G{min(i, j)}_{max(i, j)} = 0.5 * a * ({s(i, j)} - 0.25 * a * {s2}) + {float(i == j)}")
    lines += [f"v{i} = 1.0 / L{i}_{i}" for i in range(m)]
    lines += [f"W{i}_{c} = " + _sum(ws("b", i, c), [f"L{i}_{k} * W{k}_{c}" for k in range(i)], "-") + f" * v{i}"
              for i in range(m) for c in range(m)]
    lines += [f"H{i}_{j} = " + _sum(f"0.5 * dtb * W{j}_{i}", [f"L{i}_{k} * G{min(k, j)}_{max(k, j)}"
                                                             for k in range(i + 1)]) for i in range(m) for j in range(m)]
    return lines + [f"X{i}_{j} = " + _sum("0.0", [f"H{i}_{k} * H{j}_{k}" for k in range(m)])
                    for i in range(m) for j in range(i, m)]


def _em_lines(ws):
    """V' of :func:`.lanes.em_wishart` as X{i}_{j} (j ≥ i): a = sq·c, T = L S (:func:`.lanes.ls`, S from Z's
    upper triangle, √2 on its diagonal), V' = V + dtb b + a T Lᵀ."""
    m = ws.m

    def ls_term(i, j, k):
        return f"L{i}_{k} * " + (ws("Z", k, j) if k < j else ws("Z", j, k) if k > j else f"r2 * {ws('Z', k, k)}")

    lines = [f"a = sq * {ws('c')}"]
    lines += [f"T{i}_{j} = " + _sum("0.0", [ls_term(i, j, k) for k in range(i + 1)]) for i in range(m)
              for j in range(m)]
    for i in range(m):
        for j in range(i, m):
            lsl = _sum("0.0", [f"T{i}_{k} * L{j}_{k}" for k in range(j + 1)])
            lines.append(f"X{i}_{j} = {ws('V', i, j)} + dtb * {ws('b', i, j)} + a * {lsl}")
    return lines


def _general_psd_lines(ws):
    """V' of :func:`.lanes.psd_step` as X{i}_{j} (j ≥ i): W = L⁻¹N, D = dtb b + sq ½(N + Nᵀ) − q WᵀW (upper
    triangle), U = L⁻¹D, H = L + ½Uᵀ (L's upper triangle read as 0.0), V' = H Hᵀ."""
    m = ws.m
    d = lambda i, j: f"D{min(i, j)}_{max(i, j)}"  # noqa: E731
    lines = [f"v{i} = 1.0 / L{i}_{i}" for i in range(m)]
    lines += [f"W{i}_{c} = " + _sum(ws("N", i, c), [f"L{i}_{k} * W{k}_{c}" for k in range(i)], "-") + f" * v{i}"
              for i in range(m) for c in range(m)]
    lines += [f"D{i}_{j} = dtb * {ws('b', i, j)} + sq * 0.5 * ({ws('N', i, j)} + {ws('N', j, i)}) - q * "
              + _sum("0.0", [f"W{k}_{i} * W{k}_{j}" for k in range(m)]) for i in range(m) for j in range(i, m)]
    lines += [f"U{i}_{c} = " + _sum(d(i, c), [f"L{i}_{k} * U{k}_{c}" for k in range(i)], "-") + f" * v{i}"
              for i in range(m) for c in range(m)]
    lines += [f"H{i}_{j} = {f'L{i}_{j}' if j <= i else '0.0'} + 0.5 * U{j}_{i}" for i in range(m) for j in range(m)]
    return lines + [f"X{i}_{j} = " + _sum("0.0", [f"H{i}_{k} * H{j}_{k}" for k in range(m)])
                    for i in range(m) for j in range(i, m)]


def _accept_lines(ws):
    """The acceptance flag of V' (``ok``, written for every lane) and whether V' replaces V (``w``: the
    lane is running and V' accepted)."""
    m = ws.m
    lines = ["good = True"]
    lines += [f"good &= (abs(X{i}_{j}) <= threshold) & (abs(X{i}_{j}) < math.inf)" for i in range(m)
              for j in range(i, m)]
    return lines + [f"{ws('ok')} = 1.0 if good else 0.0", f"w = good & ({ws('live')} == 1.0)"]


def _write_lines(ws):
    """Where ``w``: V' over V (both triangles)."""
    m = ws.m
    return [f"{ws('V', i, j)} = X{min(i, j)}_{max(i, j)} if w else {ws('V', i, j)}" for i in range(m)
            for j in range(m)]


def source(kind, m, n):
    """The text of the module holding ``step(ws, dtb, sq, q, threshold)`` — the ``kind`` step (see KINDS)
    for m×m states, n lanes, on the workspace at the pointer ``ws`` (layout :func:`offsets` with one noise
    group; c, live read from their sections, ok written as 1.0 / 0.0; q = ¼ dt s_Σ² is read by the general
    PSD step only)."""
    ws = _Layout(m, n)
    lines = {"em": _em_lines, "psd": _psd_lines, "general-psd": _general_psd_lines}[kind](ws)
    body = _head(ws) + lines + _accept_lines(ws) + _write_lines(ws)
    return "\n".join([
        f"# covsde straight-line {kind} step, m = {m}, {n} lanes (generated by covsde.numerics.straight)",
        "import math", "", "from numba import cfunc", "", "from covsde.numerics.straight import SIG", "", "",
        '@cfunc(SIG, cache=True, error_model="numpy")',
        f"def step(ws, dtb, sq, q, threshold):  # ws: a float64 pointer to {ws.size} numbers",
        "    r2 = math.sqrt(2.0)",
        f"    for p in range({n}):", *["        " + line for line in body], ""])


@functools.lru_cache(maxsize=None)
def step(kind, m, n):
    """The compiled step for (kind, m, n lanes), generated and compiled on first use (then from the
    caches)."""
    if kind not in KINDS or not (1 <= m <= MAX_M and n >= 1):
        raise ValueError(f"a straight-line step needs a kind in {KINDS}, 1 ≤ m ≤ {MAX_M} and n ≥ 1 lanes, "
                         f"got {kind!r}, m = {m}, n = {n}")
    return modfile.import_generated(module_name(kind, m, n), lambda: source(kind, m, n)).step


def module_name(kind, m, n):
    """The module's content address: the sources of numerics/ (this generator among them), kind, m, n."""
    key = repr((source_hash("numerics"), kind, m, n))
    return "covsde_straight_" + hashlib.sha256(key.encode()).hexdigest()[:24]


@functools.lru_cache(maxsize=None)
def none():
    """A step of type SIG that does nothing (the lane kernel's argument when no straight step is used)."""
    @cfunc(SIG, cache=False)
    def nothing(ws, dtb, sq, q, threshold):
        pass
    return nothing
