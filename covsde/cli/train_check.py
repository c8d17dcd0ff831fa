"""covsde train-check MODEL --param NAME --widths 32,64,128,256 [--heads LIST] [--depths LIST] --lrs LIST
--steps K --task TASK --out DIR:
training checks of a parameterisation across width (coordinate check, learning-rate transfer, loss curves,
the initial kernel against covsde's prediction), as DIR/report.json and four PNGs."""
from __future__ import annotations

from .common import MAX_MEMORY_HELP, UsageError, out_folder, parse_sets

HELP = "training checks of a parameterisation across width (coordinate check, learning-rate transfer)"
EXAMPLES = ("  covsde train-check mlp --param mup --task language --widths 32,64,128,256 --lrs 0.25,0.5,1,2 "
            "--steps 40 --out tc\n",
            "  covsde train-check resnet --param depth-mup --widths 32,64 --depths 2,4,8 --lrs 0.25,0.5 --out td\n")
OUTPUTS = ("report.json", "coord_check.png", "loss_curves.png", "lr_transfer.png", "initial_kernel.png")


def add_arguments(p):
    p.add_argument("model", help="a covsde block: mlp, resnet, attention, standard-attention or transformer")
    p.add_argument("--param", default="mup",
                   help="the parameterisation: sp, mup, depth-mup or bordelon (default mup; the table is in "
                        "covsde.validate.training.params)")
    p.add_argument("--widths", default="32,64,128,256",
                   help="comma-separated increasing widths n, at least two (default 32,64,128,256)")
    p.add_argument("--lrs", default=None,
                   help="comma-separated base learning rates η of the grid (default 2^-8, 2^-7, …, 1)")
    p.add_argument("--steps", default="50", help="training steps of each run of the grid (default 50)")
    p.add_argument("--task", default="teacher",
                   help="teacher (regression on a fixed random network's outputs) or language (next-token "
                        "prediction on a seeded random Markov chain); default teacher")
    p.add_argument("--optimizer", default="sgd", help="sgd or adam (default sgd)")
    p.add_argument("--depth", default="2", help="number of blocks L (default 2)")
    p.add_argument("--heads", default=None, metavar="LIST",
                   help="sweep the attention head count: comma-separated increasing integers, e.g. 1,2,4, each "
                        "dividing every width (attention, standard-attention, transformer only); each runs the "
                        "--lrs grid at the largest width and depth --depth (default: no sweep)")
    p.add_argument("--depths", default=None, metavar="LIST",
                   help="sweep the number of blocks L: comma-separated increasing integers, e.g. 2,4,8 (the "
                        "parameterisation's depth factors at each L); each runs the --lrs grid at the largest "
                        "width (default: no sweep)")
    p.add_argument("--m", default="4", help="tokens per input (default 4)")
    p.add_argument("--batch", default="32", help="inputs per training step (default 32)")
    p.add_argument("--coord-steps", default="4", help="steps of the coordinate check (default 4)")
    p.add_argument("--coord-lr", default=None,
                   help="learning rate of the coordinate check (default: the middle of the --lrs grid)")
    p.add_argument("--seeds", default="2", help="initialisations averaged in the coordinate check (default 2)")
    p.add_argument("--seed", default="0", help="seed of the task and the initialisations (default 0)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a block parameter, as for covsde derive (repeatable; e.g. --set gamma=0.5)")
    p.add_argument("--pset", action="append", default=[], metavar="NAME=VALUE",
                   help="a number of the parameterisation: alpha_A, alpha_L, beta0, gamma0, L0 (bordelon; "
                        "beta0 and L0 also depth-mup); repeatable; defaults 1, 1/2, 1, 1, 1")
    p.add_argument("--no-kernel", action="store_true", help="skip the initial-kernel comparison (it derives the block)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--max-memory", default=None, help=MAX_MEMORY_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--out", required=True, help="output folder (created; existing outputs need --force)")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs in --out")


def parse_list(flag, text, kind):
    """'32,64' → [32, 64] (kind int) or floats; a one-line UsageError naming the bad item."""
    items = [t.strip() for t in str(text).split(",")]
    if len(items) > 1000 or any(not t for t in items):
        raise UsageError(f"{flag} must be a comma-separated list of numbers, got {text!r}")
    out = []
    for t in items:
        try:
            v = kind(t)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise UsageError(f"{flag}: {t!r} is not {what} (in {text!r})") from None
        if not v > 0 or v != v or v == float("inf"):
            raise UsageError(f"{flag}: {t!r} must be positive and finite (in {text!r})")
        out.append(v)
    return out


def run(a):
    from pathlib import Path

    from ..common import checks
    from ..validate.training import train_check, validate_request

    widths = parse_list("--widths", a.widths, int)
    lrs = None if a.lrs is None else parse_list("--lrs", a.lrs, float)
    sweeps = {k: None if getattr(a, k) is None else parse_list(f"--{k}", getattr(a, k), int)
              for k in ("heads", "depths")}
    pvals = parse_sets(a.pset)
    for k in pvals:
        if k not in ("alpha_A", "alpha_L", "beta0", "gamma0", "L0"):
            raise UsageError(f"--pset {k}: unknown (known: alpha_A, alpha_L, beta0, gamma0, L0)")
    out = Path(a.out)
    for f in OUTPUTS:
        if (out / f).exists() and not a.force:
            raise FileExistsError(f"{out / f} exists (use --force to overwrite)")
    ints = {k: checks.integer(f"--{k.replace('_', '-')}", getattr(a, k), 1)
            for k in ("steps", "depth", "m", "batch", "coord_steps", "seeds")}
    kw = dict(param=a.param, task=a.task, widths=widths, lrs=lrs, optimizer=a.optimizer, given=parse_sets(a.set),
              param_values=pvals, coord_lr=a.coord_lr, seed=checks.seed(a.seed, "--seed"), device=a.device,
              **sweeps, **ints)
    validate_request(a.model, max_memory=a.max_memory, **kw)  # refused before any folder is made
    out_folder(out)
    r = train_check(a.model, out=out, kernel=not a.no_kernel, progress=not a.quiet, max_memory=a.max_memory, **kw)
    c = r["coord_check"]
    print(f"coordinate check: largest slope {c['slope']:.3f} in log n at widths {c['widths']}")
    print("best learning rate per width: " + ", ".join(f"n={n}: {v}" for n, v in r["lr_transfer"]["best_lr"].items()))
    if r["loss"]["rate"] is not None:
        print(f"loss-curve distance to n={widths[-1]} ∝ n^{r['loss']['rate']:.2f}")
    for axis, sw in r["sweeps"].items():
        d = ", ".join(f"{k}: {v:.3g}" for k, v in sw["distance"].items())
        rate = "" if sw["rate"] is None else f" (∝ {'H' if axis == 'heads' else 'L'}^{sw['rate']:.2f})"
        print(f"{axis} sweep at n={sw['width']}: distance to {axis} {sw['values'][-1]}: {d or 'none'}{rate}")
    print(f"wrote {out}/report.json and the plots ({r['seconds']:.1f} s)")
    return 0
