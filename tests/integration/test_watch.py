"""`netlab up --watch`, run as a user runs it (a separate process, stopped with SIGINT), against real breakage.

The watcher's lab: two nodes, pod ``a`` (restartPolicy Always, the default)
on node-1 and pod ``b`` (restartPolicy Never) on node-2, each with a command
container of its own process (echo containers are threads of the lab's one
echo server: killing one kills them all, as a shared process does). Each case breaks
something with ordinary tools (``ip route del``, ``ip link set down``,
``kill -9``, an edit of the file) and waits for the kernel's view to be
right again, with the watcher's one-line log saying what it saw and did.
The fixture always stops the watcher and checks that Ctrl-C left the lab up
and consistent. Each test that shares its lab leaves it as the plan says, so
they pass in any order (pytest-xdist's worksteal may run a module's tests out
of order on one lab): b's kill, which leaves b exited for good (drift to
status, and `up` leaves it so), has a lab of its own; an edit of the file is
undone and the lab converged back before the test ends.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest

from netlab.errors import down_command
from helpers import ip_json, ipv4_of, lab_namespaces, netlab, set_port_state, state_path, unique_lab, write_topology
from netlab import Lab
from watching import as_planned, container_pid, drift, running, topology, wait_until, watching

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    name = unique_lab("im")
    path = write_topology(tmp_path_factory.mktemp("watch"), topology(name))
    with watching(name) as start:
        watcher = start(path)
        yield name, path, watcher
        # Ctrl-C: the watcher ends at once, says so, and the lab stays up and as the plan says
        # (b, restartPolicy Never, exited would be the only difference status may report; no test here kills it).
        assert watcher.stop() == 0
        assert "stopped watching lab" in watcher.lines[-1] and "it stays up" in watcher.lines[-1]
        assert f"{name}-a" in lab_namespaces(name)
        lines = drift(name)
        assert all(line.startswith("containers: pod b ") for line in lines), lines


def test_a_deleted_route_comes_back(lab):
    """The watcher puts a deleted route back (how fast is bench_watch.py's figure, ~0.2 s: no timed assert here;
    the bound is the watcher's line's, for a loaded machine)."""
    name, _, watcher = lab
    mark = len(watcher.lines)
    subprocess.run(["ip", "-n", f"{name}-node-1", "route", "del", "10.244.1.0/24"], check=True)
    took = wait_until(lambda: ip_json("route", "show", "10.244.1.0/24", netns=f"{name}-node-1") != [], 10.0)
    line = watcher.wait_for_line(f"did: replace route 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink in "
                                 f"{name}-node-1", after=mark)
    # What it saw: the notification, or the comparison's words (see test_a_link_set_down_is_healed).
    assert (f"route 10.244.1.0/24 deleted in {name}-node-1" in line
            or f"missing: route 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink in {name}-node-1" in line), line
    print(f"route back after {took:.3f} s: {line}")


def test_a_link_set_down_is_healed(lab):
    name, _, watcher = lab
    mark = len(watcher.lines)
    subprocess.run(["ip", "-n", f"{name}-a", "link", "set", "eth0", "down"], check=True)
    wait_until(lambda: "UP" in ip_json("link", "show", "eth0", netns=f"{name}-a")[0]["flags"], 10.0)
    line = watcher.wait_for_line(f"did: set up of link eth0 in {name}-a", after=mark)
    # What it saw: the notification, or, when notifications of an earlier change (carriers coming up late
    # after the lab was made) woke it first and its comparison found the link down before it read this
    # one, the comparison's words.
    # (the comparison's words name three differences and then "...": the bridge port the link down disabled and the
    # routes it took may come first; the did: part above says what it found)
    assert f"link eth0 down in {name}-a" in line or f"different: link eth0 in {name}-a (down)" in line \
        or f"cni0 forwards nothing to or from eth0 in {name}-a" in line, line
    # The pod's routes went with its link; they are back too, and traffic flows.
    wait_until(lambda: len(ip_json("route", netns=f"{name}-a")) == 3, 10.0)
    assert subprocess.run(["ip", "netns", "exec", f"{name}-a", "ping", "-c1", "-W2", "10.244.1.2"],
                          capture_output=True).returncode == 0


def test_a_deleted_namespace_is_made_again_at_once(lab):
    name, _, watcher = lab
    mark = len(watcher.lines)
    subprocess.run(["ip", "netns", "del", f"{name}-a"], check=True)  # no netlink message: inotify on /run/netns
    line = watcher.wait_for_event(f"namespace deleted in {name}-a", after=mark, timeout=5)
    assert re.search(r"did: created 1 namespace(?!s)", line) and "restarted container a/main" in line
    assert subprocess.run(["ip", "netns", "exec", f"{name}-a", "ping", "-c1", "-W2", "10.244.1.2"],
                          capture_output=True).returncode == 0


def test_a_change_in_the_underlay_is_healed_at_once(lab):
    """The watcher listened to nodes and pods only: a change in the underlay's namespace (its route to the node
    bridge's MTU changed, which nothing else notices) waited for the periodic check."""
    name, _, watcher = lab
    mark = len(watcher.lines)
    subprocess.run(["ip", "-n", f"{name}-underlay", "link", "set", "br0", "mtu", "1400"], check=True)
    line = watcher.wait_for_event(f"link br0 up in {name}-underlay", after=mark, timeout=5)
    assert "periodic check" not in line and "mtu of link br0" in line, line
    assert ip_json("link", "show", "br0", netns=f"{name}-underlay")[0]["mtu"] == 1500


