"""The lab's lifecycle against the fake kernel (no root), when the lab changes: an older loss impairment's chain,
chains an older netlab left, status against another file, pods moved to another node, and drift's details.

The root integration tests (tests/integration/test_repair.py, test_impair.py) check the same on real namespaces.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from fake_lab import TOPO, IdleFeature, make_lab, status, up

from netlab.errors import ApplyFailed, netlab_command
from netlab.kernel.base import KernelError, Op, TableText
from netlab.kernel.fake import FakeKernel
from netlab.lab import status as lab_status
from netlab.lab import rollback, up as lab_up
from netlab.lab.journal import Journal
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.realize import state as state_mod

lab = pytest.fixture(make_lab, name="lab")


# --- an older netlab's loss impairment, a mangle chain (loss is a netdev table now: test_impair_loss_plan.py) --

LEFT_BEHIND = "*mangle\n:NETLAB-IMPAIR - [0:0]\n-A NETLAB-IMPAIR -o eth0 -j DROP\nCOMMIT\n"


def test_a_chain_an_older_netlab_left_is_drift_and_up_deletes_it(lab):
    """What `impair --clear` used to leave (the chain and its DROP rule, the jump gone) is named by status and
    deleted by up; the fake refuses, as nf_tables does, to delete a chain something still jumps to."""
    k = FakeKernel()
    up(lab, k)
    before = k.iptables_save("fk-a", "mangle")
    jumped = LEFT_BEHIND.replace("COMMIT", "-A POSTROUTING -j NETLAB-IMPAIR\nCOMMIT")
    k.apply([Op("restore", TableText("fk-a", "mangle", jumped, noflush=True))])
    with pytest.raises(KernelError, match="Device or resource busy"):
        k.apply([Op("restore", TableText("fk-a", "mangle", "*mangle\n:NETLAB-IMPAIR - [0:0]\n-X NETLAB-IMPAIR\n"
                                                           "COMMIT\n", noflush=True))])
    assert "-A POSTROUTING -j NETLAB-IMPAIR\n" in k.iptables_save("fk-a", "mangle")  # refused: nothing changed
    k.apply([Op("restore", TableText("fk-a", "mangle", "*mangle\n-D POSTROUTING -j NETLAB-IMPAIR\nCOMMIT\n",
                                     noflush=True))])
    assert status(lab, k).drift == ["different: iptables mangle rules in fk-a (extra chain: NETLAB-IMPAIR; "
                                    "extra rule: -A NETLAB-IMPAIR -o eth0 -j DROP)",
                                    "extra: iptables-nft base chains mangle POSTROUTING in fk-a (mangle POSTROUTING: "
                                    "hooked, empty, policy ACCEPT; the plan has no rule in it)"]
    up(lab, k)
    assert k.iptables_save("fk-a", "mangle") == before
    assert status(lab, k).ok


def test_status_against_a_file_without_a_pod_names_the_namespace_up_would_delete(lab):
    """status -t FILE shows what up -t FILE would change: a pod the file no longer has is an extra namespace
    (it listed the veth, the rules and the DNS, and not the pod's own namespace), in the text and the JSON."""
    k = FakeKernel()
    up(lab, k)
    st = state_mod.load_state(lab.name)
    without_b = dict(st.topology, pods=[p for p in st.topology["pods"] if p["name"] != "b"])
    result = lab_status.status(replace(st, topology=without_b), k)
    assert "extra: namespace fk-b (not in the plan: up deletes it and what runs in it)" in result.drift
    assert {"state": "extra", "object": "namespace fk-b"}.items() <= next(
        d for d in result.details if d["object"] == "namespace fk-b").items()
    assert status(lab, k).ok  # against its own file: nothing extra


def test_a_tables_differences_past_six_say_how_many_more():
    from netlab.realize.diff import first_of

    assert first_of([f"rule {i}" for i in range(9)]) == "rule 0; rule 1; rule 2; rule 3; rule 4; rule 5 (and 3 more)"
    assert first_of(["rule 0"]) == "rule 0"


def moved(lab, tmp_path, node: str = "n1"):
    """The lab with pod b on ``node`` (its file's other pods as they are)."""
    path = tmp_path / "moved.yaml"
    path.write_text(TOPO.replace("{name: b, node: n2, ip: 10.244.1.3}", f"{{name: b, node: {node}, ip: 10.244.0.3}}"))
    return resolve(load_topology(str(path))), str(path)


def test_a_pod_put_on_another_node_is_made_anew_there(lab, tmp_path):
    """Kubernetes never moves a pod: it makes a new one. up deleted nothing first and failed ("add link veth...
    in n1: already exists": the pod's eth0, still the old pair's end), and its rollback kept the new topology."""
    k = FakeKernel()
    up(lab, k)
    new, path = moved(lab, tmp_path)
    done = lab_up.up(new, k, features=(), source=path, reconfigure=True)
    assert done.created_netns == ["fk-b"] and any("pod b moves from node n2 to n1" in f for f in done.fixed)
    assert done.remade_netns == ["fk-b"]  # its deletion is this run's own: `up --watch` does not say it saw it
    assert status(new, k).ok
    assert not [name for name in k.ns["fk-n2"].links if name.startswith("veth")]  # the old pair went with it


@pytest.mark.parametrize("edit, why", [
    ({"podCIDR: 10.244.1.0/24": "podCIDR: 10.244.9.0/24",
      "{name: b, node: n2, ip: 10.244.1.3}": "{name: b, node: n2}"},
     "pod b changes address from 10.244.1.3 to 10.244.9.2 (node n2's pod CIDR is now 10.244.9.0/24)"),
    ({"{name: b, node: n2, ip: 10.244.1.3}": "{name: b, node: n2, ip: 10.244.1.9}"},
     "pod b changes address from 10.244.1.3 to 10.244.1.9 (its file's ip: asks for it)"),
])
def test_a_pod_whose_address_changes_is_made_anew_as_a_moved_one(lab, tmp_path, edit, why):
    """A pod's IP never changes while it lives: a new block of its node (or a new ip:) makes a new pod, in a new
    namespace, by the move's path. up re-addressed the running pod's eth0 in place (its processes ran on)."""
    k = FakeKernel()
    up(lab, k)
    path = tmp_path / "readdressed.yaml"
    text = TOPO
    for was, now in edit.items():
        text = text.replace(was, now)
    path.write_text(text)
    new = resolve(load_topology(str(path)))
    k.log.clear()
    done = lab_up.up(new, k, features=(), source=str(path), reconfigure=True)
    assert done.created_netns == ["fk-b"], done
    assert f"{why}: made anew in a new namespace (Kubernetes makes a new pod)" in done.fixed, done.fixed
    assert not any(op.res.kind == "address" and op.res.netns == "fk-b" and op.verb == "del" for op in k.log)
    assert status(new, k).ok
    again = lab_up.up(new, k, features=(), source=str(path))
    assert again.created_netns == [] and not again.fixed  # made once: the next up keeps it


def test_a_failed_run_puts_back_the_topology_it_had_saved(lab, tmp_path):
    """The state names the new topology before the kernel is changed (write-ahead); a failed run leaves it as
    the last good run did, so status compares with the lab that is there. A pod moved and deleted before the
    failure is made again as that run had it (it was left missing, until an up of the old file made it)."""
    k = FakeKernel()
    up(lab, k)
    old = state_mod.load_state(lab.name)
    new, path = moved(lab, tmp_path)
    for at in range(1, 30):
        try:
            lab_up.up(new, k, features=(), source=path, reconfigure=True, journal=Journal(k, fault_at=at))
        except ApplyFailed as exc:
            assert str(exc).endswith("; rolled back"), str(exc)
        else:
            assert at > 3 and status(new, k).ok  # the namespace deleted and made again, then its veth at least
            break
        st = state_mod.load_state(lab.name)
        assert (st.topology, st.source, st.phase) == (old.topology, old.source, old.phase), at
        assert "fk-b" in st.netns and status(lab, k).drift == [], (at, status(lab, k).drift)
    else:
        raise AssertionError("up never got past the injected faults")


def test_a_rollback_puts_back_the_routes_the_kernel_dropped_with_an_address(lab, tmp_path):
    """A node's new ip: replaces its eth0 address in place; with its last address gone the kernel drops every
    route through eth0 (the default via the underlay's router), which no op of the run deleted, so undoing the
    ops left the node without them ("rolled back", and status said "missing: route default ..."). Stopped at
    every step, the rollback leaves a lab whose status is clean."""
    k = FakeKernel()
    up(lab, k)
    path = tmp_path / "node-ip.yaml"
    path.write_text(TOPO.replace("{name: n2, ip: 192.168.122.7,", "{name: n2, ip: 192.168.122.9,"))
    new = resolve(load_topology(str(path)))
    for at in range(1, 40):
        try:
            lab_up.up(new, k, features=(), source=str(path), reconfigure=True, journal=Journal(k, fault_at=at))
        except ApplyFailed as exc:
            assert "rolled back" in str(exc)
            assert status(lab, k).drift == [], at
            continue
        assert at > 2 and status(new, k).ok
        break
    else:
        raise AssertionError("up never got past the injected faults")


def test_a_pod_attached_by_cni_plugins_is_not_moved_in_one_run(lab, tmp_path):
    """Its old chain's DEL on the old node and an ADD on the new one: refused in one line, with the two steps."""
    from netlab.errors import UsageError
    from netlab.realize.attachments import moved_pods

    k = FakeKernel()
    up(lab, k)
    st = state_mod.load_state(lab.name)
    new, path = moved(lab, tmp_path)
    assert moved_pods(new, st) == [("b", "n2", "n1")]
    with open(path, "a") as fh:
        fh.write("network: {cni: reference}\n")
    cni = resolve(load_topology(path))
    with pytest.raises(UsageError, match="pod b moves from node n2 to n1, and its CNI plugins attached it on n2: "
                                         "take the pod out of the file and `up`"):
        moved_pods(cni, st)


def test_every_drift_line_has_its_details_entry(lab):
    """status -o json: `details` held the kernel objects' differences only, not the features' lines."""
    class Feature:
        name = "fake"

        def drift(self, lab, state):
            return ["containers: pod a has no containers started; up starts them"]

    k = FakeKernel()
    up(lab, k)
    k.delete_netns("fk-b")
    result = lab_status.status(state_mod.load_state(lab.name), k, [Feature()])  # type: ignore[list-item]
    assert len(result.details) == len(result.drift)
    assert result.details[-1] == {"state": "problem", "object": "containers", "resource": None,
                                  "detail": "pod a has no containers started; up starts them",
                                  "differences": ["pod a has no containers started; up starts them"]}


# --- a converge that stops: what it named ahead and what the kernel did as the signal landed -------------------

def with_service(tmp_path):
    """The lab with a pod c and a Service selecting pod a (kube-proxy's rules in every node, the cluster DNS)."""
    path = tmp_path / "svc.yaml"
    path.write_text(TOPO.replace("{name: a, node: n1, ip: 10.244.0.2}", "{name: a, node: n1, ip: 10.244.0.2, "
                                 "labels: {app: web}}\n  - {name: c, node: n1}")
                    + "services: [{name: web, selector: {app: web}, ports: [{port: 80}]}]\n")
    return resolve(load_topology(str(path))), str(path)


def test_a_converge_stopped_before_its_namespaces_leaves_none_named(lab, tmp_path):
    """The state names a run's new namespaces before they are made (write-ahead); a run stopped before making
    them kept them, "intent", and status then named namespaces that do not exist as extra."""
    k = FakeKernel()
    up(lab, k)
    new, path = with_service(tmp_path)
    with pytest.raises(ApplyFailed, match="rolled back"):
        lab_up.up(new, k, features=(), source=path, reconfigure=True, journal=Journal(k, fault_at=1))
    st = state_mod.load_state(lab.name)
    assert sorted(st.netns) == ["fk-a", "fk-b", "fk-n1", "fk-n2", "fk-underlay"]
    assert status(lab, k).ok


class SignalledKernel(FakeKernel):
    """A signal that lands while the kernel writes the nodes' rule tables: the restores run to their end (they
    are processes, or threads the kernel waits for), then the handler's exception is raised."""

    armed = False

    def apply(self, ops, order=()):
        super().apply(ops, order)
        if self.armed and any(isinstance(op.res, TableText) for op in ops):
            self.armed = False
            raise rollback.Interrupted("interrupted by SIGINT; rolled back")


def test_rule_tables_written_as_a_signal_lands_are_taken_back(lab, tmp_path):
    """The journal recorded a batch's ops only once the kernel returned: the Service's chains, written when the
    signal came, stayed in the nodes after the rollback, and no later up removed them (the state never knew)."""
    k = SignalledKernel()
    up(lab, k)
    new, path = with_service(tmp_path)
    k.armed = True
    with pytest.raises(rollback.Interrupted):
        lab_up.up(new, k, features=(), source=path, reconfigure=True)
    assert not k.armed  # the signal came while tables were written
    assert status(lab, k).ok, status(lab, k).drift


REMOVALS = {
    "pod b for c": (TOPO.replace("{name: b, node: n2, ip: 10.244.1.3}", "{name: c, node: n2, ip: 10.244.1.4}"), "b"),
    "node n2 and its pod": (TOPO.replace("  - {name: n2, ip: 192.168.122.7, podCIDR: 10.244.1.0/24}\n", "")
                            .replace("  - {name: b, node: n2, ip: 10.244.1.3}\n", ""), "n2, b"),
}


@pytest.mark.parametrize("removal", sorted(REMOVALS))
def test_a_failed_converge_that_removes_a_pod_leaves_it_whole_or_says_so(lab, tmp_path, removal):
    """A converge that removes pod b and adds c fails at each of its steps in turn. The node's end of b's veth
    was deleted early, as an extra link, which the rollback could not make again (its peer unknown), and
    b's containers were stopped before the step that deletes its namespace: "rolled back", and b had no eth0.
    Now b is whole after every rollback but those after its removal began, which say so (a feature that starts
    after the removals gives the run steps there)."""
    k = FakeKernel()
    up(lab, k)
    text, gone = REMOVALS[removal]
    path = tmp_path / "swap.yaml"
    path.write_text(text)
    new = resolve(load_topology(str(path)))
    said = 0
    for at in range(1, 40):
        try:
            lab_up.up(new, k, features=(IdleFeature(),), source=str(path), reconfigure=True,
                      journal=Journal(k, fault_at=at))
        except ApplyFailed as exc:
            if "which it had begun to remove" in str(exc):
                said += 1
                named = re.search(r"but for (.+), which it had begun to remove \(`"
                                  + re.escape(netlab_command("up --lab fk")) + r"` makes (it|them) again\)$", str(exc))
                assert named and set(named.group(1).split(", ")) <= set(gone.split(", ")), str(exc)
                # one namespace is "it" (QA qa59m 5: "makes them again" of pod b alone)
                assert named.group(2) == ("it" if len(named.group(1).split(", ")) == 1 else "them"), str(exc)
                up(lab, k)  # what the message says: the lab's saved topology, the old one
            assert status(lab, k).ok, (at, status(lab, k).drift)
        else:
            assert status(new, k).ok and said >= 1
            break
    else:
        raise AssertionError("up never got past the injected faults")


def test_a_rollback_leaves_what_was_missing_before_the_run_missing(lab):
    """A rollback puts the kernel back as the run found it, not as planned: a route deleted by hand before an up
    that fails stays missing (status names it, the next up repairs it). Putting back what the kernel dropped
    with an address took every planned object that was missing, so a failed repair looked like a good one (an
    `up --watch` saw no drift left and never retried)."""
    from netlab.plan.build import build_plan

    k = FakeKernel()
    up(lab, k)
    route = next(r for r in build_plan(lab).of_kind("route") if r.netns == f"{lab.name}-n1")
    k.apply([Op("del", route)])
    gone = status(lab, k).drift
    assert gone == [f"missing: {route.describe()}"], gone
    for at in range(1, 40):
        try:
            lab_up.up(lab, k, features=(IdleFeature(),), journal=Journal(k, fault_at=at))
        except ApplyFailed as exc:  # at 2: the route was added, then the feature's start failed
            assert "rolled back" in str(exc)
            assert status(lab, k).drift == gone, at
            continue
        assert at > 2 and status(lab, k).ok
        break
    else:
        raise AssertionError("up never got past the injected faults")


def test_a_pod_put_in_another_kubernetes_namespace_is_made_anew(lab, tmp_path):
    """A pod's namespace is part of its identity (namespace/name): in another one it is another pod, with a new
    sandbox, as a moved pod is. up kept the old network namespace (and the processes in it), said nothing."""
    k = FakeKernel()
    up(lab, k)
    path = tmp_path / "renamespaced.yaml"
    path.write_text(TOPO.replace("{name: b, node: n2, ip: 10.244.1.3}",
                                 "{name: b, node: n2, ip: 10.244.1.3, namespace: qa}"))
    new = resolve(load_topology(str(path)))
    done = lab_up.up(new, k, features=(), source=str(path), reconfigure=True)
    assert done.created_netns == ["fk-b"], done
    assert ("pod b moves from Kubernetes namespace default to qa: made anew in a new namespace (Kubernetes makes a "
            "new pod)") in done.fixed, done.fixed
    assert status(new, k).ok
    again = lab_up.up(new, k, features=(), source=str(path))
    assert again.created_netns == [] and not again.fixed  # made once: the next up keeps it
    back = lab_up.up(lab, k, features=(), source=str(path), reconfigure=True)  # and back: a new pod again
    assert back.created_netns == ["fk-b"] and any("from Kubernetes namespace qa to default" in f for f in back.fixed)


def test_a_pod_attached_by_cni_plugins_is_not_put_in_another_namespace_in_one_run(lab, tmp_path):
    """Its plugins' DEL and a new ADD in one run: refused in one line before any change, with the two steps (up
    deleted its namespace, then the plugins' ADD failed: "container veth name provided (eth0) already exists")."""
    from netlab.errors import UsageError
    from netlab.realize.attachments import remade_pods

    k = FakeKernel()
    up(lab, k)
    st = state_mod.load_state(lab.name)
    path = tmp_path / "renamespaced.yaml"
    path.write_text(TOPO.replace("{name: b, node: n2, ip: 10.244.1.3}", "{name: b, node: n2, namespace: qa}")
                    + "network: {cni: reference}\n")
    with pytest.raises(UsageError, match=r"pod b moves from Kubernetes namespace default to qa, and its CNI plugins "
                                         r"attached it as default/b: take the pod out of the file and `up`"):
        remade_pods(resolve(load_topology(str(path))), st)
