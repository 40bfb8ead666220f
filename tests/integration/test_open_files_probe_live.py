"""`probe` of a lab with a Service under the open-files limit the doctor accepts for it (QA q50 3).

The doctor said a lab of 7 namespaces needs about 71 descriptors and `up` worked under `ulimit -n 100`; `probe`
then failed with "the probe agent failed: OSError: [Errno 24] Too many open files" until 256: the Service's
distribution check opens its 200 connections at once. Now the doctor counts what the probe agent holds per
namespace, the agent's connections take turns to fit the limit it finds, and an EMFILE is the limit's one line.
"""

from __future__ import annotations

import json
import resource
import subprocess

from helpers import NETLAB, lab_namespaces, netlab, without_turn_waits
from netlab.errors import FILES_NEEDED, FILES_PER_NAMESPACE

TOPOLOGY = """
name: {lab}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: web-1, node: n1, labels: {{app: web}}}}
  - {{name: web-2, node: n2, labels: {{app: web}}}}
  - {{name: client, node: n1}}
services:
  - name: web
    selector: {{app: web}}
    ports: [{{name: http, port: 80, targetPort: 8080, protocol: TCP}}]
"""


def limited(limit: int, *args: str) -> subprocess.CompletedProcess:
    """The CLI under `ulimit -n limit` (soft and hard: netlab cannot raise it)."""
    def low() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return subprocess.run(NETLAB + list(args), capture_output=True, text=True, preexec_fn=low, timeout=180)


def test_probe_runs_whole_under_the_limit_the_doctor_accepts_and_says_a_lower_one_in_one_line(labs):
    lab = labs.name("fd")
    path, _ = labs.up(TOPOLOGY.format(lab=lab))
    need = FILES_NEEDED + FILES_PER_NAMESPACE * len(lab_namespaces(lab))
    doctor = limited(need, "doctor", "-t", path)
    assert f"ok    host open-files limit: `ulimit -n` {need}" in doctor.stdout, doctor.stdout
    assert f"needs about {need}" in doctor.stdout, doctor.stdout

    run = limited(need, "probe", "--lab", lab, "-o", "json")
    assert run.returncode == 0, (run.returncode, run.stderr[-2000:])
    report = json.loads(run.stdout)
    dists = report["distributions"]
    assert len(dists) == 1 and dists[0]["as_expected"], dists
    assert sum(dists[0]["endpoints"].values()) == dists[0]["connections"] >= 200, dists  # every one answered
    assert report["ok"] and not [p for p in report["probes"] if not p["as_expected"]], report["summary"]

    low = limited(40, "probe", "--lab", lab)  # below what its namespaces' sockets need: the limit, in one line
    err = without_turn_waits(low.stderr)  # another worker's probe may hold the machine's turn: a line of its own
    assert low.returncode == 3 and err.count("\n") == 1 and "Traceback" not in err, low
    assert "`ulimit -n` now 40" in err and "ulimit -n 1024" in err, low.stderr
    assert "OSError" not in err, low.stderr
    netlab("probe", "--lab", lab)  # the lab is as it was