def test_a_deleted_vtep_neighbour_is_healed_at_once(lab):
    """flannel.1's neighbour entry for the other node's VTEP deleted: the kernel reports it FAILED, not PERMANENT,
    and the watcher let it wait for the periodic check."""
    name, _, watcher = lab
    mark = len(watcher.lines)
    subprocess.run(["ip", "-n", f"{name}-node-1", "neigh", "del", "10.244.1.0", "dev", "flannel.1"], check=True)
    # (found: a round an earlier change's late event began may find it missing before its own notification is
    # read: "saw: link cni0 up in X (missing: neighbour 10.244.1.0 ...); did: replace neighbour ...", CI once)
    line = watcher.wait_for_event("neighbour 10.244.1.0 ", after=mark, timeout=5, found=True)
    assert "periodic check" not in line and "did: " in line, line
    [entry] = ip_json("neigh", "show", "10.244.1.0", "dev", "flannel.1", netns=f"{name}-node-1")
    assert "PERMANENT" in entry["state"]


@pytest.mark.parametrize("how, found", [
    (["bridge", "fdb", "replace", "{mac}", "dev", "flannel.1", "dst", "{dst}", "port", "4789", "self", "permanent"],
     "(port 4789 (want flannel.1's own))"),
    (["ip", "link", "set", "flannel.1", "type", "vxlan", "ttl", "1"], "(ttl 1 (want auto))"),
    (["ip", "link", "set", "flannel.1", "arp", "off"], "(arp off (want on))"),
])
def test_overlay_drift_the_comparison_missed_is_healed_at_once(lab, how, found):
    """An FDB entry sent to another UDP port, flannel.1's TTL or its ARP off (QA qa59f): the kernel said each
    (the entry's MAC is the lab's, the link's settings and flags changed), but the comparison found nothing, and
    the watcher repaired nothing while the node's pods were cut off from the other node's."""
    name, _, watcher = lab
    node = f"{name}-node-1"
    [entry] = json.loads(subprocess.run(["bridge", "-j", "-n", node, "fdb", "show", "dev", "flannel.1"],
                                        capture_output=True, text=True, check=True).stdout)
    mark = len(watcher.lines)
    words = [w.format(mac=entry["mac"], dst=entry["dst"]) for w in how]
    subprocess.run([words[0], "-n", node, *words[1:]], check=True)
    line = watcher.wait_for_line(found, after=mark)
    assert "did: " in line, line
    wait_until(lambda: as_planned(name), 10.0, step=0.2)
    assert json.loads(subprocess.run(["bridge", "-j", "-n", node, "fdb", "show", "dev", "flannel.1"],
                                     capture_output=True, text=True, check=True).stdout) == [entry]
    [link] = ip_json("-d", "link", "show", "flannel.1", netns=node)
    assert "NOARP" not in link["flags"] and link["linkinfo"]["info_data"]["ttl"] == 0, link


