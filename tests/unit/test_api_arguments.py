"""The library's arguments are checked as the CLI's options are (no root, no lab: each check comes before
the lab's state is read): a wrong protocol, a timeout or size out of the CLI's range and an unknown ARP mode
are a UsageError naming the method and the argument (not a CLI flag), a value of the wrong type is said to be
so, and a str given for a list is one item, not its letters."""

from __future__ import annotations

import math
import types

import pytest

from helpers import two_node_topology
from netlab.api import lab as lab_mod
from netlab.api.lab import Lab
from netlab.errors import UsageError
from netlab.model.lab import resolve
from netlab.model.load import parse_yaml
from netlab.model.topology import Topology
from netlab.realize.state import LabState
from netlab.trace import run as run_mod

NOT_UP = "qf-args-never-up"  # never brought up: a check that passes reaches "is not up"


@pytest.mark.parametrize("wrong,message,right", [
    (lambda lab: lab.trace("a", "b", proto="TCP", port=8080), "proto 'TCP': want one of icmp, tcp, udp",
     lambda lab: lab.trace("a", "b", proto="tcp", port=8080)),
    (lambda lab: lab.trace("a", "b", proto="sctp"), "proto 'sctp': want one of icmp, tcp, udp",
     lambda lab: lab.trace("a", "b", proto="udp", port=53)),
    (lambda lab: lab.reach("a", "b", proto="TCP", port=8080), "proto 'TCP': want one of icmp, tcp, udp",
     lambda lab: lab.reach("a", "b", proto="tcp", port=8080)),
    (lambda lab: lab.trace("a", "b", timeout=-1), r"timeout -1 is not in the range 0.1-30 \(seconds\)",
     lambda lab: lab.trace("a", "b", timeout=0.1)),
    (lambda lab: lab.trace("a", "b", timeout=math.nan), "timeout nan is not in the range",
     lambda lab: lab.trace("a", "b", timeout=30)),
    (lambda lab: lab.trace("a", "b", size=-3), r"size -3 is not in the range 1-65000 \(0: a plain echo\)",
     lambda lab: lab.trace("a", "b", size=0)),
    (lambda lab: lab.trace("a", "b", size=65001), "size 65001 is not in the range 1-65000",
     lambda lab: lab.trace("a", "b", size=65000)),
    (lambda lab: lab.reach("a", "b", timeout=0), r"timeout 0 is not in the range 0.05-30 \(seconds\)",
     lambda lab: lab.reach("a", "b", timeout=0.05)),
    (lambda lab: lab.reach("a", "b", timeout=True), "timeout must be a number of seconds, not bool True",
     lambda lab: lab.reach("a", "b", timeout=1)),
    (lambda lab: lab.probe(timeout=-1), r"timeout -1 is not in the range 0.05-30 \(seconds\)",
     lambda lab: lab.probe(timeout=0.05)),
    (lambda lab: lab.probe(timeout=31), "timeout 31 is not in the range 0.05-30",
     lambda lab: lab.probe(timeout=30)),
    (lambda lab: lab.probe(arp="bogus"), "arp 'bogus': want one of auto, real, seeded",
     lambda lab: lab.probe(arp="seeded")),
    (lambda lab: lab.probe(protos=["tcp", "sctp"]), "protos 'sctp': want some of icmp, tcp, udp",
     lambda lab: lab.probe(protos=["tcp", "udp"])),
    (lambda lab: lab.probe(protos="TCP"), "protos 'TCP': want some of icmp, tcp, udp",
     lambda lab: lab.probe(protos="tcp")),
])
def test_a_wrong_argument_is_a_usage_error_naming_it_and_the_cli_range_is_taken(wrong, message, right):
    with pytest.raises(UsageError, match=message):
        wrong(Lab(NOT_UP))
    with pytest.raises(UsageError, match=f"lab '{NOT_UP}' is not up"):  # passed the check: the lab is read
        right(Lab(NOT_UP))


STOPPED = types.SimpleNamespace(deleted=[], ok=True)  # the prober's report, stopped before anything is sent


@pytest.fixture
def probed(monkeypatch):
    """The protocols the prober was asked for, stopped before anything is sent."""
    seen: dict = {}
    lab = resolve(Topology.model_validate(parse_yaml(two_node_topology("tt", pods_per_node=1), "t.yaml").data))
    monkeypatch.setattr(Lab, "model", property(lambda self: lab))
    monkeypatch.setattr(Lab, "_served", lambda self, state=None: lab)  # the lab as up serves it: probe's
    monkeypatch.setattr(Lab, "state", lambda self: LabState(lab="tt", phase="up"))  # whether an up left it halfway
    monkeypatch.setattr("netlab.probe.runner.run", lambda model, **kw: seen.update(kw) or STOPPED)
    return seen


@pytest.mark.parametrize("protos,want", [("tcp", ("tcp",)), ("icmp,udp", ("icmp", "udp")),
                                         (["udp", "tcp", "udp"], ("udp", "tcp"))])
def test_protos_as_a_str_is_one_protocol_not_its_letters(probed, protos, want):
    assert lab_mod.internal_probe(Lab("tt"), protos=protos) is STOPPED
    assert probed["protos"] == want


