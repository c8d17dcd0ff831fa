"""Same seed, same report, wherever it ran.

One validation (the MLP block, m = 2, widths 16 and 24, 100 networks, 2000 one-step layers, 400 SDE paths,
a one-point power search: 4 replicates; seed 5) is run with the default threads (2 on CI), on one thread
(Numba, BLAS and torch each limited to 1) and on a Dask ``LocalCluster`` of 2 one-thread workers.  The
three reports must agree — verdicts, counts, every integer and string exactly, every float to 1e-9 × the
largest magnitude of its array (``tests/compare.py``) — and equal the stored report
``golden/reproducible/mlp.json``, written on the machine that wrote it with its native kernels.  ``.ci/run``
runs this test a second time on AVX2 kernels (``make test-other-isa``), so the same comparison then holds
across the two instruction sets.

Negative control: ``tests/test_compare.py`` plants a 1e-6 relative change in a drift of a stored report,
and one flipped verdict, and checks that the comparison fails."""
import contextlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from ..compare import assert_same

GOLDEN = Path(__file__).parent / "golden" / "reproducible" / "mlp.json"
KW = dict(samples=100, onestep_samples=2000, sde_paths=400, power_grid=(0.6,), seed=5)


@contextlib.contextmanager
def one_thread():
    import numba
    import threadpoolctl
    import torch

    nb, tt = numba.get_num_threads(), torch.get_num_threads()
    numba.set_num_threads(1)
    torch.set_num_threads(1)
    try:
        with threadpoolctl.threadpool_limits(1):
            yield
    finally:
        numba.set_num_threads(nb)
        torch.set_num_threads(tt)


def _run(**extra):
    from covsde.derive import derive
    from covsde.derive.variants import build
    from covsde.validate.validation import validate

    blk, params = build("mlp", {})
    d = derive(blk, 2)
    V0 = np.array([[1.0, 0.2], [0.2, 1.0]])
    report, _ = validate(blk, d, V0, 0.1, [16, 24], variant="mlp", params=params, **KW, **extra)
    return json.loads(json.dumps(report))  # as a script reads it back


@pytest.mark.golden
def test_same_seed_same_report_on_any_threads_executor_and_instruction_set():
    pytest.importorskip("distributed")
    here = _run()
    assert here["power"]["rejections"]  # the power search ran
    with one_thread():
        single = _run()
    remote = _run(executor="dask", workers=2)
    assert_same(here, single, rel=1e-9)
    assert_same(here, remote, rel=1e-9)
    if os.environ.get("COVSDE_WRITE_GOLDEN") == "1":  # how the stored report was written
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(here, indent=1) + "\n")
    assert_same(json.loads(GOLDEN.read_text()), here, rel=1e-9)