def test_a_neighbour_the_kernel_fails_to_resolve_is_not_drift(lab):
    """QA reap57 2: an address in a pod's subnet that nothing answers (as the kernel's GC of a neighbour entry, a
    FAILED entry reported changed, then deleted): none of the lab's PERMANENT entries, so no round of the watcher's,
    nor a word in its lines; a real change after it is said alone."""
    name, _, watcher = lab
    pod = f"{name}-a"
    nobody = ipv4_of(pod, "eth0").rsplit(".", 1)[0] + ".250"
    mark = len(watcher.lines)
    with watcher.frozen():  # both notifications queued for one wake: the neighbour's would be said with the route's
        subprocess.run(["ip", "netns", "exec", pod, "ping", "-c", "1", "-W", "1", nobody], capture_output=True)
        wait_until(lambda: any("FAILED" in e.get("state", []) for e in ip_json("neigh", "show", nobody, netns=pod)),
                   10.0, step=0.1)  # the kernel gave up on it (3 solicitations, 1 s apart) and said so
        subprocess.run(["ip", "-n", f"{name}-node-1", "route", "del", "10.244.1.0/24"], check=True)
    watcher.wait_for_line(f"did: replace route 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink in "
                          f"{name}-node-1", after=mark)
    assert not [line for line in watcher.lines[mark:] if f"neighbour {nobody} " in line], watcher.lines[mark:]


def test_a_vtep_neighbour_demoted_by_hand_is_made_permanent_again_at_once(lab):
    """The same entry replaced by a REACHABLE one (same MAC): the kernel reports it in that state, which the
    watcher took for one the kernel learned, and left to the periodic check."""
    name, _, watcher = lab
    node = f"{name}-node-1"
    [entry] = ip_json("neigh", "show", "10.244.1.0", "dev", "flannel.1", netns=node)
    mark = len(watcher.lines)
    subprocess.run(["ip", "-n", node, "neigh", "replace", "10.244.1.0", "lladdr", entry["lladdr"], "dev", "flannel.1",
                    "nud", "reachable"], check=True)
    line = watcher.wait_for_event("neighbour 10.244.1.0 changed", after=mark, timeout=5)
    assert "periodic check" not in line and "did: " in line, line
    [entry] = ip_json("neigh", "show", "10.244.1.0", "dev", "flannel.1", netns=node)
    assert "PERMANENT" in entry["state"], entry


def test_a_bridge_port_state_set_by_hand_is_healed_at_once(lab):
    """`bridge link set dev PORT state learning` on pod a's port: the bridge says so on the link group (an
    RTM_NEWLINK of family AF_BRIDGE), which the watcher reported as "link PORT up"; it says it in the bridge's
    words and sets the state back (status compares it with the plan: every port forwarding)."""
    name, _, watcher = lab
    node = f"{name}-node-1"
    (eth0,) = ip_json("link", "show", "eth0", netns=f"{name}-a")
    (port,) = [x["ifname"] for x in ip_json("link", netns=node) if x["ifindex"] == eth0["link_index"]]
    mark = len(watcher.lines)
    set_port_state(node, port, "learning")
    line = watcher.wait_for_event(f"bridge port {port} learning in {node}", after=mark, timeout=5)
    assert "periodic check" not in line and f"did: set port_state of link {port} in {node}" in line, line
    shown = subprocess.run(["bridge", "-j", "-n", node, "link", "show", "dev", port], capture_output=True, text=True,
                           check=True).stdout
    assert json.loads(shown)[0]["state"] == "forwarding", shown
    assert subprocess.run(["ip", "netns", "exec", f"{name}-a", "ping", "-c1", "-W2", "10.244.1.2"],
                          capture_output=True).returncode == 0


