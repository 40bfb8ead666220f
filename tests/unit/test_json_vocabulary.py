"""One vocabulary for every command's JSON (docs/json.md). A flow was source/destination/protocol in `probe`,
src/dst/proto in `trace` and from/to/proto in `policy table`; a time `elapsed_s` in probe and `seconds` in policy
table; a pod's own name `pods[].pod` in probe where every other document says `name`; a CNI call's time
`duration`. Each command now says the shared word, and its old key beside it (same value) for one release."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from netpol_cases import CASES, model
from test_probe_report import fake_report

from netlab.api import results as R
from netlab.api.jsonio import from_json, to_json
from netlab.api.topology import load
from netlab.cni.invoke import Call, call_json
from netlab.probe import report as render
from netlab.probe.policytable import evaluate
from netlab.trace.hops import Hop, Walk
from netlab.trace.render import TraceResult
from netlab.trace.targets import Endpoint
from netlab.trace.verdict import Verdict

DOC = Path(__file__).resolve().parents[2] / "docs" / "json.md"


def probe_json() -> dict[str, Any]:
    return json.loads(json.dumps(render.to_json(fake_report())))


def walked_hops() -> list[Hop]:
    """The walker's own rows of a ping from pod to pod across nodes (VXLAN), fake kernel: bridge and fdb rows."""
    from test_trace_walk import FakeKernel, lab_from, ping

    from helpers import two_node_topology
    from netlab.plan.build import build_plan
    from netlab.trace.labmap import LabMap

    lab = lab_from(two_node_topology("demo"))
    plan = build_plan(lab)
    return ping(FakeKernel(lab, plan), LabMap.from_lab(lab, plan)).hops


def trace_json() -> dict[str, Any]:
    hop = Hop(netns="l-node-1", where="node node-1", device="eth0", kind="route", decision="forward")
    src = Endpoint("client", "pod", "10.244.0.2", "l-client")
    dst = Endpoint("web", "service", "10.96.0.20", port=53, proto="udp", service="default/web")
    result = TraceResult(lab="l", src=src.to_json(), dst=dst.to_json(), proto="udp", port=53, marker="m",
                         forward=Walk(hops=[hop, *walked_hops()], outcome="delivered"), reply=None,
                         verdict=Verdict(True, None, None), reply_verdict=None, reply_received=True)
    return json.loads(json.dumps(result.to_json()))


def policy_json() -> dict[str, Any]:
    case = next(c for c in CASES if c["policies"])
    table = evaluate(load(model("jsv", case["policies"])).lab)
    table.seconds = 1.25
    return json.loads(json.dumps(table.to_json()))


def cni_json() -> dict[str, Any]:
    call = Call(pod="web-1", network="cbr0", plugin="bridge", command="ADD", env={}, stdin={}, runs_in="l-node-1",
                duration=0.012)
    return {"lab": "l", "pod": None, "calls": [call_json(call.to_json())]}


def plan_json() -> dict[str, Any]:
    from netlab.model.lab import resolve
    from netlab.model.load import load_topology
    from netlab.plan.build import build_plan

    return json.loads(json.dumps(build_plan(resolve(load_topology(None))).to_json()))


def status_json() -> dict[str, Any]:
    """status's details[]: a drift of each state, as realize.diff says it (a VXLAN FDB entry among them)."""
    from ipaddress import IPv4Address

    from netlab.plan.resources import Fdb
    from netlab.realize.diff import Drift

    fdb = Fdb(netns="l-n1", dev="flannel.1", lladdr="02:00:00:00:00:01", dst=IPv4Address("192.168.122.3"))
    return json.loads(json.dumps({"lab": "l", "details": [Drift("missing", fdb).to_json()]}))


