import atexit
import os
import shutil
import tempfile

import pytest

# Every test run gets a cache folder of its own (derivations, generated modules, Numba's files): created
# by the controller process, inherited by the xdist workers, removed at exit.  No fixed shared path,
# so no run can pass on entries left by another version of the code.
if "PYTEST_XDIST_WORKER" in os.environ:  # the xdist workers are the parallelism: one torch thread each
    import torch

    torch.set_num_threads(1)
else:
    _run_cache = tempfile.mkdtemp(prefix="covsde-test-cache-")
    os.environ["COVSDE_CACHE_DIR"] = _run_cache
    atexit.register(shutil.rmtree, _run_cache, ignore_errors=True)


@pytest.fixture(scope="session")
def rng():
    import numpy as np

    return np.random.default_rng(20261122)