def test_a_bridge_port_setting_and_a_static_fdb_entry_are_healed_at_once(lab):
    """`bridge link set dev PORT bcast_flood off` says the port forwarding as before (it was taken for the link
    watch's echo), and the kernel's word on `bridge fdb add ... master static` was not heard at all: both are said
    and repaired (tests/integration/test_bridge_settings.py for status and up)."""
    name, _, watcher = lab
    node = f"{name}-node-1"
    (eth0,) = ip_json("link", "show", "eth0", netns=f"{name}-a")
    (port,) = [x["ifname"] for x in ip_json("link", netns=node) if x["ifindex"] == eth0["link_index"]]
    mark = len(watcher.lines)
    subprocess.run(["bridge", "-n", node, "link", "set", "dev", port, "bcast_flood", "off"], check=True)
    line = watcher.wait_for_event(f"bridge port {port} forwarding (bcast_flood off) in {node}", after=mark,
                                  timeout=5)
    assert f"did: set port_settings of link {port} in {node}" in line, line
    mark = len(watcher.lines)
    subprocess.run(["bridge", "-n", node, "fdb", "replace", "02:00:00:00:00:77", "dev", port, "master", "static"],
                   check=True)
    line = watcher.wait_for_event(f"fdb entry 02:00:00:00:00:77 static added in {node}", after=mark, timeout=5)
    assert f"did: del bridge fdb 02:00:00:00:00:77 dev {port} master cni0 static in {node}" in line, line
    shown = json.loads(subprocess.run(["bridge", "-d", "-j", "-n", node, "link", "show", "dev", port],
                                      capture_output=True, text=True, check=True).stdout)
    assert shown[0]["bcast_flood"] is True, shown


def test_a_deleted_node_namespace_is_made_again_at_once(lab):
    """The watcher's own sockets in a deleted node's namespace kept it alive, with its veths, still paired with
    the pods' eth0: every repair failed ("add link veth... already exists"), retried for ever. It lets go of a
    namespace as its name goes."""
    name, _, watcher = lab
    mark = len(watcher.lines)
    subprocess.run(["ip", "netns", "del", f"{name}-node-2"], check=True)
    line = watcher.wait_for_event(f"namespace deleted in {name}-node-2", after=mark, timeout=5)
    assert re.search(r"did: created 1 namespace(?!s)", line) and "repair failed" not in line, line
    assert subprocess.run(["ip", "netns", "exec", f"{name}-a", "ping", "-c1", "-W2", "10.244.1.2"],
                          capture_output=True).returncode == 0


