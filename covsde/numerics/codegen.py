"""Code generation: a derivation → a Python module of ``@njit(cache=True)`` kernels.

The module holds ``coeffs(V, P, b, mats, cf)`` (the drift b(V), the matrices A_t(V), B_t(V) and the
coefficients c_t of the structured noise, after common-subexpression elimination; P holds the
parameter values, read at run time), ``noise(...)`` (N = Σ_g Σ_t c_t A_t
(L Z_g Lᵀ)^{(T_t)} B_t, O(m³) per step), and the path integrators of :mod:`.kernels` (whose source the module starts with).

Printing goes through :class:`NumbaPrinter`, a SymPy ``PythonCodePrinter`` subclass:
``acos(x)`` becomes ``_acos(x)`` = atan2(√(1−x²), x) with x clipped to [−1, 1] (accurate near
ρ = 1), and square roots clip tiny negative round-off, ``_sqrtc(x)`` = √max(x, 0).

Numbers: before printing, every numeric sub-expression (``sqrt(27942…/10^34)`` from a pasted
decimal γ, ``sqrt(2)/4``, a 58-digit integer) is folded into one 53-bit float (:func:`fold_numbers`),
and the printer writes integers beyond 2^53 as floats, so the generated code never holds an integer
literal outside int64 or an exact rational that Numba cannot type.

Modules are content-addressed in the covsde cache folder (:func:`covsde.common.cache.cache_dir`, env
``COVSDE_CACHE_DIR``): the key covers the derivation's own key (block, m, derive/ sources) and the
sources of numerics/ (this generator and the kernels).  They are written atomically, verified
against the hash line on load, and rebuilt when corrupted; Numba's cache files of a module are
checked before import (both pickles of each index and data file) and removed when unreadable, so
Numba recompiles instead of failing.
"""
from __future__ import annotations

import hashlib
import importlib.util
import pickle
import sys
from pathlib import Path

import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from ..common import cache
from ..common.errors import CovsdeInputError
from ..common.expr import INT_EXACT, fold_numbers
from ..common.fingerprint import source_hash
from . import kernels
from .matcode import coeff_body

class NumbaPrinter(PythonCodePrinter):
    """SymPy → Numba-friendly Python (math module functions, domain-safe acos/sqrt, numbers as floats).

    ``acos`` prints as the kernels' ``_acos`` through the ``user_functions`` setting; square roots
    as ``_sqrtc``; numbers as floats (see :func:`fold_numbers`, applied before printing)."""

    def __init__(self, settings=None):
        settings = dict(settings or {})
        settings["user_functions"] = {"acos": "_acos", **settings.get("user_functions", {})}
        super().__init__(settings)

    def _print_Float(self, expr):
        return repr(float(expr))

    def _print_Integer(self, expr):
        return str(int(expr)) if abs(expr) < INT_EXACT else repr(float(expr))

    def _print_Pow(self, expr, rational=False):
        base, e = expr.args
        if e == sp.Rational(1, 2):
            return f"_sqrtc({self._print(base)})"
        if e == -sp.Rational(1, 2):
            return f"(1.0/_sqrtc({self._print(base)}))"
        if e.is_Integer and e == -1:
            return f"(1.0/({self._print(base)}))"
        if e.is_Integer and 2 <= e <= 4:
            b = self.parenthesize(base, sp.printing.precedence.PRECEDENCE["Pow"])
            return "(" + "*".join([b] * int(e)) + ")"
        return super()._print_Pow(expr, rational=rational)

    def _print_Rational(self, expr):
        return repr(float(expr))

    def _print_Pi(self, expr):
        return "math.pi"

    def _print_Symbol(self, expr):
        return expr.name


def _printer():
    return NumbaPrinter({"fully_qualified_modules": True, "standard": "python3"})


