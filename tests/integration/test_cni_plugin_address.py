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