def test_a_deleted_node_namespace_freed_by_the_kernel_during_the_repair_is_made_again(tmp_path):
    """The kernel frees a deleted namespace later (a worker's job, later still under load), and its links with it:
    the node's eth0 takes the underlay's veth paired with it along. Freed after the repair read the underlay and
    before it deleted that veth to make the pair again, the deletion failed ("saw: namespace deleted in X-node-2
    (different: link vethN in X-underlay (its peer is not eth0 ...)); did: repair failed: del link vethN in
    X-underlay: no such device; rolled back ...", a loaded CI): the repair is held between its read and its ops
    (the pause hook) while the old namespace, kept by a descriptor of this test, is let go and freed."""
    name = unique_lab("im")
    path = write_topology(tmp_path, topology(name))
    node, underlay = f"{name}-node-2", f"{name}-underlay"
    with watching(name) as start:
        watcher = start(path, env={"NETLAB_FAULT_POINT": "repair-read", "NETLAB_FAULT_MODE": "pause"}, held=True)
        (eth0,) = ip_json("link", "show", "eth0", netns=node)
        uplink = eth0["link_index"]  # the underlay's veth paired with the node's eth0, by its ifindex there
        assert uplink in [link["ifindex"] for link in ip_json("link", netns=underlay)]
        old = os.open(f"/run/netns/{node}", os.O_RDONLY | os.O_CLOEXEC)  # the namespace lives on while it is open
        try:
            mark = len(watcher.lines)
            subprocess.run(["ip", "netns", "del", node], check=True)
            watcher.wait_for_line("paused at repair-read", after=mark)  # the lab read, the old veth in it
        finally:
            os.close(old)
        wait_until(lambda: uplink not in [link["ifindex"] for link in ip_json("link", netns=underlay)], 10.0)
        watcher.resume()
        line = watcher.wait_for_event(f"namespace deleted in {node}", after=mark)
        assert re.search(r"did: created 1 namespace(?!s)", line) and "repair failed" not in line, line
        assert node in [ns["name"] for ns in json.loads(subprocess.run(["ip", "-j", "netns", "list"], check=True,
                                                                       capture_output=True, text=True).stdout)]
        links = {link["ifname"]: link for link in ip_json("link", netns=node)}
        assert {"eth0", "cni0", "flannel.1"} <= set(links) and "UP" in links["eth0"]["flags"], links
        assert subprocess.run(["ip", "netns", "exec", f"{name}-a", "ping", "-c1", "-W2", "10.244.1.2"],
                              capture_output=True).returncode == 0


@pytest.mark.parametrize("scenario,target", [("ip-forward-off", "node-1"), ("vxlan-arp-missing", "node-2")])
def test_a_break_scenario_is_healed(lab, scenario, target):
    """`netlab break` (the catalogue's real faults) under the watcher: healed without anyone running up."""
    name, _, watcher = lab
    mark = len(watcher.lines)
    broke = Lab(name).break_(scenario, target)  # `netlab break`, in this process: the watcher's repair is the test
    assert broke.changes and not broke.already, broke
    assert any(f"is kept by pid {watcher.proc.pid} (netlab up --watch)" in w for w in broke.warnings), broke.warnings
    line = watcher.wait_for_line("did: ", after=mark, timeout=5)
    assert "saw: " in line and "repair failed" not in line, line
    wait_until(lambda: as_planned(name), 5.0, step=0.2)
    probe = netlab("probe", "--lab", name, check=False)
    assert probe.returncode == 0, probe.stdout


def test_a_killed_container_is_restarted_and_restart_policy_never_is_kept(tmp_path):
    """In a lab of its own: b's kill leaves b exited for good (restartPolicy Never), drift that status reports and
    `up` leaves by design, which the module's lab would have kept for every test after this one."""
    name = unique_lab("im")
    path = write_topology(tmp_path, topology(name))
    with watching(name) as start:
        watcher = start(path)
        mark = len(watcher.lines)
        old = container_pid(name, "a")
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: container_pid(name, "a") != old and running(container_pid(name, "a")), 5.0)
        line = watcher.wait_for_line("container a/main exited (exit 137)", after=mark)
        assert "did: restarted container a/main" in line
        # Killed again at once: the kubelet's back-off makes it wait (0.5 s here, then 1 s ...).
        mark = len(watcher.lines)
        again = container_pid(name, "a")
        os.kill(again, signal.SIGKILL)
        wait_until(lambda: container_pid(name, "a") != again and running(container_pid(name, "a")), 5.0)
        assert any("back-off" in x for x in watcher.lines[mark:]) or \
            watcher.wait_for_line("did: restarted container a/main", after=mark)
        # b's restartPolicy is Never: it stays exited, and the watcher says why, once.
        mark = len(watcher.lines)
        b = container_pid(name, "b")
        os.kill(b, signal.SIGKILL)
        line = watcher.wait_for_event("container b/main exited", after=mark)
        assert "did: nothing (restartPolicy Never)" in line and "(exit 137)" in line
        time.sleep(2.5)  # past a resync
        assert container_pid(name, "b") == b and not running(b)
        assert sum("b/main" in x for x in watcher.lines[mark:]) == 1
        # Ctrl-C: the lab stays up, b exited the one difference status reports.
        assert watcher.stop() == 0
        assert "stopped watching lab" in watcher.lines[-1] and "it stays up" in watcher.lines[-1]
        lines = drift(name)
        assert lines, lines
        assert all(line.startswith("containers: pod b ") for line in lines), lines


