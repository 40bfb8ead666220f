"""`netlab up --watch` judges the cluster DNS's dnsmasq against the lab as `up` serves it: a headless Service that
selects a Completed pod has no SRV record of it on dnsmasq's command, and the watcher does not see that command as
changed at every periodic check (QA q10 1: "saw: a periodic check (container kube-dns/dnsmasq its command changed);
did: nothing to change" every resync). Real namespaces, the real dnsmasq's command line."""

from __future__ import annotations

import json
import time

import pytest

from helpers import netlab, unique_lab, write_topology
from watching import wait_until, watching

pytestmark = pytest.mark.root


def test_a_completed_pod_of_a_headless_service_is_no_periodic_dnsmasq_change(tmp_path):
    name = unique_lab("wq")
    path = write_topology(tmp_path, f"""\
name: {name}
nodes: [{{name: n1}}]
pods:
  - {{name: web, node: n1, labels: {{app: web}}}}
  - name: job
    node: n1
    labels: {{app: web}}
    restartPolicy: Never
    containers: [{{name: main, command: [sh, -c, "exit 0"]}}]
services:
  - {{name: hl, clusterIP: None, selector: {{app: web}}, ports: [{{name: p, port: 9000, protocol: UDP}}]}}
""")
    with watching(name) as start:
        netlab("up", "-t", path)

        def completed() -> bool:
            job = next(p for p in pods_of(name) if p["name"] == "job")["containers"][0]
            return job["state"] != "running" and job["exit_code"] == 0

        wait_until(completed, timeout=20, step=0.2)
        netlab("up", "-t", path)  # the job is out of hl's endpoints and the cluster DNS's records now
        watcher = start(path, resync="1")
        time.sleep(5)  # five periodic checks
        changed = [line for line in watcher.lines if "its command changed" in line]
        assert changed == [], "\n".join(watcher.lines)
        pods = pods_of(name)
        ips = {p["name"]: p["ip"].replace(".", "-") for p in pods}
        dns = next(p for p in pods if p["name"] == "kube-dns")
        with open(f"/proc/{dns['containers'][0]['pid']}/cmdline", "rb") as fh:
            argv = fh.read().decode().split("\0")
        srv = [a for a in argv if a.startswith("--srv-host=_p._udp.hl.")]
        assert srv and all(ips["web"] in a for a in srv), argv  # web's record, not the completed job's
        assert not any(ips["job"] in a for a in argv), argv
        assert netlab("status", "--lab", name, check=False).returncode == 0


def pods_of(name: str) -> list[dict]:
    return json.loads(netlab("get", "pods", "--lab", name, "-o", "json").stdout)["items"]