def inspect_json() -> dict[str, Any]:
    """inspect's sockets and routes sections, the kernel's answers stand-ins (tests/unit/test_msg_inspect_sections.py;
    the routes' netlink dump as tests/unit/test_trace_kernel.py's socket answers it)."""
    from test_trace_kernel import KernelSocket

    from netlab.kernel import netlink as nl
    from netlab.kernel.sockdiag import Bound
    from netlab.trace import inspect as tinspect
    from netlab.trace.kernel import LiveKernel

    sock = KernelSocket()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(LiveKernel, "sockets", lambda self, netns, proto: [Bound(2, "0.0.0.0", 8080, 10)])
        mp.setattr(nl, "_readable", lambda s, t: bool(sock.queue))
        mp.setattr(LiveKernel, "conn", lambda self, netns: nl.Conn(sock=sock, timeout=1))
        return json.loads(json.dumps({"lab": "l", **tinspect.inspect("l-n1", None, ["sockets", "routes"])}))


OUTPUTS = {"probe": probe_json, "trace": trace_json, "policy table": policy_json, "cni log": cni_json,
           "plan": plan_json, "status": status_json, "inspect": inspect_json}


def test_a_flow_is_source_destination_protocol_port_in_probe_trace_and_policy_table():
    probe, trace, table = probe_json(), trace_json(), policy_json()
    flows = [probe["probes"][0], trace, table["flows"][0]]
    for flow in flows:
        assert {"source", "destination", "protocol", "port"} <= flow.keys(), flow
        assert flow["protocol"] in ("icmp", "tcp", "udp")  # a flow's spelling, lower case, in all three
    assert trace["source"]["name"] == "client" and trace["destination"]["name"] == "web"
    assert trace["destination"]["protocol"] == "udp"
    assert isinstance(table["flows"][0]["source"], str) and isinstance(probe["probes"][0]["source"], str)


def test_the_old_flow_keys_stay_beside_the_new_ones_with_the_same_value():
    trace, flow = trace_json(), policy_json()["flows"][0]
    assert (trace["src"], trace["dst"], trace["proto"]) == (trace["source"], trace["destination"], trace["protocol"])
    assert trace["destination"]["proto"] == trace["destination"]["protocol"]
    assert (flow["from"], flow["to"], flow["proto"]) == (flow["source"], flow["destination"], flow["protocol"])
    keys = list(trace)
    assert keys[keys.index("source") + 1] == "src"  # beside it: a reader of the text finds both together


def test_a_time_is_elapsed_s_and_a_pods_own_name_is_name():
    table, probe, cni = policy_json(), probe_json(), cni_json()
    assert table["elapsed_s"] == table["seconds"] == 1.25
    assert "elapsed_s" in probe and cni["calls"][0]["elapsed_s"] == cni["calls"][0]["duration"] == 0.012
    assert probe["pods"] and all(p["name"] == p["pod"] for p in probe["pods"])


def test_the_api_reads_both_the_new_json_and_an_older_netlabs_and_keeps_the_old_names_as_properties():
    data = trace_json()
    trace = from_json(R.Trace, data)
    again = to_json(trace)  # the CLI's JSON, key for key, aliases included
    assert list(again) == list(data) and all(again[k] == data[k] for k in data if k != "hops")
    assert trace.source.name == trace.src.name == "client" and trace.protocol == trace.proto == "udp"
    assert trace.destination.protocol == trace.dst.proto == "udp"
    old = {k: v for k, v in data.items() if k not in ("source", "destination", "protocol")}
    old["dst"] = {k: v for k, v in old["dst"].items() if k != "protocol"}
    assert from_json(R.Trace, old) == trace  # a file an older netlab wrote
    report = from_json(R.ProbeReport, probe_json())
    assert report.pods[0].name == report.pods[0].pod
    with pytest.raises(Exception, match="key 'src' .* differs from 'source'"):
        from_json(R.Trace, {**data, "src": data["destination"]})


