"""kube-proxy's nftables mode on a real lab (root): the table the kernel holds, inspect, drift, repair, trace, mode
switch.

One small lab (two nodes, two web pods, a client; a NodePort Service with
ClientIP affinity, a ClusterIP one, one without endpoints), unique name,
always taken down. The Service traffic tests themselves run in both modes in
test_services.py and test_probe_services_live.py.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys

import pytest

from helpers import as_planned_here, in_netns, lab_up, netlab, unique_lab, up_here, write_topology
from netlab import Lab
from netlab.errors import netlab_command
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan.build import build_plan
from netlab.realize import nft_sync, nftables as listing

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
cluster: {{kubeProxyMode: {mode}}}
nodes:
  - {{name: node-1, ip: 192.168.122.2}}
  - {{name: node-2, ip: 192.168.122.3}}
pods:
  - {{name: web-1, node: node-1, labels: {{app: web}}}}
  - {{name: web-2, node: node-2, labels: {{app: web}}}}
  - {{name: client, node: node-1}}
services:
  - name: web
    selector: {{app: web}}
    type: NodePort
    clusterIP: 10.96.0.20
    sessionAffinity: ClientIP
    ports: [{{name: http, port: 80, targetPort: 8080, nodePort: 30080}}]
  - name: plain
    selector: {{app: web}}
    clusterIP: 10.96.0.21
    ports: [{{port: 8080}}]
  - name: empty
    selector: {{app: nothing}}
    clusterIP: 10.96.0.22
    ports: [{{port: 80}}]
"""
PY = sys.executable
CLIENT = ("import socket,sys\ns=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=3)\n"
          "s.sendall(b'hi\\n');print(s.recv(4096).decode().strip())")


@pytest.fixture(scope="module")
def nft_lab(tmp_path_factory):
    lab = unique_lab("nf")
    tmp = tmp_path_factory.mktemp("nftables")
    path = write_topology(tmp, TOPOLOGY.format(lab=lab, mode="nftables"), f"{lab}.yaml")
    with lab_up(path, lab, in_process=True):  # the tests are of the table, inspect, status, up's repairs and trace
        yield {"name": lab, "path": path, "tmp": tmp}


def kernel_table(netns: str) -> dict:
    return json.loads(in_netns(netns, "nft", "-j", "list", "table", "ip", "kube-proxy", check=True).stdout)


def planned(path: str, netns: str):
    plan = build_plan(resolve(load_topology(path)))
    return next(r for r in plan.of_kind("nft") if r.netns == netns)


def test_the_kernel_lists_exactly_the_planned_table_and_flannel_stays_iptables(nft_lab):
    lab = nft_lab["name"]
    for node in ("node-1", "node-2"):
        ns = f"{lab}-{node}"
        res = planned(nft_lab["path"], ns)
        assert listing.listing(kernel_table(ns)) == res.listing  # nft -j, printed in kube-proxy's words
        save = in_netns(ns, "iptables-save", check=True).stdout
        assert "KUBE-" not in save and "-j FLANNEL-POSTRTG" in save and "-j FLANNEL-FWD" in save
    text = in_netns(f"{lab}-node-1", "nft", "list", "table", "ip", "kube-proxy", check=True).stdout
    assert "numgen random mod 2 vmap" in text and "flags dynamic,timeout" in text
    assert "elements = { 192.168.122.2 }" in text  # nodeport-ips: the node's own address
    assert as_planned_here(lab)


