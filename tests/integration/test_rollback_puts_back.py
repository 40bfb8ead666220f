"""A converge of a running lab stopped (SIGTERM, Ctrl-C) or failed once its containers changed puts them back (root;
QA qa59m 1).

The edited file changes pod app's command (`sleep 100000` -> `sleep 100999`) and adds Service web3, which changes the
cluster DNS's records and its dnsmasq's command. Its `up` said "interrupted by SIGTERM; rolled back" and kept both:
app ran `sleep 100999`, kube-dns answered web3 (dns/hosts held it), and status called them "an old command" and named
the `up -t FILE` that applies the cancelled edit as the repair. The run stops at a known point (test hook
``NETLAB_FAULT_POINT=containers-started``: the new command containers run, their pids not yet recorded), paused there
and signalled, or failing there; then the lab runs what it ran before: app's old command (a new process), the old
dnsmasq command and records (web3 unknown, web answered), status clean, and the next `up --lab` changes nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from dns_query import ask
from helpers import NETLAB, lab_down, netlab, state_path, unique_lab, write_topology
from netlab.kernel import processes as proc

pytestmark = pytest.mark.root

DNS = "10.96.0.10"
TOPOLOGY = """name: {lab}
nodes: [{{name: n1}}]
pods:
  - {{name: web, node: n1, labels: {{app: web}}}}
  - name: app
    node: n1
    containers: [{{name: main, command: [sleep, "{seconds}"]}}]
services:
  - {{name: web, selector: {{app: web}}, clusterIP: 10.96.0.20, ports: [{{port: 80, targetPort: 8080}}]}}
"""
WEB3 = "  - {name: web3, selector: {app: web}, clusterIP: 10.96.0.23, ports: [{port: 83, targetPort: 8080}]}\n"


def in_pod(lab: str, pod: str) -> list[tuple[int, list[str]]]:
    """(pid, argv) of every process with a thread in the pod's network namespace."""
    return sorted((pid, proc.cmdline(pid)) for pid in proc.find_in_namespaces([f"{lab}-{pod}"]))


def sleeps(lab: str) -> list[list[str]]:
    return [argv for _, argv in in_pod(lab, "app") if argv[:1] == ["sleep"]]


def dnsmasq(lab: str) -> list[tuple[int, list[str]]]:
    return [(pid, argv) for pid, argv in in_pod(lab, "kube-dns") if argv and os.path.basename(argv[0]) == "dnsmasq"]


def dns_logs(lab: str) -> tuple[str, str]:
    """The cluster DNS's dnsmasq's log and previous log, as `netlab logs` shows them."""
    return tuple(netlab("logs", "--lab", lab, "kube-dns", "-c", "dnsmasq", *more, check=False).stdout
                 for more in ((), ("--previous",)))  # type: ignore[return-value]


def records(lab: str) -> str:
    with open(state_path(lab, "dns", "hosts")) as fh:
        return fh.read()


