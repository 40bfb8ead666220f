"""The API checks a port's range before anything is sent: a UsageError, as the CLI's 1-65535 (no root)."""

from __future__ import annotations

import pytest

from netlab import Lab
from netlab.api import reach as reach_mod
from netlab.errors import UsageError
from netlab.model.lab import resolve
from netlab.model.load import parse_yaml
from netlab.model.topology import Topology

from helpers import two_node_topology


def _never(*args, **kwargs):
    raise AssertionError("something was sent or read before the port was checked")


@pytest.fixture
def lab(monkeypatch):
    """A Lab object whose state is never read and whose probes and traces are never run."""
    monkeypatch.setattr(Lab, "model", property(_never))
    monkeypatch.setattr("netlab.probe.runner.run_probes", _never)
    monkeypatch.setattr("netlab.trace.run.run", _never)
    return Lab("fxeport")


@pytest.mark.parametrize("port", [0, 70000, -1, 65536])
def test_reach_refuses_a_port_out_of_range(lab, port):
    with pytest.raises(UsageError, match=rf"port {port} is not in the range 1-65535"):
        lab.reach("a", "b", proto="tcp", port=port)
    with pytest.raises(UsageError, match=rf"port {port} is not in the range 1-65535"):
        lab.reach("a", "b", port=port)


@pytest.mark.parametrize("port", [0, 70000])
def test_trace_refuses_a_port_out_of_range(lab, port):
    with pytest.raises(UsageError, match=rf"^lab.trace: port {port} is not in the range 1-65535$"):
        lab.trace("a", "b", proto="tcp", port=port)


@pytest.mark.parametrize("sport", [-1, 65536, 70000])
def test_trace_refuses_a_source_port_out_of_range(lab, sport):
    with pytest.raises(UsageError, match=rf"sport {sport} is not in the range 1-65535 \(0: any\)"):
        lab.trace("a", "b", proto="tcp", port=80, sport=sport)


def test_a_port_that_is_no_number_is_a_usage_error(lab):
    with pytest.raises(UsageError, match="^lab.reach: port must be an integer, not str '80'$"):
        lab.reach("a", "b", port="80")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="^lab.trace: port must be an integer, not bool True$"):
        lab.trace("a", "b", port=True)


def test_the_module_function_checks_too():
    model = resolve(Topology.model_validate(parse_yaml(two_node_topology("tt"), "t.yaml").data))
    with pytest.raises(UsageError, match="port 70000 is not in the range 1-65535"):
        reach_mod.reach(model, "fedora-1", "fedora-2", "tcp", 70000)


def test_ports_in_range_pass_the_check():
    for port in (None, 1, 80, 65535):
        reach_mod.check_port("port", port)
    reach_mod.check_port("sport", 0, zero_ok=True)
