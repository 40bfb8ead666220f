"""A namespace deleted while a trace runs, on a real lab (root): NetnsGone, as every other netlab command says it.

The trace's step hook deletes the source pod's namespace (`ip netns del`) after the trace checked it and opened
its captures, before it sends the packet from a socket in it: the kernel's own view then has no such namespace."""

from __future__ import annotations

import subprocess

import pytest

from helpers import ip
from netlab import Lab
from netlab.errors import NetnsGone

pytestmark = pytest.mark.root


def test_the_source_namespace_deleted_before_the_packet_is_sent_is_netns_gone(labs):
    lab = labs.name("pt")
    labs.up(f"name: {lab}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1}}, {{name: b, node: n1}}]\n")
    running = Lab(lab)
    assert running.trace("a", "b").delivered
    steps: list[int] = []

    def step(what: str, i: int, n: int) -> None:
        steps.append(i)
        if i == 1:  # the captures are open in every namespace; nothing was sent yet
            subprocess.run(["ip", "netns", "del", f"{lab}-a"], check=True)

    with pytest.raises(NetnsGone) as err:
        running.trace("a", "b", progress=step)
    assert steps == [0, 1] and err.value.netns == f"{lab}-a", (steps, err.value)
    assert str(err.value) == (f"namespace {lab}-a was deleted while lab {lab} is up; "
                              f"`Lab({lab!r}).repair()` makes it again")  # a Lab's: the Python call
    assert f"{lab}-a" not in ip("netns", "list").stdout.split()
