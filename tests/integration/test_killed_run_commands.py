"""Commands of a lab whose `up` or `down` was killed (SIGKILL) halfway say `netlab list`'s line for it, first
(root; the last pass's "Left": wording and consistency).

The runs are killed for real at their test hooks (NETLAB_FAULT_MODE=kill): an `up` at its 30th change (every
namespace made, phase creating), a `down` once its namespaces are deleted (phase deleting, its state kept).
- killed down: exec, trace and inspect said "namespace X was deleted while lab L is up; `up` makes it again", and
  probe "is not up (no namespace L-underlay); start it with `up -t FILE`", where list and status say
  `netlab down --lab L` finishes it.
- killed up: `policy table` said nothing of it, where status, probe and trace say list's line first and carry it
  as `error` in JSON; probe said it after its run (below a turn-wait line, when it waited).
"""

from __future__ import annotations

import json

import pytest

from netlab.errors import down_command, netlab_command
from helpers import (ip, ip_json, lab_down, lab_namespaces, netlab, state_path, unique_lab, without_turn_waits,
                     write_topology)
from killed_runs import lock_let_go

pytestmark = pytest.mark.root

TOPOLOGY = """name: {lab}
nodes: [{{name: n1}}]
pods:
  - {{name: a, node: n1, containers: [{{name: main, command: [sleep, infinity]}}]}}
  - {{name: b, node: n1, labels: {{app: b}}}}
"""
POLICY = """networkPolicies:
  - {name: deny-b, spec: {podSelector: {matchLabels: {app: b}}, policyTypes: [Ingress]}}
"""


def error_document(args: tuple[str, ...], said: str) -> str:
    """What stdout holds: nothing in text, and under -o json the one error document of a command that failed before
    its own (docs/json.md, "When a command fails"), its ``error`` the line said on stderr."""
    if "-o" not in args:
        return ""
    return json.dumps({"error": said.removeprefix("netlab: ").rstrip("\n"), "exit_code": 2, "file": None,
                       "line": None, "field": None, "problems": []}, indent=2) + "\n"


def killed(lab: str, fault: dict, *args: str) -> None:
    r = netlab(*args, check=False, env={**fault, "NETLAB_FAULT_MODE": "kill"})
    assert r.returncode == -9, r  # SIGKILL: nothing of it ran to finish or roll back


def list_line(lab: str) -> str:
    rows = json.loads(netlab("list", "-o", "json").stdout)
    (row,) = [r for r in rows if r["lab"] == lab]
    return row["error"]


def test_a_killed_down_s_lab_says_down_finishes_it(tmp_path):
    lab = unique_lab("wa")
    path = write_topology(tmp_path, TOPOLOGY.format(lab=lab))
    try:
        netlab("up", "-t", path)
        killed(lab, {"NETLAB_FAULT_POINT": "down-deleted"}, "down", "--lab", lab)
        assert lab_namespaces(lab) == []  # the kernel: deleted; the state stays, phase deleting
        with open(state_path(lab, "state.json")) as fh:
            assert json.load(fh)["phase"] == "deleting"
        line = list_line(lab)
        assert line.endswith(f"ended before it finished (killed); `{down_command(lab)}` finishes it"), line
        for args, missing in ((("exec", "--lab", lab, "a", "--", "true"), "pod a's UTS namespace"),
                              (("trace", "--lab", lab, "a", "b"), f"namespace {lab}-a"),
                              (("inspect", "--lab", lab, "a"), f"namespace {lab}-a")):
            r = netlab(*args, check=False)
            assert (r.returncode, r.stdout) == (2, ""), r
            assert r.stderr == f"netlab: {line} ({missing} is not there)\n", r
        r = netlab("probe", "--lab", lab, check=False)  # its underlay is gone: list's line once, not "start it"
        assert (r.returncode, r.stdout) == (2, ""), r
        assert r.stderr == f"netlab: {line} (no namespace {lab}-underlay)\n", r
        netlab("down", "--lab", lab)  # finishes it
        assert not any(r["lab"] == lab for r in json.loads(netlab("list", "-o", "json").stdout))
    finally:
        lab_down(lab)
