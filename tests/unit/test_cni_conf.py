"""CNI as data: the conflist reader, what a runtime hands each plugin, result conversion, the plan of a CNI lab.

The semantics are libcni's (containernetworking/cni ``libcni/api.go``:
``buildOneConfig``, ``injectRuntimeConfig``, ``GetAsVersion``) and the
reference list is Flannel's delegate (plan/flannel.py).
"""

from __future__ import annotations

import json
import os
import threading
from ipaddress import IPv4Address

import pytest

from netlab.cni import conf as C
from netlab.model.cniconf import ConflistError, parse_conflist
from netlab.model.lab import CniAttachment, resolve
from netlab.model.load import load_topology
from netlab.plan import flannel
from netlab.plan.build import build_plan
from netlab.errors import TopologyError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def lab_with(tmp_path, cni_yaml: str):
    text = (open(os.path.join(ROOT, "topologies", "default-2node.yaml")).read()
            .replace("  underlay: {cidr: 192.168.122.0/24, mtu: 1500}",
                     "  underlay: {cidr: 192.168.122.0/24, mtu: 1500}\n  cni: " + cni_yaml))
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    return resolve(load_topology(str(path)))


# --- the conflist ------------------------------------------------------------------------


@pytest.mark.parametrize("text, why", [
    ("[]", "must be a JSON object"),
    ("{", "is not JSON"),
    ('{"name": "n", "plugins": [{"type": "bridge"}]}', "has no cniVersion"),
    ('{"cniVersion": "9.9.9", "name": "n", "plugins": [{"type": "bridge"}]}', "is not one netlab speaks"),
    ('{"cniVersion": "1.0.0", "name": "a b", "plugins": [{"type": "bridge"}]}', "is not a CNI network name"),
    ('{"cniVersion": "1.0.0", "name": "n", "plugins": []}', "non-empty list"),
    ('{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "../../bin/sh"}]}', "file name (no '/')"),
    ('{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "x", "capabilities": []}]}', "capabilities"),
    ("[" * 100_000 + "]" * 100_000, "nested too deep"),  # 200 kB: under the size limit, a RecursionError
])
def test_bad_conflists_are_one_line_each(text, why):
    with pytest.raises(ConflistError, match=".*") as exc:
        parse_conflist(text)
    assert why in str(exc.value) and "\n" not in str(exc.value)


def test_a_single_conf_is_a_one_plugin_list():
    net = parse_conflist('{"cniVersion": "0.4.0", "name": "n", "type": "ptp"}')
    assert net.types == ["ptp"] and net.cni_version == "0.4.0"


def test_relative_conflist_is_resolved_from_the_topology_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "n.conflist").write_text('{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "x"}]}')
    text = "name: cnt\nnetwork:\n  cni: {conflist: sub/n.conflist, binDir: sub}\nnodes: [{name: a}]\n"
    (tmp_path / "t.yaml").write_text(text)
    cwd = os.getcwd()
    os.chdir("/")
    try:
        topo = load_topology(str(tmp_path / "t.yaml"))
    finally:
        os.chdir(cwd)
    assert topo.network.cni.conflist == str(tmp_path / "sub" / "n.conflist")
    assert topo.network.cni.bin_dir == str(tmp_path / "sub")


def test_a_broken_conflist_is_reported_with_its_line(tmp_path):
    (tmp_path / "n.conflist").write_text("{not json")
    (tmp_path / "t.yaml").write_text("name: cnt\nnodes: [{name: a}]\nnetwork:\n  cni:\n    conflist: n.conflist\n")
    with pytest.raises(TopologyError) as exc:
        load_topology(str(tmp_path / "t.yaml"))
    [p] = exc.value.problems
    assert (p.line, p.field) == (5, "network.cni.conflist") and "is not JSON" in p.message


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_conflist_that_is_no_file_is_said_and_never_waited_for(tmp_path, kind):
    """A FIFO given as the conflist: validate, plan and graph waited for a writer, for ever."""
    where = tmp_path / "n.conflist"
    os.mkfifo(where) if kind == "fifo" else where.mkdir()
    (tmp_path / "t.yaml").write_text("name: cnt\nnodes: [{name: a}]\nnetwork:\n  cni:\n    conflist: n.conflist\n")
    done = threading.Event()

    def release() -> None:  # a reader left waiting on the FIFO gets its end of file: a failure, not a hang
        while not done.wait(0.1):
            try:
                os.close(os.open(where, os.O_WRONLY | os.O_NONBLOCK))  # ENXIO while nobody reads it
                return
            except OSError:
                continue

    if kind == "fifo":
        threading.Thread(target=release, daemon=True).start()
    try:
        with pytest.raises(TopologyError) as exc:
            load_topology(str(tmp_path / "t.yaml"))
    finally:
        done.set()
    [p] = exc.value.problems
    assert (p.line, p.field) == (5, "network.cni.conflist")
    assert ("is not a regular file" if kind == "fifo" else "is a directory") in p.message


