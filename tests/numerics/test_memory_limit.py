"""--max-memory is kept: the estimate of a simulation counts every buffer it and its summary allocate
(both levels of the Richardson extrapolation included), so a run the estimate puts under the limit stays
under it (its peak RSS above the loaded libraries', measured in a fresh process), and a run over it is
refused before anything runs (issue 23: 600M reached 2.1 GiB before)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from covsde.common.errors import ResourceLimitError
from covsde.numerics.integrate import check_simulation_size, simulation_bytes

LIMIT = 200 * 1024**2
SCRIPT = """
import json, resource, sys
import numpy as np
from covsde.derive import derive
from covsde.derive.variants import build
from covsde.numerics.integrate import simulate, simulation_bytes
from covsde.numerics.richardson import extrapolate
levels, limit = int(sys.argv[1]), int(sys.argv[2])
d = derive(build("mlp", {})[0], 2)
V = np.array([[1.0, 0.2], [0.2, 1.0]])
simulate(d, V, 0.02, dt=0.01, paths=4, progress=False)  # compiled (or loaded) before the measurement
paths = int(0.98 * limit / simulation_bytes(1, 1, 2, levels))
r0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
kw = dict(dt=0.01, paths=paths, progress=False, max_memory=limit)
r = extrapolate(d, V, 0.02, **kw).runs[0] if levels == 2 else simulate(d, V, 0.02, **kw)
r.summary()
print(json.dumps({"paths": paths, "rss": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - r0) * 1024}))
"""


@pytest.mark.parametrize("levels", [1, 2])
def test_a_run_under_the_memory_limit_stays_under_it(levels):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(levels), str(LIMIT)], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["paths"] > 300_000  # a run that allocates a lot, not a trivial one
    assert got["rss"] < LIMIT, (got, LIMIT)


@pytest.mark.parametrize("levels", [1, 2])
def test_a_run_over_the_memory_limit_is_refused_up_front(levels):
    paths = int(1.05 * LIMIT / simulation_bytes(1, 1, 2, levels))
    with pytest.raises(ResourceLimitError, match="200 MiB"):
        check_simulation_size(paths, 1, 2, 2, LIMIT, levels=levels)
    check_simulation_size(int(0.95 * paths), 1, 2, 2, LIMIT, levels=levels)


def test_extrapolate_checks_both_levels_before_either_runs():
    from covsde.derive import derive
    from covsde.derive.variants import build
    from covsde.numerics.richardson import extrapolate

    d = derive(build("mlp", {})[0], 2)
    paths = int(1.05 * LIMIT / simulation_bytes(1, 1, 2, 2))
    assert simulation_bytes(paths, 1, 2, 1) < LIMIT  # each level alone would pass
    with pytest.raises(ResourceLimitError, match="at 2 step sizes"):
        extrapolate(d, np.array([[1.0, 0.2], [0.2, 1.0]]), 0.02, dt=0.01, paths=paths, max_memory=LIMIT)
