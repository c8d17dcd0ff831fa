"""Resource limits: requests that would exceed the machine are refused up front.

Each check estimates the memory (or the work) of a request before anything runs and raises a
:class:`ResourceLimitError` that names the limit, the estimate and how to raise the limit.

* memory: ``--max-memory`` on the CLI, ``max_memory=`` in the Python API, or the environment
  variable ``COVSDE_MAX_MEMORY`` (e.g. ``16G``); default: half of the physical memory, at most 8 GiB.
  It bounds what a request allocates (every buffer of the run and its summary), on top of the
  ~0.3 GB that Python and the loaded libraries take;
* tokens m of a derivation: ``COVSDE_MAX_M`` (default 512: the matrix-level derivation does not depend
  on m, simulation costs O(m³) per path-step); its per-entry form (m² drift and m⁴/4 diffusion
  expressions, and the per-entry reference engine): ``COVSDE_MAX_M_ENTRIES`` (default 16);
* heads of an attention block: ``COVSDE_MAX_HEADS`` (default 64; each head is derived separately);
* time steps of one simulation: ``COVSDE_MAX_STEPS`` (default 10^7);
* width of a finite network: ``COVSDE_MAX_WIDTH`` (default 65536);
* Dask workers: ``COVSDE_MAX_LOCAL_WORKERS`` (local cluster, default twice the cores) and
  ``COVSDE_MAX_CLUSTER_JOBS`` (slurm/pbs jobs, default 1000);
* work (floating-point operations) of a validation: ``COVSDE_MAX_WORK`` (default 2e14, several hours
  on a 2-core CPU).
"""
from __future__ import annotations

import os
import re

from .errors import CovsdeInputError, ResourceLimitError

GiB = 1024**3
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": GiB, "T": 1024**4}


def parse_bytes(text, name="--max-memory") -> int:
    """'8G', '512M', '1.5G', '1000000' → bytes."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        v = float(text)
    else:
        mt = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)i?B?\s*", str(text), flags=re.I)
        if not mt:
            raise CovsdeInputError(f"{name} must be a size such as 8G or 512M, got {text!r}")
        v = float(mt.group(1)) * _UNITS[mt.group(2).upper()]
    if not v > 0 or v > 2**62:
        raise CovsdeInputError(f"{name} must be a positive size, got {text!r}")
    return int(v)


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 16 * GiB


def max_memory(value=None) -> int:
    if value is not None:
        return parse_bytes(value)
    env = os.environ.get("COVSDE_MAX_MEMORY")
    if env:
        return parse_bytes(env, "COVSDE_MAX_MEMORY")
    return min(8 * GiB, _physical_memory() // 2)


def _env_int(name, default):
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        raise CovsdeInputError(f"the environment variable {name} must be an integer") from None


def max_m() -> int:
    return _env_int("COVSDE_MAX_M", 512)


def max_m_entries() -> int:
    return _env_int("COVSDE_MAX_M_ENTRIES", 16)


def max_heads() -> int:
    return _env_int("COVSDE_MAX_HEADS", 64)


def max_steps() -> int:
    return _env_int("COVSDE_MAX_STEPS", 10**7)


def max_width() -> int:
    return _env_int("COVSDE_MAX_WIDTH", 65536)


def max_local_workers() -> int:
    """Worker processes of a local Dask cluster: twice the cores (each holds a Python with torch)."""
    return _env_int("COVSDE_MAX_LOCAL_WORKERS", 2 * (os.cpu_count() or 1))


def max_cluster_jobs() -> int:
    return _env_int("COVSDE_MAX_CLUSTER_JOBS", 1000)


def max_work() -> float:
    try:
        return float(os.environ.get("COVSDE_MAX_WORK", 2e14))
    except ValueError:
        raise CovsdeInputError("the environment variable COVSDE_MAX_WORK must be a number") from None


def human_bytes(b: float) -> str:
    for unit, size in (("TiB", 1024**4), ("GiB", GiB), ("MiB", 1024**2), ("KiB", 1024)):
        if b >= size:
            return f"{b / size:.3g} {unit}"
    return f"{b:.0f} B"


def check_memory(estimate: float, what: str, limit=None) -> None:
    lim = max_memory(limit)
    if estimate > lim:
        raise ResourceLimitError(
            f"{what} needs about {human_bytes(estimate)} of memory, over the limit of {human_bytes(lim)} "
            f"(raise it with --max-memory SIZE or COVSDE_MAX_MEMORY, or ask for less)")


def check_count(name: str, value: float, limit: int, env: str, why: str = "") -> None:
    if value > limit:
        shown = f"{value}" if value < 1e12 else f"{float(value):.3g}"
        raise ResourceLimitError(f"{name} = {shown} exceeds the limit of {limit}{why} (raise it with {env})")


def check_work(flops: float, what: str) -> None:
    lim = max_work()
    if flops > lim:
        hours = flops / 2e9 / 3600
        raise ResourceLimitError(
            f"{what} needs about {flops:.2g} floating-point operations (roughly {hours:.3g} hours on a 2-core "
            f"CPU), over the limit of {lim:.2g} (raise it with COVSDE_MAX_WORK, or ask for less)")