def test_traffic_affinity_and_refusal(nft_lab):
    lab = nft_lab["name"]
    seen = {json.loads(in_netns(f"{lab}-client", PY, "-c", CLIENT, "10.96.0.20", "80", check=True).stdout)["pod"]
            for _ in range(8)}
    assert len(seen) == 1  # ClientIP affinity: the dynamic set keeps this client on one endpoint
    pods = {json.loads(in_netns(f"{lab}-client", PY, "-c", CLIENT, "10.96.0.21", "8080",
                                check=True).stdout)["pod"] for _ in range(30)}
    assert pods == {"web-1", "web-2"}
    refused = in_netns(f"{lab}-client", PY, "-c", CLIENT, "10.96.0.22", "80")
    assert "ConnectionRefusedError" in refused.stderr  # reject-chain, not a timeout
    from_node = in_netns(f"{lab}-node-2", PY, "-c", CLIENT, "192.168.122.2", "30080", check=True).stdout
    assert json.loads(from_node)["pod"] in ("web-1", "web-2")


def test_inspect_shows_kube_proxys_table_as_the_kernel_lists_it_and_its_counters_move(nft_lab):
    """`netlab inspect NODE --section nftables`: nft's own listing under the command that prints it, in -o json
    the chains and map elements `nft -j` gives; a counter added to a Service's chain counts its connections."""
    lab, ns = nft_lab["name"], f"{nft_lab['name']}-node-1"
    client = str(Lab(lab).pod("client").ip)
    in_netns(f"{lab}-client", PY, "-c", CLIENT, "10.96.0.20", "80", check=True)  # web: ClientIP affinity
    text = netlab("inspect", "--lab", lab, "node-1", "--section", "nftables").stdout
    section = text.split("\nnftables ", 1)[1].split("\n\n", 1)[0].splitlines()
    assert section[0].endswith(f"$ ip netns exec {ns} nft list table ip kube-proxy")
    nft_text = in_netns(ns, "nft", "list", "table", "ip", "kube-proxy", check=True).stdout.splitlines()
    shown = [line[2:] for line in section[1:]]
    # as nft prints it, line for line (an affinity element's "expires" ticks between the two reads)
    assert [x for x in shown[:len(nft_text)] if "expires" not in x] == [x for x in nft_text if "expires" not in x]
    assert "kube-proxy writes no counters in nftables mode" in shown[-1]  # no rule counts: how to count
    # and the up that takes the counter out: the lab's own `up -t FILE`, run below (realize.state.repair_up)
    up = netlab_command(f"up -t {shlex.quote(nft_lab['path'])}")
    assert shown[-1].endswith(f" counter, and `{up}` takes it out)")

    kernel = kernel_table(ns)
    table = json.loads(netlab("inspect", "--lab", lab, "node-1", "-s", "nftables", "-o", "json").stdout)[
        "nftables"]["ip kube-proxy"]
    assert [c["name"] for c in table["chains"]] == [o["chain"]["name"] for o in kernel["nftables"] if "chain" in o]
    assert {c["name"]: [r["rule"] for r in c["rules"]] for c in table["chains"]} == \
        {name: [text for text, _ in rules] for name, rules in listing.chain_rules(kernel).items()}
    sets = {x["name"]: x for x in table["sets"]}
    assert sets["service-ips"]["elements"] == listing.set_elements(kernel, "service-ips")
    assert "10.96.0.21 . tcp . 8080 : goto service-" in " ".join(sets["service-ips"]["elements"])
    assert any(client in x["elements"] for name, x in sets.items() if name.startswith("affinity-"))
    assert all(r["packets"] is None for c in table["chains"] for r in c["rules"])  # kube-proxy's rules: none

    # The command inspect prints, on plain's chain; then real connections to the Service.
    chain = next(c["name"] for c in table["chains"] if "/plain/" in c["name"] and c["name"].startswith("service-"))
    in_netns(ns, "nft", "insert", "rule", "ip", "kube-proxy", chain, "counter", check=True)
    try:
        def counted() -> int:
            api = Lab.attach(lab).inspect("node-1", ["nftables"]).nftables["ip kube-proxy"]  # the API, the same
            return api.chain(chain)["rules"][0]["packets"]
        assert counted() == 0
        for _ in range(5):
            in_netns(f"{lab}-client", PY, "-c", CLIENT, "10.96.0.21", "8080", check=True)
        assert counted() == 5  # nat chains see a connection's first packet only: one per connection
        text = netlab("inspect", "--lab", lab, "node-1", "-s", "nftables").stdout
        assert "\t\tcounter packets 5 bytes " in text and "writes no counters" not in text
    finally:
        up_here(nft_lab["path"])  # takes the counter out again (partial sync of that chain)
    assert as_planned_here(lab)


