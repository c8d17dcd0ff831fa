"""The ``covsde`` command line.  Its commands, flags, exit codes and JSON outputs are contracts: keep
them stable.  One module per command (``add_arguments(parser)``, ``run(args) -> exit code``):

    covsde derive VARIANT [--m M] [--set NAME=VALUE ...] [--format text|latex|json]
    covsde simulate VARIANT [--m M] [--set ...] --V0 JSON --T T [--dt DT] [--paths N] [--seed S]
                    [--scheme em|psd] [--ode] [--out FILE.npz] [--format text|json] [--quiet] [--force]
    covsde validate VARIANT [--m M] [--set ...] --V0 JSON --T T --widths 64,128 [--samples N]
                    [--backend torch|exact] [--device cpu|cuda] [--seed S] [--out DIR] [--format text|json]
    covsde suite FILE.toml|quick|paper [--out DIR]
    covsde demo [--out DIR]
    covsde reproduce NAME [--out DIR] [--quick]
    covsde phase VARIANT --x NAME=LO:HI --y NAME=LO:HI [--steps K] [--set ...] --out DIR [--force]
    covsde train-check MODEL [--param sp|mup|depth-mup|bordelon] [--widths 32,64,...] [--lrs LIST] [--steps K]
                    [--task teacher|language] [--optimizer sgd|adam] [--depth L] --out DIR [--force]

Exit codes: 0 done; 1 a suite entry failed validation, or an internal error (one line; the traceback
with COVSDE_DEBUG=1); 2 bad input or a refused request (one line on stderr naming the bad value or
the limit, never a traceback); 130 interrupted.
"""
from __future__ import annotations

import argparse
import os
import sys

from . import demo, derive, phase, reproduce, simulate, suite, train_check, validate
from .common import UsageError

EXIT_USAGE = 2
COMMANDS = {"derive": derive, "simulate": simulate, "validate": validate, "suite": suite, "demo": demo,
            "reproduce": reproduce, "phase": phase, "train-check": train_check}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one clean line, exit 2
        raise UsageError(message)


def build_parser():
    p = _Parser(prog="covsde", description="The neural covariance SDE: derive, simulate, validate.",
                epilog="covsde COMMAND --help describes a command's options.  Exit codes: 0 done, 1 a failed suite "
                       "entry or an internal error, 2 bad input or a refused request, 130 interrupted.")
    sub = p.add_subparsers(dest="cmd", parser_class=_Parser, metavar="COMMAND")
    for name, module in COMMANDS.items():
        module.add_arguments(sub.add_parser(name, help=module.HELP, description=module.HELP[0].upper() + module.HELP[1:]
                                            + ".", epilog="examples:\n" + "".join(module.EXAMPLES),
                                            formatter_class=argparse.RawDescriptionHelpFormatter))
    return p


def _fail(message, code):
    print(f"covsde: error: {message}", file=sys.stderr)
    return code


def main(argv=None):
    from ..common.errors import CovsdeInputError

    parser = build_parser()
    try:
        a = parser.parse_args(argv)
        if a.cmd is None:
            parser.print_help()
            return EXIT_USAGE
        return COMMANDS[a.cmd].run(a)
    except (CovsdeInputError, FileExistsError) as exc:
        return _fail(exc, EXIT_USAGE)
    except BrokenPipeError:  # e.g. piped into head
        sys.stdout = None
        return 0
    except KeyboardInterrupt:
        print("covsde: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        return _fail("out of memory (ask for less, or lower --max-memory so that the request is refused up "
                     "front)", 1)
    except OSError as exc:
        return _fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), 1)
    except Exception as exc:  # noqa: BLE001 - last resort: one line, the traceback on request
        if os.environ.get("COVSDE_DEBUG"):
            raise
        return _fail(f"internal error ({type(exc).__name__}: {exc}); rerun with COVSDE_DEBUG=1 for the traceback",
                     1)