def test_an_edited_topology_adds_a_pod(lab):
    name, path, watcher = lab
    with open(path) as fh:
        planned = fh.read()
    try:
        mark = len(watcher.lines)
        with open(path, "a") as fh:
            fh.write("  - name: c\n    node: node-1\n")
        wait_until(lambda: f"{name}-c" in lab_namespaces(name), 10.0)
        line = watcher.wait_for_line(f"saw: {path} changed; did: created 1 namespace", after=mark)
        assert "created 1 namespaces" not in line, line  # one namespace, in the singular
        assert "started container c/main" in line
        assert subprocess.run(["ip", "netns", "exec", f"{name}-c", "ping", "-c1", "-W2", "10.244.1.2"],
                              capture_output=True).returncode == 0
        # An invalid edit is reported and changes nothing.
        mark = len(watcher.lines)
        with open(path, "a") as fh:
            fh.write("  - name: d\n    node: node-9\n")
        line = watcher.wait_for_line(f"saw: {path} changed; did: nothing, it is not valid", after=mark)
        assert "node-9" in line and f"{name}-d" not in lab_namespaces(name)
    finally:
        # The file as it was, and the lab with it (c gone), for the tests that share the lab after this one.
        mark = len(watcher.lines)
        with open(path, "w") as fh:
            fh.write(planned)
        watcher.wait_for_event(f"{path} changed", after=mark)
        wait_until(lambda: f"{name}-c" not in lab_namespaces(name), 10.0)
        wait_until(lambda: as_planned(name), 5.0, step=0.2)


def test_the_loop_survives_a_failed_repair_and_retries_with_back_off(tmp_path):
    name = unique_lab("im")
    path = write_topology(tmp_path, topology(name))
    Lab.up(path)
    with watching(name) as start:
        # Every repair's 5th step fails (a test hook of netlab.lab.journal): the repair is rolled back.
        # The watcher's first up has 4 steps (the features' starts: services, cni, workload, impair);
        # a repair has its route op before them, so its 5th step is a feature's start.
        watcher = start(path, env={"NETLAB_FAULT_AT": "5"})
        subprocess.run(["ip", "-n", f"{name}-node-1", "route", "del", "10.244.1.0/24"], check=True)
        first = watcher.wait_for_line("did: repair failed: injected fault")
        assert first.endswith("retry in 0.5s") and f"route 10.244.1.0/24 deleted in {name}-node-1" in first
        watcher.wait_for_line("retry in 1.0s", timeout=10)
        watcher.wait_for_line("retry in 2.0s", timeout=10)
        assert watcher.proc.poll() is None  # still watching
        assert watcher.stop() == 0
        fixed = Lab.up(path).last_up  # a plain up repairs what the failed ones could not
        assert fixed is not None and any("10.244.1.0/24" in line for line in fixed.fixed), fixed


def test_down_while_watching_ends_the_watch_and_the_lab_stays_down(tmp_path):
    name = unique_lab("im")
    path = write_topology(tmp_path, topology(name))
    with watching(name) as start:
        watcher = start(path)
        Lab(name).down()  # `netlab down`, in this process: the watcher's end is the test
        line = watcher.wait_for_line(f"saw: lab {name} was taken down; did: stop watching", timeout=15) \
            if watcher.proc.poll() is None else next(x for x in watcher.drained() if "was taken down" in x)
        assert line
        assert watcher.proc.wait(15) == 0
        watcher.stop()  # (it has ended: this reads its last lines)
        assert watcher.lines[-1].endswith(f"stopped watching lab {name}: it is down"), watcher.lines[-3:]
        # Its containers exit and its namespaces vanish while the watcher may be reading them: that is the lab
        # going (the state says "deleting" first), not a check that failed.
        assert not any("check failed" in x for x in watcher.lines), "\n".join(watcher.lines)
        time.sleep(1)
        assert lab_namespaces(name) == [] and not os.path.exists(state_path(name))  # not brought back