def affinity_clients(netns: str) -> set[str]:
    """The clients in kube-proxy's affinity sets (dynamic: the kernel's own elements)."""
    out = set()
    for o in kernel_table(netns)["nftables"]:
        s = o.get("set", {})
        if s.get("name", "").startswith("affinity-"):
            out |= {e["elem"]["val"] if isinstance(e, dict) else e for e in s.get("elem", [])}
    return out


def test_status_shows_drift_in_kube_proxys_words_and_up_repairs_only_that(nft_lab):
    lab, ns = nft_lab["name"], f"{nft_lab['name']}-node-2"
    in_netns(f"{lab}-node-2", PY, "-c", CLIENT, "10.96.0.20", "80", check=True)  # node-2's own connection
    sticky = affinity_clients(ns)
    assert sticky, "the connection put node-2's address in an affinity set"
    in_netns(ns, "nft", "delete", "element", "ip", "kube-proxy", "service-ips", "{ 10.96.0.21 . tcp . 8080 }",
             check=True)
    in_netns(ns, "nft", "add", "rule", "ip", "kube-proxy", "services", "counter", "drop", check=True)
    proc = netlab("status", "--lab", lab, check=False)
    assert proc.returncode == 1
    assert re.search(r"missing element service-ips 10\.96\.0\.21 \. tcp \. 8080 : goto service-\w+-default/plain/tcp/",
                     proc.stdout), proc.stdout
    assert "extra rule 3 of chain services: counter drop" in proc.stdout
    out = netlab("up", "-t", nft_lab["path"]).stdout
    assert f"restore nftables table ip kube-proxy in {ns}" in out
    assert as_planned_here(lab)
    # Only what differed was written (kube-proxy's partial sync): the affinity sets kept their clients.
    assert affinity_clients(ns) == sticky
    # A table the lab does not plan, in one of its namespaces, is drift too, and goes.
    in_netns(ns, "nft", "add", "table", "ip", "stray", check=True)
    assert "an nftables table the lab does not plan" in netlab("status", "--lab", lab, check=False).stdout
    out = netlab("up", "-t", nft_lab["path"]).stdout
    assert f"delete nftables table ip stray in {ns}" in out, out
    assert "stray" not in in_netns(ns, "nft", "list", "tables", check=True).stdout and as_planned_here(lab)


def test_trace_names_the_numgen_element_and_blames_a_missing_map_element(nft_lab):
    lab = nft_lab["name"]
    proc = netlab("trace", "--lab", lab, "client", "svc/plain", "--proto", "tcp", "-o", "json", check=False,
                  timeout=60)
    d = json.loads(proc.stdout)
    assert proc.returncode == 0 and d["delivered"], proc.stderr
    ep = d["endpoint"]
    assert ep["rule"].startswith("numgen random mod 2 vmap { 0 : goto endpoint-") and ep["chance"] == "1/2"
    assert ep["vmap_element"].endswith(f"goto {ep['sep_chain']}") and ep["rules"] == 2

    ns = f"{lab}-node-1"
    in_netns(ns, "nft", "delete", "element", "ip", "kube-proxy", "service-ips", "{ 10.96.0.21 . tcp . 8080 }",
             check=True)
    proc = netlab("trace", "--lab", lab, "client", "svc/plain", "--proto", "tcp", "-o", "json", check=False,
                  timeout=60)
    d = json.loads(proc.stdout)
    lost = d["lost"]
    assert proc.returncode == 1 and lost["netns"] == ns, d
    assert "the element `10.96.0.21 . tcp . 8080 : goto service-" in lost["reason"]
    assert "is missing from node-1's table ip kube-proxy" in lost["reason"]
    subprocess.run(shlex.split(lost["fix"]), check=True)  # the printed fix puts back exactly that element
    assert as_planned_here(lab)