def _collect(d):
    """The expressions to print — drift upper triangle, every distinct A_t/B_t matrix, every c_t —
    and, per noise group, its terms as (coefficient index, A index, T, B index) (−1: identity)."""
    m = d.m
    exprs = [d.drift[i, j] for i in range(m) for j in range(i, m)]
    mats, mat_index, groups, coefs = [], {}, [], []

    def index(M):
        if M is None:
            return -1
        key = sp.ImmutableMatrix(M)
        if key not in mat_index:
            mat_index[key] = len(mats)
            mats.append(key)
        return mat_index[key]

    for g in d.noise:
        groups.append([(len(coefs) + k, index(t.A), t.T, index(t.B)) for k, t in enumerate(g.terms)])
        coefs.extend(t.coef for t in g.terms)
    for M in mats:
        exprs.extend(list(M))
    exprs.extend(coefs)
    return exprs, len(mats), groups, len(coefs)


def _coeff_body(d, exprs, nmats, ncoef):
    """The body of coeffs(V, P, b, mats, cf): numbers folded, common subexpressions shared."""
    m, pr, memo = d.m, _printer(), {}
    repl, reduced = sp.cse([fold_numbers(e, memo) for e in exprs], symbols=sp.numbered_symbols("x"))
    lines = [f"    {sym.name} = P[{k}]" for k, sym in enumerate(d.parameters)]
    lines += [f"    V_{i}_{j} = V[{i}, {j}]" for i in range(m) for j in range(i, m)]
    lines += [f"    {s} = {pr.doprint(e)}" for s, e in repl]
    values = iter(reduced)
    for i in range(m):
        for j in range(i, m):
            lines.append(f"    b[{i}, {j}] = {pr.doprint(next(values))}")
            if i != j:
                lines.append(f"    b[{j}, {i}] = b[{i}, {j}]")
    for q in range(nmats):
        lines += [f"    mats[{q}, {i}, {j}] = {pr.doprint(next(values))}" for i in range(m) for j in range(m)]
    lines += [f"    cf[{q}] = {pr.doprint(next(values))}" for q in range(ncoef)]
    return "\n".join(lines) or "    pass"


def _transpose_pair(g):
    """{c·A Ẑ B, c·Bᵀ Ẑᵀ Aᵀ}: the group is M + Mᵀ with M = c·A Ẑ B."""
    def tr(M):
        return None if M is None else M.T

    t0, t1 = g.terms if len(g.terms) == 2 else (None, None)
    return (t0 is not None and t0.T != t1.T and sp.simplify(t0.coef - t1.coef) == 0
            and tr(t0.B) == t1.A and tr(t0.A) == t1.B)


def _product(ia, src, ib, dest, tmp="t1"):
    """Lines computing dest = A·src·B (a missing matrix is the identity)."""
    if ia >= 0 and ib >= 0:
        return [f"    linalg.mm(mats[{ia}], {src}, {tmp})", f"    linalg.mm({tmp}, mats[{ib}], {dest})"]
    if ia >= 0:
        return [f"    linalg.mm(mats[{ia}], {src}, {dest})"]
    if ib >= 0:
        return [f"    linalg.mm({src}, mats[{ib}], {dest})"]
    return [f"    {dest}[:, :] = {src}"]


def _noise_body(noise, groups):
    """The body of noise(...) and the SYM flags.  The Wishart group c(Ẑ + Ẑᵀ) = c√2 · L S Lᵀ with
    S = (Z + Zᵀ)/√2 symmetric is drawn directly (S_ii = √2 z_ii, S_ij = z_ij for i < j: m(m+1)/2
    normals); other transpose pairs are M + Mᵀ; anything else term by term."""
    lines, sym = [], []
    for gi, (g, terms) in enumerate(zip(noise, groups)):
        pair = _transpose_pair(g)
        sym.append(bool(pair and g.terms[0].A is None and g.terms[0].B is None))
        if sym[-1]:
            lines.append(f"    linalg.lsl_sym_acc(L, Z[{gi}], t1, cf[{terms[0][0]}] * 1.4142135623730951, out)")
            continue
        lines.append(f"    linalg.lzl(L, Z[{gi}], t1, zh)")
        if pair:
            c, ia, T, ib = terms[0] if terms[0][2] == 0 else terms[1]
            lines += _product(ia, "zh", ib, "t2") + [f"    linalg.sym_acc(t2, cf[{c}], out)"]
            continue
        for c, ia, T, ib in terms:
            src = "zh"
            if T:
                lines.append("    linalg.transpose(zh, t2)")
                src = "t2"
            if ia >= 0 and ib >= 0:
                lines += [f"    linalg.mm(mats[{ia}], {src}, t1)", f"    linalg.mm_acc(t1, mats[{ib}], cf[{c}], out)"]
            elif ia >= 0 or ib >= 0:
                left, right = (f"mats[{ia}]", src) if ia >= 0 else (src, f"mats[{ib}]")
                lines.append(f"    linalg.mm_acc({left}, {right}, cf[{c}], out)")
            else:
                lines.append(f"    linalg.acc({src}, cf[{c}], out)")
    return "\n".join(lines) or "    pass", tuple(sym) or (False,)