def test_cni_is_builtin_by_default():
    lab = resolve(load_topology(None))
    assert lab.cni == "builtin"
    assert lab.topo.network.cni == "builtin"


# --- what a plugin gets on stdin ------------------------------------------------------------


def test_runtime_config_holds_only_declared_capabilities():
    net = parse_conflist(json.dumps({"cniVersion": "1.0.0", "name": "n", "plugins": [
        {"type": "a", "capabilities": {"ips": True, "portMappings": False}}, {"type": "b"}]}))
    caps = {"ips": ["10.244.0.2/24"], "portMappings": [], "mac": "02:00:00:00:00:01"}
    a = C.build_one_config(net, net.plugins[0], None, caps)
    b = C.build_one_config(net, net.plugins[1], {"cniVersion": "1.0.0", "ips": []}, caps)
    assert a["runtimeConfig"] == {"ips": ["10.244.0.2/24"]}
    assert a["name"] == "n" and a["cniVersion"] == "1.0.0" and "prevResult" not in a
    assert "runtimeConfig" not in b and b["prevResult"]["cniVersion"] == "1.0.0"
    assert "name" not in net.plugins[0]  # the list itself is not changed


def test_prev_result_speaks_the_lists_version():
    net = parse_conflist('{"cniVersion": "0.4.0", "name": "n", "plugins": [{"type": "a"}]}')
    prev = {"cniVersion": "1.0.0", "interfaces": [], "ips": [{"address": "10.244.0.2/24", "interface": 0}]}
    conf = C.build_one_config(net, net.plugins[0], prev, {})
    assert conf["prevResult"]["cniVersion"] == "0.4.0"
    assert conf["prevResult"]["ips"][0]["version"] == "4"


def test_a_020_result_becomes_a_100_one():
    old = {"cniVersion": "0.2.0", "ip4": {"ip": "10.244.0.2/24", "gateway": "10.244.0.1",
                                          "routes": [{"dst": "0.0.0.0/0"}]}, "dns": {}}
    new = C.convert_result(old, "1.0.0")
    assert new["ips"] == [{"address": "10.244.0.2/24", "gateway": "10.244.0.1"}]
    assert new["routes"] == [{"dst": "0.0.0.0/0"}] and new["interfaces"] == [] and "ip4" not in new


def test_cni_args_are_the_kubelets():
    lab = resolve(load_topology(None))
    pod = lab.pod("fedora-1")
    text = C.args_text(C.cni_args(pod, "abc", pod.ip))
    assert text == ("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=fedora-1;"
                    "K8S_POD_INFRA_CONTAINER_ID=abc;IP=10.244.0.2")


def test_capability_args_give_the_planned_address_and_the_nodes_range():
    lab = resolve(load_topology(None))
    pod = lab.pod("fedora-2")
    caps = C.capability_args(lab, pod, pod.ip)
    assert caps["ips"] == ["10.244.1.3/24"] and caps["ipRanges"] == [[{"subnet": "10.244.1.0/24"}]]
    assert caps["mac"] == pod.mac


def test_each_sandbox_has_an_id_of_its_own():
    """As containerd's GenerateID: 64 hex, new for each sandbox (a pod's namespace made anew is a new sandbox)."""
    ids = {C.new_container_id() for _ in range(3)}
    assert len(ids) == 3 and all(len(i) == 64 and int(i, 16) >= 0 for i in ids)


def test_reference_list_is_flannels_delegate(tmp_path):
    lab = lab_with(tmp_path, "reference")
    node = lab.node("minikube")
    net = C.reference_conflist(lab, node, "/run/x/networks")
    [bridge] = net.plugins
    delegate = flannel.delegate_config(lab, node)
    for key in ("type", "bridge", "mtu", "hairpinMode", "isDefaultGateway", "ipMasq", "isGateway"):
        assert bridge.get(key) == delegate.get(key), key
    assert bridge.get("bridge", "cni0") == "cni0" and bridge["mtu"] == 1450 and bridge["ipMasq"] is False
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.244.0.0/24"}]]
    assert bridge["ipam"]["routes"] == [{"dst": "10.244.0.0/16", "gw": "10.244.0.1"}]
    assert bridge["ipam"]["dataDir"] == "/run/x/networks"
    assert bridge["capabilities"] == {"ips": True} and net.name == "cbr0" and C.supports_check(net)
    assert [n.name for n, _ in C.networks(lab, node, "/d")] == ["cni-loopback", "cbr0"]


