"""The Wishart PSD step written out for one m: the lane loop outermost, its body straight-line code.

:func:`.lanes.psd_wishart` runs each of its loops over all lanes of a chunk, so every partial sum of its
products goes to memory and back (about three loads and a store per multiply-add).  Here the loop over
lanes is the only loop: its body is the whole step of one lane with every loop over i, j, k unrolled
for a fixed m (S, G = I + ½a(S − ¼aS²), W = L⁻¹b, H = L G + ½dtb Wᵀ, V' = H Hᵀ as scalar temporaries),
and LLVM vectorises that loop over lanes with the temporaries in registers.  The operations are those of
``lanes.psd_wishart`` in the same order, so the result is the same to the last bit (tested).

Every operand lives in one flat workspace at offsets fixed when the source is written
(:func:`offsets`): with one array and constant offsets LLVM proves the lanes independent; with separate
arrays it needs a run-time alias check per pair of accesses and gives up from m = 7.

The body grows as m³ (m = 8: ≈ 1200 products, 3 s to compile; m = 12: 10 s; m = 16: 34 s), hence
``MAX_M``.  The module for each (m, lanes) is generated once, content-addressed in the cache
(:mod:`.modfile`; the key covers this file) and compiled once (Numba's cache).  Its step is a ``cfunc``:
the lane kernel calls it through a function pointer (type ``SIG``), so it is not linked into — and
compiled again with — every generated module.  ``none()`` is a step of the same type that does nothing,
for runs that do not use one.
"""
from __future__ import annotations

import functools
import hashlib

from numba import cfunc, njit, types
from numba.extending import intrinsic

from ..common.fingerprint import source_hash
from . import modfile

MAX_M = 8
SIG = types.void(types.CPointer(types.float64), types.float64, types.float64, types.float64)


@njit(cache=True)
def offsets(m, n, ngroups):
    """Where the step's operands start in the flat workspace of a chunk of n lanes: L, b, Z (ngroups
    m×m×n arrays; the step reads group 0), V' (m×m×n), c, ok (n each), and the workspace's size."""
    e = m * m * n
    return 0, e, 2 * e, (2 + ngroups) * e, (3 + ngroups) * e, (3 + ngroups) * e + n, (3 + ngroups) * e + 2 * n


@njit(cache=True)
def views(flat, m, n, ngroups):
    """The operands as arrays over ``flat``: L, b (m, m, n), Z (ngroups, m, m, n), V' (m, m, n), c, ok (n)."""
    oL, ob, oZ, oV, oc, ook, size = offsets(m, n, ngroups)
    return (flat[oL:ob].reshape((m, m, n)), flat[ob:oZ].reshape((m, m, n)),
            flat[oZ:oV].reshape((ngroups, m, m, n)), flat[oV:oc].reshape((m, m, n)), flat[oc:ook], flat[ook:size])


@intrinsic
def data_ptr(typingctx, arr):
    """The address of an array's first element, typed as a pointer (the step's first argument)."""
    def codegen(context, builder, sig, args):
        return context.make_array(sig.args[0])(context, builder, args[0]).data
    return types.CPointer(arr.dtype)(arr), codegen


def _sum(start, terms):
    """``((start + t0) + t1) + …`` — left to right, the order of an accumulating loop."""
    acc = start
    for t in terms:
        acc = f"({acc} + {t})"
    return acc


def _operands(m, n):
    """Lines that read L's lower triangle and build S (√2 on the diagonal), and the offset function."""
    oL, ob, oZ, oV, oc, ook, size = offsets.py_func(m, n, 1)
    at = {"L": oL, "b": ob, "Z": oZ, "V": oV}

    def ix(a, i, j):
        return at[a] + (i * m + j) * n

    lines = [f"        a = sq * ws[{oc} + p]"]
    lines += [f"        L{i}_{k} = ws[{ix('L', i, k)} + p]" for i in range(m) for k in range(i + 1)]
    lines += [f"        S{i}_{j} = " + (f"r2 * ws[{ix('Z', i, i)} + p]" if i == j else f"ws[{ix('Z', i, j)} + p]")
              for i in range(m) for j in range(i, m)]
    return lines, ix, ook, size


