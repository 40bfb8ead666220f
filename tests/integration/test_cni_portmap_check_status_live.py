"""status of a conflist lab whose chain's Debian portmap fails its own CHECK for a hostPort pod (root; QA q57 #3).

portmap 1.1.1 fails CHECK for a pod with a hostPort and no IPv6 address ("could not check ipv6 dnat",
containernetworking/plugins#819). The first CHECK since the pod's ADD finds it failing its own fresh ADD (the pod as
that ADD made it) and up keeps the pod as it is (it re-attached the pod once to find that out, before
tests/integration/test_cni_first_check_live.py); status said so on the cni line, yet its last line still read "run `sudo netlab up -t FILE` to
repair", and that up changed nothing (exit 1). Its last line now names no up as the repair: it says why up leaves
that difference and what does put it right, `"disableCheck": true` then `up --reconfigure`, which is then done and
checked. Debian's bridge, host-local with its leases in the test's folder.
"""

from __future__ import annotations

import json
import os

import pytest

from helpers import netlab

pytestmark = pytest.mark.root

FRESH = "(as right after its own fresh ADD: up does not re-attach the pod for it)"


def chain(tmp_path, **extra) -> None:
    (tmp_path / "pm.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "pm", **extra, "plugins": [
        {"type": "bridge", "bridge": "cni0", "isGateway": True, "isDefaultGateway": True, "hairpinMode": True,
         "mtu": 1450, "ipam": {"type": "host-local", "dataDir": str(tmp_path / "leases"),
                               "ranges": [[{"subnet": "10.244.0.0/24"}]]}},
        {"type": "portmap", "capabilities": {"portMappings": True}}]}))


def test_status_names_no_up_for_a_portmap_check_that_fails_its_own_add(labs, tmp_path):
    assert os.access("/usr/lib/cni/portmap", os.X_OK), "containernetworking-plugins missing: run scripts/setup.sh"
    chain(tmp_path)
    lab = labs.name("pm")
    path, _ = labs.up(f"""name: {lab}
network: {{mode: vxlan, cni: {{conflist: pm.conflist}}}}
nodes: [{{name: n1, podCIDR: 10.244.0.0/24}}]
pods:
  - {{name: a, node: n1, containers: [{{name: web, ports: [{{containerPort: 8080, hostPort: 18080}}]}}]}}
""")
    first = netlab("status", "--lab", lab, check=False)
    if "could not check ipv6 dnat" not in first.stdout:
        pytest.skip(f"this portmap passes its own CHECK (containernetworking/plugins#821): {first.stdout}")
    # that first status found the pod as its ADD made it: the plugin's own failure, marked (cni/first_check.py)
    netlab("up", "-t", path, check=False)
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1 and FRESH in status.stdout, status.stdout
    last = status.stdout.splitlines()[-1]
    assert "to repair" not in status.stdout and "does not repair that difference" in last, status.stdout
    assert '"disableCheck": true' in last and "up --reconfigure" in last and "plugins#819" in last, last
    doc = json.loads(netlab("status", "--lab", lab, "-o", "json", check=False).stdout)
    assert doc["repair"] is None and doc["kept"] == doc["drift"], doc
    up = netlab("up", "-t", path, check=False)
    assert up.returncode == 1 and "nothing changed" in up.stdout, up  # what status no longer offers

    chain(tmp_path, disableCheck=True)  # as the line says
    netlab("up", "-t", path, "--reconfigure")
    assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")