def test_attachment_from_a_bridge_result():
    result = {"cniVersion": "1.0.0", "interfaces": [
        {"name": "cni0", "mac": "aa:00:00:00:00:01"}, {"name": "veth12345678", "mac": "aa:00:00:00:00:02"},
        {"name": "eth0", "mac": "aa:00:00:00:00:03", "sandbox": "/run/netns/p"}],
        "ips": [{"address": "10.244.0.2/24", "gateway": "10.244.0.1", "interface": 2}]}
    att = C.attachment(result)
    assert att == CniAttachment(ip=IPv4Address("10.244.0.2"), mac="aa:00:00:00:00:03",
                                host_veth="veth12345678", host_mac="aa:00:00:00:00:02",
                                gateway=IPv4Address("10.244.0.1"), prefixlen=24)  # eth0 on-link /24
    assert C.host_interfaces(result) == ["cni0", "veth12345678"]
    assert C.attachment({"interfaces": [], "ips": []}) is None


# --- the plan of a CNI lab -------------------------------------------------------------------


def _kinds(plan, netns):
    return sorted((r.kind, getattr(r, "name", getattr(r, "dev", ""))) for r in plan.resources if r.netns == netns)


def test_reference_plan_leaves_the_pod_side_to_the_plugin_until_it_is_attached(tmp_path):
    lab = lab_with(tmp_path, "reference")
    plan = build_plan(lab)
    pod = lab.pod("fedora-1")
    assert not [r for r in plan.of_kind("veth") if getattr(r, "peer_netns", "") == pod.netns]
    assert not [r for r in plan.of_kind("route", "address") if r.netns == pod.netns]
    assert [r for r in plan.of_kind("bridge") if r.name == "cni0"]  # the node's bridge stays netlab's
    att = CniAttachment(ip=pod.ip, mac="aa:00:00:00:00:03", host_veth="veth12345678", host_mac="aa:00:00:00:00:02")
    plan2 = build_plan(lab.with_attachments({"fedora-1": att}))
    [veth] = [r for r in plan2.of_kind("veth") if r.peer_netns == pod.netns]
    assert (veth.name, veth.mac, veth.peer_mac, veth.hairpin, veth.txqlen) == (
        "veth12345678", "aa:00:00:00:00:02", "aa:00:00:00:00:03", True, 0)
    assert len([r for r in plan2.of_kind("route") if r.netns == pod.netns]) == 2


def test_builtin_plan_is_unchanged_by_the_cni_field(tmp_path):
    assert build_plan(lab_with(tmp_path, "builtin")).to_json()["resources"] == \
        build_plan(resolve(load_topology(str(tmp_path / "lab.yaml")))).to_json()["resources"]
    default = build_plan(resolve(load_topology(None)))
    assert len(default.of_kind("veth")) == 2 + 4


def test_conflist_plan_has_no_cni0_and_no_pod_side(tmp_path):
    (tmp_path / "n.conflist").write_text('{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "ptp"}]}')
    lab = lab_with(tmp_path, "{conflist: n.conflist}")
    plan = build_plan(lab)
    assert not [r for r in plan.resources if getattr(r, "name", None) == "cni0" or getattr(r, "dev", None) == "cni0"]
    assert len(plan.of_kind("veth")) == 2  # the nodes' underlay ports only
    assert [r for r in plan.of_kind("vxlan")]  # the overlay stays netlab's


# --- what the state remembers ----------------------------------------------------------------


def _state(lab, cni_pods):
    from netlab.realize.state import LabState
    st = LabState(lab=lab.name, topology=lab.topo.model_dump(mode="json", by_alias=True, exclude_none=True))
    st.extra["cni"] = {"pods": cni_pods}
    return st


def test_attached_lab_takes_names_macs_and_the_real_address_from_the_state(tmp_path):
    from netlab.realize.attachments import attached_lab
    (tmp_path / "n.conflist").write_text('{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "ptp"}]}')
    lab = lab_with(tmp_path, "{conflist: n.conflist}")
    st = _state(lab, {"fedora-1": {"phase": "added", "netns": lab.pod("fedora-1").netns, "attachment": {
        "ip": "10.244.0.77", "mac": "aa:00:00:00:00:03", "host_veth": "vethabc", "host_mac": None}},
        "fedora-2": {"phase": "adding", "netns": lab.pod("fedora-2").netns}})
    got = attached_lab(lab, st)
    assert got.pod("fedora-1").ip == IPv4Address("10.244.0.77") and got.pod("fedora-1").host_veth == "vethabc"
    assert got.pod("fedora-2").ip == lab.pod("fedora-2").ip  # an unfinished ADD: as planned
    builtin = resolve(load_topology(None))
    assert attached_lab(builtin, st) is builtin