GENERATED = '''

# ---- generated for: {desc} ----
M = {m}  # 0: any m (a module generated from the matrix form)
NGROUPS = {ngroups}
NMATS = {nmats}
NCOEF = {ncoef}
NWS = {nws}
NWV = {nwv}
PARAMS = {params!r}  # names of the run-time parameters, in the order of P
SYM = {sym!r}  # per noise group: True = symmetric S drawn directly (upper triangle of Z used)
DESCRIPTION = {desc!r}
{maps}

@njit(cache=True, error_model="numpy")
def coeffs(V, P, b, mats, cf, ws, wv):
{coeff_body}


@njit(cache=True, error_model="numpy")
def noise(V, L, Z, mats, cf, t1, t2, zh, out):
    """out = Σ_g N_g, N_g = Σ_t c_t A_t (L Z_g Lᵀ)^(T_t) B_t (a SYM group uses S, see _lsl_sym_acc)."""
    out[:, :] = 0.0
{noise_body}
'''


def _matrix_collect(form):
    """The distinct A_t/B_t expressions, the c_t, and per group its terms as (c index, A index, T, B index)."""
    mats, index, groups, coefs = [], {}, [], []

    def at(M):
        if M is None:
            return -1
        if M not in index:
            index[M] = len(mats)
            mats.append(M)
        return index[M]

    for g in form.noise:
        groups.append([(len(coefs) + k, at(t.A), t.T, at(t.B)) for k, t in enumerate(g.terms)])
        coefs.extend(t.coef for t in g.terms)
    return mats, groups, coefs


def _parts(d):
    """The derivation-specific pieces of the module text."""
    if d.matrix is not None:
        params = d.parameters
        mats, groups, coefs = _matrix_collect(d.matrix)
        body, maps, nws, nwv = coeff_body(d.matrix, params, mats, coefs, _printer())
        noise_body, sym = _noise_body(d.matrix.noise, groups)
        return dict(m=0, ngroups=max(len(groups), 1), nmats=max(len(mats), 1), ncoef=max(len(coefs), 1), nws=nws,
                    nwv=nwv, params=tuple(x.name for x in params), sym=sym, maps=maps, coeff_body=body,
                    noise_body=noise_body)
    exprs, nmats, groups, ncoef = _collect(d)
    noise_body, sym = _noise_body(d.noise, groups)
    return dict(m=d.m, ngroups=max(len(groups), 1), nmats=max(nmats, 1), ncoef=max(ncoef, 1), nws=1, nwv=1,
                params=tuple(x.name for x in d.parameters), sym=sym, maps="",
                coeff_body=_coeff_body(d, exprs, nmats, ncoef), noise_body=noise_body)


def generate_source(derivation) -> str:
    """Source text of the kernel module of a derivation: the source of :mod:`.kernels` followed by the
    derivation's constants, ``coeffs`` and ``noise``.  Parameters stay symbolic: the kernels read them
    at run time from the array P (in the order of ``derivation.parameters``), so one compiled module
    serves every parameter value; a module generated from the matrix form also serves every m."""
    if not derivation.has_limit:
        raise CovsdeInputError(f"regime no-limit, nothing to simulate: {derivation.reason}")
    d = derivation
    part = GENERATED.format(desc=(d.name or d.block).replace("\n", " ")[:200], **_parts(d))
    return Path(kernels.__file__).read_text() + part


