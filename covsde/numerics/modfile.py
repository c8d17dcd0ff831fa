"""Generated modules on disk: content-addressed in the covsde cache folder, verified, written atomically,
imported once per process.

A module's text starts with a hash line (``# covsde-hash: <sha256 of the rest>``); a file that does not
match it (missing, truncated, edited) is regenerated and written atomically (:func:`.cache.atomic_write`),
and Numba's cache files of a module are checked before import (each index loaded, each data file parsed)
and removed when unreadable, so Numba recompiles instead of failing.  A read-only cache folder falls back
to a private temporary folder.  Used by :mod:`.codegen` (a derivation's kernels) and :mod:`.straight`
(the straight-line step for one m).
"""
from __future__ import annotations

import hashlib
import importlib.util
import pickle
import pickletools
import sys
from pathlib import Path

from ..common import cache


def verify(path: Path) -> bool:
    """The module file exists, is UTF-8 and matches its hash line."""
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    first, _, rest = text.partition("\n")
    if not first.startswith("# covsde-hash: "):
        return False
    return hashlib.sha256(rest.encode()).hexdigest() == first[len("# covsde-hash: "):].strip()


def numba_files(path: Path):
    folder = path.parent / "__pycache__"
    try:
        return [f for f in folder.iterdir() if f.name.startswith(path.stem + ".")]
    except OSError:
        return []


def _whole_pickle(data: bytes) -> None:
    """Raise ValueError unless ``data`` is one complete pickle stream (its opcodes parsed, not run: a data
    file may name objects that exist only once its module is imported, e.g. a ``cfunc``'s environment)."""
    end = None
    for op, _, pos in pickletools.genops(data):
        end = pos if op.name == "STOP" else None
    if end is None or end != len(data) - 1:
        raise ValueError("not one complete pickle")


def numba_cache_ok(path: Path) -> bool:
    """Numba's cache files of the module at ``path`` are whole (index: a pickled version, then a pickle,
    both loaded as Numba loads them; data: one complete pickle stream).  Unreadable files are removed
    (Numba then recompiles and rewrites them)."""
    files = numba_files(path)
    try:
        for f in files:
            with open(f, "rb") as fh:
                if f.suffix == ".nbi":
                    pickle.load(fh)
                    pickle.loads(fh.read())
                elif f.suffix == ".nbc":
                    _whole_pickle(fh.read())
        return True
    except Exception:  # noqa: BLE001 - any unreadable cache file: remove them all
        for f in files:
            try:
                f.unlink()
            except OSError:
                pass
        return False


def _write(path: Path, name: str, body: str) -> Path:
    """Write ``body`` under its hash line (atomically); the path it was written to."""
    for f in numba_files(path):  # compiled from another text: never reuse
        f.unlink(missing_ok=True)
    text = f"# covsde-hash: {hashlib.sha256(body.encode()).hexdigest()}\n{body}"
    try:
        cache.atomic_write(path, text.encode())
    except OSError:  # read-only cache: a private temporary folder
        import tempfile

        path = Path(tempfile.mkdtemp(prefix="covsde-gen-")) / f"{name}.py"
        path.write_text(text)
    return path


def import_generated(name: str, make_body):
    """The module ``name`` (a content address: the caller hashes everything its text depends on), imported
    from the cache folder, its text written by ``make_body()`` only when the cache lacks it or holds a
    corrupted copy."""
    if name in sys.modules:
        return sys.modules[name]
    path = cache.path_for("numerics", name, ".py")
    if not verify(path):
        path = _write(path, name, make_body())
    numba_cache_ok(path)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # before it runs: a cfunc compiles (and is cached) as its module executes
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[name]
        raise
    mod.__covsde_path__ = str(path)
    return mod