def test_with_a_users_conflist_the_plugins_objects_are_not_extra(tmp_path):
    from netlab.plan.resources import Route
    from netlab.realize.attachments import is_plugin_made, plugin_made
    from netlab.realize.diff import Drift
    from ipaddress import IPv4Network
    (tmp_path / "n.conflist").write_text('{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "ptp"}]}')
    lab = lab_with(tmp_path, "{conflist: n.conflist}")
    pod, node = lab.pod("fedora-1"), lab.node("minikube")
    st = _state(lab, {"fedora-1": {"phase": "added", "netns": pod.netns, "node_netns": node.netns, "attachment": {
        "ip": "10.244.0.2", "host_ifaces": ["veth1"]}}})
    made = plugin_made(lab, st)
    # every node is there (QA q24 #1): its veths to the pods are its plugins' too (live_made)
    assert made == {pod.netns: None, node.netns: {"veth1"}, lab.node("minikube-m02").netns: set()}

    def route(ns, dev, state="extra"):
        return Drift(state, Route(netns=ns, dst=IPv4Network("10.244.0.2/32"), gateway=None, dev=dev))

    assert is_plugin_made(route(node.netns, "veth1"), made)
    assert is_plugin_made(route(pod.netns, "eth0"), made)
    assert not is_plugin_made(route(node.netns, "eth0"), made)  # netlab's own device
    assert not is_plugin_made(route(pod.netns, "eth0", "missing"), made)
    assert plugin_made(lab_with(tmp_path, "reference"), st) == {}  # reference: the plan holds the pod side


def test_another_cni_chain_for_a_running_lab_is_refused_but_builtin_to_reference_is_not(tmp_path):
    from netlab.realize.attachments import check_cni_change
    from netlab.errors import UsageError
    ref, builtin = lab_with(tmp_path, "reference"), lab_with(tmp_path, "builtin")
    check_cni_change(ref, _state(builtin, {}))  # netlab's pod side is replaced by the plugins'
    check_cni_change(ref, _state(ref, {}))
    with pytest.raises(UsageError, match=r"network.cni changed from reference to builtin while the lab is up.*down"):
        check_cni_change(builtin, _state(ref, {}))


@pytest.mark.parametrize("address", ["zzz", "10.244.0.2", "10.244.0.2/33", 7, None])
def test_a_result_whose_address_is_no_cidr_is_refused_in_one_line(address):
    """A plugin's result with an address that is not one (`"zzz"`) failed later with `AddressValueError: Expected
    4 octets in 'zzz'`, naming neither pod nor plugin (the runtime names them around this line)."""
    with pytest.raises(ValueError) as err:
        C.check_result({"cniVersion": "1.0.0", "ips": [{"address": address}]}, "1.0.0")
    assert str(err.value) == (f"its result's ips address {str(address)[:50]!r} is not an address with its prefix "
                              "length (10.244.0.2/24)")
    assert C.check_result({"cniVersion": "1.0.0", "ips": [{"address": "fd00::2/64"}]}, "1.0.0")["ips"]


@pytest.mark.parametrize("text, why", [
    ('{"cniVersion": "1.0.0", "plugins": [{"type": "bridge"}]}',
     "has no name; give the network one (letters, digits, '_', '.', '-')"),
    ('{"cniVersion": "1.0.0", "type": "ptp"}', "has no name; give the network one (letters, digits, '_', '.', '-')"),
    ('{"cniVersion": "1.0.0", "name": null, "plugins": [{"type": "bridge"}]}', "name is null; it must be a string"),
    ('{"cniVersion": "1.0.0", "name": 5, "plugins": [{"type": "bridge"}]}', "name must be a string, not a number"),
    ('{"cniVersion": "1.0.0", "name": "n", "plugins": [{"ipam": {}}]}',
     "plugins[0] has no type; give the plugin's file name (bridge, portmap...)"),
    ('{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "bridge"}, {"type": null}]}',
     "plugins[1].type is null; it must be a string"),
    ('{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": ["bridge"]}]}',
     "plugins[0].type must be a string, not an array"),
    # libcni reads capabilities as booleans; "yes" was taken for no capability, and a pod's hostPort was then
    # refused with "add portmap", which the conflist had (qa54)
    ('{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "portmap", "capabilities": {"portMappings": "yes"}}]}',
     "plugins[0].capabilities.portMappings is the string 'yes'; it must be true or false"),
    ('{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "bridge"}, {"type": "b", "capabilities": {"x": 1}}]}',
     "plugins[1].capabilities.x is a number; it must be true or false"),
])
def test_a_missing_or_non_text_name_or_type_is_said_in_the_words_of_the_json(text, why):
    """Not Python's None: a field the file lacks is missing, a JSON null is null (was "name None is not a CNI
    network name", "plugins[0].type None must be a plugin's file name")."""
    with pytest.raises(ConflistError) as exc:
        parse_conflist(text)
    assert str(exc.value) == why
