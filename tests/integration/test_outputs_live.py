"""What the CLI tells a script on a real lab: `get services` endpoints as data, and a capture that caught nothing.

One small lab for the module (two nodes, three pods, one Service), brought up and taken down through the CLI.
"""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest
import yaml

from helpers import NETLAB, lab_down, lab_namespaces, netlab, unique_lab, write_topology

pytestmark = pytest.mark.root


def topology(name: str) -> str:
    return f"""\
name: {name}
nodes:
  - name: node-1
  - name: node-2
pods:
  - {{name: client, node: node-1}}
  - {{name: web-1, node: node-1, labels: {{app: web}}}}
  - {{name: web-2, node: node-2, labels: {{app: web}}}}
services:
  - {{name: web, selector: {{app: web}}, ports: [{{port: 80, targetPort: 8080}}]}}
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    name = unique_lab("ha")
    path = write_topology(tmp_path_factory.mktemp("outputs"), topology(name))
    try:
        netlab("up", "-t", path)
        yield name
    finally:
        lab_down(name)
    assert not lab_namespaces(name)


def test_get_services_gives_each_endpoint_as_an_object_in_json_and_yaml(lab):
    pods = {p["name"]: p for p in json.loads(netlab("get", "pods", "--lab", lab, "-o", "json").stdout)["items"]}
    want = [{"pod": p, "node": pods[p]["node"], "ip": pods[p]["ip"], "port": 8080} for p in ("web-1", "web-2")]
    for output, parse in (("json", json.loads), ("yaml", yaml.safe_load)):
        data = parse(netlab("get", "services", "--lab", lab, "web", "-o", output).stdout)
        [port] = data["items"][0]["ports"]
        assert sorted(port["endpoints"], key=lambda e: e["pod"]) == want, output
    # The table says the same addresses, as it did.
    row = next(line.split() for line in netlab("get", "svc", "--lab", lab).stdout.splitlines()
               if line.startswith("web "))
    assert sorted(row[5].split(",")) == sorted(f"{e['ip']}:8080" for e in want)


def test_a_capture_that_caught_nothing_says_so_on_stderr_and_in_json(lab):
    # A pod's lo: nothing in the pod talks to itself. stderr is a pipe here, as in a script.
    t0 = time.monotonic()
    text = netlab("capture", "--lab", lab, "client:lo", "--timeout", "0.5")
    assert text.stdout == ""
    said = text.stderr.splitlines()[-1]
    # The time is the clock's (a loaded machine starts the capture late): the line's shape is the point.
    assert re.match(rf"netlab: 0 frames captured on {lab}-client lo in \d+(\.\d+)? s \(the timeout ran out\)",
                    said), said
    data = json.loads(netlab("capture", "--lab", lab, "client:lo", "--timeout", "0.5", "-o", "json").stdout)
    assert data["frames"] == [] and data["stopped"] == "timeout" and 0.5 <= data["elapsed_s"] < 5
    assert time.monotonic() - t0 < 30
    # Frames that came: no such line, and the JSON says the count stopped it.
    capture = subprocess.Popen(NETLAB + ["capture", "--lab", lab, "client:lo", "-c", "2", "--timeout", "20",
                                         "-o", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert capture.stderr is not None
    assert "capturing on" in capture.stderr.readline()  # it reads frames from now on
    subprocess.run(["ip", "netns", "exec", f"{lab}-client", "ping", "-c", "1", "127.0.0.1"], capture_output=True,
                   check=True)
    out, err = capture.communicate(timeout=30)
    data = json.loads(out)
    assert len(data["frames"]) == 2 and data["stopped"] == "count" and "0 frames" not in err