def _s(i, j):
    return f"S{min(i, j)}_{max(i, j)}"


def _g(i, j):
    return f"G{min(i, j)}_{max(i, j)}"


def _psd_lines(m, ix):
    """G = I + ½a(S − ¼aS²), W = L⁻¹b (forward substitution by 1/L_ii), H = L G + ½dtb Wᵀ."""
    lines = []
    for i in range(m):
        for j in range(i, m):
            s2 = _sum("0.0", [f"{_s(i, k)} * {_s(j, k)}" for k in range(m)])
            lines.append(f"        G{i}_{j} = 0.5 * a * ({_s(i, j)} - 0.25 * a * {s2}) + {1.0 if i == j else 0.0}")
    lines += [f"        v{i} = 1.0 / L{i}_{i}" for i in range(m)]
    for i in range(m):
        for c in range(m):
            acc = f"ws[{ix('b', i, c)} + p]"
            for k in range(i):
                acc = f"({acc} - L{i}_{k} * W{k}_{c})"
            lines.append(f"        W{i}_{c} = {acc} * v{i}")
    for i in range(m):
        for j in range(m):
            lines.append(f"        H{i}_{j} = " + _sum(f"0.5 * dtb * W{j}_{i}", [f"L{i}_{k} * {_g(k, j)}"
                                                                               for k in range(i + 1)]))
    return lines


def _gram_lines(m, ix, ook):
    """V' = H Hᵀ (upper triangle, mirrored) and the acceptance flag (finite, max|V'| ≤ threshold)."""
    lines = ["        good = True"]
    for i in range(m):
        for j in range(i, m):
            lines.append("        x = " + _sum("0.0", [f"H{i}_{k} * H{j}_{k}" for k in range(m)]))
            lines.append(f"        ws[{ix('V', i, j)} + p] = x")
            if j != i:
                lines.append(f"        ws[{ix('V', j, i)} + p] = x")
            lines.append("        good &= (abs(x) <= threshold) & (abs(x) < math.inf)")
    lines.append(f"        ws[{ook} + p] = 1.0 if good else 0.0")
    return lines


def source(m, n):
    """The text of the module holding ``psd_wishart(ptr, dtb, sq, threshold)`` for m×m states, n lanes:
    the step of :func:`.lanes.psd_wishart` on the workspace at ``ptr`` (layout :func:`offsets`, one noise
    group), c read from its c section, ok written as 1.0 / 0.0."""
    head, ix, ook, size = _operands(m, n)
    body = head + _psd_lines(m, ix) + _gram_lines(m, ix, ook)
    return "\n".join([
        f"# covsde straight-line Wishart PSD step, m = {m}, {n} lanes (generated by covsde.numerics.straight)",
        "import math", "", "from numba import cfunc", "", "from covsde.numerics.straight import SIG", "", "",
        '@cfunc(SIG, cache=True, error_model="numpy")',
        f"def psd_wishart(ws, dtb, sq, threshold):  # ws: a float64 pointer to {size} numbers",
        "    r2 = math.sqrt(2.0)",
        f"    for p in range({n}):", *body, ""])


@functools.lru_cache(maxsize=None)
def psd_step(m, n):
    """The compiled step for (m, n lanes), generated and compiled on first use (then from the caches)."""
    if not (1 <= m <= MAX_M and n >= 1):
        raise ValueError(f"a straight-line step needs 1 ≤ m ≤ {MAX_M} and n ≥ 1 lanes, got m = {m}, n = {n}")
    return modfile.import_generated(module_name(m, n), lambda: source(m, n)).psd_wishart


def module_name(m, n):
    """The module's content address: the sources of numerics/ (this generator among them), m and n."""
    return "covsde_straight_" + hashlib.sha256(repr((source_hash("numerics"), m, n)).encode()).hexdigest()[:24]


@functools.lru_cache(maxsize=None)
def none():
    """A step of type SIG that does nothing (the lane kernel's argument when no straight step is used)."""
    @cfunc(SIG, cache=False)
    def nothing(ptr, dtb, sq, threshold):
        pass
    return nothing