def _verify(path: Path) -> bool:
    """The module file exists, is UTF-8 and matches its hash line."""
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    first, _, rest = text.partition("\n")
    if not first.startswith("# covsde-hash: "):
        return False
    return hashlib.sha256(rest.encode()).hexdigest() == first[len("# covsde-hash: "):].strip()


def derivation_hash(derivation) -> str:
    """Content address of a derivation's kernels: the sources of numerics/ (generator and kernels)
    and the derivation's own key (a hash of block, m and the derive/ sources, set by ``derive``) or,
    without one, its pickled expressions.  Parameters are run-time inputs, not part of the key."""
    if derivation.matrix is not None:  # the module serves every m: its content is the key
        form = derivation.matrix
        ident = repr((form.drift.key(), [[(str(t.coef), t.A and t.A.key(), t.T, t.B and t.B.key()) for t in g.terms]
                                         for g in form.noise], [s.name for s in derivation.parameters]))
        payload = repr((source_hash("numerics"), ident))
    else:
        ident = derivation.key or hashlib.sha256(pickle.dumps((derivation.drift, derivation.noise))).hexdigest()
        payload = repr((source_hash("numerics"), derivation.m, ident))
    return hashlib.sha256(payload.encode()).hexdigest()


def _numba_files(path: Path):
    folder = path.parent / "__pycache__"
    try:
        return [f for f in folder.iterdir() if f.name.startswith(path.stem + ".")]
    except OSError:
        return []


def _numba_cache_ok(path: Path) -> bool:
    """Numba's cache files of the module at ``path`` can be read as Numba reads them (index: a
    pickled version, then a pickle; data: one pickle).  Unreadable files are removed (Numba then
    recompiles and rewrites them)."""
    files = _numba_files(path)
    try:
        for f in files:
            with open(f, "rb") as fh:
                if f.suffix == ".nbi":
                    pickle.load(fh)
                    pickle.loads(fh.read())
                elif f.suffix == ".nbc":
                    pickle.loads(fh.read())
        return True
    except Exception:  # noqa: BLE001 - any unreadable cache file: remove them all
        for f in files:
            try:
                f.unlink()
            except OSError:
                pass
        return False


_MODULES = {}


def load_module(derivation):
    """Import the kernel module for a derivation, generating it only if the cache lacks it."""
    if not derivation.has_limit:
        raise CovsdeInputError(f"regime no-limit, nothing to simulate: {derivation.reason}")
    memo = id(derivation)
    if memo in _MODULES and _MODULES[memo][0] is derivation:
        return _MODULES[memo][1]
    digest = derivation_hash(derivation)
    name = f"covsde_gen_{digest[:24]}"
    if name in sys.modules:
        mod = sys.modules[name]
    else:
        path = cache.path_for("numerics", name, ".py")
        ok = _verify(path)
        if not ok:  # missing or corrupted: (re)generate, write atomically
            for f in _numba_files(path):  # compiled from another text: never reuse
                f.unlink(missing_ok=True)
            body = "# covsde generated module (do not edit)\n" + generate_source(derivation)
            text = f"# covsde-hash: {hashlib.sha256(body.encode()).hexdigest()}\n{body}"
            try:
                cache.atomic_write(path, text.encode())
            except OSError:  # read-only cache: a private temporary folder
                import tempfile

                path = Path(tempfile.mkdtemp(prefix="covsde-gen-")) / f"{name}.py"
                path.write_text(text)
        _numba_cache_ok(path)
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        sys.modules[name] = mod
        mod.__covsde_path__ = str(path)
    _MODULES[memo] = (derivation, mod)
    return mod


def param_vector(derivation, params=None):
    """The run-time parameter array P for a derivation (order of ``derivation.parameters``)."""
    import numpy as np

    checked = derivation.parameter_values(params)
    vals = [checked[sym.name] for sym in derivation.parameters]
    return np.array(vals if vals else [0.0], dtype=float)
