"""Suites on Dask: the same reports as a local run, nothing lost when a worker dies, nothing finished
recomputed on resumption.

golden/quick/*.json are the reports of `covsde suite quick` run locally (executor "local", this code);
the Dask run must reproduce every value (timings and versions aside): verdicts, counts and every
discrete outcome exactly, floating-point values to 1e-9 × the scale of their array — the one-step drift's
standard errors to 1e-6 (tests/compare.py: BLAS sums in another order with one thread per worker)."""
import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from covsde.validate.executors import run_pieces  # noqa: E402
from covsde.validate.suite import run_suite  # noqa: E402

from ..compare import assert_same  # noqa: E402

GOLDEN = Path(__file__).parent / "golden" / "quick"


@pytest.mark.golden
def test_quick_suite_on_dask_matches_the_local_run_and_resumes(tmp_path):
    """LocalCluster of 2 worker processes; 'attention' and 'transformer' are already done (their reports
    copied in, as after an interrupted run): they are not recomputed, and 'mlp' equals the local run's
    report (the Transformer entry was compared the same way when this test was written, and passed)."""
    out = tmp_path / "q"
    before = {}
    for name in ("attention", "transformer"):
        (out / name).mkdir(parents=True)
        shutil.copy(GOLDEN / f"{name}.json", out / name / "report.json")
        before[name] = (out / name / "report.json").stat().st_mtime_ns
    _, rows = run_suite("quick", out, executor="dask", workers=2)
    assert {name: (out / name / "report.json").stat().st_mtime_ns for name in before} == before
    assert [r["name"] for r in rows] == ["mlp", "attention", "transformer"]
    assert_same(json.loads((GOLDEN / "mlp.json").read_text()), json.loads((out / "mlp" / "report.json").read_text()),
                rel=1e-9)


def test_a_killed_worker_loses_nothing():
    """Six one-second tasks on 2 workers; one worker process is killed while it runs a task: Dask
    reruns that task elsewhere and every result arrives exactly once, correct."""
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = distributed.Client(cluster)
    results = {}

    def task(x):
        import time as t

        t.sleep(1.0)
        return x * x

    killed = []

    def killer():
        time.sleep(1.5)  # the second round of tasks is running on both workers
        addr = sorted(client.scheduler_info()["workers"])[0]
        pid = client.run(os.getpid, workers=[addr])[addr]
        os.kill(pid, signal.SIGKILL)
        killed.append(addr)

    try:
        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        n = run_pieces(list(range(6)), task, lambda p, r: results.setdefault(p, r), executor="dask",
                       scheduler=cluster.scheduler_address)
        thread.join()
        alive = set(client.scheduler_info()["workers"])
    finally:
        client.close()
        cluster.close()
    assert killed and killed[0] not in alive  # the worker really died (its nanny started a new one)
    assert n == 6 and results == {x: x * x for x in range(6)}


def test_bad_executor_settings_are_refused():
    from covsde.common.errors import CovsdeInputError

    with pytest.raises(CovsdeInputError, match="executor"):
        run_pieces([1], abs, print, executor="threads")
    with pytest.raises(CovsdeInputError, match="cluster"):
        run_pieces([1], abs, print, executor="dask", cluster="kubernetes")
    t0 = time.perf_counter()
    with pytest.raises(CovsdeInputError, match="COVSDE_MAX_LOCAL_WORKERS"):  # refused before any process starts
        run_pieces([1], abs, print, executor="dask", workers=1_000_000)
    assert time.perf_counter() - t0 < 5


# validate(executor="dask") against the local run (and one thread, and the stored report): test_reproducible.py
