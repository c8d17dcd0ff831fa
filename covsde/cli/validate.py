"""covsde validate VARIANT [--m M] [--set ...] --V0 JSON --T T --widths 64,128 [--samples N]
[--backend torch|exact] [--device cpu|cuda] [--dtype float64|float32] [--seed S] [--out DIR] [--force]
[--format text|json] [--quiet] [--no-power] [--max-memory SIZE] [--target sde|ode]"""
from __future__ import annotations

import json

from .common import (MAX_MEMORY_HELP, UsageError, add_output_arguments, add_variant_arguments, integer, number,
                     out_folder, seed_help, setup_variant)

HELP = "finite networks vs the SDE"
EXAMPLES = ("  covsde validate attention --set gamma=0.35355339 --set tau0=1 --V0 '[[1,0.2],[0.2,1]]' --T 0.75 --widths 50,100,200 --samples 2000 --out val-attention\n")


def add_arguments(v):
    add_variant_arguments(v, initial=True)
    v.add_argument("--widths", required=True, metavar="N1,N2,...",
                   help="the network widths n, comma-separated integers ≥ 2, e.g. 64,128,256")
    v.add_argument("--samples", default="1000", help="networks per width (an integer ≥ 10; default: 1000)")
    v.add_argument("--backend", choices=["torch", "exact"], default="exact",
                   help="torch: real Gaussian weight matrices; exact: the exact-in-law sampler x W/√n ≡ chol(V) ξ "
                        "(default: exact)")
    v.add_argument("--device", choices=["cpu", "cuda"], default=None,
                   help="where the networks run (default: cuda when available, else cpu)")
    v.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                   help="precision of the network runs (float32: the fast option on a GPU; the one-step moments always use float64; "
                        "default: float64)")
    v.add_argument("--seed", default="0", help=seed_help("the networks and the SDE paths"))
    add_output_arguments(v, "a folder for report.json and the plots (created if missing; default: nothing written)",
                         formats=["text", "json"])
    v.add_argument("--no-power", action="store_true",
                   help="skip the power search (faster; the report's power is then null; default: search)")
    v.add_argument("--max-memory", default=None, help=MAX_MEMORY_HELP)
    v.add_argument("--target", choices=["sde", "ode"], default=None,
                   help="what the networks are compared with: the SDE's terminal law, or (regimes ode and "
                        "identity) the ODE solution they concentrate on (default: the one the regime has)")


def parse_widths(text):
    try:
        ws = [int(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise UsageError(f"--widths must be comma-separated integers, got {text!r}") from None
    if not ws or any(w < 2 for w in ws):
        raise UsageError(f"--widths must be integers ≥ 2, got {text!r}")
    return ws


def prepare_out(out, force):
    """Create DIR if missing (checked writable); refuse to overwrite existing outputs unless force."""
    from ..validate.outputs import existing_outputs

    d = out_folder(out)
    clash = existing_outputs(d)
    if clash and not force:
        raise FileExistsError(f"{clash[0]} exists (use --force to overwrite)")
    return d


def run(a):
    from ..validate.outputs import write_outputs
    from ..validate.validation import check_request, validate

    d, block, params, V0, m = setup_variant(a, a.V0)
    T = number("T", a.T)
    widths = parse_widths(a.widths)
    samples = integer("samples", a.samples, 10)
    seed = integer("seed", a.seed, 0)
    kw = dict(samples=samples, backend=a.backend, device=a.device, dtype=a.dtype, seed=seed,
              onestep_samples=None, max_memory=a.max_memory, target=a.target)
    check_request(block, d, V0, T, widths, alpha=0.01, sde_paths=None, dt=None, values=None, **kw)
    out = prepare_out(a.out, a.force) if a.out is not None else None
    report, samples_ = validate(block, d, V0, T, widths, power=not a.no_power, progress=not a.quiet,
                                variant=a.variant, params=params, **kw)
    if out is not None:
        write_outputs(report, samples_, out)
    if a.format == "json":
        print(json.dumps(report))
    else:
        print(text_report(report))
        if out is not None:
            print(f"wrote {out}/report.json and plots")
    return 0


def text_report(r):
    if r.get("target") == "ode":
        return _text_ode(r)
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


def _text_ode(r):
    c = r["ode"]
    lines = [f"validate {r['variant']} (target ode, time {r['time']}) m={r['m']} T={r['T']} widths={r['widths']} "
             f"samples={r['samples']} backend={r['backend']} seed={r['seed']} α={r['alpha']}"]
    for n in r["widths"]:
        p = c["per_width"][str(n)]
        lines.append(f"  n={n:>5} d={p['depth']:>5}: |mean − V_ode(T)| {p['distance']:.3g} (SE {p['distance_se']:.2g}, "
                     f"allowed {p['allowance']:.2g}), spread {p['spread']:.3g}")
    if c["spread_rate"] is not None:
        lines.append(f"  spread ∝ n^{c['spread_rate']:.2f} ± {c['spread_rate_se']:.2f}; theory n^{c['spread_rate_theory']:.2f}"
                     + (" or faster" if c["spread_theory"] == "bound" else "") + f" → {'ok' if c['spread_ok'] else 'REJECT'}")
    lines.append(f"  mean at the largest width → {'ok' if c['mean_ok'] else 'REJECT'}")
    o = r["onestep"]
    lines.append(f"  one-step at V0 (n={o['n']}, {o['samples']} layers): drift {'ok' if o['drift_ok'] else 'REJECT'}; "
                 f"worst {o['worst']}")
    lines.append(f"  power: smallest δ rejected — drift {r['power']['drift']} (grid {r['power']['grid']})")
    lines.append(f"verdict: {r['verdict'].upper()}  ({r['timings']['total']:.1f} s)")
    return "\n".join(lines)
