"""The Services feature's side of a stopped converge's rollback (services/put_back.py; the workload's side, the DNS
records and dnsmasq: test_rollback_puts_back.py), root: a real `up` of an edited file, paused at a known point of its
change (test hook ``NETLAB_FAULT_POINT=containers-started``: the new containers run, their pids not yet recorded),
then interrupted (SIGINT: Ctrl-C). Checked with dig in a pod's namespace, and the pods' files in /etc/netns.

* The lab's first Service: the run makes the cluster DNS and writes every pod's resolv.conf naming it; stopped, the
  rollback takes the kube-dns pod away and the resolv.conf files with it (the lab had no DNS), and nothing answers
  the new Service's name.
* A Service added beside one the lab had, and a pod's hostname changed: the run rewrites that pod's hosts file and
  the DNS records; stopped, the hosts file is as before, the new Service's name is NXDOMAIN and the old one answers.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from helpers import NETLAB, lab_down, lab_namespaces, netlab, unique_lab, write_topology

pytestmark = pytest.mark.root

DNS = "10.96.0.10"
PODS = """name: {lab}
nodes: [{{name: n1}}]
pods:
  - {{name: web, node: n1, labels: {{app: web}}}}
  - {{name: app, node: n1{hostname}, containers: [{{name: main, command: [sleep, "100000"]}}]}}
"""
WEB = "  - {name: web, selector: {app: web}, clusterIP: 10.96.0.20, ports: [{port: 80, targetPort: 8080}]}\n"
WEB3 = "  - {name: web3, selector: {app: web}, clusterIP: 10.96.0.23, ports: [{port: 83, targetPort: 8080}]}\n"


def topology(lab: str, services: str = "", hostname: str | None = None) -> str:
    text = PODS.format(lab=lab, hostname=f", hostname: {hostname}" if hostname else "")
    return text + (f"services:\n{services}" if services else "")


def pod_file(lab: str, pod: str, name: str) -> str | None:
    """The pod's /etc/netns file ``name`` (resolv.conf, hosts), None when it has none."""
    try:
        with open(f"/etc/netns/{lab}-{pod}/{name}") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def dig(lab: str, name: str) -> tuple[int, str]:
    """dig's exit code and output, asking the cluster DNS from pod app's namespace (9: no server answered)."""
    got = subprocess.run(["ip", "netns", "exec", f"{lab}-app", "dig", "+time=1", "+tries=1", "+noall", "+answer",
                          "+comments", f"@{DNS}", f"{name}.default.svc.cluster.local", "A"],
                         capture_output=True, text=True, timeout=30)
    return got.returncode, got.stdout


def status_of(out: str) -> str | None:
    """The answer's status (NOERROR, NXDOMAIN), from dig's header comment."""
    return next((w.split("status: ")[1].split(",")[0] for w in out.splitlines() if "status: " in w), None)


def answers(lab: str, name: str) -> list[str]:
    code, out = dig(lab, name)
    assert code == 0 and status_of(out) == "NOERROR", out
    return [line.split()[-1] for line in out.splitlines() if line and not line.startswith(";")]


def stopped_at_containers_started(lab: str, path: str, while_paused, logs_gone: str | None = None) -> None:
    """`up -t path`, paused once its new containers run, checked there (``while_paused``), then Ctrl-C: rolled back
    (but for the logs of ``logs_gone``, a container the run restarted, which the rollback's restart cannot bring
    back: the line names it)."""
    env = {**os.environ, "NETLAB_FAULT_POINT": "containers-started", "NETLAB_FAULT_MODE": "pause"}
    run = subprocess.Popen([*NETLAB, "up", "-t", path], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        assert run.stderr is not None
        first = run.stderr.readline()
        assert first == "netlab: paused at containers-started (test hook)\n", first + run.stderr.read()
        while_paused()
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    lost = f", but for the logs container {logs_gone} had before the run, which went when the run restarted it" \
        if logs_gone else ""
    assert run.returncode == 130 and err == f"netlab: interrupted by SIGINT; rolled back{lost}\n", (out, err)


def test_a_stopped_up_that_gave_the_lab_its_first_service_takes_the_dns_and_the_resolv_conf_files_away(tmp_path):
    lab = unique_lab("rv")
    path = write_topology(tmp_path, topology(lab))
    try:
        netlab("up", "-t", path)
        assert pod_file(lab, "app", "resolv.conf") is None and f"{lab}-kube-dns" not in lab_namespaces(lab)
        hosts = pod_file(lab, "app", "hosts")
        write_topology(tmp_path, topology(lab, WEB))  # the lab's first Service: the cluster DNS with it

        def live() -> None:  # the change half done: the DNS answers the Service, the pods' resolv.conf names it
            assert answers(lab, "web") == ["10.96.0.20"]
            for pod in ("app", "web"):
                assert f"nameserver {DNS}\n" in (pod_file(lab, pod, "resolv.conf") or ""), pod

        stopped_at_containers_started(lab, path, live)
        assert f"{lab}-kube-dns" not in lab_namespaces(lab)
        assert [pod_file(lab, pod, "resolv.conf") for pod in ("app", "web")] == [None, None]
        assert pod_file(lab, "app", "hosts") == hosts
        code, out = dig(lab, "web")
        assert code == 9 and status_of(out) is None, out  # nothing answers: no DNS server there any more
        status = netlab("status", "--lab", lab, check=False)
        assert status.returncode == 0 and "all as planned" in status.stdout, status.stdout + status.stderr
    finally:
        lab_down(lab)


def test_a_stopped_up_that_added_a_service_and_renamed_a_pods_host_puts_back_its_hosts_file(tmp_path):
    lab = unique_lab("rv")
    path = write_topology(tmp_path, topology(lab, WEB))
    try:
        netlab("up", "-t", path)
        assert answers(lab, "web") == ["10.96.0.20"]
        code, out = dig(lab, "web3")
        assert code == 0 and status_of(out) == "NXDOMAIN", out
        hosts, resolv = pod_file(lab, "app", "hosts"), pod_file(lab, "app", "resolv.conf")
        assert hosts is not None and "\tapp2" not in hosts and f"nameserver {DNS}\n" in (resolv or "")
        write_topology(tmp_path, topology(lab, WEB + WEB3, hostname="app2"))

        def live() -> None:  # the change half done: web3 answered, app's hosts file names its new hostname
            assert answers(lab, "web3") == ["10.96.0.23"]
            assert "app2" in (pod_file(lab, "app", "hosts") or ""), pod_file(lab, "app", "hosts")

        stopped_at_containers_started(lab, path, live, logs_gone="kube-dns/dnsmasq")  # dnsmasq re-read: restarted
        assert pod_file(lab, "app", "hosts") == hosts and pod_file(lab, "app", "resolv.conf") == resolv
        code, out = dig(lab, "web3")
        assert code == 0 and status_of(out) == "NXDOMAIN", out  # the new Service's name: no longer answered
        assert answers(lab, "web") == ["10.96.0.20"]  # the old one is
        status = netlab("status", "--lab", lab, check=False)
        assert status.returncode == 0 and "all as planned" in status.stdout, status.stdout + status.stderr
    finally:
        lab_down(lab)
