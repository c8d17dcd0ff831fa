import os
import tempfile

import pytest

# Keep the tests' derivation/codegen cache out of the user's cache folder (shared by xdist workers).
os.environ.setdefault("COVSDE_CACHE_DIR", os.path.join(tempfile.gettempdir(), "covsde-test-cache"))


@pytest.fixture(scope="session")
def rng():
    import numpy as np

    return np.random.default_rng(20261122)
