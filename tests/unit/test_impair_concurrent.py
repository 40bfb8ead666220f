"""Commands that change one lab one after another compose: each edits the lab's state as the previous holder of
the lab's lock left it (QA q39, defects 1 and 2). `netlab impair` read the lab's topology before it waited for the
lock and applied that copy after: three impairs at once kept only the last one's rate ("removed rate 6mbit ...
(no longer in the topology)"), and an impair that waited for another terminal's `up -t FILE` moved the file's pod
back and put back a rate the file had removed.

The fake kernel; the impairments' qdiscs are a dict (tc stubbed, as test_impair_rollback.py). The other command
runs whole at the moment the first one asks for the lab's lock (the hook), as if it held the lock while the first
waited: the order of the real race, made deterministic. Real processes: tests/integration/test_impair_concurrent_live.py.
"""

from __future__ import annotations

import pytest
from fake_lab import TOPO, machine_holds, make_lab

from netlab.api import impair as impair_api, lifecycle
from netlab.api.topology import load_running
from netlab.feature import RecordedFeature
from netlab.impair import lifecycle as feature
from netlab.kernel import tc
from netlab.kernel.fake import FakeKernel
from netlab.lab import up as lab_up
from netlab.lab.journal import Journal
from netlab.model.impair import Impairment
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.realize.lab_lock import LabLock
from netlab.realize.state import load_state

lab = pytest.fixture(make_lab, name="lab")
MOVED = TOPO.replace("{name: b, node: n2, ip: 10.244.1.3}", "{name: b, node: n1, ip: 10.244.0.3}")


class Lab:
    """Lab fk (fake_lab.TOPO, from its file t.yaml) up on a fake kernel, with the impairments feature; its
    interfaces' root qdiscs in ``qdiscs``."""

    def __init__(self, tmp_path, monkeypatch):
        self.kernel = FakeKernel()
        self.path = str(tmp_path / "t.yaml")
        self.qdiscs: dict[tuple[str, str], tc.Shaping] = {}
        self.features = [RecordedFeature("netlab.impair.lifecycle", records="impair")]
        monkeypatch.setattr(feature, "_observe", lambda targets: {k: self.qdiscs.get(k, tc.Shaping())
                                                                   for k in targets})
        monkeypatch.setattr(feature.tc, "replace_root", self.replace_root)
        monkeypatch.setattr(feature.tc, "delete_root", lambda ns, iface: self.qdiscs.pop((ns, iface), None))
        # impair's up on this kernel (the real one's doctor and features are not this test's)
        monkeypatch.setattr(lifecycle, "up", lambda lab, source=None, wait=60.0, running=None, **kw: lab_up.up(
            lab, self.kernel, self.features, source, wait=wait, journal=Journal(self.kernel), running=running))
        monkeypatch.setattr(lifecycle, "up_held", lambda lab, source=None, features=None: lab_up.up_held(
            lab, self.kernel, self.features, source), raising=False)
        machine_holds(monkeypatch, self.kernel)
        self.up_file()

    def replace_root(self, ns, iface, rate_bits, delay_us=None, jitter_us=None):
        self.qdiscs[(ns, iface)] = tc.Shaping(rate_bits=rate_bits, delay_us=delay_us, jitter_us=jitter_us)

    def up_file(self) -> lab_up.UpResult:
        """`netlab up -t t.yaml`"""
        return lab_up.up(resolve(load_topology(self.path)), self.kernel, self.features, self.path,
                         journal=Journal(self.kernel))

    def rate(self, ns: str, iface: str = "eth0") -> int | None:
        return self.qdiscs.get((ns, iface), tc.Shaping()).rate_bits


def impair(name: str, rate: str) -> impair_api.Impaired:
    return impair_api.impair("fk", name, "eth0", Impairment(rate=rate))


def first_waits_for(monkeypatch, other) -> list[str]:
    """``other()`` runs whole when the next command asks impair's module for the lab's lock: it held the lab
    while that command waited. Returns what ran, for the test to see that the hook was met."""
    ran: list[str] = []

    class Held(LabLock):
        def __enter__(self):
            if not ran:
                ran.append("other")
                other()
            return super().__enter__()

    monkeypatch.setattr(impair_api, "LabLock", Held)
    return ran


def impairs(state) -> dict[str, dict]:
    return {p["name"]: p.get("impair", {}) for p in state.topology["pods"]}


def test_two_impairs_at_once_keep_both_rates(lab, tmp_path, monkeypatch):
    fk = Lab(tmp_path, monkeypatch)
    ran = first_waits_for(monkeypatch, lambda: impair("b", "7mbit"))
    done = impair("a", "6mbit")  # read the lab, then waited while the other impair held it
    assert ran == ["other"]
    assert not [line for line in done.up.fixed if "removed" in line], done.up.fixed  # b's 7mbit kept
    assert (fk.rate("fk-a"), fk.rate("fk-b")) == (6_000_000, 7_000_000)
    state = load_state("fk")
    assert impairs(state) == {"a": {"eth0": {"rate": "6mbit"}}, "b": {"eth0": {"rate": "7mbit"}}}
    runtime = feature.runtime(state)  # `netlab impair` shows each as set at run time (set_at)
    assert sorted(runtime) == ["fk-a:eth0", "fk-b:eth0"] and all(v.get("at") for v in runtime.values())


def test_an_impair_that_waited_for_up_from_a_file_keeps_what_that_up_did(lab, tmp_path, monkeypatch):
    fk = Lab(tmp_path, monkeypatch)
    impair("a", "2mbit")
    assert fk.rate("fk-a") == 2_000_000

    def up_moved():  # another terminal: the file now puts b on n1, and has no rate for a
        with open(fk.path, "w") as f:
            f.write(MOVED)
        fk.up_file()

    ran = first_waits_for(monkeypatch, up_moved)
    done = impair("b", "3mbit")
    assert ran == ["other"]
    assert not [line for line in done.up.fixed if "moves" in line or "set rate 2mbit" in line], done.up.fixed
    state = load_state("fk")
    assert {p["name"]: p["node"] for p in state.topology["pods"]} == {"a": "n1", "b": "n1"}
    assert impairs(state) == {"a": {}, "b": {"eth0": {"rate": "3mbit"}}}
    assert (fk.rate("fk-a"), fk.rate("fk-b")) == (None, 3_000_000)
    assert sorted(feature.runtime(state)) == ["fk-b:eth0"]


def test_up_of_the_saved_topology_converges_to_it_as_it_is_when_it_holds_the_lab(lab, tmp_path, monkeypatch):
    """`up --lab fk` (Lab.repair) read the saved topology, then waited while an impair changed it: it converged
    to the copy it read, and took the impair's rate off again."""
    fk = Lab(tmp_path, monkeypatch)
    loaded = load_running("fk")  # read before the wait
    impair("b", "7mbit")  # the holder it waited for
    done = lab_up.up(loaded.lab, fk.kernel, fk.features, loaded.source, journal=Journal(fk.kernel),
                     running=loaded.run_id)
    assert not done.fixed, done.fixed
    assert fk.rate("fk-b") == 7_000_000
    assert impairs(load_state("fk"))["b"] == {"eth0": {"rate": "7mbit"}}
