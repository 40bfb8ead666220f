"""The node's side of pods whose chain has no CHECK (cniVersion 0.3.1), through Debian's bridge, host-local and
portmap (root).

netlab compares such a pod with its chain's cached ADD result (cni/verify.py). It looked only inside the pod:
``ip link del cni0`` on the node, a host veth taken off the bridge, or portmap's hostPort DNAT flushed, left
status "all as planned" and up with nothing to change while the pods were cut off (QA cnihost 1, 2). Each test
breaks the module's lab by hand on node n1, reads status (text and JSON), lets ``up`` repair it, and checks with
``ip -j link`` and real traffic (pod to pod, and to n1's hostPort) that it is as planned again.
"""

from __future__ import annotations

import json

import pytest

from helpers import as_planned_here, in_netns, ip, ip_json, ipv4_of, left_as_found, module_lab, netlab
from netlab import Lab
from netlab.pytest_plugin import watch

pytestmark = pytest.mark.root

# QA's conflist: the bridge plugin (cni0, the pods' default gateway) and portmap, cniVersion 0.3.1 (no CHECK)
CONFLIST = {"cniVersion": "0.3.1", "name": "cbr0", "plugins": [
    {"type": "bridge", "bridge": "cni0", "isDefaultGateway": True, "hairpinMode": True, "ipMasq": False,
     "ipam": {"type": "host-local", "routes": [{"dst": "10.244.0.0/16"}]}, "capabilities": {"ipRanges": True}},
    {"type": "portmap", "capabilities": {"portMappings": True}}]}
# each without CHECK: QA's 0.3.1, and 1.0.0 with disableCheck (the README's way round portmap's broken CHECK)
CHAINS = {"0.3.1": ({}, "(cniVersion 0.3.1 has no CHECK)"),
          "disableCheck": ({"cniVersion": "1.0.0", "disableCheck": True}, "(its conflist sets disableCheck)")}
DIFFERS = "it differs from its chain's cached ADD result"


@pytest.fixture(scope="module", params=list(CHAINS))
def shared(tmp_path_factory, request):
    folder = tmp_path_factory.mktemp("cnihost-conf")
    (folder / "cbr0.conflist").write_text(json.dumps({**CONFLIST, **CHAINS[request.param][0]}))

    def topology(lab: str) -> str:
        return (f"name: {lab}\nnetwork: {{mode: host-gw, cni: {{conflist: {folder}/cbr0.conflist}}}}\n"
                "nodes: [{name: n1, podCIDR: 10.244.0.0/24}, {name: n2, podCIDR: 10.244.1.0/24}]\n"
                "pods:\n"
                "  - {name: a, node: n1, containers: [{name: web, ports: [{containerPort: 8080, hostPort: 18080}]}]}\n"
                "  - {name: b, node: n1}\n"
                "  - {name: c, node: n2}\n")

    with module_lab(tmp_path_factory, "ch", topology) as lab:
        yield lab, CHAINS[request.param][1]


@pytest.fixture
def lab(shared, request):
    """(name, topology path, why the chain has no CHECK as status says it)."""
    (name, path), no_check = shared
    watch(request.node, Lab(name))
    with left_as_found(name, path, request.session):
        yield name, path, no_check


def _status(lab: str) -> tuple[list[str], dict]:
    """status's cni lines (exit 1) and its JSON."""
    text = netlab("status", "--lab", lab, check=False)
    js = netlab("status", "--lab", lab, "-o", "json", check=False)
    assert text.returncode == 1 and js.returncode == 1, text.stdout + text.stderr
    lines = [line.strip() for line in text.stdout.splitlines() if line.strip().startswith("cni: ")]
    return lines, json.loads(js.stdout)


def _host_veths(lab: str) -> list[dict]:
    """n1's veths but its own eth0 (its underlay link): the host ends of its pods' pairs."""
    veths = ip_json("-d", "link", "show", "type", "veth", netns=f"{lab}-n1")
    return [link for link in veths if link["ifname"] != "eth0"]


def _repaired(lab: str, path: str, pods: list[str], said: dict[str, str], no_check: str) -> None:
    """up re-attaches ``pods`` naming what each lacked; then cni0 is a bridge on n1 with every host veth of its
    pods a port of it, up, and status, pod-to-pod traffic and n1's hostPort are as planned."""
    up = netlab("up", "-t", path)
    for pod in pods:
        assert f"re-attached pod {pod} through CNI ({DIFFERS}: {said[pod]} {no_check})" in up.stdout, up.stdout
    [cni0] = ip_json("-d", "link", "show", "cni0", netns=f"{lab}-n1")
    assert cni0["linkinfo"]["info_kind"] == "bridge" and "UP" in cni0["flags"], cni0
    veths = _host_veths(lab)
    assert len(veths) == 2 and all(v.get("master") == "cni0" for v in veths), veths  # a's and b's
    assert as_planned_here(lab)
    probe = json.loads(netlab("probe", "--lab", lab, "--no-services", "-o", "json").stdout)
    assert probe["ok"] and {("a", "c"), ("b", "a")} <= {(p["source"], p["destination"]) for p in probe["probes"]}
    _host_port_answers(lab)


def _host_port_answers(lab: str) -> None:
    """Real traffic: node n2 to n1's address at hostPort 18080 reaches pod a's echo server (portmap's DNAT)."""
    reply = in_netns(f"{lab}-n2", "socat", "-T", "5", "-u", f"TCP:{ipv4_of(f'{lab}-n1', 'eth0')}:18080,"
                     "connect-timeout=5", "-")
    assert reply.returncode == 0 and json.loads(reply.stdout)["pod"] == "a", reply


