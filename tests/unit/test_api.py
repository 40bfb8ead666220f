"""The Python API without root: topologies from files and dicts, the results' JSON, selectors (issue 13).

What needs a running lab (up, reach, probe, trace, exec ...) is in
tests/integration/test_api_live.py; the API example of the README runs from a
fresh virtualenv in tests/integration/test_examples.py.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from netlab import api
from netlab.api import jsonio
from netlab.api import results as R
from netlab.api.topology import load
from netlab.api.views import parse_selector
from netlab.errors import TopologyError, UsageError
from netlab.probe import report as render
from test_probe_report import fake_report
from test_result_values import sample

ROOT = Path(__file__).resolve().parents[2]
SMALL = {"name": "small", "nodes": [{"name": "n1"}], "pods": [{"name": "a", "node": "n1", "labels": {"app": "x"}}]}


def test_lab_is_importable_from_netlab_and_light():
    """``from netlab import Lab`` is the API; ``import netlab`` alone loads none of it (nor validate)."""
    code = ("import sys, netlab\nassert 'netlab.api.lab' not in sys.modules\n"
            "from netlab import Lab\nimport netlab.api.lab\nassert Lab is netlab.api.lab.Lab\nprint('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "ok", proc.stderr


def test_a_dict_is_a_topology_and_name_replaces_its_name():
    loaded = load(SMALL, name="other")
    assert loaded.lab.name == "other" and [p.name for p in loaded.lab.pods] == ["a"]
    assert loaded.source is None and loaded.origin == "<dict>"
    assert SMALL["name"] == "small"  # the caller's dict is not changed
    assert load(tuple_free := json.loads(json.dumps(SMALL))).lab.name == "small" and tuple_free


def test_a_file_loads_as_the_cli_loads_it(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("name: filelab\nnodes: [{name: n1}]\n")
    loaded = load(path, name="renamed")  # a pathlib.Path is a path too
    assert loaded.lab.name == "renamed" and loaded.source == str(path)


def test_a_bad_dict_gets_every_problem_located_by_field():
    bad = {"name": "x", "nodes": [{"name": "n1"}], "pods": [{"name": "a", "node": "n2"}, {"name": "b", "node": "n3"}]}
    with pytest.raises(TopologyError) as exc:
        load(bad)
    assert str(exc.value).splitlines() == ["<dict>: pods[0].node: unknown node 'n2'; use one of the nodes: n1",
                                           "<dict>: pods[1].node: unknown node 'n3'; use one of the nodes: n1"]
    assert exc.value.exit_code == 2
    with pytest.raises(TopologyError, match=r"^<dict>: pods\[0\]\.node: required field is missing"):
        load({"name": "x", "nodes": [{"name": "n1"}], "pods": [{"name": "b"}]})


def test_a_bad_name_or_a_non_topology_is_a_usage_error():
    with pytest.raises(UsageError, match="name"):
        load(SMALL, name="Not_A/Name")
    with pytest.raises(UsageError, match="^netlab.api.load: topology must be a path, a dict or None, not int 42$"):
        load(42)  # type: ignore[arg-type]


def test_counts_name_what_netlab_added():
    """A 1-pod file with a Service: 2 pods, and the second one is named."""
    topo = dict(SMALL, services=[{"name": "s", "selector": {"app": "x"}, "ports": [{"port": 80}]}])
    loaded = load(topo)
    assert loaded.added_pods == ["kube-dns"] and loaded.added_services == ["kube-system/kube-dns"]
    assert loaded.counts() == ("1 node, 2 pods (1 + kube-dns, the cluster DNS netlab adds to a lab with Services), "
                               "2 services (1 + kube-system/kube-dns)")
    assert load(SMALL).counts() == "1 node, 1 pod, 0 services"


def test_counts_of_a_running_lab_name_what_netlab_added_as_its_file_does():
    """``up --lab`` reads the saved topology (load_running), which holds the add-on's pod and Service as the lab
    had them: it counts them as ``up -t FILE`` does, not as the user's own. A user's own kube-system/kube-dns
    Service (no add-on) stays theirs."""
    from netlab.api.topology import Loaded
    from netlab.model.lab import resolve
    from netlab.model.topology import Topology

    def running(topo):  # what load_running makes of a lab's state (its topology saved as up saves it)
        saved = Topology.model_validate(load(topo).lab.topo.model_dump(mode="json", by_alias=True, exclude_none=True))
        return Loaded(resolve(saved), saved, None, "lab x's saved topology")

    topo = dict(SMALL, services=[{"name": "s", "selector": {"app": "x"}, "ports": [{"port": 80}]}])
    assert running(topo).counts() == load(topo).counts()
    own = dict(SMALL, services=[{"name": "kube-dns", "namespace": "kube-system", "selector": {"app": "x"},
                                 "ports": [{"port": 53, "protocol": "UDP"}]}])
    assert running(own).counts() == load(own).counts() == "1 node, 1 pod, 1 service"


def test_the_probe_report_has_exactly_the_fields_of_probe_json():
    report = fake_report(down="fedora-2")
    data = render.to_json(report)
    out = jsonio.from_json(R.ProbeReport, data)
    assert jsonio.to_json(out) == json.loads(json.dumps(data))  # the same JSON, field for field
    assert not out.ok and out.failures and all("fedora-2" in line for line in out.failures)
    probe = out.probes[0]
    assert dataclasses.is_dataclass(probe) and isinstance(probe.problems, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        probe.outcome = "reply"  # type: ignore[misc]
    reached = next(p for p in out.probes if p.protocol == "tcp" and p.reachable)
    assert reached.seen_source == reached.sent_from == reached.seen_client_address.rsplit(":", 1)[0]


def test_to_json_leaves_out_none_only_where_a_class_asks_and_keeps_other_values_as_they_are():
    end = R.TraceEnd(name="web", kind="service", ip="10.96.0.20", port=80)
    assert jsonio.to_json(end) == {"name": "web", "kind": "service", "ip": "10.96.0.20", "port": 80}
    down = jsonio.to_json(R.DownResult(lab="x", was_up=False, removed_netns=(), skipped=()))
    assert down == {"lab": "x", "was_up": False, "removed_netns": [], "skipped": [], "problems": [],
                    "removed_pod_files": [], "stopped_processes": []}
    # A class (not an instance) and other values pass through; mappings and tuples nest.
    assert jsonio.to_json({"k": (R.TraceEnd, 1.5, None, [end])}) == {
        "k": [R.TraceEnd, 1.5, None, [{"name": "web", "kind": "service", "ip": "10.96.0.20", "port": 80}]]}


def test_from_json_refuses_fields_it_does_not_know():
    """A field the CLI's JSON gains must be added to the API's class (the two stay the same). Data that is not the
    class's JSON (a file of another command, or of another netlab version, read back by a user's test) was a
    TypeError, which from_json's own docstring called a bug, its words a dataclass's ("DownResult: unexpected
    fields ['new']"): it is the data's mistake, a UsageError in one line as a ``data`` that is no dict is, naming
    the class, where in the data, the class expected there and the key."""
    data = jsonio.to_json(R.DownResult(lab="x", was_up=True, removed_netns=("x-a",), skipped=()))
    assert jsonio.from_json(R.DownResult, data) == R.DownResult("x", True, ("x-a",), ())
    wrong = [
        (R.DownResult, {**data, "new": 1}, "not a DownResult's JSON: unknown key 'new'"),
        (R.DownResult, {**data, "b": 1, "a": 2}, "not a DownResult's JSON: unknown keys 'a', 'b'"),
        (R.DownResult, {k: v for k, v in data.items() if k != "skipped"}, "not a DownResult's JSON: no key 'skipped'"),
        (R.DownResult, {"lab": "x"}, "not a DownResult's JSON: no keys 'removed_netns', 'skipped', 'was_up'"),
        (R.Status, data, "not a Status's JSON: unknown keys 'problems', 'removed_netns', 'removed_pod_files', "
                         "'skipped', 'stopped_processes', 'was_up'"),
    ]
    trace = sample(R.Trace)  # something in every field: a hop, the endpoint, its source and destination
    hop = trace["hops"][0]
    assert jsonio.from_json(R.Trace, {**trace, "hops": [hop, hop]}).hops[1] == jsonio.from_json(R.TraceHop, hop)
    wrong += [
        (R.Trace, {**trace, "destination": {**trace["destination"], "pod": "x"}},
         "not a Trace's JSON: destination (a TraceEnd): unknown key 'pod'"),
        (R.Trace, {**trace, "hops": [hop, hop, {k: v for k, v in hop.items() if k != "device"}]},
         "not a Trace's JSON: hops[2] (a TraceHop): no key 'device'"),
        (R.Trace, {**trace, "hops": [hop, 5]}, "not a Trace's JSON: hops[1] (a TraceHop): int 5, not an object (a "
                                               "dict)"),
    ]
    seen = sample(R.Inspection)
    table = {k: v for k, v in next(iter(seen["nftables"].values())).items() if k != "family"}
    wrong.append((R.Inspection, {**seen, "nftables": {"ip kube-proxy": table}},
                  "not an Inspection's JSON: nftables['ip kube-proxy'] (a NftTableInfo): no key 'family'"))
    for cls, bad, said in wrong:
        with pytest.raises(UsageError) as err:
            jsonio.from_json(cls, bad)
        assert type(err.value) is UsageError and str(err.value) == f"netlab.api.from_json: {said}"


@pytest.mark.parametrize("selector,labels,match", [
    ("app=web", {"app": "web"}, True),
    ("app==web", {"app": "db"}, False),
    ("app!=web", {}, True),
    ("app", {"app": "x"}, True),
    ("!app", {"app": "x"}, False),
    ("env in (a, b),tier", {"env": "b", "tier": "1"}, True),
    ("env in (a,b),tier", {"env": "b"}, False),
    ("env notin (a)", {"env": "c"}, True),
    ("", {"x": "y"}, True),
])
def test_label_selectors_read_as_kubectls(selector, labels, match):
    assert parse_selector(selector)(labels) is match


def test_a_label_selector_it_cannot_read_is_one_line():
    with pytest.raises(UsageError, match=r"cannot read 'app=\(x'"):
        parse_selector("app=(x")


def test_selected_name_takes_netlab_lab_from_the_environment(monkeypatch):
    monkeypatch.setenv("NETLAB_LAB", "fromenv")
    assert api.selected_name() == "fromenv"
    assert api.selected_name("given") == "given"
    monkeypatch.setenv("NETLAB_LAB", "../etc")
    with pytest.raises(UsageError, match="NETLAB_LAB"):
        api.selected_name()


def test_the_public_api_is_typed_and_passes_mypy_strict(tmp_path):
    """py.typed ships with the package, and ``mypy`` (strict, configured in pyproject.toml) passes on
    netlab, netlab.api and the pytest plugin, and on the README's quickstart, as a user's copy of it would be
    checked (it used an Optional endpoint unchecked)."""
    assert (ROOT / "netlab" / "py.typed").exists()
    proc = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"Success: no issues found in \d+ source files", proc.stdout), proc.stdout


def test_a_users_own_tests_outside_the_checkout_are_type_checked_against_netlab(tmp_path):
    """A user's project elsewhere, checked with the venv setup.sh made: mypy finds netlab (setuptools' editable
    import hook hid it: "Cannot find implementation or library stub for module named 'netlab'") and its types
    are used (a wrong one is an error), while netlab's own modules are not the user's to fix."""
    work = tmp_path / "mytests"
    work.mkdir()
    (work / "test_mine.py").write_text("from netlab import Lab\n\n\ndef check(lab: Lab) -> None:\n"
                                       "    lab.down()\n    report = lab.probe()\n    ok: str = report.ok\n")
    proc = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"),
                           "test_mine.py"], cwd=work, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert "Cannot find implementation" not in out and "netlab/" not in out, out
    assert proc.returncode == 1 and 'test_mine.py:7: error: Incompatible types in assignment (expression has type ' \
        '"bool", variable has type "str")' in out, out


README = (ROOT / "README.md").read_text()


def test_the_readme_section_is_the_tested_example():
    """"Use netlab in your own tests" shows examples/pytest file for file, as they are."""
    section = README.split("## Use netlab in your own tests", 1)[1].split("\n## ", 1)[0]
    shown = re.findall(r"^`(examples/pytest/[\w.]+)`:\n\n```\w+\n(.*?)^```$", section, re.S | re.M)
    files = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "examples" / "pytest").iterdir()
                   if p.is_file() and p.suffix in (".py", ".yaml"))
    assert sorted(name for name, _ in shown) == files
    for name, text in shown:
        assert text == (ROOT / name).read_text(), f"README shows another {name}"


def test_the_readme_section_names_every_argument_of_the_marker():
    """"Use netlab in your own tests" describes each keyword the marker takes (pytest --markers lists them),
    as people call it: ``scope="module"``, ``name="web-edge"`` (the base of the lab's unique name)."""
    from netlab.pytest_topology import MARKER_ARGS

    section = README.split("## Use netlab in your own tests", 1)[1].split("\n## ", 1)[0]
    assert MARKER_ARGS[0] == "topology" and "@pytest.mark.netlab(" in section  # given first, by position
    calls = re.findall(r"pytest\.mark\.netlab\(([^)]*)\)", section)
    assert [arg for arg in MARKER_ARGS[1:] if not any(re.search(rf"\b{arg}=", c) for c in calls)] == []


def test_from_json_refuses_a_value_of_the_wrong_type():
    """QA pt63 6: ``ok="yes"`` for a bool, ``rtt_ms="fast"`` for a float, ``summary.probes=None`` were taken as
    given (a result whose ``ok`` is a non-empty string, truthy). A value not of its field's type is the data's
    mistake too: bool is not int, an int is a float (JSON's 1 for 1.0), None only where the field may be None."""
    data = render.to_json(fake_report(down="fedora-2"))
    probe = data["probes"][0]
    wrong = [
        ({**data, "ok": "yes"}, "ok: str 'yes', not a bool"),
        ({**data, "ok": 1}, "ok: int 1, not a bool"),
        ({**data, "probes": [{**probe, "rtt_ms": "fast"}]}, "probes[0] (a ProbeResult): rtt_ms: str 'fast', not a "
                                                             "float or None"),
        ({**data, "summary": {**data["summary"], "probes": None}}, "summary (a ProbeSummary): probes: None, not an "
                                                                   "int"),
        ({**data, "summary": {**data["summary"], "probes": True}}, "summary (a ProbeSummary): probes: bool True, "
                                                                   "not an int"),
        ({**data, "summary": {**data["summary"], "text": 5}}, "summary (a ProbeSummary): text: int 5, not a str"),
    ]
    for bad, said in wrong:
        with pytest.raises(UsageError) as err:
            jsonio.from_json(R.ProbeReport, bad)
        assert str(err.value) == f"netlab.api.from_json: not a ProbeReport's JSON: {said}"
    out = jsonio.from_json(R.ProbeReport, {**data, "probes": [{**probe, "rtt_ms": 3}]})
    assert out.probes[0].rtt_ms == 3.0 and type(out.probes[0].rtt_ms) is float  # an int is a float
    assert jsonio.from_json(R.ProbeReport, {**data, "probes": [{**probe, "rtt_ms": None}]}).probes[0].rtt_ms is None
