"""The layering of ARCHITECTURE.md, checked on the source: imports go downward only (face → validate →
numerics → derive → common), nothing below the face imports argparse or the CLI, no import cycle,
no private name imported from another module, no function over 70 lines (its docstring not counted)."""
import ast
from pathlib import Path

import covsde

ROOT = Path(covsde.__file__).resolve().parent
LAYER = {"common": 0, "derive": 1, "numerics": 2, "validate": 3}
FACE = 4
MAX_LINES = 70


def _modules():
    out = {}
    for f in sorted(ROOT.rglob("*.py")):
        rel = f.relative_to(ROOT.parent).with_suffix("")
        name = ".".join(rel.parts)
        if name.endswith(".__init__"):
            name = name[: -len(".__init__")]
        out[name] = ast.parse(f.read_text(), str(f))
    return out


MODULES = _modules()


def _layer(mod):
    parts = mod.split(".")
    return LAYER.get(parts[1], FACE) if len(parts) > 1 else FACE


def _resolve(mod, node):
    """Absolute module names imported by an Import/ImportFrom node inside ``mod``."""
    if isinstance(node, ast.Import):
        return [(a.name, None) for a in node.names]
    pkg = mod.split(".") if mod in MODULES and _is_package(mod) else mod.split(".")[:-1]
    if node.level:
        base = pkg[: len(pkg) - node.level + 1]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module
    out = []
    for a in node.names:
        sub = f"{target}.{a.name}"
        out.append((sub, None) if sub in MODULES else (target, a.name))
    return out


def _is_package(mod):
    return (ROOT.parent / Path(*mod.split(".")) / "__init__.py").exists()


def _edges():
    for mod, tree in MODULES.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target, name in _resolve(mod, node):
                    yield mod, target, name, node.lineno


def test_imports_go_downward_only():
    bad = [f"{m}:{ln} imports {t}" for m, t, _, ln in _edges()
           if t.startswith("covsde.") and t in MODULES and _layer(t) > _layer(m)]
    assert not bad, bad


def test_no_argparse_or_cli_below_the_face():
    bad = [f"{m}:{ln} imports {t}" for m, t, _, ln in _edges()
           if _layer(m) < FACE and (t == "argparse" or t == "covsde.cli" or t.startswith("covsde.cli."))]
    assert not bad, bad


def test_no_private_names_across_modules():
    bad = [f"{m}:{ln} imports {t}.{n}" for m, t, n, ln in _edges()
           if n and n.startswith("_") and not n.startswith("__") and t.startswith("covsde") and t != m]
    assert not bad, bad


def test_no_import_cycle():
    graph = {m: set() for m in MODULES}
    for m, t, _, _ in _edges():
        if t in MODULES and t != m and not (m.startswith(t + ".") and _is_package(t)):
            graph[m].add(t)
    state, cycles = {}, []

    def visit(m, stack):
        state[m] = 1
        for t in graph[m]:
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t, stack + [t])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])
    assert not cycles, cycles


def test_functions_are_short():
    bad = []
    for mod, tree in MODULES.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                doc = node.body[0] if node.body else None
                if isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant) and isinstance(doc.value.value, str):
                    n -= doc.end_lineno - doc.lineno + 1  # the docstring is documentation, not code
                if n > MAX_LINES:
                    bad.append(f"{mod}.{node.name}: {n} lines")
    assert not bad, bad


def test_the_checks_can_fail():
    """The import resolver sees a private cross-module import and an upward import when they exist."""
    tree = ast.parse("from ..validate.networks import _x\nfrom ..cli import main\n")
    MODULES["covsde.derive.fake"] = tree
    try:
        edges = [(m, t, n) for m, t, n, _ in _edges() if m == "covsde.derive.fake"]
        assert ("covsde.derive.fake", "covsde.validate.networks", "_x") in edges
        assert any(t == "covsde.cli" for _, t, _ in edges)
    finally:
        del MODULES["covsde.derive.fake"]