def test_a_killed_up_s_lab_is_said_first_by_policy_table_and_probe(tmp_path):
    lab = unique_lab("wa")
    path = write_topology(tmp_path, TOPOLOGY.format(lab=lab))
    try:
        killed(lab, {"NETLAB_FAULT_AT": "30"}, "up", "-t", path)  # its 30th change
        lock_let_go(lab)
        assert len(lab_namespaces(lab)) == 4  # n1, underlay, a, b: made, phase creating
        with open(state_path(lab, "state.json")) as fh:
            assert json.load(fh)["phase"] == "creating"
        line = list_line(lab)
        assert "the `netlab up` that was making it" in line and line.endswith(
            f"`{down_command(lab)}` takes away what it made"), line

        r = netlab("policy", "table", "--lab", lab, check=False)
        assert r.stderr.splitlines()[0] == f"netlab: {line}", r
        r = netlab("policy", "table", "--lab", lab, "-o", "json", check=False)
        assert json.loads(r.stdout)["error"] == line, r
        r = netlab("policy", "table", "--lab", lab, "--no-probe", "-o", "json", check=False)
        assert json.loads(r.stdout)["error"] == line, r

        # probe: before anything else it says (a turn-wait line; here, the note that the file's policies are not
        # the ones the lab runs, said before the run)
        edited = write_topology(tmp_path, TOPOLOGY.format(lab=lab) + POLICY, "edited.yaml")
        r = netlab("probe", "-t", edited, check=False)
        said = r.stderr.splitlines()
        assert said[0] == f"netlab: {line}" and said[1].startswith("netlab: note: "), r
        r = netlab("policy", "table", "-t", edited, check=False)
        said = r.stderr.splitlines()
        assert said[0] == f"netlab: {line}" and said[1].startswith("netlab: note: "), r
        r = netlab("probe", "--lab", lab, "-o", "json", check=False)
        assert json.loads(r.stdout)["error"] == line, r
    finally:
        lab_down(lab)
    r = netlab("policy", "table", "-t", path, "--no-probe", "-o", "json")  # no lab: nothing to say of one
    assert json.loads(r.stdout)["error"] is None


def test_policy_table_of_a_lab_with_a_pod_s_namespace_deleted_leaves_it_out_and_names_it(tmp_path):
    """policy table sent from the deleted pod too: "the probe agent failed: FileNotFoundError: ... /run/netns/L-a"
    (exit 3); of a lab whose down was killed halfway (its namespaces there), "is being taken down". It now leaves
    that pod's flows out, as probe does, and names it in exec's words (or list's, for the killed down)."""
    lab = unique_lab("pm")
    path = write_topology(tmp_path, TOPOLOGY.format(lab=lab) + POLICY)
    try:
        netlab("up", "-t", path)
        ip("netns", "delete", f"{lab}-a")  # behind netlab's back
        assert sorted(lab_namespaces(lab)) == sorted(f"{lab}-{n}" for n in ("b", "n1", "underlay"))
        r = netlab("policy", "table", "--lab", lab, check=False)
        gone = f"namespace {lab}-a was deleted while lab {lab} is up; `{netlab_command(f'up -t {path}')}` makes it again"
        # not as planned, a's flows not checked: exit 1 and exec's line first, as probe (it was exit 0, a note only)
        assert (r.returncode, without_turn_waits(r.stderr)) == (1, f"netlab: {gone}\n"), r
        assert f"note: a: its flows not probed: {gone}" in r.stdout.splitlines(), r
        assert r.stdout.splitlines()[-1].endswith("(1 pod not probed: its namespace was deleted)"), r
        # a -> b was never sent: `-` (not probed, as a terminal pod's cells), not `X` ("denied and blocked", as
        # deny-b says), and the count is of b's flows alone (QA q29 #3: "2/2 flows as the policies say")
        blocks = r.stdout.split("\n\n")
        assert [blk.splitlines()[0].split()[0] for blk in blocks[:-1]] == ["tcp/8080", "udp/8080"], r
        for block in blocks[:-1]:
            rows = {line.split()[0]: line.split()[1:] for line in block.splitlines()[1:]}
            assert rows == {"a": ["-", "-"], "b": ["-", "."]}, r  # a serves no port; b -> b reached (loopback)
        assert blocks[-1].splitlines()[0].endswith(", - not served or not probed (a note says why)"), r
        assert r.stdout.splitlines()[-1].startswith("2/2 probed flows as the policies say, 2 not probed in "), r
        assert netlab("probe", "--lab", lab, check=False).returncode == 1  # the same verdict
        r = netlab("policy", "table", "--lab", lab, "-o", "json", check=False)
        doc = json.loads(r.stdout)
        assert (r.returncode, doc["error"], doc["mismatches"], doc["probed"]) == (1, gone, 0, True), r
        flows = doc["flows"]
        assert {f["reached"] for f in flows if f["source"] == "a"} == {None}  # nothing sent from it
        assert [(f["destination"], f["protocol"], f["reached"]) for f in flows if f["source"] == "b"] == [
            ("b", "tcp", True), ("b", "udp", True)]  # real traffic from b, to itself (a serves no port)

        # a down killed after it wrote phase deleting, before it stopped or deleted anything
        killed(lab, {"NETLAB_FAULT_POINT": "state-renamed"}, "down", "--lab", lab)
        assert len(lab_namespaces(lab)) == 3
        line = list_line(lab)
        assert line.endswith(f"ended before it finished (killed); `{down_command(lab)}` finishes it"), line
        r = netlab("policy", "table", "--lab", lab, check=False)
        assert (r.returncode, without_turn_waits(r.stderr)) == (1, f"netlab: {line}\n"), r  # list's line alone, once
        assert f"note: a: its flows not probed: {line} (namespace {lab}-a is not there)" in r.stdout.splitlines(), r
    finally:
        lab_down(lab)


