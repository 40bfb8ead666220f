"""`probe` and `policy table` of a real lab whose node n1's namespace was deleted behind netlab's back (`ip netns
delete L-n1` while something holds it, so its pods work on), and of one whose underlay's was (root).

- QA q31 #1: probe left n1's probes out and said "N/N probes as expected", exit 0: no n1 row, nothing in JSON or
  JUnit. Now n1 is named as a deleted pod is (stderr, a note, the summary, the failures, `error`, a JUnit case),
  exit 1; every other flow is still probed, for real, and passes; policy table names it too, exit 1.
- QA q31 #4: a deleted underlay said "lab L is not up ...; start it with `up -t FILE`" (exit 3) of a lab `list`
  shows up; now status's words, exit 1.
"""

from __future__ import annotations

import json
import os
from xml.etree import ElementTree

import pytest

from helpers import ip, lab_down, lab_namespaces, netlab, probe_failures, unique_lab, without_turn_waits, write_topology
from netlab.errors import netlab_command

pytestmark = pytest.mark.root


def said(r) -> list[str]:
    """What a run said on stderr but the line of another lab's probe run it waited for (one runs at a time)."""
    return without_turn_waits(r.stderr).splitlines()


TOPOLOGY = """name: {lab}
network: {{mode: host-gw}}
nodes: [{{name: n1}}, {{name: n2}}]
pods:
  - {{name: a, node: n1, ip: 10.244.0.2}}
  - {{name: b, node: n2, ip: 10.244.1.2}}
"""


def test_probe_and_policy_table_name_a_deleted_node_and_fail(tmp_path):
    lab = unique_lab("pn")
    path = write_topology(tmp_path, TOPOLOGY.format(lab=lab))
    held = None
    try:
        netlab("up", "-t", path)
        held = os.open(f"/run/netns/{lab}-n1", os.O_RDONLY)  # what a shell in it would do: the namespace lives on
        ip("netns", "delete", f"{lab}-n1")
        assert f"{lab}-n1" not in lab_namespaces(lab)
        names = [n["name"] for n in json.loads(ip("-j", "netns", "list").stdout)]
        assert f"{lab}-n1" not in names and f"{lab}-a" in names
        line = f"namespace {lab}-n1 was deleted while lab {lab} is up; `{netlab_command(f'up -t {path}')}` makes it again"
        r = netlab("probe", "--lab", lab, "--proto", "tcp", check=False)
        assert (r.returncode, said(r)) == (1, [f"netlab: {line}"]), r
        out = r.stdout.splitlines()
        assert f"n1: its flows not probed: {line}" in out, r.stdout
        assert [x for x in out if x.startswith("*** ") and "probes as expected" in x][0].split(" in ")[0].endswith(
            " (1 node not probed: its namespace was deleted)"), r.stdout
        assert out[-2:] == ["1 not as expected:", f"  {line}"], r.stdout
        junit = tmp_path / "j.xml"
        r = netlab("probe", "--lab", lab, "--proto", "tcp", "-o", "json", "--junit", str(junit), check=False)
        got = json.loads(r.stdout)
        assert (r.returncode, got["ok"], got["error"]) == (1, False, line), r
        assert {p["source"] for p in got["probes"]} == {"a", "b", "n2"}
        assert all(p["as_expected"] for p in got["probes"]), probe_failures(got)  # real traffic through held n1
        assert any(p["source"] == "b" and p["destination"] == "a" and p["observed"] == "reachable"
                   for p in got["probes"]), probe_failures(got)
        cases = [c for c in ElementTree.parse(junit).iter("testcase") if c.find("failure") is not None]
        assert [(c.get("name"), c.find("failure").get("message")) for c in cases] == [
            (f"namespace {lab}-n1 is there", line)]
        r = netlab("policy", "table", "--lab", lab, check=False)
        assert (r.returncode, said(r)) == (1, [f"netlab: {line}"]), r
        assert f"note: n1: its flows not probed: {line}" in r.stdout.splitlines(), r.stdout
        assert "MISMATCH" not in r.stdout and " not probed: its namespace was deleted)" in r.stdout, r.stdout
    finally:
        if held is not None:
            os.close(held)  # the namespace goes, and the veths in it
        lab_down(lab)


