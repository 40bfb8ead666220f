"""The Python API on real labs (root), as a test author uses it (issue 13).

The module's lab comes from the project's own pytest plugin (``netlab_lab``
with a module-scoped marker); tests that change or take down a lab make
their own with ``netlab_factory`` or ``Lab.up``. Every result is checked
against the kernel's own view (``ip -j``) or the CLI's ``-o json``.
"""

from __future__ import annotations

import copy
import json
import subprocess
import uuid

import pytest

from helpers import ip_json, ipv4_of, lab_namespaces, netlab
from netlab import Lab
from netlab.api import to_json
from netlab.errors import EnvironmentNotReady, OwnershipConflict, TopologyError, UsageError

WEB = {
    "name": "apiweb",
    "nodes": [{"name": "node-1"}, {"name": "node-2"}],
    "pods": [{"name": "client", "node": "node-1"},
             {"name": "web-1", "node": "node-1", "labels": {"app": "web"}},
             {"name": "web-2", "node": "node-2", "labels": {"app": "web"}}],
    "services": [{"name": "web", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}],
}
SMALL = {"name": "apismall", "nodes": [{"name": "n1"}], "pods": [{"name": "a", "node": "n1"}]}

pytestmark = [pytest.mark.root, pytest.mark.netlab(WEB, scope="module")]


def keys(data, depth: int = 2):
    """The field names of a JSON value, nested ``depth`` levels (lists: of their first item)."""
    if isinstance(data, list):
        return [keys(data[0], depth)] if data else []
    if isinstance(data, dict) and depth:
        return {k: keys(v, depth - 1) for k, v in data.items()}
    return None


def test_exec_runs_in_the_pods_network_and_uts_namespaces(netlab_lab):
    assert netlab_lab.exec("web-1", ["hostname"]).stdout == "web-1\n"
    r = netlab_lab.exec("client", "ip -j addr show dev eth0; exit 3")
    assert r.returncode == 3
    addr = json.loads(r.stdout)[0]["addr_info"][0]["local"]
    assert addr == netlab_lab.pod("client").ip
    mine = ip_json("addr", "show", "dev", "eth0", netns=f"{netlab_lab.name}-client")
    assert mine[0]["addr_info"][0]["local"] == addr  # the kernel's own view, from outside
    with pytest.raises(subprocess.CalledProcessError):
        netlab_lab.exec("web-1", ["false"], check=True)


def test_pods_nodes_and_services_are_the_running_labs(netlab_lab):
    pods = {p.name: p for p in netlab_lab.pods()}
    assert set(pods) == {"client", "web-1", "web-2", "kube-dns"} and pods["kube-dns"].added
    assert pods["web-2"].node == "node-2" and pods["web-2"].netns == f"{netlab_lab.name}-web-2"
    assert all(c.state == "running" and c.pid for p in pods.values() for c in p.containers)
    assert [p.name for p in netlab_lab.pods("app=web")] == ["web-1", "web-2"]
    web = netlab_lab.service("web")
    assert web.ports[0].port == 80 and [e.pod for e in web.ports[0].endpoints] == ["web-1", "web-2"]
    assert netlab_lab.node("node-2").pods == ("web-2",)
    with pytest.raises(UsageError, match="has no pod 'nope'"):
        netlab_lab.pod("nope")


def test_reach_sends_one_real_probe_and_reports_what_the_server_saw(netlab_lab):
    r = netlab_lab.reach("client", "web-2", proto="tcp", port=8080)
    assert r.reachable and r.answered_by == "web-2" and r.as_expected
    assert r.seen_source == netlab_lab.pod("client").ip  # no NAT between pods (rule 1)
    refused = netlab_lab.reach("client", "web-2", proto="tcp", port=9999)
    assert not refused.reachable and refused.outcome == "refused"
    ping = netlab_lab.reach("node-1", "web-2", proto="icmp")
    assert ping.reachable and ping.port is None and ping.ttl == 63  # one router: node-2
    default = netlab_lab.reach("web-1", "web-2")  # TCP to the pod's served port by default
    assert (default.protocol, default.port, default.reachable) == ("tcp", 8080, True)
    answered = {netlab_lab.reach("client", "svc/web").answered_by for _ in range(12)}
    assert answered <= {"web-1", "web-2"} and answered  # the Service's endpoints, nobody else
    with pytest.raises(UsageError, match="no Service 'nope'"):
        netlab_lab.reach("client", "svc/nope")


