"""Every option of every command says what it is (and its default): the CLI describes itself."""
from __future__ import annotations

import argparse

from covsde.cli import build_parser, common, reproduce as cli_reproduce


def subparsers(parser):
    """{command: its parser} for every subcommand of ``parser``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def missing_help(parser):
    """Problems of one parser: options without help, or with a default the help does not mention."""
    problems = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        name = "/".join(action.option_strings) or action.dest
        text = action.help or ""
        if not text.strip() or text == argparse.SUPPRESS:
            problems.append(f"{name}: no help")
        elif action.option_strings and action.default not in (None, False, [], argparse.SUPPRESS) \
                and "default" not in text:
            problems.append(f"{name}: default {action.default!r} not mentioned")
    return problems


def test_every_option_of_every_command_has_help():
    commands = subparsers(build_parser())
    assert set(commands) == {"derive", "simulate", "validate", "suite", "demo", "reproduce", "phase", "train-check"}
    problems = [f"{cmd} {p}" for cmd, sub in commands.items() for p in missing_help(sub)]
    assert problems == []
    for cmd, sub in commands.items():
        assert sub.description and "examples:" in sub.epilog, cmd


def test_the_walker_catches_an_option_without_help():
    """Negative control: an undocumented option and an unmentioned default are both reported."""
    p = argparse.ArgumentParser()
    p.add_argument("--bare")
    p.add_argument("--dt", default="0.01", help="the time step")
    p.add_argument("--ok", default="1", help="fine (default: 1)")
    assert missing_help(p) == ["--bare: no help", "--dt: default '0.01' not mentioned"]


def test_names_written_into_the_help_agree_with_the_library():
    from covsde.derive.variants import NAMES, VARIANTS
    from covsde.reproduce import FIGURES

    assert common.VARIANTS == VARIANTS
    assert common.NAMES == NAMES
    assert cli_reproduce.FIGURE_NAMES == FIGURES
