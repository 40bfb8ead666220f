"""A removed pod whose CNI DEL fails (QA cx 2), against fake plugins and the fake kernel.

Its namespace goes anyway, but what its plugins keep on the node (an IPAM lease, portmap's rules) may stay: up warns
naming pod, plugin and what may be left, keeps the pod's record, status says so, and the next up runs DEL again, as
containerd keeps a sandbox whose network teardown failed and the kubelet retries. When the whole lab goes, the
warning says what stays outside it. The real plugins are tests/integration/test_cni_kept.py's.
"""

from __future__ import annotations

import json

import test_cni_reattach
from test_cni_reattach import DEL_BOTH, TOPO, up

from netlab.cni import lifecycle
from netlab.cni.leftover import left_behind
from netlab.feature import ModuleFeature
from netlab.lab import status as lab_status
from netlab.lab import teardown
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.realize import state as state_mod
from netlab.realize.attachments import pod_records

world = test_cni_reattach.world  # the fixture: fake plugins, a conflist lab
WITHOUT_B = TOPO.replace("  - {name: b, node: n1, ip: 10.244.0.3}\n", "")


def without_b(tmp_path):
    """The lab with pod b taken out of its file."""
    (tmp_path / "t.yaml").write_text(WITHOUT_B)
    return resolve(load_topology(str(tmp_path / "t.yaml")))


def test_a_removed_pod_whose_del_fails_keeps_its_record_and_the_next_up_deletes_it_again(world, tmp_path):
    lab, plugins = world
    from netlab.kernel.fake import FakeKernel
    k = FakeKernel()
    up(lab, k)
    smaller = without_b(tmp_path)
    plugins.fail.add(("b", "chain", "DEL"))
    plugins.calls.clear()
    (tmp_path / "leases" / "net").mkdir(parents=True)  # b's lease, as host-local keeps it (the fake chain makes none)
    (tmp_path / "leases" / "net" / "10.244.0.3").write_text("cid\neth0")
    result = up(smaller, k)
    said = [w for w in result.warnings if "pod b" in w]
    assert said == ["CNI DEL of pod b: CNI plugin chain DEL: failed (exit 1): no; on node n1 may be left what its "
                    "plugins keep there: the lab keeps pod b's CNI record, and the next up or down runs DEL again"]
    assert plugins.of("b") == [("chain", "DEL", "eth0")]  # one DEL in this run, not a second from start
    st = state_mod.load_state(lab.name)
    assert "b" in pod_records(st)  # it was dropped: nothing would DEL it again
    assert "cni: pod b was taken out of the topology, but its CNI DEL failed: up runs DEL again" in \
        lab_status.status(st, k, [ModuleFeature(lifecycle)]).drift
    plugins.calls.clear()
    again = up(smaller, k)  # still failing: a warning again, the record kept
    assert plugins.of("b") == [("chain", "DEL", "eth0")] and any("CNI DEL of pod b" in w for w in again.warnings)
    plugins.fail.clear()
    plugins.calls.clear()
    fixed = up(smaller, k)
    assert plugins.of("b") == DEL_BOTH and "b" not in pod_records(state_mod.load_state(lab.name))
    assert "ran the CNI DEL of removed pod b again: it succeeded" in fixed.fixed
    plugins.fail.add(("a", "chain", "DEL"))
    down = teardown.down(lab.name, k, [ModuleFeature(lifecycle)])
    assert [p for p in down.problems if "pod a" in p] == [
        "CNI DEL of pod a: CNI plugin chain DEL: failed (exit 1): no; the lab goes with its nodes and state "
        "directory, and what its plugins kept goes with them"]


