"""A plugin that writes outside the lab is said at up and at down, and what it wrote is left (root; Debian's bridge
and host-local behind a small wrapper the test writes into its tmp_path).

The wrapper ``hlw`` builds its delegate's IPAM itself, ``{"type": "host-local"}`` and no ``dataDir``, as Flannel's
plugin builds it from subnet.env: netlab never sees that config, so host-local keeps its leases in the machine's
/var/lib/cni/networks/<network>. `up` and `down` said nothing, and the ``lock`` and ``last_reserved_ip.0`` stay
after down (QA). Now `up` names the new paths in one warning and `down` those still there; netlab removes none of
them (the machine's /var/lib/cni may be a real node's). The test removes exactly the files it made there. The same
lab's calls through ``Lab.cni_log`` (real plugins): ADD's stdin and result as the log has them.
"""

from __future__ import annotations

import json
import os
import uuid

import pytest

from helpers import lab_namespaces, netlab
from netlab import Lab

pytestmark = pytest.mark.root

CNI_BIN = "/usr/lib/cni"
NETWORKS = "/var/lib/cni/networks"

HLW = """#!/usr/bin/python3
# hlw: hands Debian's bridge a config with an IPAM of its own making (host-local, the machine's default dataDir)
import json, os, subprocess, sys
conf = json.load(sys.stdin)
if os.environ["CNI_COMMAND"] == "VERSION":
    print(json.dumps({"cniVersion": conf["cniVersion"], "supportedVersions": ["0.4.0", "1.0.0"]}))
    sys.exit(0)
inner = {"cniVersion": conf["cniVersion"], "name": conf["name"], "type": "bridge", "bridge": conf["bridge"],
         "isGateway": True, "isDefaultGateway": True, "ipam": {"type": "host-local"}}
for key in ("runtimeConfig", "prevResult"):
    if key in conf:
        inner[key] = conf[key]
proc = subprocess.run(["%s/bridge"], input=json.dumps(inner).encode(), capture_output=True)
sys.stdout.buffer.write(proc.stdout)
sys.stderr.buffer.write(proc.stderr)
sys.exit(proc.returncode)
""" % CNI_BIN


def _made(before: set[str]) -> list[str]:
    """What appeared under /var/lib/cni since ``before`` (folders and files), deepest first."""
    now = {os.path.join(root, n) for root, dirs, files in os.walk("/var/lib/cni") for n in dirs + files}
    return sorted(now - before, key=lambda p: -p.count("/"))


def test_a_wrapper_whose_host_local_writes_the_machines_leases_is_said_at_up_and_down(var_lib_cni_alone, labs,
                                                                                     tmp_path):
    assert os.access(f"{CNI_BIN}/bridge", os.X_OK), "containernetworking-plugins missing: run scripts/setup.sh"
    network = f"cl{uuid.uuid4().hex[:8]}"
    folder = f"{NETWORKS}/{network}"
    had = {os.path.join(root, n) for root, dirs, files in os.walk("/var/lib/cni") for n in dirs + files}
    had_root = os.path.isdir("/var/lib/cni")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "hlw").write_text(HLW)
    (tmp_path / "bin" / "hlw").chmod(0o755)
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": network, "plugins": [
        {"type": "hlw", "bridge": "hlw0", "capabilities": {"ipRanges": True}}]}))
    lab = labs.name("clhw")
    try:
        _, up = labs.up(f"name: {lab}\nnetwork: {{mode: host-gw, cni: {{conflist: ./net.conflist, binDir: ./bin}}}}\n"
                        "nodes: [{name: n1}]\npods:\n  - {name: a, node: n1}\n  - {name: b, node: n1}\n")
        leases = sorted(os.listdir(folder))
        assert leases == ["10.244.0.2", "10.244.0.3", "last_reserved_ip.0", "lock"], leases
        said = [line for line in up.stderr.splitlines() if "a plugin wrote outside the lab" in line]
        assert said == [f"netlab: warning: cni: a plugin wrote outside the lab: {folder}/10.244.0.2, "
                        f"{folder}/10.244.0.3, {folder}/last_reserved_ip.0, {folder}/lock (host-local without a "
                        "dataDir netlab can see, as a wrapper hands its delegate: the machine's leases); netlab does "
                        "not remove them"], up.stderr
        ping = netlab("exec", "--lab", lab, "a", "--", "ping", "-c1", "-W2", "10.244.0.3", check=False)
        assert ping.returncode == 0, ping.stdout + ping.stderr  # the pods, attached, reach each other
        # the same calls from Python: the wrapper's ADD, what it got and what it answered
        calls = Lab.attach(lab).cni_log("a").calls
        add = next(c for c in calls if c.plugin == "hlw" and c.command == "ADD")
        assert add.ok and add.stdin["bridge"] == "hlw0" and add.env["CNI_IFNAME"] == "eth0"
        assert add.result is not None and add.result["ips"][0]["address"] == "10.244.0.2/24"
        again = netlab("up", "--lab", lab)  # nothing new written: nothing said
        assert "outside the lab" not in again.stderr, again.stderr
        down = netlab("down", "--lab", lab)
        assert lab_namespaces(lab) == []
        assert sorted(os.listdir(folder)) == ["last_reserved_ip.0", "lock"]  # the DELs released the leases
        said = [line for line in down.stderr.splitlines() if "a plugin wrote outside the lab" in line]
        assert said == [f"netlab: warning: cni: a plugin wrote outside the lab: {folder}/last_reserved_ip.0, "
                        f"{folder}/lock (host-local without a dataDir netlab can see, as a wrapper hands its "
                        "delegate: the machine's leases); netlab does not remove them"], down.stderr
    finally:
        netlab("down", "--lab", lab, check=False)
        for path in _made(had):  # exactly what this test made there: its network's files, then the folders
            if path.startswith(folder + "/") or path == folder:
                os.unlink(path) if not os.path.isdir(path) else os.rmdir(path)
        for path in (NETWORKS, "/var/lib/cni"):
            if path not in had and not (path == "/var/lib/cni" and had_root):
                try:
                    os.rmdir(path)  # made by this test's plugins; left when another's files are in it now
                except OSError:
                    pass
