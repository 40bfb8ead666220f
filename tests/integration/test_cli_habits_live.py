"""CLI habits on real labs (root), run as a user types them (issue 13 section 3): NETLAB_LAB with two
labs up, get, exec without a command, status/probe -t FILE, list piped, inspect --section, the wording of up.

The labs come from the project's pytest plugin (netlab_lab, netlab_factory); the commands run as
separate processes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid

import pytest
import yaml

from helpers import NETLAB, netlab
from netlab.errors import netlab_command

WEB = {
    "name": "habits",
    "nodes": [{"name": "node-1"}, {"name": "node-2"}],
    "pods": [{"name": "client", "node": "node-1"},
             {"name": "web-1", "node": "node-1", "labels": {"app": "web", "tier": "front"}},
             {"name": "web-2", "node": "node-2", "labels": {"app": "web"}}],
    "services": [{"name": "web", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}],
}
ONE = {"name": "one", "network": {"mode": "host-gw"}, "nodes": [{"name": "n1"}],
       "pods": [{"name": "a", "node": "n1", "labels": {"app": "a"}}],
       "services": [{"name": "s", "selector": {"app": "a"}, "ports": [{"port": 80, "targetPort": 8080}]}]}

pytestmark = [pytest.mark.root, pytest.mark.netlab(WEB, scope="module")]


def test_netlab_lab_picks_the_lab_when_several_are_up(netlab_lab, netlab_factory):
    other = netlab_factory(ONE)
    bare = netlab("get", "pods", check=False)
    assert bare.returncode == 2 and "several labs are up" in bare.stderr
    picked = netlab("get", "pods", "-o", "json", env={"NETLAB_LAB": other.name})
    assert json.loads(picked.stdout)["lab"] == other.name
    given = netlab("get", "pods", "--lab", netlab_lab.name, "-o", "json", env={"NETLAB_LAB": other.name})
    assert json.loads(given.stdout)["lab"] == netlab_lab.name  # --lab wins over the environment
    traced = netlab("trace", "a", "kube-dns", "--proto", "icmp", "-o", "json", env={"NETLAB_LAB": other.name})
    assert json.loads(traced.stdout)["lab"] == other.name  # every command with --lab reads it
    drawn = netlab("graph", env={"NETLAB_LAB": other.name})  # graph too (it said "several labs are up")
    assert f'title: "lab {other.name} ' in drawn.stdout, drawn.stdout[:300]


def test_get_pods_wide_json_yaml_and_selector(netlab_lab):
    lab = ["--lab", netlab_lab.name]
    wide = netlab("get", "pods", *lab, "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE", "NODE", "IP", "NETNS",
                               "CONTAINERS", "LABELS"]  # as kubectl get -A -o wide
    namespaces = {line.split()[1]: line.split()[0] for line in wide[1:]}
    rows = {line.split()[1]: line.split()[1:] for line in wide[1:]}  # from NAME on
    assert rows["web-1"][1:4] == ["1/1", "Running", "0"]
    assert rows["web-1"][5:8] == ["node-1", netlab_lab.pod("web-1").ip, f"{netlab_lab.name}-web-1"]
    assert rows["web-1"][8:] == ["main:running", "app=web,tier=front"]
    assert namespaces["web-1"] == "default"
    assert namespaces["kube-dns"] == "kube-system"  # the cluster DNS pod is listed (stderr says netlab added it)
    # AGE is the pod's network namespace's, as the kernel dates its pin (stat's change time).
    made = os.stat(f"/run/netns/{netlab_lab.name}-web-1").st_ctime
    pods = {p["name"]: p for p in json.loads(netlab("get", "pods", *lab, "-o", "json").stdout)["items"]}
    assert pods["web-1"]["created"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(made))
    # READY, STATUS and RESTARTS as the table has them
    assert [pods["web-1"][k] for k in ("ready", "status", "restarts")] == [rows["web-1"][1], "Running", 0]
    assert re.fullmatch(r"\d+(s|m|m\d+s|h|h\d+m)", rows["web-1"][4]), rows["web-1"]
    data = json.loads(netlab("get", "pods", *lab, "-l", "app=web,tier!=front", "-o", "json").stdout)
    assert [p["name"] for p in data["items"]] == ["web-2"]
    assert yaml.safe_load(netlab("get", "pods", *lab, "-l", "app=web", "-o", "yaml").stdout)["items"][0]["ip"] \
        == netlab_lab.pod("web-1").ip
    svc = netlab("get", "svc", *lab).stdout.splitlines()
    assert svc[0].split()[:4] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP"]
    web = next(line.split() for line in svc if line.startswith("web "))
    assert web[1] == "ClusterIP" and web[4] == "80/TCP"
    assert sorted(web[5].split(",")) == sorted(f"{netlab_lab.pod(p).ip}:8080" for p in ("web-1", "web-2"))
    nodes = netlab("get", "nodes", *lab, "node-2", "-o", "json").stdout
    assert [n["pods"] for n in json.loads(nodes)["items"]] == [["web-2"]]
    made = os.stat(f"/run/netns/{netlab_lab.name}-node-2").st_ctime  # a node's AGE is its namespace's too
    assert json.loads(nodes)["items"][0]["created"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(made))
    table = netlab("get", "nodes", *lab).stdout.splitlines()
    assert table[0].split() == ["NAME", "IP", "POD-CIDR", "PODS", "AGE"]
    assert re.fullmatch(r"\d+(s|m|m\d+s|h|h\d+m)", table[2].split()[4]), table
    refused = netlab("get", "nodes", *lab, "-l", "app=web", check=False)
    assert refused.returncode == 2 and "carry no labels" in refused.stderr


def test_get_shows_a_stopped_container(netlab_factory):
    lab = netlab_factory(ONE)
    pid = lab.pod("a").containers[0].pid
    subprocess.run(["kill", "-STOP", str(pid)], check=True)
    try:
        # kubectl's words: the kubelet sees a process, so the pod is Running, not ready (it said "stopped", no
        # word of kubectl's); the container's own state is in -o wide's CONTAINERS
        row = netlab("get", "pods", "--lab", lab.name).stdout.splitlines()[1].split()
        assert row[:3] == ["a", "0/1", "Running"], row
        wide = netlab("get", "pods", "--lab", lab.name, "-o", "wide").stdout.splitlines()[1].split()[1:]
        assert "main:stopped" in wide, wide
    finally:
        subprocess.run(["kill", "-CONT", str(pid)], check=True)


def test_exec_without_a_command_opens_a_shell_in_the_pod(netlab_lab):
    proc = subprocess.run(NETLAB + ["exec", "--lab", netlab_lab.name, "web-2"], input="hostname; ip -br addr show eth0\n",
                          capture_output=True, text=True, timeout=60, env={**os.environ, "SHELL": "/bin/sh"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "web-2" and netlab_lab.pod("web-2").ip in lines[1]


def test_exec_without_a_command_and_with_standard_input_closed_runs_a_shell_that_reads_nothing(netlab_lab):
    """Started with stdin closed (`<&-`), netlab has no sys.stdin at all: it asked it whether it was a terminal
    and died with a traceback (AttributeError). The shell it runs finds nothing to read and ends."""
    proc = subprocess.run(["sh", "-c", 'exec "$@" <&-', "sh", *NETLAB, "exec", "--lab", netlab_lab.name, "web-2"],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "SHELL": "/bin/sh"})
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_status_and_probe_with_a_file_compare_with_and_probe_the_file(netlab_lab, tmp_path):
    changed = json.loads(json.dumps(WEB))
    changed["name"] = netlab_lab.name
    changed["pods"].append({"name": "web-3", "node": "node-2", "labels": {"app": "web"}})
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(changed))
    status = netlab("status", "-t", str(path), check=False)
    assert status.returncode == 1, status.stdout + status.stderr
    assert f"lab {netlab_lab.name} against {path}:" in status.stdout
    assert f"missing: namespace {netlab_lab.name}-web-3" in status.stdout
    # the lab came from a dict, not this file: up -t FILE would be refused without --reconfigure
    assert f"{netlab_command(f'up -t {path} --reconfigure')}` to apply it" in status.stdout
    as_json = json.loads(netlab("status", "-t", str(path), "-o", "json", check=False).stdout)
    assert as_json["repair"] == netlab_command(f"up -t {path} --reconfigure") and not as_json["ok"]
    # The library's: the same in Python for a file; none for a dict (no command names it), nor when all is as planned.
    assert netlab_lab.status(str(path)).repair == f"Lab.up({str(path)!r}, reconfigure=True)"
    assert netlab_lab.status(changed).repair is None and netlab_lab.status().repair is None
    # probe -t FILE judges the file's expectations on the lab as it is: a pod the lab lacks is refused (it was
    # judged at the address the running lab gives another pod: a false pass)
    extra = netlab("probe", "-t", str(path), check=False)
    assert extra.returncode == 2 and "pod web-3 (" in extra.stderr and "is not in the lab" in extra.stderr, \
        extra.stderr
    same = dict(WEB, name=netlab_lab.name)
    path.write_text(yaml.safe_dump(same))
    assert netlab("status", "-t", str(path)).returncode == 0
    # The file's expectations are what probe checks: here one that the running lab cannot meet.
    same["expect"] = [{"from": "client", "to": "web-2", "proto": "tcp", "port": 8080, "reach": False}]
    path.write_text(yaml.safe_dump(same))
    probe = netlab("probe", "-t", str(path), "-o", "json", check=False)
    assert probe.returncode == 1
    bad = [p for p in json.loads(probe.stdout)["probes"] if not p["as_expected"]]
    assert [(p["source"], p["destination"], p["reason"]) for p in bad] == [("client", "web-2", "expect[0]")]
    assert netlab("probe", "--lab", netlab_lab.name).returncode == 0  # the lab's own topology expects no such thing


def test_list_piped_is_plain_text(netlab_lab):
    out = netlab("list").stdout
    assert out.splitlines()[0].split() == ["LAB", "PHASE", "NODES", "PODS", "NAMESPACES", "TOPOLOGY"]
    assert not set("┏┃━│─┡") & set(out), out
    assert any(line.split()[:2] == [netlab_lab.name, "up"] for line in out.splitlines())
    assert "\x1b[" not in netlab("probe", "--lab", netlab_lab.name).stdout  # no colour when piped


def test_inspect_sections_and_conntrack_counted(netlab_lab):
    netlab_lab.reach("client", "svc/web")  # a conntrack entry on node-1, at least
    text = netlab("inspect", "--lab", netlab_lab.name, "node-1").stdout
    conntrack = text.split("conntrack   $", 1)[1].split("\n\n", 1)[0].splitlines()  # up to the next section
    assert re.search(r"(^|\s)\d+ (entry|entries): ", conntrack[1]), conntrack  # `1 entry`, `2 entries`
    assert f"(every entry: netlab inspect --lab {netlab_lab.name} node-1 --section conntrack)" in text
    assert len(conntrack) <= 5, conntrack  # counted, not listed
    routes = netlab("inspect", "--lab", netlab_lab.name, "node-1", "-s", "routes", "-o", "json").stdout
    assert set(json.loads(routes)) == {"lab", "name", "netns", "what", "routes"}
    listed = json.loads(netlab("inspect", "--lab", netlab_lab.name, "node-1", "--section", "conntrack",
                               "-o", "json").stdout)["conntrack"]
    assert listed["total"] >= 1 and len(listed["entries"]) == listed["total"]


def test_inspect_nftables_in_an_iptables_mode_lab_says_there_is_none(netlab_lab):
    """kube-proxy's iptables mode (the default) writes no nftables table: one line, {} in JSON, exit 0."""
    text = netlab("inspect", "--lab", netlab_lab.name, "node-1", "--section", "nftables").stdout
    ns = f"{netlab_lab.name}-node-1"
    assert text.split("\n", 2)[2].splitlines() == [
        f"nftables (the lab's tables, as nft lists them)   $ ip netns exec {ns} nft list table ip kube-proxy",
        "  (no table ip kube-proxy here: kube-proxy writes it on the nodes of a lab in nftables mode; in iptables "
        "mode its rules are in the iptables section)"]
    data = json.loads(netlab("inspect", "--lab", netlab_lab.name, "node-1", "-s", "nftables", "-o", "json").stdout)
    assert data["nftables"] == {} and netlab_lab.inspect("client", ["nftables"]).nftables == {}
    full = netlab_lab.inspect("node-1")  # every section: nftables too, empty, beside kube-proxy's iptables chains
    assert full.nftables == {} and any(line.startswith(":KUBE-SERVICES") for line in full.iptables["nat"])