def test_an_older_entry_without_a_dnat_is_rejected_by_cluster_ips_check_and_blamed(nft_lab):
    """An entry the node held before the packet, made without a DNAT, keeps it out of kube-proxy's nat chains; in
    nftables mode the node then refuses it itself (cluster-ips-check), and the entry is the cause."""
    lab = nft_lab["name"]
    ns, client = f"{lab}-node-1", str(Lab(lab).pod("client").ip)
    tuple_ = ["-p", "tcp", "-s", client, "-d", "10.96.0.21", "--sport", "40003", "--dport", "8080"]
    in_netns(ns, "conntrack", "-I", *tuple_, "--state", "SYN_SENT", "-t", "120", "-u", "UNREPLIED", check=True)
    try:
        proc = netlab("trace", "--lab", lab, "client", "svc/plain", "--sport", "40003", "-o", "json",
                      check=False, timeout=60)
        lost = json.loads(proc.stdout)["lost"]
        assert proc.returncode == 1 and lost["netns"] == ns, lost
        assert "already held a conntrack entry for this flow, made before this packet and without a DNAT" \
            in lost["reason"] and "cluster-ips-check rejects it" in lost["reason"], lost
        subprocess.run(shlex.split(lost["fix"]), check=True, capture_output=True)
        proc = netlab("trace", "--lab", lab, "client", "svc/plain", "--sport", "40003", "-o", "json",
                      check=False, timeout=60)
        assert proc.returncode == 0 and json.loads(proc.stdout)["delivered"], proc.stdout
    finally:
        in_netns(ns, "conntrack", "-D", *tuple_, check=False)


def test_switching_modes_converges_both_ways(nft_lab):
    lab, tmp = nft_lab["name"], nft_lab["tmp"]
    ns = f"{lab}-node-1"
    ipt = write_topology(tmp, TOPOLOGY.format(lab=lab, mode="iptables"), f"{lab}-ipt.yaml")
    localnet = "net.ipv4.conf.all.route_localnet"

    def route_localnet() -> str:
        return in_netns(ns, "sysctl", "-n", localnet, check=True).stdout.strip()

    assert route_localnet() == "0"
    up_here(ipt, reconfigure=True)
    assert as_planned_here(lab)
    assert "kube-proxy" not in in_netns(ns, "nft", "list", "tables", check=True).stdout
    assert "-j KUBE-SERVICES" in in_netns(ns, "iptables-save", "-t", "nat", check=True).stdout
    assert route_localnet() == "1"  # kube-proxy's, for the NodePorts on 127.0.0.1, with KUBE-FIREWALL's guard
    up_here(nft_lab["path"], reconfigure=True)
    assert as_planned_here(lab)
    assert "KUBE-" not in in_netns(ns, "iptables-save", check=True).stdout
    # ... and without the guard, the 1 goes too (it stayed, and status called the lab as planned)
    assert route_localnet() == "0"
    in_netns(ns, "sysctl", "-qw", f"{localnet}=1", check=True)
    drift = netlab("status", "--lab", lab, check=False)
    assert drift.returncode == 1 and f"sysctl {localnet} in {ns} (is 1, want 0)" in drift.stdout, drift.stdout
    up_here(nft_lab["path"])
    assert route_localnet() == "0" and as_planned_here(lab)
    assert json.loads(in_netns(f"{lab}-client", PY, "-c", CLIENT, "10.96.0.21", "8080",
                               check=True).stdout)["pod"] in ("web-1", "web-2")


