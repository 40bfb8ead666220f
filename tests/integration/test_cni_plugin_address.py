"""A conflist whose IPAM picks its own addresses (root, Debian's ptp and host-local): a pod's explicit ``ip:`` is
not what it gets. The lab follows the plugin's address; ``up`` and ``status`` say so for each such pod, naming
both addresses (they were silent)."""

from __future__ import annotations

import json
import uuid

import pytest

from helpers import ip_json, netlab

pytestmark = pytest.mark.root


def test_up_and_status_warn_of_an_ip_the_plugin_did_not_give(labs, tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "own-ipam").write_text(  # leaves out CNI_ARGS' IP=, as an IPAM of its own does
        "#!/bin/sh\nCNI_ARGS=$(printf '%s' \"$CNI_ARGS\" | tr ';' '\\n' | grep -v '^IP=' | paste -sd ';')\n"
        "export CNI_ARGS\nexec /usr/lib/cni/ptp\n")
    (tmp_path / "bin" / "own-ipam").chmod(0o755)
    (tmp_path / "ptp.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "ptp-own", "plugins": [
        {"type": "own-ipam", "mtu": 1450, "ipMasq": False,
         "ipam": {"type": "host-local", "dataDir": str(tmp_path / "leases"), "routes": [{"dst": "0.0.0.0/0"}],
                  "ranges": [[{"subnet": "10.244.0.0/24", "rangeStart": "10.244.0.100"}]]}}]}))
    lab = f"cpa{uuid.uuid4().hex[:5]}"
    labs.names.append(lab)
    text = f"""name: {lab}
network: {{mode: host-gw, cni: {{conflist: ptp.conflist, binDir: bin}}}}
nodes: [{{name: n1, podCIDR: 10.244.0.0/24}}]
pods:
  - {{name: s1, node: n1, ip: 10.244.0.20}}
  - {{name: c1, node: n1}}
"""
    path, proc = labs.up(text)
    got = ip_json("addr", "show", "eth0", netns=f"{lab}-s1")[0]["addr_info"][0]["local"]
    assert got != "10.244.0.20", got
    said = (f"netlab: warning: pod s1: its CNI plugins gave it {got}, not the ip: 10.244.0.20 of the topology "
            "(netlab follows the plugins' address)\n")
    assert proc.stderr == said, proc.stderr  # c1 asked for no address: nothing said of it
    st = netlab("status", "-t", path)  # as planned: exit 0, and said
    assert st.stderr == said and "all as planned" in st.stdout, st.stdout + st.stderr
    js = json.loads(netlab("status", "--lab", lab, "-o", "json").stdout)
    assert js["ok"] and js["warnings"] == [said.removeprefix("netlab: warning: ").rstrip("\n")], js
    again = netlab("up", "-t", path)
    assert "nothing to change" in again.stdout and again.stderr == said


def test_a_host_local_range_of_its_own_gives_pods_without_ip_their_address(labs, tmp_path):
    """QA 61 2: Debian's bridge with a host-local range of its own (rangeStart/rangeEnd inside the podCIDR, no
    ipRanges capability): netlab asked every pod's ADD for its planned address (CNI_ARGS IP=10.244.0.2), which
    host-local refuses outside its range ("failed to allocate all requested IPs", 3 tries, rc 4). A real node's
    runtime asks for none: a pod without ip: gets one of the range, a pod with an ip: in the range gets that one."""
    (tmp_path / "c.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "cnr", "plugins": [
        {"type": "bridge", "bridge": "cnr0", "isGateway": True,
         "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}],
                  "ranges": [[{"subnet": "10.244.0.0/24", "rangeStart": "10.244.0.100",
                               "rangeEnd": "10.244.0.200"}]]}}]}))
    lab = f"cnr{uuid.uuid4().hex[:5]}"
    labs.names.append(lab)
    text = f"""name: {lab}
network: {{cni: {{conflist: c.conflist}}}}
nodes: [{{name: n1, podCIDR: 10.244.0.0/24}}]
pods: [{{name: a, node: n1}}, {{name: b, node: n1}}, {{name: c, node: n1, ip: 10.244.0.150}}]
"""
    path, proc = labs.up(text)
    assert proc.stderr == "", proc.stderr  # no pod's ip: was overruled
    got = {pod: ip_json("addr", "show", "eth0", netns=f"{lab}-{pod}")[0]["addr_info"][0]["local"]
           for pod in ("a", "b", "c")}
    # host-local's own pick: the next free one after its last lease (which pod is ADDed first is the runtime's)
    assert got["c"] == "10.244.0.150" and len(set(got.values())) == 3, got
    assert all(100 <= int(got[pod].rsplit(".", 1)[1]) <= 200 for pod in ("a", "b")), got
    st = netlab("status", "-t", path)
    assert st.returncode == 0 and "all as planned" in st.stdout, st.stdout + st.stderr
    probe = netlab("probe", "--lab", lab)
    assert probe.returncode == 0, probe.stdout + probe.stderr
    again = netlab("up", "-t", path)
    assert "nothing to change" in again.stdout, again.stdout + again.stderr
