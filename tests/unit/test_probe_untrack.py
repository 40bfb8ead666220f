"""Which conntrack entries a probe run deletes at its end (untrack.py), by exact original tuple.

The kernel side (the entries really go, and the next run's flows are new) is
tests/integration/test_netpol.py::test_each_probe_run_judges_new_udp_flows;
here the tuples: the right source address and port for each kind of flow.
"""

from __future__ import annotations

import socket

from netlab.kernel import conntrack
from netlab.probe import agent, untrack
from netlab.probe.tasks import Job, Observation, Task

UDP, TCP = socket.IPPROTO_UDP, socket.IPPROTO_TCP


def untracked(tasks, obs, self_ip, route_src, monkeypatch, entries=None):
    """``entries``: namespace -> the (original, reply) tuples its conntrack holds, as conntrack.tuples reads them."""
    deleted: dict[str, list[conntrack.Flow]] = {}
    monkeypatch.setattr(conntrack, "delete_flows", lambda ns, flows: deleted.setdefault(ns, []).extend(flows))
    monkeypatch.setattr(conntrack, "tuples", lambda ns, proto: (entries or {}).get(ns, []))
    job = Job(tasks=tasks, units=[], home="u-underlay", untrack=["u-n1", "u-n2"])
    counts = untrack.untrack(job, obs, self_ip, route_src)
    return counts, deleted


def test_answered_udp_and_unanswered_service_flows_go_in_every_node(monkeypatch):
    tasks = [Task(0, "u-a", "10.244.0.3", "udp", 80),                 # pod -> pod, answered
             Task(1, "u-a", "10.244.0.4", "udp", 81),                 # pod -> pod, no answer: nothing to hold
             Task(2, "u-n1", "10.244.0.3", "udp", 80),                # node -> pod, answered
             Task(3, "u-a", "10.244.0.3", "tcp", 80),                 # TCP: a new SYN reopens a closed entry
             Task(4, "u-a", "10.96.0.10", "udp", 53, service=True),   # Service UDP, answered
             Task(5, "u-a", "10.96.0.20", "tcp", 80, service=True),   # Service, no answer: its NAT decision goes
             Task(6, "u-a", "10.96.0.21", "tcp", 80, service=True)]   # Service, answered: its DNAT goes too
    obs = {0: Observation("reply", local=":40001"), 1: Observation("timeout", local=":40001"),
           2: Observation("reply", local=":40002"), 3: Observation("reply", local="10.244.0.2:50000"),
           4: Observation("reply", local="10.244.0.2:61001"), 5: Observation("timeout", local="10.244.0.2:61002"),
           6: Observation("reply", local="10.244.0.2:61003")}
    counts, deleted = untracked(tasks, obs, {"u-a": "10.244.0.2"}, {("u-n1", "10.244.0.3"): "10.244.0.1"},
                                monkeypatch)
    assert counts == (1, 3)
    want = [conntrack.Flow(TCP, "10.244.0.2", 61002, "10.96.0.20", 80),
            conntrack.Flow(UDP, "10.244.0.2", 40001, "10.244.0.3", 80),
            conntrack.Flow(UDP, "10.244.0.1", 40002, "10.244.0.3", 80),  # the node's route picks cni0's address
            conntrack.Flow(UDP, "10.244.0.2", 61001, "10.96.0.10", 53),  # kept its endpoint: a later flow too
            # its endpoint in its reply tuple: a later flow from the port to another address of it would clash
            conntrack.Flow(TCP, "10.244.0.2", 61003, "10.96.0.21", 80)]
    assert deleted == {"u-n1": want, "u-n2": want}


def test_nothing_to_delete_asks_the_kernel_nothing(monkeypatch):
    tasks = [Task(0, "u-a", "10.244.0.3", "icmp"), Task(1, "u-a", "10.244.0.3", "udp", 80)]
    obs = {0: Observation("reply", local="10.244.0.2"), 1: Observation("refused", local=":40001")}
    assert untracked(tasks, obs, {"u-a": "10.244.0.2"}, {}, monkeypatch) == ((0, 0), {})


def _t(src: str, sport: int, dst: str, dport: int) -> dict[str, str]:
    return {"src": src, "sport": str(sport), "dst": dst, "dport": str(dport)}


