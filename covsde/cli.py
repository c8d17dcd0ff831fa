"""The ``covsde`` command line.  Its commands and JSON outputs are contracts: keep them stable.

    covsde derive VARIANT [--m M] [--set NAME=VALUE ...] [--format text|latex|json]
    covsde simulate VARIANT [--m M] [--set ...] --V0 JSON --T T [--dt DT] [--paths N] [--seed S]
                    [--scheme em|psd] [--ode] [--out FILE.npz] [--format text|json] [--quiet] [--force]
    covsde validate VARIANT [--m M] [--set ...] --V0 JSON --T T --widths 64,128 [--samples N]
                    [--backend torch|exact] [--device cpu|cuda] [--seed S] [--out DIR] [--format text|json]
    covsde suite FILE.toml|quick|paper [--out DIR]
    covsde demo [--out DIR]
    covsde reproduce NAME [--out DIR] [--quick]

Bad input: exit code 2 and one line on stderr naming the bad value (never a traceback).
"""
from __future__ import annotations

import argparse
import json
import sys

EXIT_USAGE = 2


from .derive.errors import UsageError  # noqa: E402  (one class, also when run as __main__)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one clean line, exit 2
        raise UsageError(message)


def _sets(items):
    out = {}
    for it in items or []:
        if "=" not in it:
            raise UsageError(f"--set expects NAME=VALUE, got {it!r}")
        k, v = it.split("=", 1)
        k = k.strip()
        if k in out:
            raise UsageError(f"--set {k} given twice")
        out[k] = v
    return out


def _m(text):
    try:
        m = int(text)
    except ValueError:
        raise UsageError(f"--m must be an integer ≥ 1, got {text!r}") from None
    if m < 1:
        raise UsageError(f"--m must be an integer ≥ 1, got {m}")
    return m


def build_parser():
    p = _Parser(prog="covsde", description="The neural covariance SDE: derive, simulate, validate.")
    sub = p.add_subparsers(dest="cmd", parser_class=_Parser)

    def common(q):
        q.add_argument("variant")
        q.add_argument("--m", default=None)
        q.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")

    d = sub.add_parser("derive", help="derive drift and diffusion")
    common(d)
    d.add_argument("--format", choices=["text", "latex", "json"], default="text")
    d.add_argument("--no-cache", action="store_true")

    s = sub.add_parser("simulate", help="integrate the SDE for many paths")
    common(s)
    s.add_argument("--V0", required=True)
    s.add_argument("--T", required=True)
    s.add_argument("--dt", default="0.01")
    s.add_argument("--paths", default="1000")
    s.add_argument("--seed", default="0")
    s.add_argument("--scheme", choices=["em", "psd"], default="psd")
    s.add_argument("--ode", action="store_true")
    s.add_argument("--out")
    s.add_argument("--force", action="store_true")
    s.add_argument("--format", choices=["text", "json"], default="text")
    s.add_argument("--quiet", action="store_true")
    s.add_argument("--threshold", default=None, help="stop a path when max |V| exceeds this (default 1e6)")

    v = sub.add_parser("validate", help="finite networks vs the SDE")
    common(v)
    v.add_argument("--V0", required=True)
    v.add_argument("--T", required=True)
    v.add_argument("--widths", required=True)
    v.add_argument("--samples", default="1000")
    v.add_argument("--backend", choices=["torch", "exact"], default="exact")
    v.add_argument("--device", choices=["cpu", "cuda"], default=None,
                   help="where the networks run (default: cuda when available, else cpu)")
    v.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                   help="precision of the network runs (float32: the fast option on a GPU)")
    v.add_argument("--seed", default="0")
    v.add_argument("--out", default=None)
    v.add_argument("--force", action="store_true")
    v.add_argument("--format", choices=["text", "json"], default="text")
    v.add_argument("--quiet", action="store_true")
    v.add_argument("--no-power", action="store_true", help="skip the power search (faster)")

    su = sub.add_parser("suite", help="run a suite of validations")
    su.add_argument("file")
    su.add_argument("--out", default=None)
    su.add_argument("--quiet", action="store_true")

    de = sub.add_parser("demo", help="the end-to-end demo")
    de.add_argument("--out", default="demo-out")
    de.add_argument("--force", action="store_true")
    de.add_argument("--quick", action="store_true")

    r = sub.add_parser("reproduce", help="reproduce a published figure")
    r.add_argument("name")
    r.add_argument("--out", default=None)
    r.add_argument("--quick", action="store_true")
    r.add_argument("--force", action="store_true")
    return p


def cmd_derive(a):
    from .derive import derive
    from .derive.variants import build

    m = _m(a.m or "2")
    block, params = build(a.variant, _sets(a.set))
    res = derive(block, m, use_cache=not a.no_cache, name=a.variant)
    if a.format == "json":
        print(json.dumps(res.to_json(a.variant, params)))
    elif a.format == "latex":
        print(res.latex())
    else:
        print(res.text())
    return 0


def main(argv=None):
    from .derive.errors import CovsdeInputError

    parser = build_parser()
    try:
        a = parser.parse_args(argv)
        if a.cmd is None:
            parser.print_help()
            return EXIT_USAGE
        handler = {"derive": cmd_derive}.get(a.cmd)
        if handler is None:
            from . import cli_more

            handler = getattr(cli_more, "cmd_" + a.cmd)
        return handler(a)
    except (UsageError, CovsdeInputError) as exc:
        print(f"covsde: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FileExistsError as exc:
        print(f"covsde: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. piped into head
        try:
            sys.stdout = None
        finally:
            return 0
    except KeyboardInterrupt:
        print("covsde: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