def test_probe_and_policy_table_of_a_lab_whose_underlay_was_deleted_say_status_s_words(tmp_path):
    lab = unique_lab("pn")
    path = write_topology(tmp_path, TOPOLOGY.format(lab=lab))
    try:
        netlab("up", "-t", path)
        ip("netns", "delete", f"{lab}-underlay")
        assert f"{lab}-underlay" not in lab_namespaces(lab) and f"{lab}-n1" in lab_namespaces(lab)
        assert netlab("status", "--lab", lab, check=False).returncode == 1
        line = f"namespace {lab}-underlay was deleted while lab {lab} is up; `{netlab_command(f'up -t {path}')}` makes it again"
        for args in (("probe",), ("policy", "table")):
            r = netlab(*args, "--lab", lab, check=False)
            assert (r.returncode, r.stdout, said(r)) == (1, "", [f"netlab: {line}"]), r
    finally:
        lab_down(lab)


INTERNET = TOPOLOGY + "internet: {{hosts: [{{name: h1, ip: 203.0.113.10}}]}}\n"


def test_probe_and_policy_table_say_a_deleted_gateway_is_the_internets_and_fail(tmp_path):
    """QA q37 2: the gateway's namespace deleted was "gateway: its flows not probed" and "(1 internet host not
    probed ...)": it is no internet host and sends no probes of its own; the pods' probes to h1 go through it."""
    lab = unique_lab("pg")
    path = write_topology(tmp_path, INTERNET.format(lab=lab))
    try:
        netlab("up", "-t", path)
        ip("netns", "delete", f"{lab}-gateway")
        assert f"{lab}-gateway" not in lab_namespaces(lab) and f"{lab}-h1" in lab_namespaces(lab)
        line = f"namespace {lab}-gateway was deleted while lab {lab} is up; `{netlab_command(f'up -t {path}')}` makes it again"
        status = netlab("status", "--lab", lab, check=False)
        assert status.returncode == 1 and f"{lab}-gateway" in status.stdout, status.stdout
        r = netlab("probe", "--lab", lab, "--proto", "tcp", check=False)
        assert (r.returncode, said(r)) == (1, [f"netlab: {line}"]), r
        out = r.stdout.splitlines()
        assert out[out.index("*** not there") + 1] == f"gateway, the internet's gateway: {line}", r.stdout
        assert "gateway: its flows not probed" not in r.stdout and "internet host not probed" not in r.stdout
        [summary] = [x for x in out if x.startswith("*** ") and "probes as expected" in x]
        assert " (the internet's gateway: its namespace was deleted) in " in summary, summary
        assert out[-1] == f"  {line}", r.stdout
        junit = tmp_path / "j.xml"
        r = netlab("probe", "--lab", lab, "--proto", "tcp", "-o", "json", "--junit", str(junit), check=False)
        got = json.loads(r.stdout)
        assert (r.returncode, got["ok"], got["error"]) == (1, False, line), r
        to_h1 = [p for p in got["probes"] if p["destination"] == "h1"]
        assert to_h1 and not any(p["as_expected"] for p in to_h1), got["probes"]  # real traffic: no gateway
        assert all(p["as_expected"] for p in got["probes"] if p["destination"] != "h1"), probe_failures(got)
        cases = [c for c in ElementTree.parse(junit).iter("testcase") if c.find("failure") is not None
                 and c.find("failure").get("type") == "namespace"]
        assert [(c.get("name"), c.find("failure").get("message")) for c in cases] == [
            (f"namespace {lab}-gateway is there", line)]
        r = netlab("policy", "table", "--lab", lab, check=False)
        assert (r.returncode, said(r)) == (1, [f"netlab: {line}"]), r
        assert f"note: gateway, the internet's gateway: {line}" in r.stdout.splitlines(), r.stdout
        assert r.stdout.rstrip().endswith(" s (the internet's gateway: its namespace was deleted)"), r.stdout
        netlab("up", "-t", path)
        assert netlab("status", "--lab", lab, check=False).returncode == 0
        assert netlab("probe", "--lab", lab, "--proto", "tcp", check=False).returncode == 0
    finally:
        lab_down(lab)
