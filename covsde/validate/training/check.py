"""Training checks across width: the coordinate check, learning-rate transfer, loss curves, and the
initial kernel against covsde's prediction.

* coordinate check (as microsoft/mup's ``coord_check`` does it): train ``coord_steps`` steps at one
  learning rate; after each step t, per layer ℓ (the input map's output h_0, each block's output h_ℓ,
  the network output f), the RMS over coordinates of h_ℓ(t) and of h_ℓ(t) − h_ℓ(0) on a fixed probe batch,
  averaged over seeds; the slope of log RMS-change after the last step against log n, fitted per layer,
  and ``slope`` the largest over layers (flat, ≈ 0, when every layer's update is O(1) in the width);
* learning-rate transfer: for every width and rate of the grid, ``steps`` steps from the same
  initialisation seed on the same data stream; the final loss is the mean loss on a held-out batch
  (``None`` when the run diverged: a non-finite loss, or one above 100 times the initial one: a transient spike below that is kept), and the
  best rate per width the grid point of least final loss;
* loss curves: at the largest width's best rate, every width's training-loss curve, its distance to the
  largest width's (mean over steps of |ℓ_n(t) − ℓ_N(t)|) and the fitted rate of that distance in log n;
* heads and depth sweeps (:func:`axis_sweep`): the same at the largest width for each head count H or
  depth L, the distance to the largest H's or L's curve, and its fitted rate in log H or log L;
* initial kernel: 32 fresh networks at each width read the same input; their token
  Gram after each block, V_ℓ = h_ℓ h_ℓᵀ/n, averaged, against the iterated drift V_{ℓ+1} = V_ℓ + b(V_ℓ)/n^κ
  of the block's derivation from each network's own V_0 (the relative Frobenius error after the last
  block is reported: it shrinks with n when the derivation is right).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ...common.progress import Progress
from .tasks import VOCAB, Task, blocks_for, make_net

PROBE = 64  # probe inputs of the coordinate check
EVAL = 256  # held-out inputs of the final loss
DIVERGED = 100.0  # a run whose loss exceeds this multiple of its initial loss has diverged


def optimiser(net, param, optimizer, eta, depth):
    """SGD or Adam with one parameter group per row of the parameterisation's table."""
    lrs = param.learning_rates(optimizer, eta, net.n, depth)
    groups = [{"params": ps, "lr": lrs[k]} for k, ps in net.groups().items() if ps]
    return torch.optim.SGD(groups, lr=eta) if optimizer == "sgd" else torch.optim.Adam(groups, lr=eta)


def slope(widths, values):
    """Least-squares slope of log values against log widths (NaN if any value is not positive)."""
    v = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(v)) or np.any(v <= 0):
        return float("nan")
    return float(np.polyfit(np.log(widths), np.log(v), 1)[0])


def rms(h):
    return float(h.detach().pow(2).mean().sqrt())


def coord_run(cfg, task, n, seed, eta):
    """(RMS of h_ℓ(t), RMS of h_ℓ(t) − h_ℓ(0)) for t = 0 … K, as two (K+1, layers) arrays."""
    net = make_net(cfg["model"], cfg["set"], cfg["param"], n, cfg["depth"], cfg["task"], cfg["m"], seed=seed,
                   device=cfg.get("device", "cpu"))
    opt = optimiser(net, cfg["param"], cfg["optimizer"], eta, cfg["depth"])
    probe, _ = task.batch(-3, PROBE)
    with torch.no_grad():
        h0 = [h.clone() for h in net(probe, record=True)[1]]
    size, change = [[rms(h) for h in h0]], [[0.0] * len(h0)]
    for t in range(cfg["coord_steps"]):
        x, y = task.batch(t)
        opt.zero_grad()
        task.loss(net(x), y).backward()
        opt.step()
        with torch.no_grad():
            hs = net(probe, record=True)[1]
        size.append([rms(h) for h in hs])
        change.append([rms(h - a) for h, a in zip(hs, h0)])
    return np.array(size), np.array(change)