def test_what_a_masquerade_made_of_an_unanswered_service_flow_goes_too(monkeypatch):
    """A NodePort's node sends a connection on to the endpoint from its own address and a port it picks at random
    (--random-fully), and the endpoint's node tracks it under that tuple: left there (SYN_SENT, 2 minutes) when the
    SYN was lost, a later run's connection that the masquerade gives the same port met it and had its ACKs dropped
    as INVALID. Read from the entries before they go; the load balancer's translation is followed too."""
    tasks = [Task(0, "u-ex", "192.168.122.2", "tcp", 30080, service=True),  # a NodePort, from outside
             Task(1, "u-ex", "203.0.113.100", "tcp", 80, service=True),     # the load balancer, then a NodePort
             Task(2, "u-ex", "192.168.122.3", "tcp", 30080, service=True)]  # answered: its tuple, none to follow
    obs = {0: Observation("timeout", local="203.0.113.10:61001"), 1: Observation("timeout", local="203.0.113.10:61002"),
           2: Observation("reply", local="203.0.113.10:61003")}
    entries = {
        "u-n1": [(_t("203.0.113.10", 61001, "192.168.122.2", 30080), _t("10.244.1.2", 8080, "10.244.0.0", 4242)),
                 (_t("203.0.113.9", 7777, "192.168.122.2", 30081), _t("10.244.1.2", 8080, "10.244.0.0", 999))],
        "u-n2": [(_t("10.244.0.0", 4242, "10.244.1.2", 8080), _t("10.244.1.2", 8080, "10.244.0.0", 4242)),
                 (_t("203.0.113.10", 61003, "192.168.122.3", 30080), _t("10.244.1.2", 8080, "10.244.1.1", 5))],
        "u-lb": [(_t("203.0.113.10", 61002, "203.0.113.100", 80), _t("192.168.122.2", 30081, "203.0.113.9", 7777))],
    }
    job_untrack = ["u-n1", "u-n2", "u-lb"]
    deleted: dict[str, list[conntrack.Flow]] = {}
    monkeypatch.setattr(conntrack, "delete_flows", lambda ns, flows: deleted.setdefault(ns, []).extend(flows))
    monkeypatch.setattr(conntrack, "tuples", lambda ns, proto: entries.get(ns, []) if proto == TCP else [])
    job = Job(tasks=tasks, units=[], home="u-underlay", untrack=job_untrack)
    assert untrack.untrack(job, obs, {}, {}) == (2, 0)
    want = [conntrack.Flow(TCP, "203.0.113.10", 61001, "192.168.122.2", 30080),
            conntrack.Flow(TCP, "203.0.113.10", 61002, "203.0.113.100", 80),
            conntrack.Flow(TCP, "10.244.0.0", 4242, "10.244.1.2", 8080),     # node-1's masquerade, to web-2
            conntrack.Flow(TCP, "203.0.113.9", 7777, "192.168.122.2", 30081),  # the balancer's, to node-1
            conntrack.Flow(TCP, "10.244.0.0", 999, "10.244.1.2", 8080),      # and node-1's after it
            conntrack.Flow(TCP, "203.0.113.10", 61003, "192.168.122.3", 30080)]  # answered: its own tuple only
    assert deleted == {ns: want for ns in job_untrack}


def test_onward_follows_each_translation_once():
    flow = conntrack.Flow(TCP, "10.244.0.2", 61000, "10.96.0.20", 80)
    dnat = (_t("10.244.0.2", 61000, "10.96.0.20", 80), _t("10.244.1.2", 8080, "10.244.0.2", 61000))
    plain = (_t("10.244.0.2", 61000, "10.244.1.2", 8080), _t("10.244.1.2", 8080, "10.244.0.2", 61000))
    assert conntrack.onward([flow], [dnat, plain]) == [conntrack.Flow(TCP, "10.244.0.2", 61000, "10.244.1.2", 8080)]
    assert conntrack.onward([flow], [plain]) == []  # no entry of the flow: nothing known of where it went
    # The sender's namespace tracks the flow too, untranslated (a node's own connection to another's NodePort):
    # that entry says nothing, the NodePort node's does (a map keyed by the flow kept only the last one read).
    sent = (_t("10.244.0.2", 61000, "10.96.0.20", 80), _t("10.96.0.20", 80, "10.244.0.2", 61000))
    for entries in ([sent, dnat], [dnat, sent]):
        assert conntrack.onward([flow], entries) == [conntrack.Flow(TCP, "10.244.0.2", 61000, "10.244.1.2", 8080)]
    loop = (_t("10.244.0.2", 61000, "10.244.1.2", 8080), _t("10.96.0.20", 80, "10.244.0.2", 61000))  # back to it
    assert conntrack.onward([flow], [dnat, loop]) == [conntrack.Flow(TCP, "10.244.0.2", 61000, "10.244.1.2", 8080)]