@pytest.mark.parametrize("name, section, said", [
    ("underlay", "files", "section files shows a node's files (Flannel's subnet.env, the CNI config) or a pod's "
                          "(/etc/resolv.conf, /etc/hosts); underlay is neither"),
    ("node-1", "cni", "section cni shows a pod's result from its CNI plugins; lab {lab} attaches its pods with "
                      "netlab's builtin wiring (network.cni: builtin)"),
])
def test_inspect_of_a_section_the_name_has_not_says_so(netlab_lab, name, section, said):
    """The underlay's files, a builtin lab's CNI result: the header alone was printed, exit 0 (a pod's files are
    its /etc/resolv.conf and /etc/hosts: tests/integration/test_pod_files_shown.py)."""
    proc = netlab("inspect", "--lab", netlab_lab.name, name, "-s", section, check=False)
    assert (proc.returncode, proc.stderr) == (2, f"netlab: {said.format(lab=netlab_lab.name)}\n"), proc.stderr


def test_up_says_host_gw_is_not_an_overlay_and_names_the_dns_pod_it_adds(tmp_path):
    from netlab import Lab

    name = f"ap{uuid.uuid4().hex[:6]}"
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(dict(ONE, name=name)))
    try:
        out = netlab("up", "-t", str(path)).stdout
        assert "host-gw routing (no overlay" in out and "host-gw overlay" not in out, out
        assert "1 node, 2 pods (1 + kube-dns, the cluster DNS netlab adds to a lab with Services)" in out, out
    finally:
        Lab(name).down()