def deprecated_rows() -> list[tuple[str, str, str, str]]:
    text = DOC.read_text()
    section = text.split("## Deprecated keys", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| ([a-z ]+) \| (.+?) \| `(\w+)` \| `(\w+)` \|$", section, re.M)
    assert len(rows) >= 10, rows
    return rows


def objects_at(data: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """The objects a row's `where` names; "... of kind K": those of them whose `kind` is K (plan's resources);
    "...: `KEY`": each one's KEY (a trace hop's `facts`)."""
    inner = re.search(r": `(\w+)`$", where)
    if inner:
        return [obj[inner.group(1)] for obj in objects_at(data, where[:inner.start()])]
    kind = re.search(r" of kind (\w+)$", where)
    if kind:
        return [obj for obj in objects_at(data, where[:kind.start()]) if obj.get("kind") == kind.group(1)]
    out: list[dict[str, Any]] = []
    for part in re.findall(r"`([^`]+)`", where) or ["top level"]:
        if part.endswith("[]"):
            out += data[part[:-2]]
        else:
            out.append(data if part == "top level" else data[part])
    return out


@pytest.mark.parametrize("command,where,old,new", deprecated_rows())
def test_the_docs_table_of_deprecated_keys_is_what_the_commands_write(command, where, old, new):
    data = OUTPUTS[command]()
    objects = [obj for obj in objects_at(data, where) if new in obj or old in obj]  # a trace's source: no protocol
    assert objects
    for obj in objects:
        assert old in obj and new in obj and obj[old] == obj[new], (command, where, old, new, obj)


def _doc_row_keys(command: str) -> set[str]:
    """The top-level keys docs/json.md's command table lists for ``command`` (the first backticked word of each
    comma-separated item, its notes in parentheses left out)."""
    for line in DOC.read_text().splitlines():
        if line.startswith(f"| `{command}` |"):
            cell = re.sub(r"\([^)]*\)", "", line.split("|")[2])
            return set(re.findall(r"`([a-z_]+)(?:\[\])?`", cell))  # a list's key said as `problems[]` too
    raise AssertionError(f"docs/json.md has no row for {command}")


def test_the_doc_lists_every_key_of_break_and_break_list():
    """QA: `break -o json` wrote `in_place` and `break --list` `needs_words`, which the doc's table left out."""
    from netlab.breaks.catalogue import SCENARIOS
    from netlab.breaks.run import BreakResult

    assert set(BreakResult("l", "s", "t").to_json()) <= _doc_row_keys("break")
    assert set(SCENARIOS[0].to_json()) <= _doc_row_keys("break --list")


def test_the_service_a_probe_dialed_is_an_object_whose_protocol_is_the_flows_lower_case():
    """QA: the doc said probe's `service` kept the API's `TCP`; it says `tcp`, as the probe's own flow does.
    The doc now says so, and names `get` alone for the API's spelling."""
    from test_external_traffic_policy import ITP, lab

    from netlab.probe.services import build

    services = [p.svc.to_json() for p in build(lab(topo=ITP), ("tcp",)).probes if p.svc is not None]
    assert services and {s["protocol"] for s in services} == {"tcp"}
    row = next(line for line in DOC.read_text().splitlines() if line.startswith("| `protocol` of a Kubernetes"))
    assert row.rstrip(" |").endswith("| get")


def test_validate_help_says_its_json_is_a_document_with_problems():
    """QA: `validate --help` said -o json printed "a list of {file, line, field, message}"; it is a document."""
    from click.testing import CliRunner

    from netlab.cli.base import cli

    out = CliRunner().invoke(cli, ["validate", "--help"]).output
    assert "a list of {file" not in out and "`problems` lists {file, line, field, message}" in " ".join(out.split())


def test_the_doc_names_every_field_of_a_traces_endpoint_rows_and_arp_exchanges():
    """The doc's trace row said `endpoint` and `hops[]` alone: not the endpoint's fields (`path`, `via`) nor a
    neighbour row's ARP exchange (`state_before`, `arp_request`, `arp_reply`) nor `arp[]`'s items."""
    from dataclasses import fields

    from netlab.api.results_trace import ServiceEndpoint
    from netlab.trace.arpstory import story
    from netlab.trace.flow import Packet

    row = next(line for line in DOC.read_text().splitlines() if line.startswith("| `trace` |"))
    named = set(re.findall(r"`([a-z_]+)`", row))
    hop = Hop(netns="p", where="pod p", device="eth0", kind="neigh", decision="ARP entry",
              facts={"ip": "10.0.0.1", "lladdr": "0a:58:0a:00:00:01", "state": "REACHABLE", "state_before": "no entry"})
    frames = [Packet("p", "eth0", "out", 0.1, None, arp={"op": 1, "spa": "10.0.0.2", "tpa": "10.0.0.1"}, summary="q"),
              Packet("p", "eth0", "in", 0.2, None, arp={"op": 2, "spa": "10.0.0.1", "tpa": "10.0.0.2"}, summary="a")]
    [item] = story(Walk(hops=[hop], outcome="delivered"), frames)
    want = {f.name for f in fields(ServiceEndpoint)} | set(hop.to_json()) | set(hop.facts) | set(item)
    assert want | {"arp_learned_from"} <= named, sorted(want - named)  # learned from: the other kind of row


def test_the_doc_lists_every_key_of_validates_document_and_of_what_the_machine_lacks(tmp_path, monkeypatch):
    """`validate -o json` of a valid `cni: reference` file on a machine without Debian's plugins printed no
    document (one line on stderr, exit 3): a script got nothing to read. It is the valid file's document, with
    `machine_missing` saying what the machine lacks; the doc names its keys."""
    from cli_inprocess import run_cli

    from netlab.cni import conf as cni_conf

    monkeypatch.setattr(cni_conf, "CNI_BIN_DIR", str(tmp_path / "none"))
    monkeypatch.delenv("NETLAB_CNI_PATH", raising=False)
    (tmp_path / "t.yaml").write_text("name: v\nnetwork: {cni: reference}\nnodes: [{name: n1}]\n"
                                     "pods: [{name: a, node: n1}]\n")
    res = run_cli("validate", "-t", str(tmp_path / "t.yaml"), "-o", "json")
    assert res.returncode == 3, res.stdout + res.stderr
    got = json.loads(res.stdout)
    assert set(got) <= _doc_row_keys("validate") and got["valid"] is True and got["machine_missing"] is not None
    row = DOC.read_text().split("| `validate` |")[1].split("\n")[0]
    assert all(f"`{key}" in row for key in got["machine_missing"]), (got["machine_missing"], row)
    res = run_cli("validate", "-t", str(DOC.parents[1] / "topologies" / "host-gw-3node.yaml"), "-o", "json")
    assert res.returncode == 0 and json.loads(res.stdout)["machine_missing"] is None


def test_an_fdb_entrys_mac_is_mac_in_plan_as_in_inspect_and_bridge_j_fdb():
    """QA: one FDB entry said `lladdr` in `plan -o json` and `mac` in `inspect -o json` (`bridge -j fdb`'s word).
    plan says `mac`, with `lladdr` beside it (deprecated), and a plan either way reads back the same."""
    from netlab.plan.resources import resource_from_json
    from netlab.trace import inspect

    fdbs = [r for r in plan_json()["resources"] if r["kind"] == "fdb"]
    assert fdbs and all(r["mac"] == r["lladdr"] for r in fdbs)
    keys = list(fdbs[0])
    assert keys[keys.index("mac") + 1] == "lladdr"
    assert '{"mac": e.lladdr' in Path(inspect.__file__).read_text()  # inspect's own word for it
    old = {k: v for k, v in fdbs[0].items() if k != "mac"}
    assert resource_from_json(fdbs[0]) == resource_from_json(old) and resource_from_json(fdbs[0]).to_json() == fdbs[0]


def test_a_trace_hops_fdb_and_bridge_facts_say_bridges_mac_and_dst_with_the_old_keys_beside():
    """QA q43 3: a trace's fdb row said `lladdr` and `remote_vtep`, its bridge rows `lladdr`, where json.md says a
    trace hop's facts use `bridge -j fdb`'s words, as `inspect` and `plan` do: `mac` and `dst`. They do, and the old
    keys stay right beside them, with the same value, for one release (the deprecated table)."""
    hops = [h.to_json() for h in walked_hops()]
    fdb = [h["facts"] for h in hops if h["kind"] == "fdb"]
    bridges = [h["facts"] for h in hops if h["kind"] == "bridge" and h["facts"].keys() & {"mac", "lladdr"}]
    assert fdb and bridges
    for f in fdb:
        assert f["dst"] == f["remote_vtep"] == "192.168.122.7" and f["mac"] == f["lladdr"], f
        keys = list(f)
        assert keys[keys.index("mac") + 1] == "lladdr" and keys[keys.index("dst") + 1] == "remote_vtep", keys
    assert all(f["mac"] == f["lladdr"] and re.fullmatch(r"[0-9a-f:]{17}", f["mac"]) for f in bridges), bridges
    rows = {(where, old, new) for command, where, old, new in deprecated_rows() if command == "trace"}
    assert {("`hops[]`, `reply_hops[]` of kind fdb: `facts`", "remote_vtep", "dst"),
            ("`hops[]`, `reply_hops[]` of kind fdb: `facts`", "lladdr", "mac"),
            ("`hops[]`, `reply_hops[]` of kind bridge: `facts`", "lladdr", "mac")} <= rows, rows


def test_documented_keys_are_written_as_null_not_left_out():
    """QA q43 4: `policy table`'s flows[].detail was written only on mismatched flows, and a trace hop's `observe`
    only where something could be watched (not on the dnat row): a script's flow['detail'] or hop['observe'] got a
    KeyError. Both are always written, null when there is nothing to say (validate's `note`: test_cli_surface)."""
    flows = policy_json()["flows"]
    assert flows and all("detail" in f and f["detail"] is None for f in flows), flows[0]  # not probed
    from netlab.probe.policytable import Flow

    seen = Flow("a", "b", "tcp", 80, evaluate(load(model("jsv", [])).lab).flows[0].verdict, reached=False,
                detail="timeout")
    assert seen.to_json()["detail"] == "timeout"
    dnat = Hop(netns="l-node-1", where="node node-1", device="eth0", kind="dnat", decision="DNAT to 10.244.1.2:8080")
    assert dnat.to_json()["observe"] is None
    assert from_json(R.TraceHop, dnat.to_json()).observe is None  # the API reads it back


def test_up_says_ok_as_status_does_and_its_first_starts_apart_from_its_repairs():
    """`up -o json` had no `ok` (UpResult.ok was a Python property alone), and a new lab's first starts were its
    `fixed`, which docs/json.md calls repairs, restarts and rewritten files (QA docs58 4): `started` says them;
    `fixed` keeps them for one release (the deprecation section says so)."""
    fixed = ("started container a/main", "restarted container b/main (it had exited with code 1)")
    result = R.UpResult(lab="l", changed=True, created_netns=("l-a",), removed_netns=(), fixed=fixed, operations=3,
                        warnings=())
    data = json.loads(json.dumps(to_json(result)))
    assert data["ok"] is True and data["started"] == ["started container a/main"] and data["fixed"] == list(fixed)
    assert set(data) <= _doc_row_keys("up")
    assert from_json(R.UpResult, data) == result  # read back: ok and started are the fields' own
    failed = to_json(R.UpResult(lab="l", changed=True, created_netns=(), removed_netns=(), fixed=(), operations=1,
                                warnings=(), failed=("pod a container main: could not start: ...",)))
    assert failed["ok"] is False and failed["started"] == []
    deprecated = " ".join(DOC.read_text().split("## Deprecated keys", 1)[1].split("\n## ", 1)[0].split())
    assert "`started container a/main`" in deprecated and "they are `started`" in deprecated


@pytest.mark.parametrize("topology", [None, "t.yaml"])
def test_doctor_without_a_topology_names_no_lab(tmp_path, monkeypatch, topology):
    """`doctor -o json` without -t wrote "lab": "demo" (the built-in lab it sizes the limits with) though no lab is
    involved (QA docs58 4): null; with -t, the file's lab."""
    from cli_inprocess import run_cli

    import importlib

    from netlab import doctor

    cli_doctor = importlib.import_module("netlab.cli.doctor")
    monkeypatch.setattr(cli_doctor, "require_root", lambda **how: None)
    monkeypatch.setattr(doctor, "report", lambda lab, **how: [])
    monkeypatch.setattr(cli_doctor, "_running", lambda name: None)
    args = ["doctor", "-o", "json"]
    if topology:
        (tmp_path / topology).write_text("name: dcdoc\nnodes: [{name: n1}]\n")
        args += ["-t", str(tmp_path / topology)]
    proc = run_cli(*args)
    assert proc.stdout.startswith("{"), proc
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0 and doc["ok"] is True
    assert doc["lab"] == ("dcdoc" if topology else None) and doc["needs"] == ("this lab" if topology else "everything")
