"""A small lab against the fake kernel (no root), shared by the lab lifecycle's unit tests
(test_lab_fake.py, test_lab_fake_changes.py): its topology, the ``lab`` fixture (state in the test's
tmp dir), and ``up``/``status`` as netlab.lab runs them, without features."""

from __future__ import annotations

from netlab.lab import status as lab_status
from netlab.lab import up as lab_up
from netlab.lab.journal import Journal
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.realize import state as state_mod, state_dir

TOPO = """name: fk
nodes:
  - {name: n1, ip: 192.168.122.215, podCIDR: 10.244.0.0/24}
  - {name: n2, ip: 192.168.122.7, podCIDR: 10.244.1.0/24}
pods:
  - {name: a, node: n1, ip: 10.244.0.2}
  - {name: b, node: n2, ip: 10.244.1.3}
"""


def make_lab(tmp_path, monkeypatch):
    """The lab of TOPO, its state kept under the test's tmp dir (each module: lab = pytest.fixture(make_lab,
    name="lab"))."""
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))
    path = tmp_path / "t.yaml"
    path.write_text(TOPO)
    return resolve(load_topology(str(path)))


def machine_holds(monkeypatch, kernel) -> None:
    """The machine's namespaces (what `netlab list` reads to tell a lab `gone`: realize.state.gone) are the fake
    kernel's: a lab up on it is not gone (the unit tests' machine has none: conftest)."""
    from netlab.kernel import netns as nsmod

    monkeypatch.setattr(nsmod, "list_netns", lambda: sorted(kernel.ns))
    monkeypatch.setattr(nsmod, "read_tag", kernel.read_tag)


def probed_with_one_gone(lab, monkeypatch, gone: str) -> list:
    """The lab up on the fake kernel, namespace ``gone`` deleted behind netlab's back (held: what is in it works
    on); the agent stood in for: every probe it is given is answered, every pod's eth0 read. Returns the list the
    probes it is given go to."""
    from netlab.kernel.fake import FakeKernel
    from netlab.probe import listeners, runner
    from netlab.probe.tasks import Observation, Output

    kernel = FakeKernel()
    up(lab, kernel)
    machine_holds(monkeypatch, kernel)
    monkeypatch.setattr(runner, "is_netns_mount", lambda ns: ns != gone)
    given: list = []

    def send(model, probes, timeout, arp, budget=None, dists=(), workers=0, early=None):
        given.extend(probes)
        obs = {i: Observation(outcome="reply") for i in range(len(probes))}
        return Output(obs, {p.netns: str(p.ip) for p in model.pods}, {}, {}), listeners.Listeners(0)

    monkeypatch.setattr(runner, "_send", send)
    return given


def up(lab, kernel, **kw):  # noqa: F811 - lab: the fixture's value
    return lab_up.up(lab, kernel, features=(), journal=Journal(kernel, **kw))


def status(lab, kernel):  # noqa: F811
    return lab_status.status(state_mod.load_state(lab.name), kernel)


class IdleFeature:
    """A feature that does nothing: its start is one step of a run's journal (after the network, after the
    namespaces a run removes), where a test can fail the run."""

    name = "idle"

    def preflight(self, lab):
        pass

    def start_early(self, lab, state):
        return None

    def abort_early(self, handle):
        pass

    def start(self, lab, state, early=None):
        from netlab.feature import StartResult

        return StartResult()

    def stop_early(self, state):
        return None

    def stop(self, state, netns_names, everything=False, early=None):
        return []

    def drift(self, lab, state):
        return []
