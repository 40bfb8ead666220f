"""A NetworkPolicy on a conflist lab whose chain runs Debian's CNI ``firewall`` plugin (root, Debian's bridge,
host-local with its leases in the test's folder, and firewall, iptables backend; QA q41, older problems, 1).

firewall's ADD inserts ``-j CNI-FORWARD`` at the top of the node's FORWARD, and CNI-FORWARD ACCEPTs every packet
from a pod's address: it came above netlab's jump to NETPOL-FORWARD, so a denied flow got through, while status
said "all as planned" and trace only "look at the node's filter table". netlab puts its policy hook back on top
after the plugins' ADDs, as a policy controller's sync does (kube-router, Calico's ChainInsertMode "insert"): the
kernel refuses the flow, probe and trace say so; and when the plugin's jump is moved above it again, status and
trace name that jump, and up puts the hook first again. Checked with ``iptables-save`` and real TCP connects.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from helpers import in_netns, ipv4_of, netlab
from netlab.errors import netlab_command

pytestmark = pytest.mark.root

CNI_BIN = "/usr/lib/cni"
HOOK = '-A FORWARD -m comment --comment "netlab network policies" -j NETPOL-FORWARD'
FIREWALL = '-A FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD'


def forward(netns: str) -> list[str]:
    save = subprocess.run(["ip", "netns", "exec", netns, "iptables-save", "-t", "filter"], check=True,
                          capture_output=True, text=True).stdout
    return [line for line in save.splitlines() if line.startswith("-A FORWARD ")]


def connects(src: str, ip: str, port: int = 8080) -> bool:
    code = ("import socket,sys; s=socket.socket(); s.settimeout(3); "
            f"sys.exit(s.connect_ex(({ip!r}, {port})))")
    return in_netns(src, "python3", "-c", code).returncode == 0


def test_a_policy_holds_with_the_firewall_plugin_and_its_jump_above_the_hook_is_named(labs, tmp_path):
    assert os.access(f"{CNI_BIN}/firewall", os.X_OK), "containernetworking-plugins missing: run scripts/setup.sh"
    (tmp_path / "fw.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "fw-pol", "plugins": [
        {"type": "bridge", "bridge": "cni0", "isGateway": True, "isDefaultGateway": True, "hairpinMode": True,
         "ipam": {"type": "host-local", "dataDir": str(tmp_path / "leases"), "ranges": [[{"subnet": "10.244.0.0/24"}]]}},
        {"type": "firewall"}]}))
    lab = labs.name("fw")
    path, _ = labs.up(f"""name: {lab}
network: {{mode: host-gw, cni: {{conflist: fw.conflist}}}}
nodes: [{{name: n1, podCIDR: 10.244.0.0/24}}]
pods:
  - {{name: web, node: n1, labels: {{app: web}}}}
  - {{name: cli, node: n1, labels: {{role: cli}}}}
  - {{name: other, node: n1}}
networkPolicies:
  - name: web-from-cli
    spec:
      podSelector: {{matchLabels: {{app: web}}}}
      ingress: [{{from: [{{podSelector: {{matchLabels: {{role: cli}}}}}}]}}]
""")
    node, web = f"{lab}-n1", ipv4_of(f"{lab}-web", "eth0")
    rules = forward(node)
    assert rules[:2] == [HOOK, FIREWALL], rules  # the plugin's ADD came after netlab's rules: the hook on top again
    assert not connects(f"{lab}-other", web) and connects(f"{lab}-cli", web)  # the kernel's verdict
    assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")
    probe = netlab("probe", "--lab", lab, check=False, timeout=120)
    assert probe.returncode == 0 and "not as expected" not in probe.stdout, probe.stdout
    trace = netlab("trace", "--lab", lab, "other", "web", "--proto", "tcp", "--port", "8080", check=False,
                   timeout=60)
    assert "NOT STOPPED" not in trace.stdout and "the kernel's REJECT rule there counted it" in trace.stdout, \
        trace.stdout

    # The plugin's jump moved above the hook again (as its ADD on a node without it puts it): named, and repaired.
    # (Pods' ADDs side by side may each insert the jump, finding it missing: every copy is moved.)
    for _ in range(rules.count(FIREWALL)):
        subprocess.run(["ip", "netns", "exec", node, "iptables", "-D", "FORWARD", "-m", "comment", "--comment",
                        "CNI firewall plugin rules", "-j", "CNI-FORWARD"], check=True)
    subprocess.run(["ip", "netns", "exec", node, "iptables", "-I", "FORWARD", "1", "-m", "comment", "--comment",
                    "CNI firewall plugin rules", "-j", "CNI-FORWARD"], check=True)
    assert forward(node)[:2] == [FIREWALL, HOOK]
    assert connects(f"{lab}-other", web)  # the kernel lets the denied flow by
    ahead = f"rule 1 is a CNI plugin's jump, {FIREWALL}, above netlab's policy hook {HOOK}"
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1 and ahead in status.stdout, status.stdout
    probe = netlab("probe", "--lab", lab, check=False, timeout=120)
    assert probe.returncode == 1 and "other -> web tcp/8080: expected unreachable, got a reply" in probe.stdout, \
        probe.stdout
    trace = netlab("trace", "--lab", lab, "other", "web", "--proto", "tcp", "--port", "8080", check=False,
                   timeout=60)
    assert "NOT STOPPED" in trace.stdout and ahead in trace.stdout and f"fix: {netlab_command('up -t')}" in trace.stdout, \
        trace.stdout
    netlab("up", "-t", path)
    assert forward(node) == [HOOK, FIREWALL] + [line for line in rules if line not in (HOOK, FIREWALL)]
    assert not connects(f"{lab}-other", web) and connects(f"{lab}-cli", web)
    netlab("status", "--lab", lab)