def test_get_logs_and_status_of_a_killed_down_s_lab_say_down_finishes_it_and_up_brings_it_back(tmp_path):
    """QA q31 3, q32 2: get pods said every pod SandboxChanged (its way out: `up`), get nodes printed its table (exit
    0), logs "no log for a/main yet (was it started?)": list's line now, first, exit 2, as exec. QA q32 3: status's
    last line said "no `up` repairs what a `netlab down` left halfway", yet the `up` it now names makes the lab
    again as planned (status, probe), also for a down killed before it stopped anything."""
    lab = unique_lab("kd")
    path = write_topology(tmp_path, TOPOLOGY.format(lab=lab))
    try:
        netlab("up", "-t", path)
        for point in ("down-deleted", "state-renamed"):
            killed(lab, {"NETLAB_FAULT_POINT": point}, "down", "--lab", lab)
            line = list_line(lab)
            assert line.endswith(f"(killed); `{down_command(lab)}` finishes it"), line
            if point == "down-deleted":
                assert lab_namespaces(lab) == []
                for args, missing in ((("get", "pods"), f"namespace {lab}-a"),
                                      (("get", "nodes"), f"namespace {lab}-n1"),
                                      (("get", "pods", "-o", "json"), f"namespace {lab}-a"),
                                      (("logs", "a"), "the log of a/main"), (("logs", "b", "-f"), "the log of b/main")):
                    r = netlab(*args, "--lab", lab, check=False)
                    said = f"netlab: {line} ({missing} is not there)\n"
                    assert (r.returncode, r.stderr) == (2, said), r
                    assert r.stdout == error_document(args, said), r
            r = netlab("status", "--lab", lab, check=False)
            assert r.stderr == f"netlab: {line}\n", r
            last = r.stdout.splitlines()[-1]
            if point == "down-deleted":
                assert r.returncode == 1 and last == (f"run `{down_command(lab)}` to finish taking it down, "
                                                      f"or `{netlab_command(f'up -t {path}')}` to bring it back as "
                                                      "planned"), r
            else:  # nothing taken yet: as planned, but not "all as planned", exit 0 (QA qa59m 2)
                assert r.returncode == 1 and r.stdout.splitlines()[0].endswith(
                    "objects as planned, but the `netlab down` that was taking it down did not finish"), r
                assert last == (f"run `{down_command(lab)}` to finish taking it down, or "
                                f"`{netlab_command(f'up -t {path}')}` to keep it up"), r
                doc = json.loads(netlab("status", "--lab", lab, "-o", "json", check=False).stdout)
                assert (doc["ok"], doc["error"], doc["drift"]) == (False, line, []), doc
            netlab("up", "-t", path)  # the up it names, for real
            r = netlab("status", "--lab", lab)
            assert r.stdout.endswith("all as planned\n") and r.stderr == "", r
            assert [(r["phase"], r.get("error")) for r in json.loads(netlab("list", "-o", "json").stdout)
                    if r["lab"] == lab] == [("up", None)]
            assert netlab("probe", "--lab", lab).returncode == 0
            assert sorted(lab_namespaces(lab)) == sorted(f"{lab}-{n}" for n in ("a", "b", "n1", "underlay"))
            assert netlab("get", "pods", "--lab", lab).stdout.count("Running") == 2
    finally:
        lab_down(lab)


def test_get_of_a_lab_whose_down_was_killed_once_it_stopped_the_containers_says_list_s_line(tmp_path):
    """QA q42 1: a `down` killed once it stopped the containers and unpinned their UTS namespaces, the network
    namespaces still there: get pods listed every pod ContainerStatusUnknown, get nodes its table, exit 0 and no
    word of the down, where exec, logs, status and probe say list's line first."""
    lab = unique_lab("fz")
    path = write_topology(tmp_path, TOPOLOGY.format(lab=lab))
    try:
        netlab("up", "-t", path)
        killed(lab, {"NETLAB_FAULT_POINT": "down-stopped"}, "down", "--lab", lab)
        names = sorted(n["name"] for n in ip_json("netns", "list") if n["name"].startswith(f"{lab}-"))
        assert names == sorted(f"{lab}-{n}" for n in ("a", "b", "n1", "underlay"))  # not deleted yet
        with open("/proc/self/mountinfo") as fh:  # the UTS pins are unmounted
            assert f" {state_path(lab, 'uts')}/" not in fh.read()
        line = list_line(lab)
        assert line.endswith(f"(killed); `{down_command(lab)}` finishes it"), line
        for args, missing in ((("get", "pods"), "pod a's UTS namespace"), (("get", "nodes"), "node n1's UTS namespace"),
                              (("get", "pods", "-o", "json"), "pod a's UTS namespace"),
                              (("exec", "a"), "pod a's UTS namespace")):
            r = netlab(*args, "--lab", lab, *(("--", "true") if args[0] == "exec" else ()), check=False)
            said = f"netlab: {line} ({missing} is not there)\n"
            assert (r.returncode, r.stderr) == (2, said), r
            assert r.stdout == error_document(args, said), r
        netlab("down", "--lab", lab)  # finishes it
        assert lab_namespaces(lab) == []
    finally:
        lab_down(lab)