def coord_check(cfg, task, progress=None):
    """The coordinate check (module docstring) at rate cfg["coord_lr"]."""
    widths, seeds = cfg["widths"], cfg["seeds"]
    size, change = [], []
    for n in widths:
        runs = [coord_run(cfg, task, n, cfg["seed"] + s, cfg["coord_lr"]) for s in range(seeds)]
        size.append(np.mean([r[0] for r in runs], axis=0))
        change.append(np.mean([r[1] for r in runs], axis=0))
        if progress:
            progress.update(seeds * cfg["coord_steps"])
    size, change = np.array(size), np.array(change)  # (widths, K+1, layers)
    layers = ["input"] + [f"block {i + 1}" for i in range(cfg["depth"])] + ["output"]
    per_layer = {name: slope(widths, change[:, -1, j]) for j, name in enumerate(layers)}
    finite = [s for s in per_layer.values() if math.isfinite(s)]
    return {"widths": list(widths), "slope": max(finite) if finite else None, "lr": cfg["coord_lr"],
            "steps": cfg["coord_steps"], "seeds": seeds, "layers": layers, "layer_slopes": per_layer,
            "rms": size.tolist(), "rms_change": change.tolist()}


def train_run(cfg, task, n, eta):
    """(training-loss curve, final held-out loss or None when diverged) of one run."""
    net = make_net(cfg["model"], cfg["set"], cfg["param"], n, cfg["depth"], cfg["task"], cfg["m"], seed=cfg["seed"],
                   device=cfg.get("device", "cpu"))
    opt = optimiser(net, cfg["param"], cfg["optimizer"], eta, cfg["depth"])
    curve = []
    for t in range(cfg["steps"]):
        x, y = task.batch(t)
        opt.zero_grad()
        loss = task.loss(net(x), y)
        val = float(loss.detach())
        curve.append(val if math.isfinite(val) else float("nan"))
        if not math.isfinite(val) or val > DIVERGED * curve[0]:
            return curve + [float("nan")] * (cfg["steps"] - t - 1), None
        loss.backward()
        opt.step()
    xe, ye = task.batch(-2, EVAL)
    with torch.no_grad():
        final = float(task.loss(net(xe), ye))
    ok = math.isfinite(final) and final <= DIVERGED * curve[0]
    return curve, (final if ok else None)


def lr_sweep(cfg, task, progress=None):
    """Final losses and curves over the grid, best rate per width (module docstring)."""
    final, curves, best = {}, {}, {}
    for n in cfg["widths"]:
        final[str(n)], curves[str(n)] = {}, {}
        for eta in cfg["lrs"]:
            c, f = train_run(cfg, task, n, eta)
            key = f"{eta:g}"
            final[str(n)][key], curves[str(n)][key] = f, c
            if progress:
                progress.update(cfg["steps"])
        ok = {k: v for k, v in final[str(n)].items() if v is not None}
        best[str(n)] = float(min(ok, key=ok.get)) if ok else None
    return final, curves, best


def curve_distances(widths, curves, best):
    """Distance of each width's curve to the largest width's at that width's best rate, and its rate."""
    top = str(widths[-1])
    if best.get(top) is None:
        return {"lr": None, "distance": {}, "rate": None}
    key = f"{best[top]:g}"
    ref = np.asarray(curves[top][key], dtype=float)
    dist = {str(n): float(np.nanmean(np.abs(np.asarray(curves[str(n)][key], dtype=float) - ref)))
            for n in widths[:-1]}
    vals = [dist[str(n)] for n in widths[:-1]]
    rate = slope(widths[:-1], vals) if len(vals) >= 2 else None
    return {"lr": best[top], "distance": dist, "rate": None if rate is None or math.isnan(rate) else rate}


def axis_sweep(cfg, task, axis, values, progress=None):
    """The loss curves across head counts (``axis`` "heads") or depths L (``axis`` "depths") at the largest
    width, every other setting as in ``cfg``: for each value the full learning-rate grid (the depth factors
    of the parameterisation at that L), its best rate, and each curve's distance to the largest value's
    curve at the largest value's best rate, with the fitted rate of the distance in log H or log L."""
    n, final, curves, best = cfg["widths"][-1], {}, {}, {}
    for v in values:
        if axis == "heads":
            c = {**cfg, "set": {**cfg["set"], "heads": str(v)}, "widths": [n]}
        else:
            c = {**cfg, "depth": int(v), "widths": [n]}
        f, cv, b = lr_sweep(c, task, progress)
        final[str(v)], curves[str(v)], best[str(v)] = f[str(n)], cv[str(n)], b[str(n)]
    return {"values": list(values), "width": n, "depth": cfg["depth"] if axis == "heads" else None,
            "final": final, "best_lr": best, "curves": curves, **curve_distances(list(values), curves, best)}