def test_ctrl_c_ends_a_capture_to_a_file_and_keeps_its_frames(netlab_lab, tmp_path):
    """`capture -w FILE`, stopped with Ctrl-C as tcpdump is: the frames that came are written, exit 0 (it lost them
    all, with exit 130). Like tcpdump's "listening on", its first line on stderr says it reads frames."""
    import select
    import signal

    from scapy.utils import rdpcap

    pcap = tmp_path / "c.pcap"
    ns = f"{netlab_lab.name}-client"
    proc = subprocess.Popen(NETLAB + ["capture", "--lab", netlab_lab.name, "client:eth0", "--timeout", "60", "-w",
                                      str(pcap)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stderr is not None
        ready, _, _ = select.select([proc.stderr], [], [], 60)
        first = proc.stderr.readline() if ready else ""
        assert first.startswith(f"netlab: capturing on {ns} eth0 "), first
        web_1 = netlab_lab.pod("web-1").ip
        subprocess.run(["ip", "netns", "exec", ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", str(web_1)], check=True,
                       capture_output=True)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        err = first + err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    frames = rdpcap(str(pcap))
    assert len(frames) >= 6, len(frames)  # the three echo requests and their replies, and perhaps ARP
    assert f"wrote {len(frames)} frames from {ns} eth0 to {pcap}" in out + err, (out, err)


def test_a_lab_without_a_file_is_repaired_by_its_name(netlab_lab):
    """A lab made from a dict (this plugin's) has no file: status said "run `sudo netlab up` again to repair",
    which makes the built-in lab demo instead. It says `sudo netlab up --lab NAME`, which converges the lab to the
    topology status compares with, and keeps it a dict's lab."""
    name, pod = netlab_lab.name, f"{netlab_lab.name}-client"
    subprocess.run(["ip", "-n", pod, "route", "del", "default"], check=True)
    status = netlab("status", "--lab", name, check=False)
    assert status.returncode == 1 and f"missing: route default via 10.244.0.1 dev eth0 in {pod}" in status.stdout
    assert status.stdout.splitlines()[-1] == f"run `{netlab_command(f'up --lab {name}')}` to repair"
    assert json.loads(netlab("status", "--lab", name, "-o", "json", check=False).stdout)["repair"] == \
        netlab_command(f"up --lab {name}")
    assert netlab_lab.status().repair == f"Lab({name!r}).repair()"  # the library's, in Python
    up = netlab("up", "--lab", name)
    assert up.stdout.startswith(f"lab {name} is up (1 object added, changed or repaired): 2 nodes, 4 pods"), up.stdout
    assert netlab("status", "--lab", name).returncode == 0
    assert not [ns for ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
                if ns.startswith("demo-")]  # the built-in lab was not made
    again = netlab("up", "--lab", name, "-o", "json")
    assert json.loads(again.stdout)["changed"] is False
    # The library's: lab.repair(), the same convergence, for a test that broke something.
    subprocess.run(["ip", "-n", pod, "route", "del", "default"], check=True)
    assert netlab_lab.repair().fixed == (f"replace route default via 10.244.0.1 dev eth0 in {pod}",)
    assert netlab_lab.status().clean and netlab_lab.repair().changed is False
    gone = netlab("up", "--lab", "nosuchlab", check=False)
    assert gone.returncode == 2 and "lab 'nosuchlab' is not up" in gone.stderr


def test_completion_of_a_running_labs_names(netlab_lab):
    """What bash completion offers from a running lab (its state is root's): `logs POD -c` the pod's containers
    (it offered nothing), `get pods` the pods not given yet, `impair` a pod's interfaces."""
    from click.shell_completion import ShellComplete

    from netlab.cli import cli

    def offered(*args: str, incomplete: str = "") -> list[str]:
        return [i.value for i in ShellComplete(cli, {}, "netlab", "_NETLAB_COMPLETE").get_completions(
            list(args), incomplete)]

    lab = netlab_lab.name
    assert offered("logs", "--lab", lab, "kube-dns", "-c") == ["dnsmasq"]
    assert offered("logs", "--lab", lab, "web-1", "-c") == ["main"]
    pods = offered("get", "pods", "--lab", lab, "web-1")
    assert "web-1" not in pods and "web-2" in pods
    assert offered("impair", "--lab", lab, incomplete="web-1:") == ["web-1:eth0"]
