"""A link's alias and group are not compared (root; QA 62k): they change no forwarding, a real node's links have
none, and docs/fidelity.md says status leaves them out. This holds the docs to it: with an alias and a group on
cni0 and a pod's eth0, status finds the lab as planned and `up` leaves both as they are (`ip -d -j link`)."""

from __future__ import annotations

import pytest

from helpers import as_planned_here, ip_json, lab_up, sh, two_node_topology, unique_lab, write_topology

pytestmark = pytest.mark.root


def test_an_alias_and_a_group_are_left_out_of_status_as_the_docs_say(tmp_path):
    name = unique_lab("lba")
    path = write_topology(tmp_path, two_node_topology(name, "vxlan", pods_per_node=1))
    node, pod = f"{name}-minikube", f"{name}-fedora-1"
    with lab_up(path, name, in_process=True):
        for ns, dev in ((node, "cni0"), (pod, "eth0")):
            sh("ip", "-n", ns, "link", "set", dev, "alias", "by-hand", "group", "7")
        assert as_planned_here(name)
        for ns, dev in ((node, "cni0"), (pod, "eth0")):
            [link] = ip_json("-d", "link", "show", dev, netns=ns)
            assert (link.get("ifalias"), link.get("group")) == ("by-hand", "7"), link
