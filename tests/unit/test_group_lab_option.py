"""A group's --lab / -t reaches its subcommands: `netlab quiz --lab L answer X` answers L (QA q28 #1), as
`netlab quiz answer X --lab L` does; it answered (and repaired) the lab of $NETLAB_LAB or the only lab up."""

from __future__ import annotations

import os

import click
import pytest

from test_cli_surface import LAB_COMMANDS


def _groups_with_lab():
    import importlib

    from netlab.cli.base import COMMANDS, cli

    for module in set(COMMANDS.values()):
        importlib.import_module(module)

    def walk(group, path=()):
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                yield (*path, name), command
                yield from walk(command, (*path, name))

    return [(path, g) for path, g in walk(cli) if any(p.name == "lab_name" for p in g.params)]


def _subcommands_of_groups_with_lab():
    return [(*path, name) for path, g in _groups_with_lab() for name in g.commands]


def test_quiz_is_a_group_with_lab():
    assert ("quiz",) in [path for path, _ in _groups_with_lab()]


@pytest.mark.parametrize("words", _subcommands_of_groups_with_lab(), ids=" ".join)
def test_a_groups_lab_reaches_each_subcommand(words, monkeypatch, state_root):
    """Each subcommand of a group that takes --lab takes it too, and the group's --lab (before the subcommand's
    name) is the subcommand's: checked (a bad name refused, exit 2) and used (over $NETLAB_LAB)."""
    from cli_inprocess import run_cli

    assert words in LAB_COMMANDS, f"{' '.join(words)}: its group takes --lab, so it must too"
    group, sub = words[:-1], words[-1:]
    args = LAB_COMMANDS[words]
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.delenv("NETLAB_LAB", raising=False)
    got = run_cli(*group, "--lab", "../y", *sub, *args)
    assert got.returncode == 2 and "--lab '../y' is not a DNS label" in got.stderr, got
    monkeypatch.setenv("NETLAB_LAB", "rgother1")  # the variable is the default; the typed --lab wins
    got = run_cli(*group, "--lab", "rgnone1", *sub, *args)
    assert got.returncode == 2 and "rgnone1" in got.stderr and "rgother1" not in got.stderr, got
    got = run_cli(*group, "-t", "/nonexistent/rg.yaml", *sub, *args)
    assert got.returncode == 2 and "/nonexistent/rg.yaml" in got.stderr, got


@pytest.mark.parametrize("words", _subcommands_of_groups_with_lab(), ids=" ".join)
def test_a_lab_named_twice_differently_is_refused(words, monkeypatch, state_root):
    from cli_inprocess import run_cli

    group, sub = words[:-1], words[-1:]
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    got = run_cli(*group, "--lab", "rgone1", *sub, *LAB_COMMANDS[words], "--lab", "rgtwo1")
    assert got.returncode == 2 and got.stderr.count("\n") == 1 and "rgone1" in got.stderr \
        and "rgtwo1" in got.stderr, got
    got = run_cli(*group, "--lab", "rgone1", *sub, *LAB_COMMANDS[words], "--lab", "rgone1")  # the same: fine
    assert got.returncode == 2 and "rgone1" in got.stderr and "named twice" not in got.stderr, got


def test_quiz_answer_after_its_lab(monkeypatch, state_root):
    """`quiz answer X --lab L` names L too (the other order)."""
    from cli_inprocess import run_cli

    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setenv("NETLAB_LAB", "rgother1")
    got = run_cli("quiz", "answer", "pod-mtu-too-big", "--lab", "rgnone1")
    assert got.returncode == 2 and "rgnone1" in got.stderr and "rgother1" not in got.stderr, got


def test_quiz_seed_with_answer_is_refused(monkeypatch, state_root):
    """--seed picks a new quiz's fault; given before `answer` it would be dropped unsaid."""
    from cli_inprocess import run_cli

    monkeypatch.setattr(os, "geteuid", lambda: 0)
    got = run_cli("quiz", "--lab", "rgnone1", "--seed", "7", "answer", "pod-mtu-too-big")
    assert got.returncode == 2 and "--seed" in got.stderr and got.stderr.count("\n") == 1, got
