"""The documentation holds: the README fits one screen and its links resolve, nothing points outside the
repository or at internal work items, the examples on the docs pages run, and the generated pages
(CLI reference, schemas, parameters) cover what the code has.

The docs' convention: a ```python block runs (the blocks of one page in order, in one namespace);
a ```py or ```bash block is shown only."""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"

# --------------------------------------------------------------------------------------------- README


def links(markdown: str) -> list[str]:
    """The targets of the Markdown links [text](target) in a text."""
    return re.findall(r"\]\(([^)\s]+)\)", markdown)


def broken_links(markdown: str, base: Path) -> list[str]:
    """Relative link targets (without their #anchor) that do not exist under ``base``."""
    out = []
    for target in links(markdown):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        if not (base / target.split("#", 1)[0]).exists():
            out.append(target)
    return out


def test_readme_fits_one_screen_and_its_links_resolve():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 80
    assert len(links(text)) >= 10
    assert broken_links(text, ROOT) == []
    for needed in ("make demo", "make test", "```python", "dV = b(V) dt"):
        assert needed in text
    bench = ROOT / "benchmarks" / "README.md"
    assert broken_links(bench.read_text(encoding="utf-8"), bench.parent) == []


def test_the_link_checker_catches_a_broken_link(tmp_path):
    (tmp_path / "there.md").write_text("x")
    text = "[a](there.md) [b](there.md#part) [c](missing.md) [d](https://example.org) [e](#top)"
    assert broken_links(text, tmp_path) == ["missing.md"]


# ------------------------------------------------------------------- nothing outside the repository

OUTSIDE = [re.compile(p) for p in (r"\.\./shared", r"/work/", r"\b[Ii]ssues? #?\d+", r"\bmodels\.md\b",
                                   r"\bfacts\.md\b", r"\bwork items? #?\d+")]


def outside_references(text: str) -> list[str]:
    """Pointers a user's clone cannot follow: paths outside the repository, internal work-item numbers."""
    return [mt.group(0) for rx in OUTSIDE for mt in rx.finditer(text)]


def shipped_text_files():
    """What a user reads: README, ARCHITECTURE, the docs, the package (docstrings and messages), its
    data files, the examples, the benchmarks and the build files."""
    files = [README, ROOT / "ARCHITECTURE.md", ROOT / "mkdocs.yml", ROOT / "Makefile", ROOT / "pyproject.toml"]
    for folder, pattern in ((DOCS, "**/*.md"), (DOCS, "*.py"), (ROOT / "covsde", "**/*.py"),
                            (ROOT / "covsde", "**/*.toml"), (ROOT / "covsde", "**/*.json"),
                            (ROOT / "examples", "*.py"), (ROOT / "benchmarks", "*.py"), (ROOT / "benchmarks", "*.md")):
        files += sorted(folder.glob(pattern))
    return [f for f in files if f.is_file()]


def test_no_references_outside_the_repository():
    files = shipped_text_files()
    assert len(files) > 80
    found = {str(f.relative_to(ROOT)): hits for f in files if (hits := outside_references(f.read_text(encoding="utf-8")))}
    assert found == {}


def test_the_reference_grep_catches_each_kind():
    text = ("see ../shared/reference/models.md, /work/main/x, fixed in issue 13, since Issue #3, facts.md, "
            "work item 7; but 'issues' and 'tissue 5' are fine")
    assert outside_references(text) == ["../shared", "/work/", "issue 13", "Issue #3", "models.md", "facts.md",
                                        "work item 7"]


# ----------------------------------------------------------------------------- examples on the pages


def python_blocks(markdown: str) -> list[tuple[int, str]]:
    """(line, code) of each ```python block (indented ones too, as in a docstring's Example section)."""
    out = []
    for mt in re.finditer(r"^([ \t]*)```python\n(.*?)^\1```", markdown, flags=re.S | re.M):
        out.append((markdown[:mt.start()].count("\n") + 2, textwrap.dedent(mt.group(2))))
    return out


def run_blocks(markdown: str, name: str) -> int:
    """Run a page's python blocks in order in one namespace; an error names the page and the line."""
    namespace = {"__name__": "__docs__"}
    blocks = python_blocks(markdown)
    for line, code in blocks:
        try:
            exec(compile(code, f"{name}:{line}", "exec"), namespace)  # noqa: S102 - the docs' own examples
        except Exception as exc:
            raise AssertionError(f"the example at {name}:{line} fails: {type(exc).__name__}: {exc}") from exc
    return len(blocks)


PAGES = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.glob("**/*.md") if python_blocks(p.read_text("utf-8")))


