"""Fingerprints behind cache keys: what decides a cached result, hashed, so that no entry outlives
the code or the data that produced it.

* :func:`source_hash` — SHA-256 of the ``.py`` files of covsde packages (read once per process, at
  first use); a derivation's key covers ``derive/`` and ``common/``, a generated module's key
  ``numerics/`` (its kernels included) on top of the derivation's.
* :func:`object_fingerprint` — SHA-256 of an object's whole state *and the code it runs*: for every
  object in the tree (a block, its branches, its activations, …) the compiled code of every method
  of every class in its MRO that is not part of covsde, Python or an installed package, the code of
  module-level functions and classes those methods refer to, and every attribute value (numbers,
  strings, SymPy expressions via ``srepr``, containers, arrays, nested objects).  Code is hashed as it
  is *loaded* (``marshal`` of the code objects), not as it is on disk, so an edited file that has not
  been re-imported cannot put its result under the old code's key.  An object it cannot read raises
  :class:`Unfingerprintable`; callers then do not cache.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import inspect
import marshal
import platform
import sys
import sysconfig
import types
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


class Unfingerprintable(Exception):
    """An object whose state cannot be hashed reliably (its results are then not cached)."""


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "-"


@functools.lru_cache(maxsize=None)
def source_hash(*packages: str) -> str:
    """Hash of every .py file under covsde/<package> for each named package, with the versions of
    Python and of the libraries that can change results (SymPy, NumPy, Numba)."""
    h = hashlib.sha256()
    for pkg in packages:
        root = PACKAGE_ROOT / pkg
        for f in sorted(root.rglob("*.py")):
            h.update(str(f.relative_to(PACKAGE_ROOT)).encode())
            h.update(f.read_bytes())
    versions = [platform.python_version()] + [f"{d}={_version(d)}" for d in ("sympy", "numpy", "numba")]
    h.update("|".join(versions).encode())
    return h.hexdigest()


@functools.lru_cache(maxsize=None)
def _library_dirs():
    paths = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    return tuple(str(Path(p).resolve()) for p in paths if p)


def _is_user_code(obj) -> bool:
    """Code that is neither covsde's own (covered by source_hash), nor Python's, nor an installed library's."""
    mod = getattr(obj, "__module__", None) or ""
    if mod == "builtins" or mod == "covsde" or mod.startswith("covsde."):
        return False
    if mod.split(".")[0] in sys.stdlib_module_names:
        return False
    try:
        f = inspect.getsourcefile(obj) or inspect.getfile(obj)
    except (TypeError, OSError):
        return True  # defined interactively or with exec: user code without a file
    f = str(Path(f).resolve())
    return not any(f.startswith(d) for d in _library_dirs())


def _code_names(code: types.CodeType):
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _code_names(c)
    return names


class _Hasher:
    def __init__(self):
        self.h = hashlib.sha256()
        self.seen = {}  # id → order of first visit, for shared and cyclic references
        self.alive = []  # every visited object stays alive, so that no id is reused while hashing

    def put(self, *parts):
        for p in parts:
            self.h.update(p if isinstance(p, bytes) else str(p).encode())
            self.h.update(b"\x00")

    def visit(self, o, depth=0):
        if depth > 60:
            raise Unfingerprintable("object tree nested too deeply")
        if o is None or isinstance(o, (bool, int, float, complex, str, bytes)):
            self.put(type(o).__name__, repr(o))
            return
        key = id(o)
        if key in self.seen:  # shared or cyclic reference: record the back-reference
            self.put("ref", self.seen[key])
            return
        self.seen[key] = len(self.seen)
        self.alive.append(o)
        import sympy as sp

        if isinstance(o, sp.Basic):
            self.put("sympy", sp.srepr(o))
        elif isinstance(o, (list, tuple)):
            self.put(type(o).__name__, len(o))
            for x in o:
                self.visit(x, depth + 1)
        elif isinstance(o, (set, frozenset)):
            self.put(type(o).__name__, len(o))
            for r in sorted(repr(x) for x in o):
                self.put(r)
        elif isinstance(o, dict):
            self.put("dict", len(o))
            for k in sorted(o, key=repr):
                self.visit(k, depth + 1)
                self.visit(o[k], depth + 1)
        elif isinstance(o, (types.FunctionType, types.MethodType)):
            self.function(o, depth)
        elif isinstance(o, type):
            self.klass(o, depth)
        elif type(o).__module__ == "numpy" or hasattr(o, "__array_interface__"):
            import numpy as np

            a = np.asarray(o)
            if a.dtype == object:
                raise Unfingerprintable("object arrays")
            self.put("array", a.dtype.str, a.shape, np.ascontiguousarray(a).tobytes())
        else:
            self.instance(o, depth)

    def function(self, f, depth):
        f = getattr(f, "__func__", f)
        code = getattr(f, "__code__", None)
        if code is None:
            self.put("callable", getattr(f, "__module__", ""), getattr(f, "__qualname__", repr(f)))
            return
        self.put("function", f.__qualname__)
        if not _is_user_code(f):
            self.put(f.__module__)
            return
        self.put(marshal.dumps(code))
        for d in (f.__defaults__ or ()):
            self.visit(d, depth + 1)
        for cell in (f.__closure__ or ()):
            try:
                self.visit(cell.cell_contents, depth + 1)
            except ValueError:  # empty cell
                self.put("empty-cell")
        g = getattr(f, "__globals__", {})
        for name in sorted(_code_names(code)):
            ref = g.get(name)
            if isinstance(ref, (types.FunctionType, type)) and _is_user_code(ref):
                self.visit(ref, depth + 1)

    def klass(self, cls, depth):
        self.put("class", cls.__module__, cls.__qualname__)
        for c in cls.__mro__:
            if c is object or not _is_user_code(c):
                continue
            self.put("mro", c.__qualname__)
            for name, attr in sorted(vars(c).items()):
                if isinstance(attr, (staticmethod, classmethod)):
                    attr = attr.__func__
                if isinstance(attr, property):
                    attr = attr.fget
                if isinstance(attr, types.FunctionType):
                    self.put(name)
                    self.visit(attr, depth + 1)
                elif not name.startswith("__") and isinstance(attr, (int, float, str, bool, tuple)):
                    self.put(name, repr(attr))

    def instance(self, o, depth):
        cls = type(o)
        self.visit(cls, depth + 1)
        state = getattr(o, "__dict__", None)
        slots = [s for c in cls.__mro__ for s in getattr(c, "__slots__", ())]
        if state is None and not slots:
            raise Unfingerprintable(f"cannot read the state of a {cls.__qualname__}")
        if state is not None:
            self.visit({k: v for k, v in state.items()}, depth + 1)
        for s in slots:
            if hasattr(o, s):
                self.put("slot", s)
                self.visit(getattr(o, s), depth + 1)


def object_fingerprint(obj) -> str:
    """SHA-256 of ``obj``'s state and user code (see the module docstring)."""
    h = _Hasher()
    h.visit(obj)
    return h.h.hexdigest()
