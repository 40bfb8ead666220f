"""Every topology netlab ships in topologies/ comes up and passes `netlab probe` as it is.

A user's first run of an example is `netlab up -t topologies/X.yaml` then
`netlab probe`: a healthy lab that probe calls broken teaches the wrong
thing. (The host-gw example failed every node's connection to another node's
pod, "source port translated", until the judge knew Flannel's masquerade.)
Each example runs under a lab name of its own, from a copy of the folder (its
includes are relative to it).
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from helpers import lab_up, netlab, unique_lab

pytestmark = pytest.mark.root

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = sorted(name for name in os.listdir(os.path.join(ROOT, "topologies")) if name.endswith(".yaml"))


def test_every_example_is_listed():
    assert {"default-2node.yaml", "host-gw-3node.yaml", "vxlan-3node.yaml", "services.yaml",
            "netpol-3x3.yaml"} <= set(EXAMPLES)


@pytest.mark.parametrize("example", EXAMPLES)
def test_an_example_comes_up_and_passes_probe(example, tmp_path):
    folder = tmp_path / "topologies"
    shutil.copytree(os.path.join(ROOT, "topologies"), folder)
    name = unique_lab("ex")
    path = folder / example
    lines = path.read_text(encoding="utf-8").splitlines()
    assert sum(line.startswith("name:") for line in lines) == 1, example
    path.write_text("\n".join(f"name: {name}" if line.startswith("name:") else line for line in lines) + "\n")
    with lab_up(str(path), name):
        proc = netlab("probe", "--lab", name, "-o", "json", check=False)
        report = json.loads(proc.stdout)
        wrong = [(r["source"], r["destination"], r["protocol"], r["port"], r["problems"]) for r in report["probes"]
                 if not r["as_expected"]]
        assert proc.returncode == 0 and report["ok"] and not wrong, (wrong, report["summary"])
        assert report["summary"]["probes"] > 0