def test_pages_have_examples():
    assert {"getting-started.md", "writing-a-block.md", "validation.md", "integrators.md", "exports.md",
            "formats.md", "limits.md"} <= set(PAGES)


@pytest.mark.parametrize("page", PAGES)
def test_the_examples_on_a_page_run(page, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # whatever an example writes lands here
    assert run_blocks((DOCS / page).read_text(encoding="utf-8"), page) >= 1


PUBLIC = ("covsde.derive", "covsde.numerics", "covsde.validate", "covsde.export")


def public_examples():
    """{qualified name: docstring} of the public names that carry a runnable example."""
    out = {}
    for module in PUBLIC:
        mod = importlib.import_module(module)
        for name in mod.__all__:
            doc = inspect.getdoc(getattr(mod, name)) or ""
            if python_blocks(doc):
                out[f"{module}.{name}"] = doc
    return out


def test_public_docstrings_have_one_format():
    """The public functions with an example use the sections Arguments / Returns / Example."""
    examples = public_examples()
    assert {"covsde.derive.derive", "covsde.numerics.simulate", "covsde.numerics.solve_ode",
            "covsde.numerics.extrapolate", "covsde.validate.validate", "covsde.validate.load_suite",
            "covsde.export.to_numpy", "covsde.export.to_torch"} <= set(examples)
    for name, doc in examples.items():
        assert "\nArguments:\n" in doc and "\nReturns:\n" in doc and "\nExample:\n" in doc, name


@pytest.mark.parametrize("name", sorted(public_examples()))
def test_the_docstring_examples_run(name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_blocks(public_examples()[name], name) == 1


def test_a_broken_example_fails():
    page = "text\n\n```python\nx = 1\n```\n\n```py\nnot run at all (\n```\n\n```python\ny = x + undefined\n```\n"
    assert [line for line, _ in python_blocks(page)] == [4, 12]
    with pytest.raises(AssertionError, match=r"page.md:12 fails: NameError"):
        run_blocks(page, "page.md")


# ---------------------------------------------------------------------------- the generated pages


def hooks():
    spec = importlib.util.spec_from_file_location("covsde_docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_pages_cover_the_code():
    from covsde.cli import build_parser
    from covsde.derive.variants import VARIANTS

    h = hooks()
    reference = h.cli_reference()
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in sub.choices.items():
        assert f"## covsde {name}" in reference
        for action in parser._actions:
            for option in action.option_strings:
                if isinstance(action, argparse._HelpAction):
                    continue
                assert f"`{option}" in reference or f", {option}" in reference, (name, option)
    for name in ("derive", "simulate", "validate", "phase", "suite"):
        page = h.render(f"<!-- covsde:schema {name} -->")
        assert "| `verdict` |" in page or name not in ("validate",)
        assert f"covsde/schemas/{name}.json" in page
    table = h.render("<!-- covsde:parameters -->")
    assert all(f"| `{v}` |" in table for v in VARIANTS)
    for page in DOCS.glob("**/*.md"):  # every marker on a page is one the hook knows
        for marker in re.findall(r"<!-- covsde:[^>]*-->", page.read_text(encoding="utf-8")):
            assert h.MARKER.fullmatch(marker), (page.name, marker)


# ------------------------------------------------------------------------------------ the pictures


def made_by_make(makefile: str) -> set[str]:
    """The PNG names that `make docs-figures` writes (its FIGURES and the phase diagram)."""
    figures = re.search(r"^FIGURES := (.*)$", makefile, flags=re.M).group(1).split()
    recipe = makefile.split("docs-figures:", 2)[-1]
    return set(figures) | ({"phase"} if "covsde phase" in recipe and "--out docs/figures" in recipe else set())


def unmade_pictures(pages: dict[str, str], made: set[str]) -> list[str]:
    """Pictures a page shows that no documented command writes."""
    return [f"{page}: {png}" for page, text in pages.items()
            for png in re.findall(r"\]\(figures/([^)]+)\.png\)", text) if png not in made]


def test_every_picture_on_a_page_is_written_by_make_docs_figures():
    made = made_by_make((ROOT / "Makefile").read_text(encoding="utf-8"))
    pages = {p.name: p.read_text(encoding="utf-8") for p in DOCS.glob("**/*.md")}
    assert unmade_pictures(pages, made) == []
    shown = {png for text in pages.values() for png in re.findall(r"\]\(figures/([^)]+)\.png\)", text)}
    assert shown == made and all((DOCS / "figures" / f"{png}.png").is_file() for png in shown)
    assert unmade_pictures({"x.md": "![a](figures/drawn-by-hand.png)"}, made) == ["x.md: drawn-by-hand"]