def test_a_stopped_runs_open_connections_go_as_unanswered_ones(monkeypatch):
    """Stopped mid-run, the workers give back the connections they had not judged (task id -> "ip:port"): each goes
    by its own tuple, a Service's towards each endpoint too; a judged one by the usual rule; one with no source
    address known (0.0.0.0, nothing bound yet) is left."""
    tasks = [Task(0, "u-a", "10.244.1.3", "tcp", 8080),                  # open: a SYN with no answer yet
             Task(1, "u-a", "10.96.0.20", "tcp", 80, service=True, behind=(("10.244.1.3", 8080),)),
             Task(2, "u-a", "10.244.0.3", "tcp", 8080),                  # judged before the stop: RST-closed
             Task(3, "u-a", "10.244.0.4", "tcp", 8080)]                  # open, its address not known
    obs = {2: Observation("reply", local="10.244.0.2:50002")}
    unfinished = {0: "10.244.0.2:50000", 1: "10.244.0.2:61001", 3: "0.0.0.0:50003"}
    deleted: dict[str, list[conntrack.Flow]] = {}
    monkeypatch.setattr(conntrack, "delete_flows", lambda ns, flows: deleted.setdefault(ns, []).extend(flows))
    monkeypatch.setattr(conntrack, "tuples", lambda ns, proto: [])
    job = Job(tasks=tasks, units=[], home="u-underlay", untrack=["u-n1", "u-n2"])
    assert untrack.untrack(job, obs, {"u-a": "10.244.0.2"}, {}, unfinished) == (1, 0)
    want = [conntrack.Flow(TCP, "10.244.0.2", 50000, "10.244.1.3", 8080),
            conntrack.Flow(TCP, "10.244.0.2", 61001, "10.96.0.20", 80),
            conntrack.Flow(TCP, "10.244.0.2", 61001, "10.244.1.3", 8080)]
    assert deleted == {"u-n1": want, "u-n2": want}


def test_the_agents_first_stop_signal_holds_off_the_next_until_its_clean_up_is_done():
    """A terminal's Ctrl-C reaches the agent and its parent, which sends SIGTERM at once: raised while the first
    KeyboardInterrupt unwound, the second cut the sweep and the conntrack clean-up before they began."""
    import signal

    import pytest

    from netlab import signals

    old = {sig: signal.getsignal(sig) for sig in signals.STOPPING}
    try:
        for sig in signals.STOPPING:
            signal.signal(sig, agent._stop)
        with pytest.raises(KeyboardInterrupt, match="SIGINT"):
            agent._stop(signal.SIGINT, None)
        # Dropped by a handler of Python's, not SIG_IGN (tests/unit/test_probe_agent_signals.py): the next ones do
        # nothing, the parent's SIGTERM as a second Ctrl-C.
        assert [signal.getsignal(sig) for sig in signals.STOPPING] == [signals.ignore] * 3  # SIGINT, SIGTERM, SIGHUP
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGHUP)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def test_a_stop_signal_during_the_runs_own_clean_up_does_not_cut_it(monkeypatch):
    """The probes done, the agent deletes its flows' conntrack entries, then sweeps the neighbour entries the run
    made. A stop signal then (the parent's SIGTERM to an early agent the run did not claim, probe/early.py close(),
    or a Ctrl-C as the run ends) raised KeyboardInterrupt in the middle: the sweep never ran, and the run's entries
    stayed in the machine's neighbour table (CI: test_probe_early, a kept job not the run's, entries left)."""
    import signal
    import types

    from netlab import signals

    calls: list[str] = []

    class Leader:
        obs: dict = {}

        def __init__(self, *args):
            pass

        def run(self):
            return types.SimpleNamespace(obs={}, stats={"peak_entries": 0, "peak_live": 0})

        def unfinished(self):
            return {}

        def close(self):
            pass

    def untracked(*args, **kwargs):
        calls.append("untrack")
        signal.raise_signal(signal.SIGTERM)  # the parent's, as the clean-up begins
        return 0, 0

    def sweep(self, until=None):
        calls.append("sweep")
        return 0

    monkeypatch.setattr(agent, "Worker", Leader)
    monkeypatch.setattr(agent.nb, "table_stats", lambda: None)
    monkeypatch.setattr(untrack, "untrack", untracked)
    monkeypatch.setattr(agent.Sweeper, "sweep", sweep)
    job = types.SimpleNamespace(sweep=[], self_ip={}, units=[], route_src=[], tasks=[], workers=1, budget=64,
                                timeout=1.0)
    old = {sig: signal.getsignal(sig) for sig in signals.STOPPING}
    try:
        for sig in signals.STOPPING:
            signal.signal(sig, agent._stop)  # run_job's, in the agent's process
        try:
            out = agent.Agent(job).run()
        except KeyboardInterrupt as exc:  # not pytest's own: the run's clean-up was cut
            raise AssertionError(f"the clean-up was cut after {calls}: {exc}") from None
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    assert calls == ["untrack", "sweep"] and out.stats["swept"] == 0
