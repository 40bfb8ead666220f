"""The state file of a lab that uses every feature at once passes the strict state schema whole (root, one lab).

A state byte for byte as this netlab wrote it is not checked again when it is read (realize/state_sum.py); one that
was edited, or written by another netlab, is checked whole, and anything the schema does not know makes it
"corrupt" (`down` exits 3). A record field added by one feature and not to the schema is only seen on that slower
path: the cluster DNS's `records` digest was. So: a lab with cluster DNS, a command container, a NetworkPolicy, a
LoadBalancer Service and a runtime impairment, its state checked whole after `up`, after `netlab impair` and after
an `up` that converges a changed file. A CNI lab's record (`cni`: each pod's sandbox, networks, attachment) too,
after `up` and after `up`s that attach and detach a pod; and a watched lab's, while `up --watch` restarts a container
and holds it back (CrashLoopBackOff). The watcher's back-off record (backoff.json, a file of its own beside the state)
has no schema: its reader (workload/crashloop.py) takes what it understands and a record it cannot read is no record.
So: every container the watcher wrote there is one the reader takes, and a corrupt record is no error in `get pods`
nor `status` (no traceback; the container is not said to wait), read while the watcher is frozen (SIGSTOP) in its
back-off: still running, it neither restarts the container (an apply `status` says is at work) nor writes again.
"""

from __future__ import annotations

import json
import os

import pytest

from helpers import lab_up, netlab, state_path, unique_lab, write_topology
from netlab import Lab
from netlab.realize.lab_lock import lab_lock_holder
from netlab.realize.state_schema import check_state
from netlab.workload import crashloop
from watching import wait_until, watching

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: web, node: n1, labels: {{app: web}}}}
  - name: job
    node: n2
    containers: [{{name: main, command: ["sh", "-c", "echo up; sleep 600"]}}]
{extra}
services:
  - {{name: web, selector: {{app: web}}, type: LoadBalancer, ports: [{{port: 80, targetPort: 8080}}]}}
internet: {{hosts: [{{name: client, ip: 203.0.113.50}}]}}
networkPolicies:
  - name: web-from-job
    spec:
      podSelector: {{matchLabels: {{app: web}}}}
      ingress: [{{from: [{{podSelector: {{}}}}]}}]
"""


def checked(lab: str) -> dict:
    """The lab's state, once the schema took it whole (ValueError naming the field it refuses)."""
    with open(state_path(lab, "state.json"), "rb") as fh:
        data, _ = check_state(fh.read(), lab)
    return data


def test_the_state_of_a_lab_with_every_feature_passes_the_schema_whole(tmp_path):
    lab = unique_lab("ssl")
    path = write_topology(tmp_path, TOPOLOGY.format(lab=lab, extra=""), f"{lab}.yaml")
    with lab_up(path, lab, in_process=True):  # the states the library's calls write: the CLI's are the same calls
        checked(lab)
        Lab(lab).impair("web:eth0", rate="20mbit")
        checked(lab)
        write_topology(tmp_path, TOPOLOGY.format(lab=lab, extra="  - {name: web-2, node: n2, labels: {app: web}}"),
                       f"{lab}.yaml")
        Lab.up(path)
        checked(lab)


CNI = """name: {lab}
network: {{cni: reference}}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: web, node: n1, labels: {{app: web}}}}
{extra}
services:
  - {{name: web, selector: {{app: web}}, ports: [{{port: 80, targetPort: 8080}}]}}
"""


def test_the_state_of_a_cni_lab_passes_the_schema_whole(tmp_path):
    lab = unique_lab("ssc")
    path = write_topology(tmp_path, CNI.format(lab=lab, extra=""), f"{lab}.yaml")
    with lab_up(path, lab, in_process=True):  # a Service: the cluster DNS's pod is attached by the plugins too
        assert sorted(checked(lab)["extra"]["cni"]["pods"]) == ["kube-dns", "web"]
        # A pod attached by the plugins of a running lab (CNI ADD), then detached again (DEL)
        write_topology(tmp_path, CNI.format(lab=lab, extra="  - {name: web-2, node: n2, labels: {app: web}}"),
                       f"{lab}.yaml")
        Lab.up(path)
        pods = checked(lab)["extra"]["cni"]["pods"]
        assert sorted(pods) == ["kube-dns", "web", "web-2"] and pods["web-2"]["phase"] == "added", pods
        write_topology(tmp_path, CNI.format(lab=lab, extra=""), f"{lab}.yaml")
        Lab.up(path)
        assert sorted(checked(lab)["extra"]["cni"]["pods"]) == ["kube-dns", "web"]


