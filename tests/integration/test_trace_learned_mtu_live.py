"""trace --size where a path MTU refuses the packet (root; QA fl59 6).

n1's route to n2's pods given `mtu 1300` by hand: n1 drops a pod's bigger DF packet and answers a fragmentation
needed, which the pod's kernel learns (`ip route get` there: `cache expires ...sec mtu 1300`). trace names n1's route
for the first packet; once the route is put back by hand, the pod's kernel still refuses a bigger packet itself
(EMSGSIZE) until the learned MTU expires (`up`'s repair would flush it): trace said "LOST at hop 1 ... look at the firewall" (or blamed the ARP entry the
packet never made the kernel ask for); it now shows the learned MTU on the pod's route row and says the kernel
refused the packet there, with the command that forgets it.
"""

from __future__ import annotations

import subprocess

import pytest

from helpers import in_netns, ip, lab_up, netlab, traced, unique_lab, write_topology

pytestmark = pytest.mark.root

TOPO = "name: {name}\nnodes: [{{name: n1}}, {{name: n2}}]\npods: [{{name: a, node: n1}}, {{name: b, node: n2}}]\n"


def test_a_route_mtu_then_the_mtu_the_pod_learned_from_it(tmp_path):
    name = unique_lab("fb")
    path = write_topology(tmp_path, TOPO.format(name=name))
    n1, pod = f"{name}-n1", f"{name}-a"
    with lab_up(path, name, in_process=True):
        rc, d = traced(name, "a", "b")
        assert rc == 0, d["lost"]
        b_ip = d["dst"]["ip"]
        [flannel] = [line for line in ip("route", "show", "dev", "flannel.1", netns=n1).stdout.splitlines()]
        ip("route", "replace", *flannel.split(), "dev", "flannel.1", "mtu", "1300", netns=n1)
        rc, d = traced(name, "a", "b", "--size", "1322")  # 1350 bytes of IP
        assert rc == 1
        lost = d["hops"][d["lost"]["hop"] - 1]
        assert (lost["netns"], lost["device"], lost["kind"]) == (n1, "flannel.1", "route"), d["lost"]
        assert d["lost"]["reason"].endswith(f"so {n1} drops it and answers an ICMP fragmentation needed (mtu 1300)")
        assert d["hops"][0]["problem"] is None, d["hops"][0]  # the pod sent it; it learned the MTU from n1's answer
        # The route put back by hand, the pod's kernel still holds the MTU it learned (a repair by `up` flushes the
        # lab's learned path MTUs: test_connected_route_live)
        ip("route", "replace", *flannel.split(), "dev", "flannel.1", netns=n1)
        assert netlab("status", "--lab", name, check=False).returncode == 0
        assert "mtu 1300" in in_netns(pod, "ip", "route", "get", b_ip, check=True).stdout
        rc, d = traced(name, "a", "b", "--size", "1322")
        assert rc == 1
        first = d["hops"][0]
        assert d["lost"]["hop"] == 1 and first["netns"] == pod and first["kind"] == "route", d["lost"]
        assert first["facts"]["mtu"] == 1300 and 0 < first["facts"]["mtu_expires"] <= 600, first["facts"]
        assert d["lost"]["reason"] == (f"{pod} has learned a path MTU of 1300 bytes to {b_ip} (a router on the way "
                                       "answered an earlier packet with an ICMP fragmentation needed): the packet is "
                                       "1350 bytes with DF set, so the kernel refuses to send it (message too long); "
                                       "it never leaves")
        text = netlab("trace", "--lab", name, "a", "b", "--size", "1322", check=False).stdout
        assert "firewall" not in text and "path MTU 1300 (learned: cache expires" in text, text
        assert f"fix: ip -n {pod} route flush cache" in text and "which repairs the lab" not in text, text
        subprocess.run(["sh", "-c", d["lost"]["fix"].split("   ")[0]], check=True)  # as a learner pastes it
        rc, d = traced(name, "a", "b", "--size", "1322")
        assert rc == 0 and d["delivered"], d["lost"]