def test_what_a_failed_del_may_leave_is_read_from_the_pods_chain(tmp_path):
    net = {"name": "kd", "plugins": [
        {"type": "bridge", "ipMasq": True, "ipam": {"type": "host-local", "dataDir": "/srv/leases"}},
        {"type": "portmap"}, {"type": "firewall"}]}
    prec = {"networks": [[net, "eth0"]], "attachment": {"ip": "10.244.0.3"}}
    rules = ["bridge's ipMasq rules (CNI-* in nat POSTROUTING)", "portmap's iptables rules (CNI-HOSTPORT-*, CNI-DN-*)",
             "firewall's iptables rules (CNI-FORWARD)"]
    # no file /srv/leases/kd/10.244.0.3: host-local leased nothing there (a running lab's node keeps the rules)
    assert left_behind(prec) == rules
    assert left_behind(prec, outside="/run/netlab/lab") == []
    net["plugins"][0]["ipam"]["dataDir"] = str(tmp_path)
    (tmp_path / "kd").mkdir()
    (tmp_path / "kd" / "10.244.0.3").write_text("cid\neth0")  # host-local's lease of the address
    assert left_behind(prec) == [f"host-local's lease of 10.244.0.3 in {tmp_path}/kd"] + rules
    assert left_behind(prec, outside="/run/netlab/lab") == [f"host-local's lease of 10.244.0.3 in {tmp_path}/kd"]
    net["plugins"][0]["ipam"]["dataDir"] = "/run/netlab/lab/cni/networks/n1"
    assert left_behind(prec, outside="/run/netlab/lab") == []  # it goes with the lab's state directory


def test_a_failed_del_names_only_what_the_plugins_it_did_not_undo_made(world, tmp_path):
    """QA q20 #5: DEL runs the list in reverse, so firewall's and portmap's passed before chain's failed: their
    rules are gone; chain's (its host-local lease, its ipMasq rules) and the loopback network's may be left."""
    lab, plugins = world
    for name in ("portmap", "firewall"):
        (tmp_path / "bin" / name).write_text("#!/bin/sh\nexit 1\n")
        (tmp_path / "bin" / name).chmod(0o755)
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "net", "plugins": [
        {"type": "chain", "ipMasq": True, "ipam": {"type": "host-local", "dataDir": str(tmp_path / "leases")}},
        {"type": "portmap"}, {"type": "firewall"}]}))
    from netlab.kernel.fake import FakeKernel
    k = FakeKernel()
    up(resolve(load_topology(str(tmp_path / "t.yaml"))), k)
    (tmp_path / "t.yaml").write_text(WITHOUT_B)
    plugins.fail.add(("b", "chain", "DEL"))
    plugins.calls.clear()
    (tmp_path / "leases" / "net").mkdir(parents=True)  # b's lease, as host-local keeps it (the fake chain makes none)
    (tmp_path / "leases" / "net" / "10.244.0.3").write_text("cid\neth0")
    said = [w for w in up(resolve(load_topology(str(tmp_path / "t.yaml"))), k).warnings if "pod b" in w]
    assert plugins.of("b") == [("firewall", "DEL", "eth0"), ("portmap", "DEL", "eth0"), ("chain", "DEL", "eth0")]
    assert said == ["CNI DEL of pod b: CNI plugin chain DEL: failed (exit 1): no; on node n1 may be left host-local's "
                    f"lease of 10.244.0.3 in {tmp_path}/leases/net, chain's ipMasq rules (CNI-* in nat POSTROUTING): the lab "
                    "keeps pod b's CNI record, and the next up or down runs DEL again"]
    plugins.fail.add(("a", "chain", "DEL"))
    (tmp_path / "leases" / "net" / "10.244.0.2").write_text("cid\neth0")
    down = teardown.down(lab.name, k, [ModuleFeature(lifecycle)])
    assert [p for p in down.problems if "pod a" in p] == [
        "CNI DEL of pod a: CNI plugin chain DEL: failed (exit 1): no; the lab goes with its nodes, but host-local's "
        f"lease of 10.244.0.2 in {tmp_path}/leases/net stays (remove it by hand)"]


def test_status_against_a_file_without_a_running_pod_says_its_del_is_to_run_not_that_it_failed(world, tmp_path):
    """QA 61 4: `status -t FILE` of a file with pod b taken out said "pod b was taken out of the topology, but its
    CNI DEL failed: up runs DEL again" when no DEL had run: b is attached, its DEL is the file's up's to run."""
    lab, plugins = world
    from netlab.kernel.fake import FakeKernel
    k = FakeKernel()
    up(lab, k)
    st = state_mod.load_state(lab.name)
    said = [line for line in lifecycle.drift(without_b(tmp_path), st) if "pod b" in line]
    assert said == ["cni: pod b is attached and not in the topology: up runs its CNI DEL"], said
    assert not any(c[2] == "DEL" for c in plugins.calls), plugins.calls  # status ran none
