"""CNI labs (root, real plugins): CNI_ARGS name the pod's Kubernetes namespace, NETLAB_CNI_TIMEOUT is checked
when used, a changed pod ``ip:`` is named by status and refused by up, and bridge-port-down is refused on a
conflist lab."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import pytest

from helpers import ip_json, lab_namespaces, netlab, state_path, write_topology

pytestmark = pytest.mark.root

ROOT = Path(__file__).parent.parent.parent
BASH = ROOT / "examples" / "cni" / "bash-bridge"


def _name(labs) -> str:
    lab = f"fxd{uuid.uuid4().hex[:5]}"  # 8 characters
    labs.names.append(lab)
    return lab


def _topo(lab: str, ip: str) -> str:
    return f"""name: {lab}
network: {{cni: reference}}
namespaces: [{{name: x}}]
nodes: [{{name: n1}}]
pods:
  - {{name: a, node: n1, namespace: x, ip: {ip}}}
  - {{name: b, node: n1}}
"""


def test_reference_lab_namespace_args_timeout_and_a_changed_ip(labs):
    lab = _name(labs)
    path, _ = labs.up(_topo(lab, "10.244.0.20"))
    log = json.loads(netlab("cni", "log", "--lab", lab, "-o", "json").stdout)
    args = {(c["pod"], c["plugin"]): c["env"]["CNI_ARGS"] for c in log if c["command"] == "ADD"}
    assert "K8S_POD_NAMESPACE=x;K8S_POD_NAME=a;" in args[("a", "bridge")]
    assert "K8S_POD_NAMESPACE=default;K8S_POD_NAME=b;" in args[("b", "bridge")]

    for bad in ("abc", "0", "-1"):
        proc = netlab("status", "--lab", lab, check=False, env={"NETLAB_CNI_TIMEOUT": bad})
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        assert "NETLAB_CNI_TIMEOUT" in proc.stderr and "positive number of seconds" in proc.stderr
    proc = netlab("up", "-t", path, check=False, env={"NETLAB_CNI_TIMEOUT": "abc"})
    assert proc.returncode == 2 and "NETLAB_CNI_TIMEOUT" in proc.stderr and "Traceback" not in proc.stderr

    state_before = json.loads(Path(state_path(lab, "state.json")).read_text())
    write_topology(Path(path).parent, _topo(lab, "10.244.0.50"), Path(path).name)
    status = netlab("status", "-t", path, check=False)
    assert status.returncode == 1 and "pod a has 10.244.0.20" in status.stdout and "10.244.0.50" in status.stdout
    proc = netlab("up", "-t", path, check=False)
    assert proc.returncode == 2 and "pod a's ip changes from 10.244.0.20 to 10.244.0.50" in proc.stderr
    after = json.loads(Path(state_path(lab, "state.json")).read_text())
    assert after["topology"] == state_before["topology"] and after["extra"] == state_before["extra"]
    addrs = [a["local"] for a in ip_json("addr", "show", "eth0", netns=f"{lab}-a")[0]["addr_info"]]
    assert addrs == ["10.244.0.20"]
    netlab("status", "--lab", lab)  # the running lab is as it was: exit 0

    # the way the refusal names: out of the file, up; back with the new ip, up
    write_topology(Path(path).parent, _topo(lab, "10.244.0.50").replace(
        "  - {name: a, node: n1, namespace: x, ip: 10.244.0.50}\n", ""), Path(path).name)
    netlab("up", "-t", path)
    write_topology(Path(path).parent, _topo(lab, "10.244.0.50"), Path(path).name)
    netlab("up", "-t", path)
    addrs = [a["local"] for a in ip_json("addr", "show", "eth0", netns=f"{lab}-a")[0]["addr_info"]]
    assert addrs == ["10.244.0.50"]
    netlab("status", "--lab", lab)
    netlab("down", "--lab", lab)
    assert not lab_namespaces(lab)


def test_conflist_lab_refuses_bridge_port_down(labs, tmp_path):
    lab = _name(labs)
    for f in ("bash-bridge", "bash-bridge.conflist"):
        shutil.copy2(BASH / f, tmp_path / f)
    assert os.access(tmp_path / "bash-bridge", os.X_OK)
    labs.up(f"""name: {lab}
network: {{mode: host-gw, cni: {{conflist: ./bash-bridge.conflist, binDir: .}}}}
nodes: [{{name: n1}}]
pods:
  - {{name: p1, node: n1}}
  - {{name: p2, node: n1}}
""")
    proc = netlab("break", "bridge-port-down", "--lab", lab, "--target", "p2", check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "conflist" in proc.stderr
    netlab("status", "--lab", lab)  # nothing changed
    netlab("down", "--lab", lab)
    assert not lab_namespaces(lab)
