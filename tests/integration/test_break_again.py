"""netlab break on a real lab (root): the same scenario twice, and conntrack-stale-entry over a client's live flow.

- Every scenario the quiz may pick on the Services example, broken twice on its default target: the second says
  it is broken already, exits 0 and changes nothing the kernel shows (links, routes, neighbours, FDB, sysctls,
  iptables rules and policies, the stale conntrack entry, the pods' processes); `up` repairs. It was "broke"
  again for ip-forward-off, exit 4 "apply failed" for vxlan-arp-missing and forward-policy-drop.
- conntrack-stale-entry right after the client's real DNS query from port 40053 (its entry lives 120 s, UDP's
  assured timeout): `conntrack -I` failed "Such conntrack exists", exit 4. The fault is that live flow steered to
  a gone endpoint: the break replaces its entry, and the client's next query from that port goes unanswered.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from breaking import SERVICES, assert_as_planned, dns_answers, shipped_lab
from helpers import in_netns, netlab
from netlab.breaks import catalogue, quiz
from netlab.breaks.changes import STALE_SPORT, dns_udp, gone_endpoint
from netlab.realize.state import running_lab

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def services_lab(tmp_path_factory):
    with shipped_lab(tmp_path_factory, SERVICES) as lab:
        yield lab


COUNTERS = re.compile(r"\[\d+:\d+\]")
TIMEOUT = re.compile(r"^(\w+\s+\d+\s+)\d+ ")  # conntrack -L's "udp 17 598 src=...": the seconds left


# What namespace_view reads, each a read-only tool's dump, run in one shell in the namespace: one `ip netns exec`
# (a namespace entered, /sys mounted again) costs as much as the reads it runs; the shell prints a NUL between them.
READS = ("ip -j -d link show", "ip -j route show table all", "ip -j neigh show nud permanent",
         "bridge -j fdb show state permanent", "sysctl net.ipv4.ip_forward net.ipv4.conf.all.rp_filter",
         "iptables-save", f"conntrack -L -p udp --sport {STALE_SPORT} || true")  # its exit unchecked, as ever


def namespace_view(ns: str) -> dict:
    """What the kernel holds in one namespace of the lab, as the tools print it (no counters, no timers)."""
    out = in_netns(ns, "sh", "-ec", "; printf '\\0'; ".join(READS), check=True).stdout.split("\0")
    assert len(out) == len(READS), out
    links_out, routes, neigh, fdb, sysctl, iptables, stale = out
    links = json.loads(links_out)
    for link in links:
        link.pop("operstate", None)  # the kernel's own settling (UNKNOWN -> UP), not a change
        for data in (link.get("linkinfo") or {}).values():  # the bridge's and its ports' timers run down
            if isinstance(data, dict):
                for key in [k for k in data if k.endswith("_timer")]:
                    del data[key]
    return {
        "links": links,
        "routes": routes,
        "neigh": neigh,
        "fdb": fdb,
        "sysctl": sysctl,
        "iptables": COUNTERS.sub("", "\n".join(line for line in iptables.splitlines() if not line.startswith("#"))),
        "stale": [TIMEOUT.sub(r"\1", line) for line in stale.splitlines() if line.strip()],
    }


def kernel_view(model) -> dict:
    """What the kernel holds in every namespace of the lab (:func:`namespace_view`), the namespaces read together:
    each read is a handful of short programs that mostly wait for their start."""
    names = [n.netns for n in model.nodes] + [p.netns for p in model.pods]
    with ThreadPoolExecutor(len(names)) as pool:
        return dict(zip(names, pool.map(namespace_view, names)))


def settled_view(model) -> dict:
    """kernel_view once two reads 0.2 s apart agree (at most 10 s): a link set down or a port disabled is settled
    by the kernel's linkwatch after the command returned (carrier, flags, the port's state), on a loaded machine
    long after."""
    view, deadline = kernel_view(model), time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.2)
        again = kernel_view(model)
        if again == view:
            break
        view = again
    return view


def stale_entries(model, client) -> list[str]:
    """conntrack -L in the client's node of the flow client:40053 -> DNS ClusterIP:53 (the break's tuple)."""
    cip, port, _ = dns_udp(model)
    proc = in_netns(model.node(client.node).netns, "conntrack", "-L", "-p", "udp", "-s", str(client.ip),
                    "--sport", str(STALE_SPORT), "-d", cip, "--dport", str(port), check=True)
    return [line for line in proc.stdout.splitlines() if line.strip()]


def pids(model) -> dict:
    """The processes in each pod's namespace (`ip netns pids`, run from outside it)."""
    return {p.name: subprocess.run(["ip", "netns", "pids", p.netns], capture_output=True, text=True,
                                   check=True).stdout for p in model.pods}


