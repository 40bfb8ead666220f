"""The example topologies and the committed JSON Schema stay in step with the models."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_inprocess import run_cli

from netlab.model.lab import resolve
from netlab.model.load import load_source, load_topology

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "topologies").glob("*.yaml"))
SCHEMA = ROOT / "schema" / "topology.schema.json"
SCHEMA_LINE = "# yaml-language-server: $schema=../schema/topology.schema.json"


def _gen_schema():
    spec = importlib.util.spec_from_file_location("gen_schema", ROOT / "scripts" / "gen_schema.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_there_are_examples():
    names = {p.name for p in EXAMPLES}
    assert {"default-2node.yaml", "host-gw-3node.yaml", "vxlan-3node.yaml", "services.yaml"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_validates(path):
    lab = resolve(load_topology(str(path)))
    assert len(lab.pods) <= 9, "examples are small labs (the NetworkPolicy e2e model has nine pods)"
    assert path.read_text("utf-8").splitlines()[0] == SCHEMA_LINE


# Every example through the CLI's entry point in this process (cli_inprocess.py); the default
# one again as a separate process, as a user runs it.
CLI_RUNS = [(p, "in-process") for p in EXAMPLES] + [(ROOT / "topologies" / "default-2node.yaml", "process")]


@pytest.mark.parametrize("path,how", CLI_RUNS, ids=[f"{p.name}-{how}" for p, how in CLI_RUNS])
def test_example_validates_through_the_cli(path, how):
    if how == "in-process":
        proc = run_cli("validate", "-t", str(path))
    else:
        proc = subprocess.run([sys.executable, "-m", "netlab", "validate", "-t", str(path)], capture_output=True,
                              text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_default_example_is_the_built_in_default():
    assert load_topology(str(ROOT / "topologies" / "default-2node.yaml")) == load_topology(None)
    assert load_source(str(ROOT / "topologies" / "default-2node.yaml")).data == load_source(None).data


def test_examples_cover_their_features():
    by_name = {p.name: load_topology(str(p)) for p in EXAMPLES}
    hostgw = by_name["host-gw-3node.yaml"]
    assert hostgw.network.mode == "host-gw" and len(hostgw.nodes) == 3 and hostgw.pods
    vxlan = by_name["vxlan-3node.yaml"]
    assert vxlan.network.mode == "vxlan" and len(vxlan.nodes) == 3
    svc = by_name["services.yaml"]
    lab = resolve(svc)
    web = next(s for s in svc.services if s.name == "web")
    assert [p.name for p, _ in lab.endpoints(web, web.ports[0])] == ["web-1", "web-2"]
    assert {s.type for s in svc.services} >= {"ClusterIP", "NodePort", "LoadBalancer"}
    assert any(p.node_port for s in svc.services for p in s.ports)
    assert str(svc.internet.gateway.ip) == "203.0.113.1"
    assert [(h.name, str(h.ip)) for h in svc.internet.hosts] == [("example", "203.0.113.10")]


def test_committed_schema_is_up_to_date():
    assert SCHEMA.read_text("utf-8") == _gen_schema().render(), "run scripts/gen_schema.py"


def test_schema_generation_is_deterministic_and_by_alias():
    text = _gen_schema().render()
    assert text == _gen_schema().render()
    schema = json.loads(text)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {"name", "cluster", "network", "nodes", "pods", "services", "internet",
                                         "expect", "namespaces", "networkPolicies", "include"}
    assert set(schema["$defs"]["Cluster"]["properties"]) == {"podCIDR", "serviceCIDR", "nodeMask", "kubeProxyMode"}
    assert "pod_cidr" not in text and "containerPort" in text and "clusterIP" in text


def test_schema_check_mode(tmp_path):
    stale = tmp_path / "schema.json"
    stale.write_text("{}\n")
    script = str(ROOT / "scripts" / "gen_schema.py")
    # The script's exit status, as CI sees it; then its main() in this process.
    assert subprocess.run([sys.executable, script, "--check", "-o", str(stale)], capture_output=True).returncode == 1
    gen = _gen_schema()
    assert gen.main(["--check", "-o", str(stale)]) == 1
    assert gen.main(["-o", str(stale)]) == 0
    assert gen.main(["--check", "-o", str(stale)]) == 0
    assert stale.read_text() == SCHEMA.read_text()