def test_reach_from_a_node_dials_the_clusterip_and_its_endpoint_sees_the_nodes_masquerade(netlab_lab):
    """A node reaches a ClusterIP through nat OUTPUT's KUBE-SERVICES; KUBE-SVC marks what does not come from the
    pod network, and the endpoint sees the address the node sends it out of: cni0's for its own pod, flannel.1's
    for another node's (both read with `ip -j addr`)."""
    ns = f"{netlab_lab.name}-node-1"
    towards = {"web-1": ipv4_of(ns, "cni0"), "web-2": ipv4_of(ns, "flannel.1")}
    cluster_ip = netlab_lab.service("web").cluster_ip
    seen: dict[str, set] = {}
    for _ in range(12):
        r = netlab_lab.reach("node-1", "svc/web")
        assert r.reachable and r.as_expected, r
        assert r.service is not None and r.service.via == "ClusterIP" and r.destination_ip == cluster_ip, r
        seen.setdefault(r.answered_by, set()).add(r.seen_source)
    assert seen and all(sources == {towards[pod]} for pod, sources in seen.items()), (seen, towards)


def test_probe_and_status_are_the_clis_json(netlab_lab):
    report = netlab_lab.probe()
    assert report.ok, report.failures
    cli = json.loads(netlab("probe", "--lab", netlab_lab.name, "-o", "json").stdout)
    assert keys(to_json(report), 3) == keys(cli, 3)
    (spread,) = report.distributions
    assert set(spread.endpoints) == {"web-1", "web-2"} and spread.as_expected
    status = netlab_lab.status()
    assert status.clean and status.objects > 0
    assert to_json(status) == json.loads(netlab("status", "--lab", netlab_lab.name, "-o", "json").stdout)


def test_trace_follows_the_service_and_has_the_fields_of_trace_json(netlab_lab):
    t = netlab_lab.trace("client", "svc/web", proto="tcp", port=80)
    assert t.delivered and t.endpoint is not None and t.endpoint.pod in {"web-1", "web-2"}
    assert t.lost is None and t.hops[0].netns == f"{netlab_lab.name}-client"
    assert netlab_lab.traces[-1] is t
    cli = json.loads(netlab("trace", "--lab", netlab_lab.name, "client", "svc/web", "--proto", "tcp", "--port", "80",
                            "-o", "json").stdout)
    mine = to_json(t)
    assert set(mine) == set(cli)
    assert set(mine["hops"][0]) == set(cli["hops"][0]) and set(mine["src"]) == set(cli["src"])
    # The DNAT's choice: what does not apply (vmap_element, iptables mode) left out on both sides, not null in one
    assert set(mine["endpoint"]) == set(cli["endpoint"]) and "vmap_element" not in mine["endpoint"], mine["endpoint"]


def test_inspect_reads_the_kernel_by_section(netlab_lab):
    routes = netlab_lab.inspect("node-1", ["routes"])
    assert routes.links is None and routes.conntrack is None
    assert any(r["text"].startswith("10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink") for r in routes.routes)
    full = netlab_lab.inspect("node-1")
    assert full.links and full.sysctls is not None
    assert full.conntrack["total"] is not None and full.conntrack["entries"] is None  # counted, not listed
    listed = netlab_lab.inspect("node-1", ["conntrack"]).conntrack
    assert len(listed["entries"]) == listed["total"]
    # The CLI's JSON, key for key: no cni (builtin wiring), no unreadable (all read), no section not asked for
    for sections in ([], ["-s", "routes"]):
        cli = json.loads(netlab("inspect", "--lab", netlab_lab.name, "node-1", *sections, "-o", "json").stdout)
        mine = to_json(netlab_lab.inspect("node-1", [s for s in sections if s != "-s"] or None))
        assert set(mine) == set(cli) and "cni" not in mine and "unreadable" not in mine, (sorted(mine), sorted(cli))


def test_attach_finds_the_running_lab_and_leaves_it_up(netlab_lab, monkeypatch):
    with Lab.attach(netlab_lab.name) as same:
        assert same.pod("web-1").ip == netlab_lab.pod("web-1").ip
    assert lab_namespaces(netlab_lab.name)  # still up
    monkeypatch.setenv("NETLAB_LAB", netlab_lab.name)
    assert Lab.attach().name == netlab_lab.name
    with pytest.raises(UsageError, match="is not up") as exc:
        Lab.attach("apnotup")
    assert exc.value.exit_code == 2


def test_a_with_block_leaves_up_a_lab_that_was_up_before_it(netlab_lab):
    """Lab.up of a running lab converges it; the block did not bring it up, so it does not take it down (it took
    down the lab someone had brought up with the CLI, or another test's)."""
    with Lab.up(dict(WEB, name=netlab_lab.name)) as same:
        assert same.last_up is not None and not same.last_up.changed and not same.owned
    assert lab_namespaces(netlab_lab.name)  # still up
    assert netlab_lab.status().clean


def test_a_with_block_takes_the_lab_down_also_on_an_exception():
    name = f"ap{uuid.uuid4().hex[:6]}"
    try:
        with pytest.raises(RuntimeError, match="boom"):
            with Lab.up(SMALL, name=name) as lab:
                assert lab.name == name and lab_namespaces(name)
                assert lab.last_up is not None and lab.last_up.created_netns
                raise RuntimeError("boom")
        assert lab_namespaces(name) == []
        assert lab.down().was_up is False  # safe twice
    finally:
        netlab("down", "--lab", name, check=False)


