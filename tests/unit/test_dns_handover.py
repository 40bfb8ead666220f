"""The cluster DNS's dnsmasq is replaced with port 53 closed as briefly as can be (QA qd 2), without root.

dnsmasq reads its SRV records only when it starts, so a Service added or removed restarts it; two dnsmasq cannot
hold port 53 at once (it sets no SO_REUSEPORT). The old one was stopped before the new container was spawned
(fork, namespaces, mounts, exec): for all that time a question got "port unreachable", which glibc reports at
once as EAI_AGAIN. Now the new container, its namespaces entered and all else done, stops the old one (SIGTERM,
SIGKILL after a grace) as its last step before the exec (kernel/spawning.py ``replace``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from netlab.kernel import processes as proc
from netlab.kernel import spawning
from netlab.model.clusterdns import DNS_CONTAINER, DNS_NAME
from netlab.model.lab import resolve
from netlab.model.load import parse_yaml, validate_source
from netlab.realize import state_dir
from netlab.realize.state import LabState
from netlab.workload import lifecycle, stopping
from netlab.workload.containers import container_argv, log_path
from workload_host import stub_host

LAB = "dh"
TOPO = f"""name: {LAB}
nodes: [{{name: n1}}]
pods:
  - {{name: web-1, node: n1, labels: {{app: web}}, containers: [{{name: main, command: [sleep, "1"]}}]}}
services:
  - {{name: web, selector: {{app: web}}, ports: [{{name: http, port: 80}}]}}
"""


def test_stop_then_exec_returns_once_the_process_exited_sigkill_after_the_grace():
    for script, grace in (("import time; time.sleep(60)", 3.0),
                          ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True);"
                           " time.sleep(60)", 0.2)):
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
        try:
            if "SIG_IGN" in script:
                assert child.stdout is not None and child.stdout.readline()  # SIGTERM ignored from now on
            fd = os.pidfd_open(child.pid)
            try:
                spawning.stop_then_exec(fd, grace=grace)
            finally:
                os.close(fd)
            assert child.wait(timeout=5) == (-signal.SIGTERM if grace == 3.0 else -signal.SIGKILL)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()


@pytest.fixture
def host(monkeypatch, tmp_path):
    """lifecycle.start with the host stubbed: what spawn and stop_container are asked, in order."""
    stub_host(monkeypatch, tmp_path)
    monkeypatch.setattr(stopping, "claim", lambda crec, netns: os.pidfd_open(crec["pid"]),  # no namespace check
                        raising=False)
    events: list[tuple[str, str, bool]] = []

    def spawn(argv, **kw):
        events.append(("spawn", argv[0], kw.get("replace") is not None))
        return proc.ProcId(os.getpid(), proc.start_time(os.getpid())), None

    def stop(lab, cid, crec, netns, uts=None):
        events.append(("stop", cid, False))

    monkeypatch.setattr(spawning, "spawn", spawn)
    monkeypatch.setattr(lifecycle, "stop_container", stop)
    return events


def test_the_new_dnsmasq_stops_the_old_one_itself_right_before_its_exec(host):
    lab = resolve(validate_source(parse_yaml(TOPO, "t.yaml")))
    (pod,) = [p for p in lab.pods if p.name == DNS_NAME]
    old = subprocess.Popen(["sleep", "60"])  # the running dnsmasq, started with a command that changed since
    try:
        state = LabState(lab=LAB)
        state_dir.lab_dir(LAB)  # the lab's folder as netlab makes it (marked: realize/lab_folder), its logs below
        os.makedirs(os.path.dirname(log_path(LAB, DNS_NAME, DNS_CONTAINER)), exist_ok=True)
        state.extra["workload"] = {"version": 1, "pods": {DNS_NAME: {"netns": pod.netns, "created": 1.0, "containers": {
            DNS_CONTAINER: {"argv": ["dnsmasq", "--old"], "log": log_path(LAB, DNS_NAME, DNS_CONTAINER),
                            "restarts": 0, "pid": old.pid, "start": proc.start_time(old.pid)}}}}}
        done = lifecycle.start(lab, state)
        mine = [e for e in host if e[1] in ("dnsmasq", f"{DNS_NAME}/{DNS_CONTAINER}")]
        # spawned with the old one's pidfd to stop, not stopped before; stop_container after only makes sure
        assert mine[0] == ("spawn", "dnsmasq", True), (host, done)
        assert mine[1:] == [("stop", f"{DNS_NAME}/{DNS_CONTAINER}", False)]
        assert ("spawn", "sleep", False) in host  # another pod's container: as before
        assert state.extra["workload"]["pods"][DNS_NAME]["containers"][DNS_CONTAINER]["argv"] == container_argv(
            pod, pod.containers[0])
    finally:
        old.kill()
        old.wait()
