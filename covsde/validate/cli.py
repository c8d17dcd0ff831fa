"""``covsde validate``: run a validation, write report.json and plots into --out."""
from __future__ import annotations

import json
from pathlib import Path

from ..cli import UsageError
from ..cli_more import _float, _int, setup_variant


def parse_widths(text):
    try:
        ws = [int(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise UsageError(f"--widths must be comma-separated integers, got {text!r}") from None
    if not ws or any(w < 2 for w in ws):
        raise UsageError(f"--widths must be integers ≥ 2, got {text!r}")
    return ws


OUTPUTS = {"report": "report.json", "densities": "densities.png", "qq": "qq.png", "discrepancy": "discrepancy.png"}


def prepare_out(out, force):
    """Create DIR if missing; refuse to overwrite existing outputs unless force."""
    d = Path(out)
    if d.exists() and not d.is_dir():
        raise UsageError(f"--out {d} exists and is not a folder")
    d.mkdir(parents=True, exist_ok=True)
    clash = [str(d / f) for f in OUTPUTS.values() if (d / f).exists()]
    if clash and not force:
        raise FileExistsError(f"{clash[0]} exists (use --force to overwrite)")
    return d


def write_json(path, obj):
    """Atomically (temporary file + rename, see covsde.derive.cache.atomic_write)."""
    from ..derive.cache import atomic_write

    atomic_write(Path(path), json.dumps(obj, indent=1).encode())


def run_validate(a):
    from .validation import plot_report, validate

    d, block, params, V0, m = setup_variant(a, a.V0)
    T = _float("T", a.T)
    widths = parse_widths(a.widths)
    samples = _int("samples", a.samples, 10)
    seed = _int("seed", a.seed, 0)
    out = prepare_out(a.out, a.force) if a.out else None
    device = a.device
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--device cuda: no CUDA device is available")
    report, samples_ = validate(block, d, V0, T, widths, samples=samples, backend=a.backend, device=device,
                                dtype=a.dtype, seed=seed, power=not a.no_power, progress=not a.quiet, variant=a.variant,
                                params=params)
    if out is not None:
        plot_report(report, samples_, {k: out / v for k, v in OUTPUTS.items() if k != "report"})
        write_json(out / OUTPUTS["report"], report)
    if a.format == "json":
        print(json.dumps(report))
    else:
        print(text_report(report))
        if out is not None:
            print(f"wrote {out}/report.json and plots")
    return 0


def text_report(r):
    lines = [f"validate {r['variant']} m={r['m']} T={r['T']} widths={r['widths']} samples={r['samples']} "
             f"backend={r['backend']} seed={r['seed']} α={r['alpha']}",
             f"SDE: {r['sde']['paths']} paths, survived {r['sde']['survived']}, exploded {r['sde']['exploded']}, "
             f"left PSD {r['sde']['left_psd']}"]
    for n in r["widths"]:
        t = r["tests"][str(n)]
        lines.append(f"  n={n:>5} d={t['depth']:>5}: discrepancy {t['discrepancy']:.4f}, min Holm p {t['min_holm_p']:.3g},"
                     f" energy p {t['energy']['pvalue']:.3g} → {'reject' if t['reject'] else 'ok'}")
    c = r["convergence"]
    if c["rate"] is not None:
        lines.append(f"  convergence: discrepancy ∝ n^{c['rate']:.2f}")
    o = r["onestep"]
    lines.append(f"  one-step at V0 (n={o['n']}, {o['samples']} layers): drift {'ok' if o['drift_ok'] else 'REJECT'}, "
                 f"diffusion {'ok' if o['diffusion_ok'] else 'REJECT'}; worst {o['worst']}")
    p = r["power"]
    lines.append(f"  power: smallest δ rejected — drift {p['drift']}, diffusion {p['diffusion']} (grid {p['grid']})")
    lines.append(f"verdict: {r['verdict'].upper()}  ({r['timings']['total']:.1f} s)")
    return "\n".join(lines)