def test_partial_sync_of_one_endpoint_gives_exactly_the_new_table(nft_lab):
    """kube-proxy's partial sync (realize/nft_sync.delta_payload) in a live node: the kernel then lists exactly
    the table a full sync of the new topology would make; `up` puts the lab back."""
    from netlab.kernel import nft
    from netlab.plan import nftables as plan_nft, services

    lab, ns = nft_lab["name"], f"{nft_lab['name']}-node-1"
    old_lab = resolve(load_topology(nft_lab["path"]))
    text = TOPOLOGY.format(lab=lab, mode="nftables").replace("{name: web-2, node: node-2, labels: {app: web}}",
                                                              "{name: web-2, node: node-2}")
    new_lab = resolve(load_topology(write_topology(nft_lab["tmp"], text, f"{lab}-one-less.yaml")))
    old = plan_nft.kube_proxy_table(old_lab, old_lab.nodes[0], services.service_ports(old_lab))
    new = plan_nft.kube_proxy_table(new_lab, new_lab.nodes[0], services.service_ports(new_lab))
    delta = nft_sync.delta_payload(old, new)
    assert delta and len(delta.splitlines()) < 40 and "delete chain" not in delta
    nft.run(ns, delta)
    # The new table, and web-2's endpoint chain emptied: kube-proxy deletes it a sync later.
    assert listing.listing(kernel_table(ns)) == listing.after_sync(old.listing(), new.listing())
    extra = set(listing.after_sync(old.listing(), new.listing())) - set(new.listing())
    assert extra and all(line.startswith("chain endpoint-") for line in extra)  # web-2's, of web and plain
    assert not as_planned_here(lab)  # the lab's topology still has web-2 behind web
    up_here(nft_lab["path"])
    assert as_planned_here(lab)


def test_an_endpoint_gone_leaves_its_chain_empty_until_the_next_up_deletes_it(nft_lab):
    """kube-proxy's staleChains, live: up with web-2 gone empties web-2's endpoint chains (status is clean and
    the Service answers from web-1 only); the next up deletes them, each node in a transaction of its own."""
    lab = nft_lab["name"]
    text = TOPOLOGY.format(lab=lab, mode="nftables").replace("{name: web-2, node: node-2, labels: {app: web}}",
                                                              "{name: web-2, node: node-2}")
    fewer = write_topology(nft_lab["tmp"], text, f"{lab}.yaml")  # the same file: the lab's own source
    original = TOPOLOGY.format(lab=lab, mode="nftables")
    try:
        up_here(fewer)
        ns = f"{lab}-node-1"
        chains = {o["chain"]["name"]: o["chain"] for o in kernel_table(ns)["nftables"] if "chain" in o}
        rules = {o["rule"]["chain"] for o in kernel_table(ns)["nftables"] if "rule" in o}
        web2 = next(p.ip for p in resolve(load_topology(fewer)).pods if p.name == "web-2")
        unplanned = sorted(set(chains) - {line.split()[1] for line in planned(fewer, ns).listing
                                          if line.startswith("chain ")})
        # web-2's endpoint chains (kube-proxy names them by address), of web and plain: there, and empty.
        assert len(unplanned) == 2 and all(f"__{web2}/" in name for name in unplanned), unplanned
        assert not set(unplanned) & rules
        emptied = unplanned
        assert as_planned_here(lab)
        for _ in range(4):
            reply = json.loads(in_netns(f"{lab}-client", PY, "-c", CLIENT, "10.96.0.21", "8080", check=True).stdout)
            assert reply["pod"] == "web-1"
        fixed = json.loads(netlab("up", "-t", fewer, "-o", "json").stdout)["fixed"]
        assert [line for line in fixed if line.startswith("deleted 2 nftables chains an earlier sync emptied in "
                                                          f"{ns}")], fixed
        left = {o["chain"]["name"] for o in kernel_table(ns)["nftables"] if "chain" in o}
        assert not set(emptied) & left
        assert listing.listing(kernel_table(ns)) == planned(fewer, ns).listing
        assert as_planned_here(lab)
    finally:
        write_topology(nft_lab["tmp"], original, f"{lab}.yaml")
        up_here(nft_lab["path"])
        assert as_planned_here(lab)