def test_every_scenario_broken_again_is_broken_already_and_changes_nothing(services_lab):
    lab, path = services_lab
    model = running_lab(lab).resolved()
    names = [s.name for s in quiz.candidates(model)]
    assert {"ip-forward-off", "vxlan-arp-missing", "forward-policy-drop", "conntrack-stale-entry",
            "endpoint-pod-down"} <= set(names), names
    wrong = []
    for name in names:
        s = catalogue.scenario(name)
        target = catalogue.resolve_target(s, model, None)
        try:
            first = netlab("break", name, "--lab", lab, check=False)
            assert first.returncode == 0 and f"broke {name}" in first.stdout, (name, first.stdout, first.stderr)
            view, running = settled_view(model), pids(model)
            # broken again, in the words a person reads: the line that says so, and what to expect next (no step
            # done, none in place), nothing on stderr; the first scenario in JSON too (the same result)
            again = netlab("break", name, "--lab", lab, check=False)
            if again.returncode != 0 or again.stderr or not again.stdout.startswith(
                    f"lab {lab}: {name} is broken already on {s.target} {target.name} (not repaired since): "
                    "nothing changed\nexpect: "):
                wrong.append(f"{name}: exit {again.returncode} {again.stdout.strip()} {again.stderr.strip()}")
            if name == names[0]:
                js = netlab("break", name, "--lab", lab, "-o", "json", check=False)
                said = json.loads(js.stdout) if js.returncode == 0 else {}
                if js.returncode != 0 or not said.get("already") or said.get("changes") or js.stderr or \
                        said.get("target") != target.name:
                    wrong.append(f"{name}: json exit {js.returncode} {js.stdout.strip()} {js.stderr.strip()}")
            if settled_view(model) != view or pids(model) != running:
                wrong.append(f"{name}: the second break changed the kernel or the pods")
        finally:
            repaired = netlab("up", "-t", path, check=False)
        assert repaired.returncode == 0 and "nothing to change" not in repaired.stdout, (name, repaired.stdout)
        assert_as_planned(lab, f"{name}'s repair")
    assert not wrong, "\n".join(wrong)


def test_conntrack_stale_entry_replaces_the_clients_live_flow(services_lab):
    lab, path = services_lab
    model = running_lab(lab).resolved()
    s = catalogue.scenario("conntrack-stale-entry")
    client = catalogue.resolve_target(s, model, None)
    _, _, dns_pod_ip = dns_udp(model)
    gone = str(gone_endpoint(model))
    try:
        assert dns_answers(model, client, STALE_SPORT), "the client's query from port 40053 before the break"
        [live] = stale_entries(model, client)  # the client's real flow: DNATed to the DNS pod
        assert f"src={dns_pod_ip} " in live and f"src={gone} " not in live, live
        done = netlab("break", "conntrack-stale-entry", "--lab", lab, check=False)
        assert done.returncode == 0 and "broke conntrack-stale-entry" in done.stdout, done.stdout + done.stderr
        [stale] = stale_entries(model, client)
        assert f"src={gone} " in stale and f"src={dns_pod_ip} " not in stale, stale
        assert not dns_answers(model, client, STALE_SPORT), "the client's port is steered to the gone endpoint"
        assert dns_answers(model, client, 0), "a query from a new port is answered"
    finally:
        repaired = netlab("up", "-t", path, check=False)
    assert repaired.returncode == 0 and "nothing to change" not in repaired.stdout, repaired.stdout
    assert dns_answers(model, client, STALE_SPORT)
