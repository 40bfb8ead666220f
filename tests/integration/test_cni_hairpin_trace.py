"""trace of a pod to its own Service in a conflist lab whose bridge plugin has no hairpinMode (root; QA q57 #2).

The DNATed frame must go back out of the port it came in by, which the bridge does only in hairpin mode: lost at
the bridge, rightly. The port is the plugin's, which no `up` sets (the plan holds none of a conflist's ports), yet
the fix offered "(or: sudo netlab up -t FILE, which repairs the lab)", and that up changed nothing. The fix now
names hairpinMode in the conflist's bridge plugin and the `up --reconfigure` that attaches the pods again, and so
does a hint of probe's for its X!; done as it says, the packet is delivered. Debian's bridge, host-local with its
leases in the test's folder.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from helpers import netlab
from netlab.errors import netlab_command, netlab_words

pytestmark = pytest.mark.root

BRIDGE = {"type": "bridge", "bridge": "cni0", "isGateway": True, "isDefaultGateway": True, "mtu": 1450}


def test_a_hairpin_off_on_a_conflist_port_names_hairpin_mode_not_up(labs, tmp_path):
    assert os.access("/usr/lib/cni/bridge", os.X_OK), "containernetworking-plugins missing: run scripts/setup.sh"
    conflist = tmp_path / "nohp.conflist"
    ipam = {"type": "host-local", "dataDir": str(tmp_path / "leases"), "ranges": [[{"subnet": "10.244.0.0/24"}]]}
    conflist.write_text(json.dumps({"cniVersion": "1.0.0", "name": "nohp", "plugins": [{**BRIDGE, "ipam": ipam}]}))
    lab = labs.name("hp")
    path, _ = labs.up(f"""name: {lab}
network: {{mode: vxlan, cni: {{conflist: nohp.conflist}}}}
nodes: [{{name: n1, podCIDR: 10.244.0.0/24}}]
pods: [{{name: xa, node: n1, labels: {{app: web}}}}, {{name: xb, node: n1}}]
services: [{{name: web, selector: {{app: web}}, ports: [{{port: 80, targetPort: 8080}}]}}]
""")
    trace = netlab("trace", "--lab", lab, "xa", "svc/web", "--port", "80", check=False, timeout=60)
    assert trace.returncode == 1 and "LOST" in trace.stdout, trace.stdout
    (fix,) = [line.strip() for line in trace.stdout.splitlines() if line.strip().startswith("fix: ")]
    assert "which repairs the lab" not in fix, fix
    assert f'"hairpinMode": true in the bridge plugin of {conflist}' in fix and "--reconfigure" in fix, fix
    assert 'has no "hairpinMode": true' in trace.stdout, trace.stdout
    probe = netlab("probe", "--lab", lab, check=False, timeout=120)
    assert probe.returncode == 1 and "xa -> svc/web 10.96.0.11:80/tcp (ClusterIP): expected reachable" in probe.stdout
    (hint,) = [line for line in probe.stdout.splitlines() if "hairpinMode" in line]
    assert hint.startswith("hint: xa -> svc/web ") and "then `up --reconfigure`" in hint, probe.stdout
    up = netlab("up", "-t", path)  # what the fix no longer offers: it changes nothing
    assert "nothing to change" in up.stdout, up.stdout

    # Done as the fix says: the pods attached again with hairpinMode, and the packet comes back through the bridge.
    conflist.write_text(json.dumps({"cniVersion": "1.0.0", "name": "nohp", "plugins": [
        {**BRIDGE, "hairpinMode": True, "ipam": ipam}]}))
    command = re.search(r"then (sudo .*netlab up .*--reconfigure)", fix)
    assert command and command.group(1).startswith(netlab_command("up")), fix
    netlab(*netlab_words(command.group(1)) or [])
    trace = netlab("trace", "--lab", lab, "xa", "svc/web", "--port", "80", check=False, timeout=60)
    assert trace.returncode == 0 and "hairpin mode" in trace.stdout, trace.stdout
    probe = netlab("probe", "--lab", lab, check=False, timeout=120)
    assert probe.returncode == 0 and "hairpinMode" not in probe.stdout, probe.stdout