def test_bad_input_is_the_clis_error_and_changes_nothing(netlab_factory):
    broken = copy.deepcopy(SMALL)
    broken["pods"][0]["node"] = "n9"
    with pytest.raises(TopologyError, match=r"<dict>: pods\[0\]\.node: unknown node 'n9'") as exc:
        netlab_factory(broken)
    assert exc.value.exit_code == 2
    lab = netlab_factory(SMALL)
    with pytest.raises(UsageError, match="has no pod, node or host 'nope'"):
        lab.exec("nope", ["true"])
    clash = dict(SMALL, pods=[{"name": "a", "node": "n1", "ip": "10.244.0.2"}, {"name": "b", "node": "n1"}])
    clash["pods"][1]["ip"] = "10.244.0.2"
    with pytest.raises(TopologyError, match="10.244.0.2"):
        Lab.up(clash, name=lab.name)
    assert lab.status().clean  # the refused up changed nothing


def test_a_changed_dict_converges_the_running_lab_with_reconfigure_only(netlab_factory):
    """QA pt63 2: another dict of a running dict lab's name reshaped it (a second program's dict without pod b
    deleted the b the first program used): refused as another file is, nothing changed; reconfigure=True
    converges it; the same dict again converges it as the same file does."""
    lab = netlab_factory(SMALL)
    grown = dict(SMALL, pods=SMALL["pods"] + [{"name": "b", "node": "n1"}])
    assert lab.status(grown).drift  # what up would change
    with pytest.raises(UsageError, match=f"lab {lab.name} is up from a dict, and another dict has the same name: "
                                         r"it would replace that lab; .*reconfigure=True"):
        Lab.up(grown, name=lab.name)
    assert lab_namespaces(lab.name) == sorted(f"{lab.name}-{n}" for n in ("a", "n1", "underlay")), "changed"
    assert Lab.up(SMALL, name=lab.name).last_up.changed is False  # the same dict: converged, nothing to do
    again = Lab.up(grown, name=lab.name, reconfigure=True)
    assert again.last_up is not None and f"{lab.name}-b" in again.last_up.created_netns
    assert lab.status().clean and lab.reach("a", "b").reachable


def test_a_name_taken_by_someone_else_stops_up_before_any_change_and_leaves_nothing():
    """A namespace with one of the lab's names that is not the lab's: refused before any change (exit code 3,
    the environment is not ready for the lab: nothing to roll back), nothing made."""
    name = f"ap{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", f"{name}-a"], check=True)  # someone else's, on purpose
    try:
        with pytest.raises(OwnershipConflict, match=f"{name}-a") as exc:
            Lab.up(SMALL, name=name)
        assert isinstance(exc.value, EnvironmentNotReady) and exc.value.exit_code == 3
        assert lab_namespaces(name) == [f"{name}-a"]  # only the stranger's, untouched
    finally:
        subprocess.run(["ip", "netns", "del", f"{name}-a"], check=True)


def test_sigterm_inside_a_with_block_takes_the_lab_down_with_the_quickstarts_line(tmp_path):
    """In a program of one's own, SIGTERM (kill, a CI job's timeout) inside ``with Lab.up(...)`` ended Python
    where it stood: exit 143, the lab up (namespaces, /run/netlab/<lab>, /etc/netns). The README's quickstart
    turns it into SystemExit with one line, taken from examples/pytest/quickstart.py here, so that what the
    README shows is what is tested: the block unwinds, the lab goes down, and the exit is still 143."""
    import os
    import signal
    import sys

    from helpers import quickstart_signal_lines, state_path, unique_lab, wait_for

    line = quickstart_signal_lines().rstrip("\n")
    name = unique_lab("qe")
    sleeper = {"name": "b", "node": "n1", "containers": [{"name": "c", "command": ["sleep", "600"]}]}
    topology = dict(SMALL, pods=[{"name": "a", "node": "n1"}, sleeper])
    script = tmp_path / "mine.py"
    script.write_text(f"import signal, sys, time\nfrom netlab import Lab\n{line}\n"
                      f"with Lab.up({topology!r}, name={name!r}) as lab:\n"
                      "    open(sys.argv[1], 'w').write('in the block')\n"
                      "    time.sleep(300)\n")
    inside = tmp_path / "inside"
    proc = subprocess.Popen([sys.executable, str(script), str(inside)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        assert wait_for(inside.exists, timeout=120), "the block never began"
        made = lab_namespaces(name)
        assert len(made) == 4 and os.path.isdir(state_path(name))
        assert any(os.path.exists(f"/etc/netns/{ns}") for ns in made)  # the pods' resolv.conf and hosts
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=120)[0]
        assert proc.returncode == 143, out
        assert lab_namespaces(name) == [] and not os.path.exists(state_path(name)), out
        assert not any(os.path.exists(f"/etc/netns/{ns}") for ns in made), out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        netlab("down", "--lab", name, check=False)
