"""``train_check``: every check of :mod:`.check` for one model and parameterisation, with report.json and
the plots coord_check.png, loss_curves.png, lr_transfer.png and initial_kernel.png.

report.json keys scripts rely on: ``"coord_check": {"widths": [...], "slope": S, ...}`` (S the largest over
layers of the fitted slope in log n of the activation change after the last step),
``"lr_transfer": {"best_lr": {"32": lr, ...}}``, ``"loss": {"final": {"32": {"<lr>": loss or null, ...}}}``;
also ``"loss": {"curves": ..., "distance": ..., "rate": ...}`` and ``"initial_kernel"``.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from ...common import checks, limits
from ...common.cache import write_json
from ...common.errors import CovsdeInputError
from ...common.progress import Progress
from ...derive.variants import USES
from . import check
from .params import OPTIMIZERS, make
from .tasks import D_IN, TASKS, VOCAB, Task, blocks_for

DRAWS = 6  # an upper estimate of the weight matrices of one block (the Transformer has 5)
MAX_DEPTH = 256
MAX_STEPS = 100_000
MAX_GRID = 64
KERNEL_NETWORKS = 32


def estimate(widths, depth, m, batch, steps, n_lrs, coord_steps, seeds):
    """(bytes of the largest run, floating-point operations of the whole check)."""
    n = max(widths)
    params = DRAWS * depth * n * n + (D_IN + 2 * VOCAB) * n
    mem = 4.0 * (4 * params + 8 * batch * m * n * DRAWS * depth + max(check.PROBE, check.EVAL) * m * n * depth * 4)
    mem = max(mem, 8.0 * KERNEL_NETWORKS * params)  # the initial-kernel networks, in float64
    per_step = sum(6.0 * batch * m * w * w * DRAWS * depth for w in widths)
    return mem, per_step * (steps * n_lrs + coord_steps * seeds * 2)


def check_request(model, param, task, widths, lrs, depth, m, batch, steps, coord_steps, seeds, max_memory=None):
    """Every input checked (one-line CovsdeInputError naming the value) and the size refused up front."""
    if model not in USES:
        raise CovsdeInputError(f"unknown model {model!r} (known: {', '.join(USES)})")
    if task not in TASKS:
        raise CovsdeInputError(f"unknown task {task!r} (known: {', '.join(TASKS)})")
    if not widths or len(widths) < 2 or len(set(widths)) != len(widths) or list(widths) != sorted(widths):
        raise CovsdeInputError(f"widths must be at least two distinct increasing integers, got {widths!r}")
    for n in widths:
        checks.integer("width", n, 2)
        limits.check_count("width", n, limits.max_width(), "COVSDE_MAX_WIDTH")
    if not lrs or len(lrs) > MAX_GRID or any(not (x > 0) for x in lrs) or len(set(lrs)) != len(lrs):
        raise CovsdeInputError(f"lrs must be 1 to {MAX_GRID} distinct positive learning rates, got {lrs!r}")
    checks.integer("depth", depth, 1, MAX_DEPTH)
    limits.check_count("m", checks.integer("m", m, 1), limits.max_m(), "COVSDE_MAX_M", " tokens")
    checks.integer("batch", batch, 1, 1 << 20)
    checks.integer("steps", steps, 1, MAX_STEPS)
    checks.integer("coord_steps", coord_steps, 1, MAX_STEPS)
    checks.integer("seeds", seeds, 1, 1000)
    mem, flops = estimate(widths, depth, m, batch, steps, len(lrs), coord_steps, seeds)
    limits.check_memory(mem, f"training width {max(widths)} at depth {depth}", max_memory)
    limits.check_work(flops, "this training check")


def _config(model, given, param, task, widths, lrs, depth, m, batch, steps, coord_steps, coord_lr, seeds, seed,
            optimizer):
    checks.choice("optimizer", optimizer, OPTIMIZERS)
    if coord_lr is None:  # the grid's geometric middle
        coord_lr = sorted(lrs)[len(lrs) // 2]
    coord_lr = checks.real("coord_lr", coord_lr, positive=True)
    return dict(model=model, set=dict(given), param=param, task=task, widths=list(widths), lrs=list(lrs),
                depth=int(depth), m=int(m), batch=int(batch), steps=int(steps), coord_steps=int(coord_steps),
                coord_lr=coord_lr, seeds=int(seeds), seed=checks.seed(seed), optimizer=optimizer)


def validate_request(model, *, param="mup", task="teacher", widths=(32, 64, 128, 256), lrs=None, depth=2, m=4,
                     batch=32, steps=50, coord_steps=4, coord_lr=None, seeds=2, seed=0, optimizer="sgd", given=None,
                     param_values=None, max_memory=None, device="cpu"):
    """The checked configuration of :func:`train_check` (every input validated, the blocks built, the size
    checked against the memory and work limits), before anything runs."""
    lrs = [2.0**-k for k in range(8, -1, -1)] if lrs is None else list(lrs)
    check_request(model, param, task, widths, lrs, depth, m, batch, steps, coord_steps, seeds, max_memory)
    p = make(param, **(param_values or {}))
    cfg = _config(model, given or {}, p, task, widths, lrs, depth, m, batch, steps, coord_steps, coord_lr, seeds,
                  seed, optimizer)
    blocks_for(model, cfg["set"], p, depth, task)  # the block settings checked now
    from ..networks import default_device

    cfg["device"] = default_device(device)
    return cfg


def train_check(model, *, out=None, kernel=True, progress=False, log=sys.stderr, **kw):
    """Run the checks of :mod:`.check` (see there) and return the report; with ``out``, write report.json and
    the plots there.  Keywords (all checked by :func:`validate_request`): ``param`` a name of :mod:`.params`
    (``param_values``: its α_A, α_L, β0, γ0, L0), ``task``, ``widths``, ``lrs`` the base learning-rate grid
    (default 2^−8 … 2^0), ``depth``, ``m`` tokens, ``batch``, ``steps``, ``coord_steps``, ``coord_lr``,
    ``seeds``, ``seed``, ``optimizer`` (sgd, adam), ``given`` the block's --set values, ``max_memory``,
    ``device`` ("cpu", "cuda", or None: CUDA when available)."""
    torch.manual_seed(0)
    cfg = validate_request(model, **kw)
    p, widths, lrs = cfg["param"], cfg["widths"], cfg["lrs"]
    tk = Task(cfg["task"], model, cfg["set"], cfg["depth"], cfg["m"], batch=cfg["batch"], seed=cfg["seed"],
              device=cfg["device"])
    t0 = time.perf_counter()
    total = len(widths) * (cfg["coord_steps"] * cfg["seeds"] + cfg["steps"] * len(lrs))
    bar = Progress(total, "train-check", "steps", enabled=progress, stream=log)
    coord = check.coord_check(cfg, tk, bar)
    final, curves, best = check.lr_sweep(cfg, tk, bar)
    bar.close()
    report = {"model": model, "param": p.name, "parameterisation": vars(p), "task": cfg["task"], "floor": tk.floor,
              **{k: cfg[k] for k in ("optimizer", "depth", "m", "batch", "steps", "seed", "lrs", "set", "device")},
              "coord_check": coord, "lr_transfer": {"best_lr": best},
              "loss": {"final": final, "curves": curves, **check.curve_distances(widths, curves, best)}}
    if kernel:
        report["initial_kernel"] = check.kernel_check(cfg, tk, KERNEL_NETWORKS)
    report["seconds"] = time.perf_counter() - t0
    if out is not None:
        from .plots import write_plots

        Path(out).mkdir(parents=True, exist_ok=True)
        write_json(Path(out) / "report.json", report)
        write_plots(report, Path(out))
    return report
