"""MkDocs hook: pages that are generated from the code, so that nothing is written twice.

A page holds a marker comment that is replaced at build time:

* ``<!-- covsde:cli -->``: the CLI reference, from the argparse parsers of :func:`covsde.cli.build_parser`;
* ``<!-- covsde:schema NAME -->``: the JSON Schema ``covsde/schemas/NAME.json``, as a table and as the file;
* ``<!-- covsde:parameters -->``: the variants and the ``--set`` parameters each takes, from
  :mod:`covsde.derive.variants`.

and the docstrings' Sphinx-style roles are shown as plain code.  The functions are plain (no MkDocs
import), so the tests call them too.
"""
from __future__ import annotations

import argparse
import json
import re
from importlib import resources

MARKER = re.compile(r"<!-- covsde:(cli|schema|parameters)(?: ([a-z-]+))? -->")


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _options(parser) -> list[str]:
    rows = ["| argument | what it is |", "|---|---|"]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if action.option_strings:
            name = ", ".join(action.option_strings)
            if action.nargs != 0:
                shown = "{" + ",".join(map(str, action.choices)) + "}" if action.choices else None
                name += f" {action.metavar or shown or action.dest.upper()}"
        else:
            name = action.metavar or action.dest
        required = " Required." if getattr(action, "required", False) and action.option_strings else ""
        rows.append(f"| `{_cell(name)}` | {_cell(action.help or '')}{required} |")
    return rows


def cli_reference() -> str:
    """The CLI reference as Markdown: every command, its usage, every argument with its help, examples."""
    from covsde.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = [parser.description or "", "", "```text", parser.format_usage().strip(), "```", "",
           parser.epilog or "", ""]
    for name, p in sub.choices.items():
        out += [f"## covsde {name}", "", p.description or "", "", "```text", p.format_usage().strip(), "```", ""]
        out += _options(p) + [""]
        if p.epilog:
            out += ["Examples:", "", "```bash", p.epilog.split("\n", 1)[1].rstrip().replace("\n  ", "\n").strip(),
                    "```", ""]
    return "\n".join(out)


def _type(spec) -> str:
    if "enum" in spec:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in spec["enum"])
    if "const" in spec:
        return f"`{json.dumps(spec['const'])}`"
    if "$ref" in spec:
        return spec["$ref"].rsplit("/", 1)[-1]
    if "oneOf" in spec:
        return " or ".join(_type(s) for s in spec["oneOf"])
    t = spec.get("type", "any")
    return " or ".join(t) if isinstance(t, list) else t


def _properties(spec, prefix, required, depth, rows):
    for key, sub in spec.get("properties", {}).items():
        name = f"{prefix}{key}"
        rows.append(f"| `{_cell(name)}` | {_type(sub)} | {'yes' if key in required else ''} | "
                    f"{_cell(sub.get('description', ''))} |")
        if depth < 2 and sub.get("type") == "object" and "properties" in sub:
            _properties(sub, name + ".", set(sub.get("required", [])), depth + 1, rows)


def load_schema(name) -> dict:
    return json.loads((resources.files("covsde") / "schemas" / f"{name}.json").read_text(encoding="utf-8"))


def schema_page(name) -> str:
    """One schema as Markdown: its description, a table of its keys (two levels), and the file itself."""
    schema = load_schema(name)
    rows = ["| key | type | required | meaning |", "|---|---|---|---|"]
    _properties(schema, "", set(schema.get("required", [])), 0, rows)
    text = json.dumps(schema, indent=2, ensure_ascii=False)
    return "\n".join([f"*{schema['title']}* — {schema['description']}", "", *rows, "",
                      f'??? note "The file covsde/schemas/{name}.json"', "", "    ```json",
                      *("    " + line for line in text.splitlines()), "    ```", ""])


def parameters_table() -> str:
    """Each variant with the ``--set`` names it takes (defaults in brackets)."""
    from covsde.derive.variants import CHOICES, DEFAULTS, USES, VARIANTS

    rows = ["| variant | `--set` names (default) |", "|---|---|"]
    for v in VARIANTS:
        names = []
        for n in sorted(USES[v]):
            d = DEFAULTS.get(n, CHOICES[n][0] if n in CHOICES else None)
            names.append(f"`{n}`" + (f" ({d})" if d is not None else ""))
        rows.append(f"| `{v}` | {', '.join(names)} |")
    return "\n".join(rows)


def render(markdown: str) -> str:
    """The page with every marker replaced."""
    def one(mt):
        kind, arg = mt.group(1), mt.group(2)
        if kind == "cli":
            return cli_reference()
        if kind == "schema":
            return schema_page(arg)
        return parameters_table()

    return MARKER.sub(one, markdown)


ROLE = re.compile(r":(?:func|class|mod|meth|data|attr|exc|obj):<code>(~?)([^<]*)</code>")


def plain_roles(html: str) -> str:
    """The docstrings' cross-reference roles (``:func:`~a.b``` and the like) shown as code: ``b``."""
    return ROLE.sub(lambda mt: f"<code>{mt.group(2).rsplit('.', 1)[-1] if mt.group(1) else mt.group(2)}</code>", html)


def on_page_markdown(markdown, page, config, files):  # noqa: ARG001 - the MkDocs hook signature
    return render(markdown)


def on_page_content(html, page, config, files):  # noqa: ARG001 - the MkDocs hook signature
    return plain_roles(html)
