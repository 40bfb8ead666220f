"""bridge-port-disabled on a real lab (root): the pod is cut off, its links all up, and the kernel keeps it so.

`netlab break bridge-port-disabled` sets the pod's port on cni0 to STP state disabled through the netlink codec.
STP is off, yet a port the kernel enabled less than 15 s ago (cni0's forward_delay) has its forward delay timer
armed; when it runs out it moves a listening port on to learning and a learning one to forwarding, but leaves a
disabled one alone: the break is done right after `up`, and still holds once the timer has run out. status names
the port's state; trace's fix, typed as printed, brings the pod back, and so does `up`. (test_break_pod_network.py runs the
scenario with every other: probe's flows, trace's hop and fact, up's repair.)
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time

import pytest

from helpers import in_netns, ip_json, netlab, resolving, two_node_topology, wait_for
from netlab.errors import netlab_command

pytestmark = pytest.mark.root


def port_of(node_ns: str, pod_ns: str) -> dict:
    """The pod's port on the node's cni0, as `bridge -j link` shows it."""
    peer = ip_json("link", "show", "eth0", netns=pod_ns)[0]["link_index"]
    ports = json.loads(in_netns(node_ns, "bridge", "-j", "link", "show", check=True).stdout)
    return next(p for p in ports if p["ifindex"] == peer)


def pings(netns: str, ip: str, wait: int = 1) -> bool:
    """One echo answered within ``wait`` seconds."""
    return in_netns(netns, "ping", "-c1", f"-W{wait}", ip).returncode == 0


def answers(netns: str, ip: str, node: str, pod: str) -> bool:
    """An echo answered once the port forwards again. An ARP resolution the cut began (a ping of the cut-off checks:
    the node's of the pod, the pod's of its gateway) may have sent all its requests while the port forwarded
    nothing: its entry stays INCOMPLETE until its last request times out (retrans_time, 1 s), and a packet queued on
    it meanwhile is dropped ("Destination Host Unreachable" from the node, or a reply lost in the pod), although the
    port forwards. Those resolutions are waited out, as the kernel shows them; the next one goes through the port."""
    assert wait_for(lambda: not resolving(node, "cni0") and not resolving(pod, "eth0"), timeout=30), \
        (resolving(node, "cni0"), resolving(pod, "eth0"))
    return pings(netns, ip, wait=5)


def test_a_disabled_port_cuts_the_pod_off_until_the_fix(labs):
    lab = labs.name("pbn")
    path, _ = labs.up(two_node_topology(lab, pods_per_node=1))
    node, pod, other = f"{lab}-minikube-m02", f"{lab}-fedora-2", f"{lab}-fedora-1"
    pod_ip = ip_json("-4", "addr", "show", "eth0", netns=pod)[0]["addr_info"][0]["local"]
    assert pings(other, pod_ip) and pings(node, pod_ip)

    out = netlab("break", "bridge-port-disabled", "--lab", lab, "--target", "fedora-2").stdout
    port = port_of(node, pod)
    name = port["ifname"]
    assert port["state"] == "disabled" and f"bridge -n {node} link set dev {name} state disabled" in out, out
    (link,) = ip_json("-d", "link", "show", "dev", name, netns=node)
    (eth0,) = ip_json("link", "show", "eth0", netns=pod)
    assert {"UP", "LOWER_UP"} <= set(link["flags"]) and {"UP", "LOWER_UP"} <= set(eth0["flags"]), (link, eth0)
    # The forward delay timer the kernel armed when up enabled the port runs out by this time (with the timer
    # wheel's slack, 1/8 of 15 s); what follows only reads the port, so it runs meanwhile.
    timer_out = time.monotonic() + float(link["linkinfo"]["info_slave_data"]["forward_delay_timer"]) + 15 / 8 + 0.1
    assert not pings(other, pod_ip) and not pings(node, pod_ip) and not pings(pod, "10.244.1.1")  # cut off

    st = netlab("status", "--lab", lab, check=False)
    assert st.returncode == 1 and st.stdout.splitlines()[1:-1] == [
        f"  different: link {name} in {node} (bridge port of cni0 in state disabled, want forwarding: cni0 forwards "
        f"nothing to or from eth0 in {pod})"], st.stdout
    tr = netlab("trace", "--lab", lab, "fedora-1", "fedora-2", "-o", "json", check=False)
    lost = json.loads(tr.stdout)["lost"]
    assert tr.returncode == 1 and lost["netns"] == node and "is in state disabled, not forwarding" in lost["reason"]
    assert lost["fix"] == f"bridge -n {node} link set dev {name} state forwarding", lost
    # The timer waited out: the port is still disabled, and the pod still cut off.
    time.sleep(max(0.0, timer_out - time.monotonic()))
    assert port_of(node, pod)["state"] == "disabled" and not pings(other, pod_ip)
    subprocess.run(shlex.split(lost["fix"]), check=True, timeout=10)  # the fix, as a user types it
    assert port_of(node, pod)["state"] == "forwarding"
    assert answers(other, pod_ip, node, pod) and answers(node, pod_ip, node, pod)
    assert netlab("status", "--lab", lab, check=False).returncode == 0

    # Again, and `up` repairs it: one op, the port's state; the veth is not made again.
    netlab("break", "bridge-port-disabled", "--lab", lab, "--target", "fedora-2")
    assert not pings(other, pod_ip)
    up = netlab("up", "-t", path).stdout
    assert f"set port_state of link {name} in {node}" in up and "add link" not in up, up
    assert port_of(node, pod)["state"] == "forwarding" and answers(other, pod_ip, node, pod)
    assert netlab("status", "--lab", lab, check=False).returncode == 0


def test_disabled_on_a_port_set_down_is_refused_and_up_repairs(labs):
    """QA q8 1: bridge-port-disabled after bridge-port-down on the same pod said "is broken already ... nothing
    changed" (exit 0, no warning): the kernel shows a down port disabled by itself. It is refused in one line
    (exit 2) naming the down port, the kernel unchanged; up brings the port up and forwarding; then it breaks."""
    lab = labs.name("bq")
    path, _ = labs.up(two_node_topology(lab, pods_per_node=1))
    node, pod = f"{lab}-minikube-m02", f"{lab}-fedora-2"
    netlab("break", "bridge-port-down", "--lab", lab, "--target", "fedora-2")
    port = port_of(node, pod)
    name = port["ifname"]
    (link,) = ip_json("link", "show", "dev", name, netns=node)
    assert port["state"] == "disabled" and "UP" not in link["flags"], (port, link)  # the kernel's own disabled

    again = netlab("break", "bridge-port-disabled", "--lab", lab, "--target", "fedora-2", check=False)
    assert again.returncode == 2 and again.stdout == "", again
    [line] = again.stderr.strip().splitlines()
    assert f"bridge-port-disabled cannot break pod fedora-2: its bridge port {name} in {node} is down" in line, line
    assert netlab_command("up -t") in line or netlab_command(f"up --lab {lab}") in line, line
    assert "broken already" not in again.stdout + again.stderr
    (link,) = ip_json("link", "show", "dev", name, netns=node)
    assert port_of(node, pod)["state"] == "disabled" and "UP" not in link["flags"]  # nothing changed

    up = netlab("up", "-t", path).stdout
    assert f"set up of link {name}" in up, up
    (link,) = ip_json("link", "show", "dev", name, netns=node)
    assert port_of(node, pod)["state"] == "forwarding" and {"UP", "LOWER_UP"} <= set(link["flags"]), link
    assert netlab("status", "--lab", lab, check=False).returncode == 0
    out = netlab("break", "bridge-port-disabled", "--lab", lab, "--target", "fedora-2").stdout
    assert "broke bridge-port-disabled on pod fedora-2" in out and port_of(node, pod)["state"] == "disabled"
    netlab("up", "-t", path)
    assert port_of(node, pod)["state"] == "forwarding"
