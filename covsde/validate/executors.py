"""Where the independent pieces of a suite run: in this process (``local``) or as tasks on a Dask
cluster (``dask``).

    run_pieces(pieces, fn, on_done, executor="dask", workers=2)

calls ``fn(piece)`` for every piece and ``on_done(piece, result)`` *in this process* as each result
arrives, so results are written where the caller wants them (no shared filesystem needed), a finished
piece is saved at once, and an interruption loses only unfinished pieces.  With Dask:

* default: a ``LocalCluster`` of ``workers`` worker processes (one thread each, BLAS/OpenMP/Numba threads
  limited to 1 so that workers do not oversubscribe the cores) — nothing to set up on one machine;
* ``scheduler="tcp://HOST:8786"``: an existing cluster (e.g. started with ``dask scheduler`` and
  ``dask worker`` on the nodes of a cluster);
* ``cluster="slurm"`` (or ``"pbs"``): a ``dask-jobqueue`` cluster of ``workers`` jobs, configured by
  dask-jobqueue's usual configuration file (``~/.config/dask/jobqueue.yaml``: queue, cores, memory,
  walltime) — see the README's SLURM example.

A piece whose worker dies is resubmitted by Dask (``retries``); pieces are seeded, so a result does
not depend on where or how often it ran.  Torch work on a worker uses that worker's GPU when it has one
(the default device is CUDA when available).
"""
from __future__ import annotations

import os
import re

from ..common.errors import CovsdeInputError

EXECUTORS = ("local", "dask")
WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "NUMBA_NUM_THREADS": "1"}


def _dask():
    try:
        import distributed
    except ImportError:
        raise CovsdeInputError("--executor dask needs dask.distributed: pip install 'covsde[dask]' "
                               "(or 'dask[distributed]')") from None
    return distributed


SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")
_ADDRESS = re.compile(r"(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)"
                      r"(?::(?P<port>[^:/]*))?/?")
ADDRESS_FORM = "SCHEME://HOST:PORT such as tcp://10.0.0.5:8786 (schemes: " + ", ".join(SCHEMES) + ")"


def check_scheduler(address):
    """A Dask scheduler address (SCHEME://HOST:PORT, or HOST:PORT for tcp), checked before connecting."""
    if not isinstance(address, str) or not address.strip():
        raise CovsdeInputError(f"--scheduler is empty: give {ADDRESS_FORM}")
    if len(address) > 300:
        raise CovsdeInputError(f"--scheduler is {len(address)} characters long: give {ADDRESS_FORM}")
    mt = _ADDRESS.fullmatch(address.strip())
    if mt is None:
        raise CovsdeInputError(f"--scheduler {address!r} is not an address: give {ADDRESS_FORM}")
    scheme, port = (mt.group("scheme") or "tcp").lower(), mt.group("port")
    if scheme not in SCHEMES:
        raise CovsdeInputError(f"--scheduler {address!r}: unknown scheme {scheme!r}; give {ADDRESS_FORM}")
    if port is None or not port.isdigit() or not 1 <= int(port) <= 65535:
        what = "has no port" if port is None else f"has the port {port!r}, not an integer in 1..65535"
        raise CovsdeInputError(f"--scheduler {address!r} {what}; give {ADDRESS_FORM}")
    return f"{scheme}://{mt.group('host')}:{int(port)}"


def check_workers(executor, workers, scheduler=None, cluster=None):
    """The executor settings, checked before anything starts; returns the number of workers."""
    from ..common import checks, limits

    if executor not in EXECUTORS:
        raise CovsdeInputError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    workers = checks.integer("workers", workers, 1)
    if executor == "local":
        for flag, v in (("--scheduler", scheduler), ("--cluster", cluster)):
            if v is not None:
                raise CovsdeInputError(f"{flag} needs --executor dask (the entries would otherwise run here, "
                                       f"ignoring {flag} {v})")
        return workers
    if scheduler is not None:
        if cluster is not None:
            raise CovsdeInputError("give either --scheduler or --cluster, not both")
        check_scheduler(scheduler)
        return workers
    if cluster in ("slurm", "pbs"):
        limits.check_count("workers", workers, limits.max_cluster_jobs(), "COVSDE_MAX_CLUSTER_JOBS", f" {cluster} jobs")
    elif cluster is not None:
        raise CovsdeInputError(f"--cluster must be 'slurm' or 'pbs', got {cluster!r}")
    else:
        limits.check_count("workers", workers, limits.max_local_workers(), "COVSDE_MAX_LOCAL_WORKERS",
                           " local worker processes (twice this machine's cores)")
    return workers


def _cluster(kind, workers):
    workers = check_workers("dask", workers, None, kind)
    if kind in ("slurm", "pbs"):
        try:
            import dask_jobqueue
        except ImportError:
            raise CovsdeInputError(f"--cluster {kind} needs dask-jobqueue: pip install dask-jobqueue") from None
        cluster = (dask_jobqueue.SLURMCluster if kind == "slurm" else dask_jobqueue.PBSCluster)()
        cluster.scale(jobs=workers)
        return cluster
    return _dask().LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, env=WORKER_ENV,
                                dashboard_address=None)


def connect_timeout() -> float:
    """Seconds to wait for a Dask scheduler: COVSDE_DASK_TIMEOUT (default 10)."""
    from ..common import checks

    return checks.real("COVSDE_DASK_TIMEOUT", os.environ.get("COVSDE_DASK_TIMEOUT", "10"), positive=True,
                       maximum=3600)


def dask_client(workers=2, scheduler=None, cluster=None):
    """(client, cluster the caller owns or None)."""
    distributed = _dask()
    if scheduler is not None:
        if cluster is not None:
            raise CovsdeInputError("give either --scheduler or --cluster, not both")
        address, wait = check_scheduler(scheduler), connect_timeout()
        try:
            return distributed.Client(address, timeout=f"{wait}s"), None
        except (OSError, TimeoutError, ValueError) as exc:
            raise CovsdeInputError(f"cannot reach the Dask scheduler {scheduler!r} within {wait:g} s "
                                   f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; the wait is "
                                   "COVSDE_DASK_TIMEOUT seconds)") from None
    own = _cluster(cluster, workers)
    return distributed.Client(own), own


def run_pieces(pieces, fn, on_done, *, executor="local", workers=2, scheduler=None, cluster=None, retries=3,
               client=None):
    """Run ``fn`` on every piece (see the module docstring); returns the number of pieces run.
    ``client``: a Dask client to use (and leave open) instead of starting one."""
    check_workers(executor, workers, scheduler, cluster)
    if executor == "local":
        for p in pieces:
            on_done(p, fn(p))
        return len(pieces)
    if not pieces:
        return 0
    distributed = _dask()
    owned = client is None
    if owned:
        client, own = dask_client(workers, scheduler, cluster)
    try:
        futures = {client.submit(fn, p, pure=False, retries=retries): k for k, p in enumerate(pieces)}
        for fut in distributed.as_completed(futures):
            on_done(pieces[futures[fut]], fut.result())
    finally:
        if owned:
            client.close()
            if own is not None:
                own.close()
    return len(pieces)
