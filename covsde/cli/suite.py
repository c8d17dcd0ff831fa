"""covsde suite FILE.toml|quick|paper|paper-gpu [--out DIR] [--quiet]
[--executor local|dask] [--workers N] [--scheduler ADDRESS | --cluster slurm|pbs]   (exit 1 if an entry fails)"""
from __future__ import annotations

from .common import integer, out_folder

HELP = "run a suite of validations"
EXAMPLES = ('  covsde suite quick --out suite-quick\n'
            '  covsde suite paper --executor dask --workers 4\n')


def add_arguments(p):
    p.add_argument("file", metavar="SUITE",
                   help="a suite file (TOML) or a shipped suite: quick (CI-sized), paper (the papers' sizes, CPU), "
                        "paper-gpu (real weights, needs CUDA)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="the output folder, one subfolder per entry; resumable: finished entries are kept "
                        "(default: suite-out/NAME)")
    p.add_argument("--quiet", action="store_true", help="no progress bars on stderr")
    p.add_argument("--executor", choices=["local", "dask"], default="local",
                   help="run the entries here, one after the other (local), or as Dask tasks (dask) (default: local)")
    p.add_argument("--workers", default="2",
                   help="Dask workers: a LocalCluster's processes, or cluster jobs (default: 2)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of a running Dask scheduler, e.g. tcp://host:8786 (default: none)")
    p.add_argument("--cluster", choices=["slurm", "pbs"], default=None,
                   help="start a dask-jobqueue cluster, configured by ~/.config/dask/jobqueue.yaml (default: none)")


def run(a):
    from ..validate.executors import check_workers
    from ..validate.suite import entry_folder, load_suite, run_suite

    workers = check_workers(a.executor, integer("workers", a.workers, 1), a.scheduler, a.cluster)
    name, entries = load_suite(a.file)  # the whole file is checked before anything runs
    out = out_folder(a.out if a.out is not None else f"suite-out/{name}")
    for e in entries:
        entry_folder(out, e["name"])
    out, rows = run_suite(a.file, out, progress=not a.quiet, executor=a.executor, workers=workers,
                          scheduler=a.scheduler, cluster=a.cluster)
    print((out / "summary.md").read_text())
    print(f"wrote {out}/summary.md and summary.json")
    return 0 if all(r["verdict"] == "pass" for r in rows) else 1