def kernel_check(cfg, task, networks=32):
    """Each width's mean token Gram per layer at init against the derivation's iterated drift."""
    from ...derive import derive

    block = blocks_for(cfg["model"], cfg["set"], cfg["param"], cfg["depth"], cfg["task"])[0]
    d = derive(block, cfg["m"])
    out = {"regime": d.regime, "widths": list(cfg["widths"]), "networks": networks, "error": {}, "network": {},
           "network_se": {}, "predicted": {}}
    if not d.has_limit:
        out["note"] = f"no limit to compare with: {d.reason}"
        return out
    kappa = eval_fraction(d.kappa)
    drift = d.numeric_fn()
    x, _ = task.batch(-4, 1)
    if x.dtype == torch.int64:  # distinct tokens (a repeated one makes V_0 singular)
        x = (torch.arange(cfg["m"])[None] % VOCAB).to(x.device)
    for n in cfg["widths"]:
        net = make_net(cfg["model"], cfg["set"], cfg["param"], n, cfg["depth"], cfg["task"], cfg["m"],
                       seed=cfg["seed"] + 17, networks=networks, dtype=torch.float64, device=cfg.get("device", "cpu"))
        xin = x.expand(networks, *x.shape[1:]) if x.dtype == torch.int64 else x.double().expand(networks, *x.shape[1:])
        with torch.no_grad():
            hs = net(xin, record=True)[1][:-1]
        G = np.array([(h @ h.transpose(-1, -2) / n).cpu().numpy() for h in hs])  # (L+1, P, m, m)
        pred = [G[0]]
        for _ in range(cfg["depth"]):
            pred.append(np.array([V + drift(V, None)[0] / n**kappa for V in pred[-1]]))
        net_mean, pred_mean = G.mean(1), np.array(pred).mean(1)
        out["network"][str(n)], out["predicted"][str(n)] = net_mean.tolist(), pred_mean.tolist()
        out["network_se"][str(n)] = (G.std(1, ddof=1) / math.sqrt(networks)).tolist()
        out["error"][str(n)] = float(np.linalg.norm(net_mean[-1] - pred_mean[-1]) / np.linalg.norm(pred_mean[-1]))
    return out


def eval_fraction(text):
    """'1', '1/2' → float."""
    num, _, den = str(text).partition("/")
    return float(num) / (float(den) if den else 1.0)


def module_one_step_moments(block, V, n, samples, *, seed=0, chunk=500):
    """n·E[ΔV] and n·Cov[ΔV] of one :class:`~.modules.BlockModule` layer at init (``samples`` independent
    networks, each reading an input with Gram exactly V; no control variates), in the form that
    :func:`covsde.validate.onestep.compare_moments` takes."""
    from ..backends import whitened_input
    from .modules import BlockModule

    V = np.asarray(V, dtype=float)
    m = V.shape[0]
    iu = np.triu_indices(m)
    gen = torch.Generator().manual_seed(int(seed))
    rows, done = [], 0
    while done < samples:
        b = min(chunk, samples - done)
        layer = BlockModule(block, n, m, b, dtype=torch.float64, generator=gen)
        x = whitened_input(V, n, b, generator=gen)
        with torch.no_grad():
            y = layer(x)
        dV = (y @ y.transpose(-1, -2) / n).numpy() - V
        rows.append(dV[:, iu[0], iu[1]] * math.sqrt(n))
        done += b
    Z = np.concatenate(rows)  # √n·ΔV
    N = len(Z)
    cov = np.cov(Z, rowvar=False).reshape(len(iu[0]), len(iu[0]))
    Zc = Z - Z.mean(0)
    cov_se = np.sqrt(np.maximum((Zc**2).T @ (Zc**2) / N - cov**2, 0) / N)
    return dict(n=n, samples=N, seed=seed, idx=list(zip(iu[0].tolist(), iu[1].tolist())),
                mean=Z.mean(0) * math.sqrt(n), mean_se=Z.std(0, ddof=1) * math.sqrt(n / N), cov=cov, cov_se=cov_se)