def test_inspect_sections_as_a_str_is_one_section_not_its_letters(monkeypatch):
    asked: list = []
    monkeypatch.setattr("netlab.trace.sections.section_names", lambda names: asked.append(list(names)) or ())
    monkeypatch.setattr("netlab.api.lab_pods.section_names", lambda names: asked.append(list(names)) or ())
    for sections in ("routes", "routes, neigh"):
        with pytest.raises(UsageError, match="is not up"):
            Lab(NOT_UP).inspect("a", sections)
    assert asked == [["routes"], ["routes", "neigh"]]
    with pytest.raises(UsageError, match="^lab.inspect: sections 'rutes': want some of"):
        monkeypatch.undo()
        Lab(NOT_UP).inspect("a", "rutes")


def test_trace_run_itself_refuses_a_protocol_it_would_send_wrongly():
    lab = resolve(Topology.model_validate(parse_yaml(two_node_topology("tt", pods_per_node=1), "t.yaml").data))
    with pytest.raises(UsageError, match="proto 'TCP': want one of icmp, tcp, udp"):
        run_mod.run(lab, "fedora-1", "fedora-2", proto="TCP", port=8080)


@pytest.mark.parametrize("wrong,message", [
    (lambda lab: lab.impair("a:eth0", rate="fast"), "lab.impair: rate: 'fast' is not a rate"),
    (lambda lab: lab.impair("a:eth0", jitter="5ms"), "lab.impair: jitter varies a delay: give delay too"),
    (lambda lab: lab.impair("a:eth0", loss="0%"), "lab.impair: loss: '0%' drops nothing: leave loss out"),
    (lambda lab: lab.impair("a:eth0"), "lab.impair: say what to do: rate, delay, jitter, loss, or clear"),
    (lambda lab: lab.impair("a:eth0", clear=True, rate="1mbit"),
     "lab.impair: clear takes no rate, delay, jitter or loss"),
    (lambda lab: lab.impair("a", rate="1mbit"), "lab.impair: 'a': write the target as NAME:IFACE"),
    (lambda lab: lab.reach("a", "b", proto="TCP"), "lab.reach: proto 'TCP': want one of icmp, tcp, udp"),
    (lambda lab: lab.reach("a", "b", port=0), "lab.reach: port 0 is not in the range 1-65535"),
    (lambda lab: lab.trace("a", "b", timeout=-1), "lab.trace: timeout -1 is not in the range 0.1-30 (seconds)"),
    (lambda lab: lab.trace("a", "b", size=-3), "lab.trace: size -3 is not in the range 1-65000 (0: a plain echo)"),
    (lambda lab: lab.probe(arp="bogus"), "lab.probe: arp 'bogus': want one of auto, real, seeded"),
    (lambda lab: lab.probe(protos=["sctp"]), "lab.probe: protos 'sctp': want some of icmp, tcp, udp"),
])
def test_a_library_error_names_the_method_and_its_argument_not_a_cli_flag(wrong, message):
    """``lab.impair(rate="fast")`` said ``--rate: ...``, a flag of the CLI the caller never typed; as
    ``lab.break_`` does, each method's argument errors now start with the method and name its argument."""
    with pytest.raises(UsageError) as err:
        wrong(Lab(NOT_UP))
    assert str(err.value).startswith(message) and "--" not in str(err.value)


@pytest.mark.parametrize("args,message", [
    (("fast", None, None, None, False), "--rate: 'fast' is not a rate"),
    ((None, None, "5ms", None, False), "--jitter varies a delay: give --delay too"),
    ((None, None, None, None, False), "say what to do: --rate, --delay, --jitter, --loss, or --clear"),
    (("1mbit", None, None, None, True), "--clear takes no --rate, --delay, --jitter or --loss"),
])
def test_the_cli_keeps_its_flag_names(args, message):
    from netlab.api.impair import options

    with pytest.raises(UsageError) as err:
        options(*args)
    assert str(err.value).startswith(message)


@pytest.mark.parametrize("wrong,message", [
    (lambda lab: lab.reach("client", "web-2", proto="tcp", port="8080"),
     "lab.reach: port must be an integer, not str '8080'"),
    (lambda lab: lab.reach("a", "b", port=8080.0), "lab.reach: port must be an integer, not float 8080.0"),
    (lambda lab: lab.reach("a", "b", port=True), "lab.reach: port must be an integer, not bool True"),
    (lambda lab: lab.trace("a", "b", port="80"), "lab.trace: port must be an integer, not str '80'"),
    (lambda lab: lab.trace("a", "b", sport="4000"), "lab.trace: sport must be an integer, not str '4000'"),
    (lambda lab: lab.trace("a", "b", size="100"), "lab.trace: size must be an integer, not str '100'"),
    (lambda lab: lab.reach("a", "b", timeout="1"), "lab.reach: timeout must be a number of seconds, not str '1'"),
    (lambda lab: lab.probe(timeout=None), "lab.probe: timeout must be a number of seconds, not NoneType None"),
    (lambda lab: lab.logs("a", tail="5"), "lab.logs: tail must be an integer, not str '5'"),
])
def test_an_argument_of_the_wrong_type_is_said_to_be_so_not_out_of_range(wrong, message):
    """``port="8080"`` was "port '8080' is not in the range 1-65535": the number is in the range, its type is
    what is wrong."""
    with pytest.raises(UsageError) as err:
        wrong(Lab(NOT_UP))
    assert str(err.value) == message
