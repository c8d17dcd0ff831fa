"""``train_check``: every check of :mod:`.check` for one model and parameterisation, with report.json and
the plots coord_check.png, loss_curves.png, lr_transfer.png and initial_kernel.png.

report.json keys scripts rely on: ``"coord_check": {"widths": [...], "slope": S, ...}`` (S the largest over
layers of the fitted slope in log n of the activation change after the last step),
``"lr_transfer": {"best_lr": {"32": lr, ...}}``, ``"loss": {"final": {"32": {"<lr>": loss or null, ...}}}``;
also ``"loss": {"curves": ..., "distance": ..., "rate": ...}``, ``"initial_kernel"``, and ``"sweeps"``:
``{"heads": ..., "depths": ...}`` for the axes swept (empty without ``heads``/``depths``), each as
:func:`.check.axis_sweep` returns it.
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


def _run_size(n, depth, heads, m, batch):
    """(bytes, floating-point operations per step) of one run at width n, depth L and H heads (each head
    has its own n×n query and key weights)."""
    draws = DRAWS + 2 * (heads - 1)
    params = draws * depth * n * n + (D_IN + 2 * VOCAB) * n
    mem = 4.0 * (4 * params + 8 * batch * m * n * draws * depth + max(check.PROBE, check.EVAL) * m * n * depth * 4)
    return mem, params, 6.0 * batch * m * n * n * draws * depth


def estimate(widths, depth, m, batch, steps, n_lrs, coord_steps, seeds, heads=None, depths=None, base_heads=1):
    """(bytes of the largest run, floating-point operations of the whole check), the heads and depth
    sweeps (each a full learning-rate grid at the largest width) counted."""
    n = max(widths)
    mem, params, _ = _run_size(n, depth, base_heads, m, batch)
    mem = max(mem, 8.0 * KERNEL_NETWORKS * params)  # the initial-kernel networks, in float64
    per_step = sum(_run_size(w, depth, base_heads, m, batch)[2] for w in widths)
    flops = per_step * (steps * n_lrs + coord_steps * seeds * 2)
    extra = [(depth, h) for h in heads or ()] + [(L, base_heads) for L in depths or ()]
    for L, h in extra:
        r = _run_size(n, L, h, m, batch)
        mem, flops = max(mem, r[0]), flops + r[2] * steps * n_lrs
    return mem, flops


def check_sweeps(model, widths, heads, depths):
    """The --heads and --depths lists: at least two distinct increasing positive integers, bounded; heads
    only for attention blocks, each width divisible by each head count."""
    for name, vals, top in (("heads", heads, limits.max_heads()), ("depths", depths, MAX_DEPTH)):
        if vals is None:
            continue
        if name == "heads" and "heads" not in USES.get(model, ()):
            raise CovsdeInputError(f"--heads: the model {model!r} has no attention heads (heads apply to "
                                   f"{', '.join(v for v in USES if 'heads' in USES[v])})")
        if len(vals) < 2 or len(set(vals)) != len(vals) or list(vals) != sorted(vals):
            raise CovsdeInputError(f"--{name} must be at least two distinct increasing integers, got {list(vals)!r}")
        for v in vals:
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= top:
                raise CovsdeInputError(f"--{name}: {v!r} must be an integer from 1 to {top} (in {list(vals)!r})")
    for h in heads or ():
        bad = [n for n in widths if n % h]
        if bad:
            raise CovsdeInputError(f"--heads: width {bad[0]} is not divisible by {h} heads (every width must be)")


def check_request(model, param, task, widths, lrs, depth, m, batch, steps, coord_steps, seeds, max_memory=None,
                  heads=None, depths=None, base_heads=1):
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
    check_sweeps(model, widths, heads, depths)
    mem, flops = estimate(widths, depth, m, batch, steps, len(lrs), coord_steps, seeds, heads, depths, base_heads)
    deepest = max([depth, *(depths or ())])
    limits.check_memory(mem, f"training width {max(widths)} at depth {deepest}", max_memory)
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


def _base_heads(given, heads):
    """The block's own head count (its --set heads, else 1) for the size estimate; --set heads and a heads
    sweep together are refused."""
    if "heads" in given and heads is not None:
        raise CovsdeInputError("give either --set heads=H or a --heads list, not both")
    try:
        return max(1, int(given.get("heads", 1)))
    except (TypeError, ValueError):
        return 1


def validate_request(model, *, param="mup", task="teacher", widths=(32, 64, 128, 256), lrs=None, depth=2, m=4,
                     batch=32, steps=50, coord_steps=4, coord_lr=None, seeds=2, seed=0, optimizer="sgd", given=None,
                     param_values=None, max_memory=None, device="cpu", heads=None, depths=None):
    """The checked configuration of :func:`train_check` (every input validated, the blocks built, the size
    checked against the memory and work limits), before anything runs."""
    lrs = [2.0**-k for k in range(8, -1, -1)] if lrs is None else list(lrs)
    given = dict(given or {})
    check_request(model, param, task, widths, lrs, depth, m, batch, steps, coord_steps, seeds, max_memory,
                  heads, depths, _base_heads(given, heads))
    p = make(param, **(param_values or {}))
    cfg = _config(model, given, p, task, widths, lrs, depth, m, batch, steps, coord_steps, coord_lr, seeds,
                  seed, optimizer)
    blocks_for(model, cfg["set"], p, depth, task)  # the block settings checked now
    for h in heads or ():
        blocks_for(model, {**cfg["set"], "heads": str(h)}, p, depth, task)
    for L in depths or ():
        blocks_for(model, cfg["set"], p, L, task)
    cfg["heads"], cfg["depths"] = (None if heads is None else list(heads)), (None if depths is None else list(depths))
    from ..networks import default_device

    cfg["device"] = default_device(device)
    return cfg


def train_check(model, *, out=None, kernel=True, progress=False, log=sys.stderr, **kw):
    """Run the checks of :mod:`.check` (see there) and return the report; with ``out``, write report.json and
    the plots there.  Keywords (all checked by :func:`validate_request`): ``param`` a name of :mod:`.params`
    (``param_values``: its α_A, α_L, β0, γ0, L0), ``task``, ``widths``, ``lrs`` the base learning-rate grid
    (default 2^−8 … 2^0), ``depth``, ``m`` tokens, ``batch``, ``steps``, ``coord_steps``, ``coord_lr``,
    ``seeds``, ``seed``, ``optimizer`` (sgd, adam), ``given`` the block's --set values, ``max_memory``,
    ``device`` ("cpu", "cuda", or None: CUDA when available), ``heads`` and ``depths`` (lists: sweeps of the
    head count and of the depth L at the largest width, see :func:`.check.axis_sweep`)."""
    torch.manual_seed(0)
    cfg = validate_request(model, **kw)
    p, widths, lrs = cfg["param"], cfg["widths"], cfg["lrs"]
    tk = Task(cfg["task"], model, cfg["set"], cfg["depth"], cfg["m"], batch=cfg["batch"], seed=cfg["seed"],
              device=cfg["device"])
    t0 = time.perf_counter()
    sweeps = {k: cfg[k] for k in ("heads", "depths") if cfg[k] is not None}
    total = len(widths) * (cfg["coord_steps"] * cfg["seeds"] + cfg["steps"] * len(lrs))
    total += sum(len(v) for v in sweeps.values()) * cfg["steps"] * len(lrs)
    bar = Progress(total, "train-check", "steps", enabled=progress, stream=log)
    coord = check.coord_check(cfg, tk, bar)
    final, curves, best = check.lr_sweep(cfg, tk, bar)
    swept = {axis: check.axis_sweep(cfg, tk, axis, vals, bar) for axis, vals in sweeps.items()}
    bar.close()
    report = {"model": model, "param": p.name, "parameterisation": vars(p), "task": cfg["task"], "floor": tk.floor,
              **{k: cfg[k] for k in ("optimizer", "depth", "m", "batch", "steps", "seed", "lrs", "set", "device")},
              "coord_check": coord, "lr_transfer": {"best_lr": best},
              "loss": {"final": final, "curves": curves, **check.curve_distances(widths, curves, best)},
              "sweeps": swept}
    if kernel:
        report["initial_kernel"] = check.kernel_check(cfg, tk, KERNEL_NETWORKS)
    report["seconds"] = time.perf_counter() - t0
    if out is not None:
        from .plots import write_plots

        Path(out).mkdir(parents=True, exist_ok=True)
        write_json(Path(out) / "report.json", report)
        write_plots(report, Path(out))
    return report
