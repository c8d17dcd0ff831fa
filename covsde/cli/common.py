"""Helpers shared by the CLI commands: usage errors, --set and --V0 parsing, output checks."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ..common import checks
from ..common.errors import CovsdeInputError

MAX_V0_CHARS = 1_000_000


class UsageError(CovsdeInputError):
    """Malformed command-line usage (exit code 2)."""


# The names as covsde.derive.variants knows them, written out here so that `covsde --help` does not import SymPy
# (tests/cli/test_help.py checks that they agree).
VARIANTS = ("mlp", "resnet", "attention", "standard-attention", "transformer")
NAMES = ("c_plus", "c_minus", "p", "activation", "a", "gamma", "lam", "gamma1", "lam1", "gamma2", "lam2",
         "tau0", "e", "heads", "centre", "identity", "skip", "q", "kappa", "mask", "layout", "mlp", "norm")
VARIANT_HELP = ("the block: " + ", ".join(VARIANTS) + " (the model zoo in the docs lists each with its switches)")
M_HELP = "number of tokens m (a positive integer; default: {default})"
SET_HELP = ("a parameter of the variant as NAME=VALUE, repeatable, e.g. --set gamma=0.35 --set p=1/2; values are "
            "numbers, fractions or expressions in the other names; names: " + ", ".join(NAMES))
PRESET_HELP = ("a named parameterisation (bordelon: width-first limits, with --set alphaA=1 --set alphaL=1/2 "
               "--set beta0=1 --set kappa=1/2 as its defaults; default: none)")


def add_variant_arguments(p, initial=False):
    """VARIANT [--m M] [--set NAME=VALUE ...], and with ``initial`` --V0 JSON --T T (simulate, validate)."""
    p.add_argument("variant", help=VARIANT_HELP)
    p.add_argument("--m", default=None, help=M_HELP.format(default="the size of V0" if initial else "2"))
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help=SET_HELP)
    p.add_argument("--preset", default=None, metavar="NAME", help=PRESET_HELP)
    if initial:
        p.add_argument("--V0", required=True, metavar="MATRIX",
                       help="the initial m×m Gram V0 (symmetric, positive definite): a JSON list of rows such as "
                            "'[[1,0.2],[0.2,1]]', a number for m = 1, or @FILE.json / @FILE.npy (at most 64 MiB)")
        p.add_argument("--T", required=True, help="terminal time t = ℓ/n^κ (a positive number; depth d = T·n^κ)")


def add_output_arguments(p, what, formats=None):
    """--out, --force, --format, --quiet with their help (``what``: what --out names)."""
    p.add_argument("--out", default=None, metavar="PATH", help=what)
    p.add_argument("--force", action="store_true", help="overwrite existing outputs (default: refuse)")
    if formats:
        p.add_argument("--format", choices=formats, default=formats[0],
                       help="what is printed on stdout: " + ", ".join(formats) + f" (default: {formats[0]})")
    p.add_argument("--quiet", action="store_true", help="no progress bars on stderr")


def seed_help(what="the run"):
    return f"seed of {what} (an integer ≥ 0; default: 0); the same seed gives the same numbers"


MAX_MEMORY_HELP = "memory limit, e.g. 16G (default: half the machine's memory, at most 8G; or COVSDE_MAX_MEMORY)"


def parse_sets(items) -> dict:
    """--set NAME=VALUE (repeatable) → {NAME: VALUE text}."""
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


def variant_params(args) -> dict:
    """--set values, with --preset NAME as the entry ``preset``."""
    given = parse_sets(args.set)
    if getattr(args, "preset", None) is not None:
        if "preset" in given:
            raise UsageError("give the preset once (--preset or --set preset=)")
        given["preset"] = args.preset
    return given


def parse_m(text):
    return checks.integer("--m", text, 1)


def number(name, text, positive=True):
    return checks.real(f"--{name}", text, positive=positive)


def integer(name, text, minimum=1):
    return checks.integer(f"--{name}", text, minimum)


MAX_V0_FILE_BYTES = 64 * 1024**2


def _read_bounded(path_text, limit):
    """The bytes of a regular, non-empty file of at most ``limit`` bytes (not a folder, device, pipe or
    pseudo-file such as /proc/...: those report size 0 or never end)."""
    import stat

    flag = f"--V0 @{path_text}"
    try:
        st = os.stat(path_text)  # before opening: opening a FIFO would wait for a writer
        if stat.S_ISDIR(st.st_mode):
            raise UsageError(f"{flag}: no such file (it is a folder)")
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{flag} is not a regular file (a device, pipe or socket): give a .json or .npy file")
        if st.st_size == 0:
            raise UsageError(f"{flag} is empty (or a pseudo-file such as /proc/...): give a .json or .npy file")
        if st.st_size > limit:
            raise UsageError(f"{flag} is {st.st_size} bytes (the limit is {limit})")
        with open(path_text, "rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise UsageError(f"{flag}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{flag} cannot be read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise UsageError(f"{flag} grew past {limit} bytes while it was read")
    return data


def _npy(data, path_text, m_limit):
    """A .npy array from its bytes: the header (dtype, shape) checked before the data is read."""
    import io

    import numpy as np

    flag = f"--V0 @{path_text}"
    buf = io.BytesIO(data)
    try:
        fmt = np.lib.format
        version = fmt.read_magic(buf)
        shape, _, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(buf)
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise UsageError(f"{flag} is not a readable .npy array ({exc})") from None
    if dtype.hasobject or dtype.kind not in "fiu":
        raise UsageError(f"{flag} must hold numbers, got dtype {dtype}")
    if len(shape) != 2 or shape[0] != shape[1] or not 1 <= shape[0] <= m_limit:
        raise UsageError(f"{flag} must hold a square m×m matrix with 1 ≤ m ≤ {m_limit}, its header says shape "
                         f"{shape}")
    if len(data) - buf.tell() < dtype.itemsize * shape[0] * shape[1]:
        raise UsageError(f"{flag} is truncated: its header says shape {shape} of {dtype}")
    buf.seek(0)
    try:
        return np.load(buf, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UsageError(f"{flag} is not a readable .npy array ({exc})") from None


def _V0_file(path_text):
    """--V0 @FILE: a JSON matrix (any suffix but .npy) or a NumPy .npy array (no pickles)."""
    from ..common import limits
    from ..numerics.integrate import check_V0

    if not path_text:
        raise UsageError("--V0 @FILE needs a file name after @")
    data = _read_bounded(path_text, MAX_V0_FILE_BYTES)
    if Path(path_text).suffix.lower() == ".npy":
        return check_V0(_npy(data, path_text, limits.max_m()), None, f"V0 (from {path_text})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"--V0 @{path_text} is neither UTF-8 JSON nor a .npy file") from None
    return parse_V0(text, limit=MAX_V0_FILE_BYTES)


V0_FORM = "a JSON/Python list of numbers such as [[1, 0.2], [0.2, 1]], or @FILE.json / @FILE.npy"


def parse_V0(text, limit=MAX_V0_CHARS):
    """--V0 as a matrix written in JSON or as a Python list of numbers (``.2``, ``1e-3``, ``-0.``; read
    by :func:`covsde.common.literal.read_numbers`, nothing evaluated; a number is read as a 1×1 matrix),
    or @FILE (JSON, or .npy)."""
    from ..common.literal import read_numbers

    if text.startswith("@") and limit == MAX_V0_CHARS:
        return _V0_file(text[1:])
    if len(text) > limit:
        raise UsageError(f"--V0 is {len(text)} characters long (the limit is {limit}; "
                         f"a large V0 can be read from a file: --V0 @FILE.json or @FILE.npy)")
    val = read_numbers(text, "--V0", expected=V0_FORM, max_chars=limit)
    if isinstance(val, (int, float)):
        val = [[val]]
    if not isinstance(val, list) or not val or not all(isinstance(r, list) for r in val):
        raise UsageError(f"--V0 must be a list of rows, got {text[:200]!r}; expected {V0_FORM}")
    if any(not isinstance(x, (int, float)) for r in val for x in r):
        raise UsageError(f"--V0 entries must be numbers, got {text[:200]!r}; expected {V0_FORM}")
    if len({len(r) for r in val}) > 1:
        raise UsageError(f"--V0 rows have different lengths: {text[:200]!r}")
    from ..numerics.integrate import check_V0

    return check_V0(val, None, "V0")


def setup_variant(args, V0_text):
    """(derivation, block, params, V0, m) for simulate/validate; m defaults to V0's size."""
    from ..derive import derive
    from ..derive.variants import build

    V0 = parse_V0(V0_text)
    m = parse_m(args.m) if args.m is not None else V0.shape[0]
    if V0.shape[0] != m:
        raise UsageError(f"--V0 is {V0.shape[0]}×{V0.shape[0]} but --m is {m}")
    block, params = build(args.variant, variant_params(args))
    d = derive(block, m, name=args.variant, kappa=params.get("kappa", 1))
    if not d.has_limit:
        raise CovsdeInputError(f"variant {args.variant} has no SDE limit for these parameters (regime no-limit): "
                               f"{d.reason}")
    missing = [s.name for s in d.parameters]
    if missing:
        raise CovsdeInputError(f"parameter(s) {', '.join(missing)} must be given numbers for this command "
                               f"(e.g. --set {missing[0]}=1)")
    return d, block, params, V0, m


def _writable(folder: Path, flag: str, target=None):
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".covsde-write-test-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise UsageError(f"{flag} {target or folder}: cannot write in {folder} ({exc.strerror or exc})") from None


def out_file(path, force, flag="--out"):
    """An output file path, checked before any work: not a folder, not clobbered without --force,
    in an existing writable folder."""
    if not str(path).strip():
        raise UsageError(f"{flag} is empty: give a file name")
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{flag} {p} is a folder: give a file name")
    if p.exists() and not force:
        raise FileExistsError(f"{p} exists (use --force to overwrite)")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{flag} {p}: the folder {parent} does not exist")
    _writable(parent, flag, p)
    return p


def out_folder_name(path, flag="--out"):
    """``path`` unless it is empty (an empty --out would mean the current folder)."""
    if not str(path).strip():
        raise UsageError(f"{flag} is empty: give a folder name")
    return path


def out_folder(path, flag="--out"):
    """An output folder, created if missing and checked writable before any work."""
    d = Path(out_folder_name(path, flag))
    if d.exists() and not d.is_dir():
        raise UsageError(f"{flag} {d} exists and is not a folder")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{flag} {d}: cannot create the folder ({exc.strerror or exc})") from None
    _writable(d, flag)
    return d
