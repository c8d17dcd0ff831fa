"""Cached derivations never outlive the code that produced them, and a broken entry is rebuilt.

* a user block defined in a temporary module: editing its step() (or a helper it calls) and
  importing it again gives the new drift, with no cache clearing (the issue's reproduction: a
  residual branch linear(act(x)) → linear(x) changes the drift from the ReLU drift to 0);
* an edited copy of derive/ (a changed Gaussian identity) gives a different drift from the same cache
  folder, and a comment-only edit is a cache miss (the key is a hash of the sources);
* corrupted entries (garbage bytes, a valid checksum over a non-derivation payload) are rebuilt."""
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import sympy as sp

from covsde.common import cache
from covsde.derive import Residual, derive
from covsde.derive.engine import derivation_key

BLOCK_SRC = '''
from covsde.derive import Block, ShapedReLU

def branch(x, ops, act):
    return ops.linear(ops.act(x, act))

class UserBranch(Block):
    def __init__(self):
        self.activation = ShapedReLU()

    def step(self, x, ops):
        return branch(x, ops, self.activation)
'''


def _import(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _drift01(mod):
    d = derive(Residual(mod.UserBranch(), sp.Rational(1, 2)), 2)
    return d, d.drift[0, 1]


def test_editing_a_user_block_gives_the_new_result(tmp_path):
    f = tmp_path / "user_block_mod.py"
    f.write_text(BLOCK_SRC)
    d1, b1 = _drift01(_import(f, "user_block_mod"))
    assert not d1.from_cache and b1 != 0
    d1b, _ = _drift01(_import(f, "user_block_mod"))  # same code, imported again: served from the cache
    assert d1b.from_cache
    # edit step(): the branch no longer applies the activation
    f.write_text(BLOCK_SRC.replace("return branch(x, ops, self.activation)", "return ops.linear(x)"))
    d2, b2 = _drift01(_import(f, "user_block_mod"))
    assert not d2.from_cache and b2 == 0
    # edit only the module-level helper that step() calls
    f.write_text(BLOCK_SRC.replace("return ops.linear(ops.act(x, act))", "return ops.linear(x)"))
    d3, b3 = _drift01(_import(f, "user_block_mod"))
    assert not d3.from_cache and b3 == 0


def test_block_state_not_in_params_is_part_of_the_key():
    from covsde.derive import Block

    class Scaled(Block):
        def __init__(self, k):
            self.k = k  # not reported by params(), used by step()

        def step(self, x, ops):
            return ops.scale(self.k, ops.linear(x))

    assert repr(Scaled(1)) == repr(Scaled(2))
    assert derivation_key(Scaled(1), 2) != derivation_key(Scaled(2), 2)
    assert derivation_key(Scaled(1), 2) == derivation_key(Scaled(1), 2)


PROBE = ("import json, sys; from covsde.derive import derive; from covsde.derive.variants import build; "
         "d = derive(build('mlp', {})[0], 2); print(json.dumps([d.regime + ': ' + str(d.drift), d.from_cache]))")


def _run_copy(pkg_root, cache_dir):
    env = dict(os.environ, PYTHONPATH=str(pkg_root), COVSDE_CACHE_DIR=str(cache_dir))
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, cwd=pkg_root)
    assert r.returncode == 0, r.stderr
    import json

    return json.loads(r.stdout)


def test_editing_derive_sources_invalidates_the_cache(tmp_path):
    import covsde

    src = Path(covsde.__file__).parent
    copy = tmp_path / "pkg"
    shutil.copytree(src, copy / "covsde", ignore=shutil.ignore_patterns("__pycache__"))
    cache_dir = tmp_path / "cache"
    drift0, hit0 = _run_copy(copy, cache_dir)
    again, hit1 = _run_copy(copy, cache_dir)
    assert (hit0, hit1) == (False, True) and again == drift0
    gauss = copy / "covsde" / "derive" / "gaussian.py"
    gauss.write_text(gauss.read_text() + "\n# a comment only\n")
    drift2, hit2 = _run_copy(copy, cache_dir)
    assert not hit2 and drift2 == drift0
    # a real change: the shaped ReLU's negative slope gets twice its shaping, s₋ = 1 + 2c₋/√n
    acts = copy / "covsde" / "derive" / "activations.py"
    text = acts.read_text()
    assert '({sp.Integer(0): -1, e: -self.c_minus}, "relu", -1)' in text
    acts.write_text(text.replace('({sp.Integer(0): -1, e: -self.c_minus}, "relu", -1)',
                                 '({sp.Integer(0): -1, e: -2 * self.c_minus}, "relu", -1)'))
    drift3, hit3 = _run_copy(copy, cache_dir)
    assert not hit3 and drift3 != drift0


def test_corrupted_entries_are_rebuilt():
    from covsde.derive.variants import build

    blk, _ = build("resnet", {"gamma": "0.6"})
    ref = derive(blk, 2)
    key = derivation_key(blk, 2)
    assert ref.key == key and cache.path_for("derive", key).exists()
    for garbage in (b"\x00\xff garbage", None):
        if garbage is None:  # a well-formed entry (valid checksum) whose payload is not a derivation
            cache.store("derive", key, b"not a pickle")
        else:
            cache.path_for("derive", key).write_bytes(garbage)
        d = derive(blk, 2)
        assert not d.from_cache and d.drift == ref.drift
        assert derive(blk, 2).from_cache  # rewritten