WATCHED = """name: {lab}
nodes: [{{name: n1}}]
pods:
  - {{name: web, node: n1}}
  - name: crash
    node: n1
    containers: [{{name: main, command: [sh, -c, "exit 3"]}}]
"""


def corrupt(watcher: dict) -> list[bytes]:
    """Records the watcher did not write as they are, some of them naming that very (running) watcher."""
    me = json.dumps(watcher)
    return [b"", b"\xff\xfe not JSON", b"[]", b'{"version": 1}', b'{"version": 2, "watcher": 1}',
            b'{"version": 1, "watcher": {"pid": 99999999999999999999999, "start": 1}, "containers": {}}',
            f'{{"version": 1, "watcher": {me}, "containers": 7}}'.encode(),
            f'{{"version": 1, "watcher": {me}, "containers": {{"crash/main": [1], "crash": {{"until": 1e11, '
            f'"delay": 1}}, "crash/x/main": {{}}}}}}'.encode(),
            f'{{"version": 1, "watcher": {me}, "containers": {{"crash/main": {{"until": "soon", "delay": -1}}}}}}'
            .encode()]


def said(lab: str) -> str:
    """What `get pods -o json` and `status` say, once neither failed nor printed a traceback."""
    out = ""
    for argv in (("get", "pods", "-o", "json"), ("status",)):
        proc = netlab(*argv, "--lab", lab, check=False)
        assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr + proc.stdout, proc
        out += proc.stdout
    return out


def test_the_state_and_back_off_record_of_a_watched_lab(tmp_path):
    lab = unique_lab("ssw")
    path = write_topology(tmp_path, WATCHED.format(lab=lab), f"{lab}.yaml")
    record = state_path(lab, crashloop.FILE)
    with watching(lab) as start:
        # The container exits: restarted at once, then held back 30 s after it exits again (backoff.json)
        watcher = start(path, backoff="30", resync="5")
        wait_until(lambda: os.path.exists(record), 15.0, step=0.05)
        # The watcher waits out the back-off now, and holds no lock. Frozen, it cannot end it meanwhile: its restart
        # of the container is an apply under the lab's lock, and `status` reading the lab then rightly says that
        # apply's work half done (exit 3), then the back-off's next record stands in for the corrupt one written
        # here. Under load the reads below outlasted the 30 s back-off (CI).
        with watcher.frozen():
            assert lab_lock_holder(lab) is None, "the watcher froze while it held the lab's lock"
            main = checked(lab)["extra"]["workload"]["pods"]["crash"]["containers"]["main"]
            assert (main["restarts"], main["last_exit_code"]) == (1, 3), main
            with open(record, "rb") as fh:
                written = json.loads(fh.read())
            # Every container the watcher holds back is one the reader takes (the file's shape is the reader's)
            held = crashloop.read(lab)
            assert sorted(held) == sorted(written["containers"]) == ["crash/main"], (held, written)
            assert held["crash/main"].watcher == watcher.proc.pid, held
            assert "CrashLoopBackOff" in said(lab)
            records = corrupt(written["watcher"])
            for raw in records:
                with open(record, "wb") as fh:
                    fh.write(raw)
                # The record reaches both commands only through crashloop.read (a Waiting of checked numbers, or
                # nothing): the library's same calls for each record, the commands themselves for the last one.
                assert crashloop.read(lab) == {}, raw
                assert "CrashLoopBackOff" not in repr(Lab(lab).pods()) + repr(Lab(lab).status()), raw
            assert "CrashLoopBackOff" not in said(lab), records[-1]
        assert watcher.stop() == 0
        checked(lab)