def answers(lab: str, name: str) -> tuple[str, list[str]]:
    got, = ask(f"{lab}-app", DNS, f"{name}.default.svc.cluster.local")
    return got["status"], got["answer"]


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "fail"])
def test_a_stopped_converge_puts_back_the_containers_and_the_cluster_dns_it_changed(tmp_path, how):
    lab = unique_lab("rb")
    path = write_topology(tmp_path, TOPOLOGY.format(lab=lab, seconds=100000))
    try:
        netlab("up", "-t", path)
        before = {"sleeps": sleeps(lab), "dnsmasq": dnsmasq(lab), "records": records(lab),
                  "dns_log": dns_logs(lab)[0]}
        assert before["dns_log"], before
        assert before["sleeps"] == [["sleep", "100000"]] and len(before["dnsmasq"]) == 1
        assert answers(lab, "web3")[0] == "NXDOMAIN"
        with open(path, "w") as fh:  # the edit
            fh.write(TOPOLOGY.format(lab=lab, seconds=100999) + WEB3)
        mode = "pause" if how != "fail" else "fail"
        env = {**os.environ, "NETLAB_FAULT_POINT": "containers-started", "NETLAB_FAULT_MODE": mode}
        run = subprocess.Popen([*NETLAB, "up", "-t", path], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        try:
            if how != "fail":
                assert run.stderr is not None
                first = run.stderr.readline()
                assert first == "netlab: paused at containers-started (test hook)\n", first + run.stderr.read()
                # the change half done: the new command runs, and the new dnsmasq with the records naming web3
                assert sleeps(lab) == [["sleep", "100999"]] and "web3" in records(lab)
                assert [argv for _, argv in dnsmasq(lab)] != [argv for _, argv in before["dnsmasq"]]
                run.send_signal(getattr(signal, how))
            out, err = run.communicate(timeout=120)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
        # the dnsmasq the run restarted moved its log to the previous one, and its restart back again over it: what
        # it printed before the run is gone, and said (app's `sleep` printed nothing)
        gone = ", but for the logs container kube-dns/dnsmasq had before the run, which went when the run restarted it"
        if how == "fail":
            assert run.returncode == 4, err
            assert err == f"netlab: injected fault at containers-started; rolled back{gone}\n", err
        else:
            assert run.returncode == 128 + getattr(signal, how), (out, err)
            assert err == f"netlab: interrupted by {how}; rolled back{gone}\n", err  # (its pause line read above)
        # as before the run: the old command (a new process), the old dnsmasq command and records
        assert sleeps(lab) == [["sleep", "100000"]]
        (pid, argv), = dnsmasq(lab)
        assert argv == before["dnsmasq"][0][1] and records(lab) == before["records"]
        assert before["dns_log"] not in "".join(dns_logs(lab)), (before["dns_log"], dns_logs(lab))  # gone, as said
        assert answers(lab, "web3")[0] == "NXDOMAIN"
        assert answers(lab, "web") == ("NOERROR", ["web.default.svc.cluster.local. 30 IN A 10.96.0.20"])
        status = netlab("status", "--lab", lab, check=False)
        assert status.returncode == 0 and "all as planned" in status.stdout, status.stdout + status.stderr
        again = netlab("up", "--lab", lab)
        assert "restarted" not in again.stdout and "wrote" not in again.stdout, again.stdout
        assert sleeps(lab) == [["sleep", "100000"]] and dnsmasq(lab) == [(pid, argv)]
    finally:
        lab_down(lab)


LOGGED = """name: {lab}
nodes: [{{name: n1}}]
pods:
  - name: app
    node: n1
    containers: [{{name: main, command: [sh, -c, "echo {word} of $$; exec sleep {seconds}"]}}]
"""


def test_a_rollback_says_the_logs_a_restart_by_the_run_took(tmp_path):
    """The failed run restarted app's container with its edited command, which starts its logs over (a changed
    command is a new pod's container: no run before it); the rollback restarts the old command, but what the
    container printed before the run is gone: its "rolled back" line says so, as `netlab logs` (and --previous)
    shows."""
    lab = unique_lab("rbl")
    path = write_topology(tmp_path, LOGGED.format(lab=lab, word="before-the-run", seconds=100000))
    try:
        netlab("up", "-t", path)
        for _ in range(50):
            printed = netlab("logs", "--lab", lab, "app").stdout.strip()
            if printed:
                break
            time.sleep(0.1)
        assert printed.startswith("before-the-run of "), printed  # its shell's pid: the restart's prints another
        with open(path, "w") as fh:  # the edit
            fh.write(LOGGED.format(lab=lab, word="in-the-run", seconds=100999))
        env = {**os.environ, "NETLAB_FAULT_POINT": "containers-started", "NETLAB_FAULT_MODE": "fail"}
        run = subprocess.run([*NETLAB, "up", "-t", path], env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 4, run.stderr
        assert run.stderr == ("netlab: injected fault at containers-started; rolled back, but for the logs container "
                              "app/main had before the run, which went when the run restarted it\n"), run.stderr
        assert sleeps(lab) == [["sleep", "100000"]]
        logs = netlab("logs", "--lab", lab, "app").stdout + netlab("logs", "--lab", lab, "app", "--previous",
                                                                    check=False).stdout
        assert printed not in logs and "before-the-run of " in logs, logs  # what the line says: gone
        # a rollback of a run that restarts nothing says nothing of logs
        with open(path, "w") as fh:
            fh.write(LOGGED.format(lab=lab, word="before-the-run", seconds=100000) +
                     "  - {name: other, node: n1, containers: [{name: m, command: [sleep, \"1000\"]}]}\n")
        run = subprocess.run([*NETLAB, "up", "-t", path], env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 4 and "logs" not in run.stderr, run.stderr
    finally:
        lab_down(lab)