def test_a_second_watcher_of_a_lab_is_refused_and_one_may_start_once_the_first_ends(tmp_path):
    name = unique_lab("im")
    path = write_topology(tmp_path, topology(name))
    with watching(name) as start:
        first = start(path)
        with open(state_path(name, "state.json"), "rb") as fh:
            before = fh.read()
        second = netlab("up", "-t", path, "--watch", check=False, timeout=30)
        assert second.returncode == 3 and second.stdout == "", second
        assert second.stderr.strip().splitlines() == [
            f"netlab: lab {name} is already watched by pid {first.proc.pid} (netlab up --watch); one watcher per "
            "lab: stop that one (Ctrl-C) first"], second.stderr
        with open(state_path(name, "state.json"), "rb") as fh:
            assert fh.read() == before  # it applied nothing
        assert first.proc.poll() is None
        lines = len(first.lines)
        subprocess.run(["ip", "-n", f"{name}-node-1", "route", "del", "10.244.1.0/24"], check=True)
        first.wait_for_line("did: replace route 10.244.1.0/24", after=lines)  # the first watches on
        assert first.stop() == 0
        assert not os.path.exists(state_path(name, "watcher"))  # it takes its lock file with it
        again = start(path)  # the lab is free to watch again
        Lab(name).down()
        assert again.proc.wait(15) == 0
        time.sleep(0.5)
        assert not os.path.exists(state_path(name))  # nothing of the watchers' left either


def test_a_running_lab_picked_by_name_is_watched_as_its_saved_topology(tmp_path):
    """`up --watch --lab L` was refused (exit 2), so a lab without its file (or made from a dict) could not be
    watched. It watches the lab `up --lab L` converges: its saved topology, `netlab impair`'s change kept (its
    file would take it off), and no file re-read, as its first line says."""
    name = unique_lab("im")
    path = write_topology(tmp_path, topology(name))
    Lab.up(path).impair("a:eth0", rate="5mbit")
    with watching(name) as start:
        watcher = start(None, lab=name)
        first = watcher.lines[0].split(" ", 1)[1]  # after its time
        assert first == (f"saw: lab {name} from lab {name}'s saved topology, no file to re-read (`netlab up -t "
                         "FILE` and `netlab impair` change it); did: it was up and as its saved topology says; "
                         "watching"), first
        tc = subprocess.run(["tc", "-j", "-n", f"{name}-a", "qdisc", "show", "dev", "eth0", "root"],
                            capture_output=True, text=True, check=True).stdout
        assert [q["kind"] for q in json.loads(tc)] == ["tbf"], tc  # the run-time rate kept
        mark = len(watcher.lines)
        subprocess.run(["ip", "-n", f"{name}-node-1", "route", "del", "10.244.1.0/24"], check=True)
        wait_until(lambda: ip_json("route", "show", "10.244.1.0/24", netns=f"{name}-node-1") != [], 10.0)
        watcher.wait_for_line(f"did: replace route 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink in "
                              f"{name}-node-1", after=mark)
        with open(path, "a") as fh:  # the lab's file is not followed
            fh.write("  - name: c\n    node: node-1\n")
        time.sleep(1.5)
        assert not any(path in line for line in watcher.lines), watcher.lines
        assert watcher.stop() == 0
        last = watcher.lines[-1].split(" ", 1)[1]
        assert last == (f"stopped watching lab {name} (SIGINT); it stays up (`{down_command(name)}` "
                        "takes it down)"), last
        assert as_planned(name)  # as its saved topology says, the 5mbit with it
        assert f"{name}-c" not in lab_namespaces(name)
