"""A pod's ADD tried again runs in a fresh network namespace, as a node's new sandbox does (root, real namespaces,
real plugins: Debian's bridge and host-local, then ``leaky``).

containerd removes a failed sandbox's network namespace and makes the next sandbox a new one; netlab's new
sandbox kept the failed one's namespace, so what a plugin left there met the next try. ``leaky`` makes an
interface in the pod (``ip link add leak0 type veth peer name leak1`` inside CNI_NETNS, via nsenter) at every ADD,
logs the namespace's inode (``stat -L -c %i``), fails each pod's first ADD (exit 1, code 11) and leaves leak0 there
(its DEL does not remove it). The second try must see a new inode and no leak0, and pass; the first namespace
must be gone; `down` leaves no namespace of the lab.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from helpers import in_netns, netlab, write_program

pytestmark = pytest.mark.root

LEAKY = """#!/bin/sh
# a plugin that leaves an interface in the pod behind when its ADD fails
log={log}
case "$CNI_COMMAND" in
VERSION) echo '{{"cniVersion": "1.0.0", "supportedVersions": ["0.4.0", "1.0.0"]}}'; exit 0;;
ADD)
  conf=$(cat)
  pod=$(echo "$CNI_ARGS" | tr ';' '\\n' | sed -n 's/^K8S_POD_NAME=//p')
  ino=$(stat -L -c %i "$CNI_NETNS")
  if [ "$pod" != k ] && ! err=$(nsenter --net="$CNI_NETNS" ip link add leak0 type veth peer name leak1 2>&1); then
    echo "ADD $pod $CNI_CONTAINERID $ino failed" >>"$log"
    echo "{{\\"cniVersion\\": \\"1.0.0\\", \\"code\\": 11, \\"msg\\": \\"leaky: $err\\"}}"; exit 1
  fi
  echo "ADD $pod $CNI_CONTAINERID $ino made" >>"$log"
  if [ ! -e {marks}/"$pod" ]; then
    : >{marks}/"$pod"
    echo '{{"cniVersion": "1.0.0", "code": 11, "msg": "leaky: a pod first ADD fails"}}'; exit 1
  fi
  echo "$conf" | python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["prevResult"]))';;
*) cat >/dev/null;;
esac
"""

CONFLIST = ('{"cniVersion": "1.0.0", "name": "crnet", "plugins": [{"type": "bridge", "bridge": "crbr0", '
            '"isGateway": true, "isDefaultGateway": true, "ipam": {"type": "host-local"}, '
            '"capabilities": {"ips": true, "ipRanges": true}}, {"type": "leaky"}]}')
# a: a container with a command (started after the network); k: an echo container, whose server the lab starts as
# soon as the namespaces exist (workload.start_early), so a thread of it is in k's namespace during the ADDs
TOPO = """name: {lab}
network: {{mode: host-gw, cni: {{conflist: ./net.conflist, binDir: ./bin}}}}
nodes: [{{name: n1, podCIDR: 10.244.0.0/24}}]
pods:
  - {{name: a, node: n1, ip: 10.244.0.5, containers: [{{name: c, command: [sleep, "600"]}}]}}
  - {{name: k, node: n1, ip: 10.244.0.6}}
"""


def mounted_inodes() -> set[int]:
    return {os.stat(f"/run/netns/{n}").st_ino for n in os.listdir("/run/netns")
            if os.path.ismount(f"/run/netns/{n}")}


def link_names(ns: str) -> list[str]:
    links = subprocess.run(["ip", "-n", ns, "-o", "link", "show"], check=True, capture_output=True, text=True).stdout
    return sorted(line.split(":")[1].strip().split("@")[0] for line in links.splitlines())


def test_a_retried_add_gets_a_fresh_namespace_and_the_failed_ones_leftovers_are_gone(labs, tmp_path):
    assert os.access("/usr/lib/cni/bridge", os.X_OK), "containernetworking-plugins missing: run scripts/setup.sh"
    marks, log = tmp_path / "marks", tmp_path / "calls.log"
    marks.mkdir()
    (tmp_path / "bin").mkdir()
    write_program(tmp_path / "bin" / "leaky", LEAKY.format(log=log, marks=marks))
    (tmp_path / "net.conflist").write_text(CONFLIST)
    lab = labs.name("cr")
    _, proc = labs.up(TOPO.format(lab=lab))
    for pod in ("a", "k"):
        assert f"pod {pod}'s first ADD failed" in proc.stderr and "passed on try 2 of 3" in proc.stderr, proc.stderr
    calls: dict[str, list[list[str]]] = {}
    for line in log.read_text().splitlines():
        calls.setdefault(line.split()[1], []).append(line.split())
    (_, _, first_id, first_ino, first_leak), (_, _, second_id, second_ino, second_leak) = calls["a"]
    assert first_id != second_id and first_ino != second_ino, calls  # a new sandbox, in a new namespace
    assert (first_leak, second_leak) == ("made", "made"), calls  # try 1's leak0 did not meet try 2
    ns = f"{lab}-a"
    assert os.stat(f"/run/netns/{ns}").st_ino == int(second_ino) and int(first_ino) not in mounted_inodes()
    # lo (up: it answers), eth0 from bridge, and the second try's own leak0/leak1 (the plugin's, in the pod)
    assert link_names(ns) == ["eth0", "leak0", "leak1", "lo"]
    assert in_netns(ns, "ping", "-c", "1", "-W", "2", "127.0.0.1").returncode == 0
    assert in_netns(ns, "ping", "-c", "1", "-W", "2", "10.244.0.6").returncode == 0
    # k's namespace has a thread of the lab's echo server in it: kept, and said (its tries are in the same one)
    (_, _, k_first, k_ino, _), (_, _, k_second, k_ino2, _) = calls["k"]
    assert k_first != k_second and k_ino == k_ino2, calls
    assert ("warning: cni: pod k's next ADD runs in the network namespace its failed ADD ran in (process ") in \
        proc.stderr, proc.stderr
    status = netlab("status", "--lab", lab, check=False)
    assert status.stdout.endswith("all as planned\n"), status.stdout + status.stderr
    netlab("down", "--lab", lab)
    assert not [n for n in os.listdir("/run/netns") if n.startswith(lab + "-")]