def test_a_deleted_bridge_is_drift_of_its_pods_and_up_re_attaches_them(lab):
    name, path, no_check = lab
    ip("link", "del", "cni0", netns=f"{name}-n1")
    lines, js = _status(name)
    said = {pod: "the node's cni0 is gone" for pod in ("a", "b")}
    assert lines == [f"cni: pod {p}: {DIFFERS}: {said[p]} {no_check}" for p in ("a", "b")], lines  # not c (n2)
    assert not js["ok"] and all(line in json.dumps(js) for line in lines), js
    _repaired(name, path, ["a", "b"], said, no_check)


def test_a_host_veth_taken_off_the_bridge_is_its_pods_drift(lab):
    name, path, no_check = lab
    b_peer = ip_json("link", "show", "eth0", netns=f"{name}-b")[0]["link_index"]  # b's host veth, by its index
    [veth] = [v["ifname"] for v in _host_veths(name) if v["ifindex"] == b_peer]
    ip("link", "set", veth, "nomaster", netns=f"{name}-n1")
    lines, js = _status(name)
    said = {"b": f"the node's {veth} is not a port of cni0 (it has no master)"}
    assert lines == [f"cni: pod b: {DIFFERS}: {said['b']} {no_check}"], lines
    assert not js["ok"] and lines[0] in json.dumps(js), js
    _repaired(name, path, ["b"], said, no_check)


def test_the_pods_gateway_taken_off_the_bridge_is_drift_of_each_pod_of_the_node(lab):
    """isDefaultGateway: the bridge plugin put 10.244.0.1/24 on cni0; without it a and b reach no other node."""
    name, path, no_check = lab
    ip("addr", "del", "10.244.0.1/24", "dev", "cni0", netns=f"{name}-n1")
    lines, js = _status(name)
    said = {pod: "the node's cni0 lacks the pods' gateway 10.244.0.1" for pod in ("a", "b")}
    assert lines == [f"cni: pod {p}: {DIFFERS}: {said[p]} {no_check}" for p in ("a", "b")], lines
    assert not js["ok"] and all(line in json.dumps(js) for line in lines), js
    _repaired(name, path, ["a", "b"], said, no_check)
    addrs = ip_json("addr", "show", "cni0", netns=f"{name}-n1")[0]["addr_info"]
    assert {(a["local"], a["prefixlen"]) for a in addrs if a["family"] == "inet"} == {("10.244.0.1", 24)}, addrs


def test_a_host_port_whose_dnat_is_flushed_is_drift_said_by_trace_and_repaired(lab):
    name, path, no_check = lab
    n1 = f"{name}-n1"
    a_ip = ipv4_of(f"{name}-a", "eth0")
    [chain] = [line.split()[1] for line in in_netns(n1, "iptables-save", "-t", "nat", check=True).stdout.splitlines()
               if line.endswith(f"-j DNAT --to-destination {a_ip}:8080")]
    in_netns(n1, "iptables", "-t", "nat", "-F", "CNI-HOSTPORT-DNAT", check=True)
    gone = (f"portmap's DNAT of its hostPort 18080/tcp to {a_ip}:8080 is gone: no rule of the node's nat "
            f"CNI-HOSTPORT-DNAT jumps to the pod's chain {chain} for 18080/tcp (its DNAT there is intact)")
    trace = json.loads(netlab("trace", "--lab", name, "n1", "n1", "--port", "18080", "-o", "json",
                              check=False).stdout)
    assert (f"tcp port 18080 of n1 is pod a's hostPort, but {gone}; up re-attaches the pod"
            in (trace.get("refused") or "")), trace.get("refused")
    lines, js = _status(name)
    assert lines == [f"cni: pod a: {DIFFERS}: {gone} {no_check}"], lines
    assert not js["ok"] and lines[0] in json.dumps(js), js
    _repaired(name, path, ["a"], {"a": gone}, no_check)
    rules = in_netns(n1, "iptables-save", "-t", "nat", check=True).stdout
    assert f"--dport 18080 -j DNAT --to-destination {ipv4_of(f'{name}-a', 'eth0')}:8080" in rules, rules


def test_a_host_port_without_outputs_jump_is_drift_and_the_node_reaches_it_again(lab):
    """portmap jumps to CNI-HOSTPORT-DNAT from OUTPUT too: the node's own connection to its hostPort. Deleted,
    the node's connection was refused and status said all as planned (qa55)."""
    name, path, no_check = lab
    n1 = f"{name}-n1"
    a_ip = ipv4_of(f"{name}-a", "eth0")
    in_netns(n1, "iptables", "-t", "nat", "-D", "OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j",
             "CNI-HOSTPORT-DNAT", check=True)
    gone = (f"portmap's DNAT of its hostPort 18080/tcp to {a_ip}:8080 is gone: the node's nat OUTPUT has no jump "
            "to CNI-HOSTPORT-DNAT (the node's own connections to its hostPort)")
    lines, js = _status(name)
    assert lines == [f"cni: pod a: {DIFFERS}: {gone} {no_check}"], lines
    _repaired(name, path, ["a"], {"a": gone}, no_check)
    reply = in_netns(n1, "socat", "-T", "5", "-u", f"TCP:{ipv4_of(n1, 'eth0')}:18080,connect-timeout=5", "-")
    assert reply.returncode == 0 and json.loads(reply.stdout)["pod"] == "a", reply
