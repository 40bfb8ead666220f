"""A terminal pod's stopped sandbox in a lab whose CNI plugins attach its pods, past its CNI DEL (root).

containerd's StopPodSandbox (internal/cri/server/sandbox_stop.go) runs teardownPodNetwork, the CNI DEL of the
chain, then removes the sandbox's network namespace (``sandbox.NetNS.Remove()``); the kubelet stops a terminal
pod's sandbox so. netlab kept the namespace (lo only) for as long as the lab ran. Now ``up`` removes it after the
DEL: ``ip netns list`` has it no more, host-local's lease and the CNI result cache of the pod go with the DEL,
``status`` says all as planned (no "missing: namespace"), ``exec`` and ``trace`` say the pod has terminated (not
that its namespace was deleted and ``up`` makes it again), ``logs`` says so before the log, ``get pods`` says
Completed with the pod's IP, the next ``up`` runs no plugin and makes no namespace for it, ``down`` is clean.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from helpers import in_netns, ipv4_of, lab_namespaces, netlab, wait_for
from test_cni_terminal_del_live import CONFLIST, TOPOLOGY, calls_for_a, leases, pod_a, terminate
from test_terminal_hostport_live import SERVER, dial

pytestmark = pytest.mark.root

STATE = os.environ.get("NETLAB_STATE_DIR") or "/run/netlab"
WHY = "its containers exited for good: Completed or Error"
REMOVED = f"pod a has terminated ({WHY}): a kubelet stopped its sandbox and its network namespace was removed"


def netns_list() -> set[str]:
    """What `ip netns list` names (its first word a line)."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def cached(lab: str) -> list[str]:
    """The CNI result cache of the lab (libcni's cacheDir/results: a file per container and network)."""
    return sorted(p.name for p in Path(STATE, lab, "cni", "results").glob("*"))


def container_id(lab: str, pod: str) -> str:
    calls = json.loads(netlab("cni", "log", "--lab", lab, "-o", "json").stdout)["calls"]
    return next(c["env"]["CNI_CONTAINERID"] for c in calls if c["pod"] == pod and c["command"] == "ADD")


def test_a_terminal_pod_s_namespace_goes_with_its_stopped_sandbox(labs, tmp_path):
    (tmp_path / "tm.conflist").write_text(json.dumps(CONFLIST))
    server, go = tmp_path / "server.py", tmp_path / "go"
    server.write_text(SERVER)
    lab = labs.name("ct")
    path, _ = labs.up(TOPOLOGY.format(lab=lab, cni="{conflist: tm.conflist}", server=server, go=go,
                                      host=", hostPort: 18080"))
    a_ip, n1_ip = ipv4_of(f"{lab}-a", "eth0"), ipv4_of(f"{lab}-n1", "eth0")
    assert wait_for(lambda: dial(lab, n1_ip) == "job", 10), dial(lab, n1_ip)
    a_id = container_id(lab, "a")
    assert [f for f in cached(lab) if a_id in f], cached(lab)
    others = sorted(set(lab_namespaces(lab)) - {f"{lab}-a"})

    terminate(lab, go)
    up = netlab("up", "-t", path)
    assert "ran the CNI DEL of terminated pod a's sandbox" in up.stdout, up.stdout
    assert "its network namespace goes with it" in up.stdout, up.stdout
    assert f"try: sudo ip netns exec {lab}-a " not in up.stdout, up.stdout

    # the sandbox's namespace is gone, as containerd removes it; nothing else of the lab's is
    assert f"{lab}-a" not in netns_list()
    assert sorted(lab_namespaces(lab)) == others
    assert a_ip not in leases(lab, "n1")
    assert not [f for f in cached(lab) if a_id in f], cached(lab)

    status = netlab("status", "--lab", lab)
    assert status.stdout.endswith("all as planned\n") and "namespace" not in status.stdout, status.stdout
    got = pod_a(lab)
    assert (got["status"], got["ip"], got["network_detached"]) == ("Completed", a_ip, False), got
    # QA late58 4: no network namespace (removed with its stopped sandbox): none, as kubectl prints one it lacks
    assert got["netns"] is None and got["netns_gone"] is False, got
    items = json.loads(netlab("get", "pods", "--lab", lab, "-o", "json").stdout)["items"]
    assert [p["netns"] for p in items if p["name"] == "a"] == [None], items
    head, *rows = netlab("get", "pods", "--lab", lab, "-o", "wide").stdout.splitlines()
    cols = {r.split()[head.split().index("NAME")]: r.split() for r in rows}
    assert (cols["a"][head.split().index("NETNS")], cols["b"][head.split().index("NETNS")]) == (
        "<none>", f"{lab}-b"), (head, rows)

    ex = netlab("exec", "--lab", lab, "a", "--", "true", check=False)
    assert (ex.returncode, ex.stderr) == (3, f"netlab: {REMOVED}, so nothing runs in it to exec into, as kubectl "
                                              "says \"cannot exec into a container in a completed pod\"\n"), ex
    for way in ((), ("-o", "json")):  # QA late58 3: as trace and capture say it (exit 2), not exec's words (exit 3)
        ins = netlab("inspect", "--lab", lab, "a", *way, check=False)
        assert (ins.returncode, ins.stderr) == (2, f"netlab: {REMOVED}: nothing there sends or answers, and no "
                                                   "interface holds its address\n"), ins
    logs = netlab("logs", "--lab", lab, "a", check=False)
    assert (logs.returncode, logs.stdout) == (0, ""), logs
    assert logs.stderr == f"netlab: {REMOVED}; this is what its container's last run wrote\n", logs.stderr
    for src, dst in (("b", "a"), ("a", "b")):
        tr = netlab("trace", "--lab", lab, src, dst, check=False)
        assert (tr.returncode, tr.stderr) == (2, f"netlab: {REMOVED}: nothing there sends or answers, and no "
                                                 "interface holds its address\n"), tr

    # real traffic: nothing answers at its address, nor at its hostPort
    assert in_netns(f"{lab}-b", "ping", "-c1", "-W1", a_ip).returncode != 0
    assert dial(lab, n1_ip) == "ConnectionRefusedError"

    # up again: no plugin for the pod, no namespace made for it
    before = calls_for_a(lab)
    again = netlab("up", "-t", path)
    assert "nothing to change" in again.stdout and not again.stderr, again
    assert calls_for_a(lab) == before and f"{lab}-a" not in netns_list()

    down = netlab("down", "--lab", lab)
    assert (down.stdout, down.stderr) == (f"lab {lab} is down (4 namespaces removed)\n", ""), down
    assert not lab_namespaces(lab)
    assert not Path(STATE, lab).exists()
