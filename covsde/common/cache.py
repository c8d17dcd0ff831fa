"""On-disk, content-addressed cache shared by derive/ and numerics/, and atomic file writes.

Location: ``$COVSDE_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/covsde`` (default
``~/.cache/covsde``; ``%LOCALAPPDATA%\\covsde`` on Windows).  Entries are written atomically
(temporary file in the same folder, then ``os.replace``), so concurrent writers and interrupted
writes never leave a half-written entry; each entry carries a SHA-256 of its payload and a
corrupted entry is ignored (and later overwritten).
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

MAGIC = b"covsde1\n"


def cache_dir() -> Path:
    env = os.environ.get("COVSDE_CACHE_DIR")
    if env:
        return Path(env)
    if sys.platform.startswith("win"):
        base = os.environ.get("LOCALAPPDATA", str(Path.home() / "AppData" / "Local"))
        return Path(base) / "covsde"
    return Path(os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))) / "covsde"


def path_for(kind: str, key: str, suffix: str = ".bin") -> Path:
    return cache_dir() / kind / f"{key}{suffix}"


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def store(kind: str, key: str, payload: bytes) -> Path | None:
    """Store ``payload`` with a checksum header; a read-only cache is not an error."""
    digest = hashlib.sha256(payload).hexdigest().encode()
    try:
        p = path_for(kind, key)
        atomic_write(p, MAGIC + digest + b"\n" + payload)
        return p
    except OSError:
        return None


def load(kind: str, key: str) -> bytes | None:
    """The payload, or None if absent, unreadable or corrupted (it is then rebuilt by the caller)."""
    p = path_for(kind, key)
    try:
        raw = p.read_bytes()
    except (OSError, ValueError):
        return None
    if not raw.startswith(MAGIC):
        return None
    rest = raw[len(MAGIC):]
    digest, _, payload = rest.partition(b"\n")
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        return None
    return payload


def discard(kind: str, key: str) -> None:
    """Remove an entry that failed to load (a later store rewrites it)."""
    try:
        path_for(kind, key).unlink()
    except OSError:
        pass


def write_json(path, obj) -> None:
    """Write ``obj`` as indented JSON, atomically (temporary file + rename)."""
    import json

    atomic_write(Path(path), json.dumps(obj, indent=1).encode())
