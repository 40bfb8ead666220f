"""``netlab validate`` reports every problem of a file in one run, one line per mistake; when the model refuses
a value, the cross-checks (which need a typed topology) wait, and after several problems the last line says so.

Each case is the exact stderr of ``netlab validate -t FILE`` (paths relative to the test's folder)."""

from __future__ import annotations

import json

import pytest
from cli_inprocess import run_cli


NODES = "name: qx3b\nnodes:\n  - name: n1\n"
UNCHECKED = "fix these first: the cross-checks (names, nodes, addresses) run once they are fixed"
UNKNOWN_N9 = "t.yaml:9: pods[1].node: unknown node 'n9'; use one of the nodes: n1"


def validate(tmp_path, text: str, files: dict[str, str] | None = None, *options: str) -> list[str]:
    for name, body in (files or {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body)
    (tmp_path / "t.yaml").write_text(text)
    res = run_cli("validate", "-t", str(tmp_path / "t.yaml"), *options)
    assert res.returncode == 2, res.stdout + res.stderr
    if options:
        return res.stdout
    return [line.replace(str(tmp_path) + "/", "") for line in res.stderr.splitlines()]


def pods_with_label(value: str) -> str:
    return NODES + f"pods:\n  - name: a\n    node: n1\n    labels: {{h: {value}}}\n  - name: b\n    node: n9\n"


@pytest.mark.parametrize("value, message", [
    ("0x1f", "'0x1f' is an octal, hex or binary number in YAML 1.1; write it in plain decimal, or quote it if it "
             "is text"),
    ("1_0", "'1_0': write numbers as plain decimal digits without '_'"),
    ("1.10", '1.10 is a number here; quote it ("1.10") if you meant text'),
    ("on", "'on' is a YAML boolean here; quote it if you meant the text"),
])
def test_a_yaml_1_1_value_hides_no_other_problem(tmp_path, value, message):
    assert validate(tmp_path, pods_with_label(value)) == [f"t.yaml:7: pods[0].labels.h: {message}", UNKNOWN_N9]


def test_a_yaml_1_1_value_that_fits_no_reading_says_the_cross_checks_wait(tmp_path):
    """'1:30' read as text is no label value either: the model's complaint about it is not said twice, and the
    cross-checks cannot run on a label that is neither. One problem is one line (QA: the line saying the
    cross-checks wait told nothing more); after several, the last line says they wait."""
    assert validate(tmp_path, pods_with_label("1:30")) == [
        "t.yaml:7: pods[0].labels.h: '1:30' is a sexagesimal (base 60) number in YAML 1.1; quote it"]
    two = pods_with_label("1:30").replace("  - name: b\n", "  - name: b\n    ip: 10.300.0.1\n")
    assert validate(tmp_path, two) == [
        "t.yaml:7: pods[0].labels.h: '1:30' is a sexagesimal (base 60) number in YAML 1.1; quote it",
        "t.yaml:9: pods[1].ip: '10.300.0.1' is not an IPv4 address like 10.244.0.2 (Octet 300 (> 255) not "
        "permitted in '10.300.0.1')",
        f"netlab: {UNCHECKED}"]


def test_a_duplicate_key_hides_no_other_problem(tmp_path):
    text = NODES + "pods:\n  - name: a\n    node: n1\n    node: n1\n  - name: b\n    node: n9\n"
    assert validate(tmp_path, text) == ["t.yaml:7: pods[0].node: duplicate key (first on line 6); keep one",
                                        UNKNOWN_N9]


def test_a_schema_error_says_the_cross_checks_wait_for_it(tmp_path):
    text = ("name: qx3bad\nnodes: [{name: n1}, {name: n1}]\npods:\n  - {name: p1, node: n2, ip: 10.244.5.2}\n"
            "  - {name: p2, node: n1, ip: 10.300.0.1}\n")
    assert validate(tmp_path, text) == [
        "t.yaml:5: pods[1].ip: '10.300.0.1' is not an IPv4 address like 10.244.0.2 (Octet 300 (> 255) not "
        "permitted in '10.300.0.1')"]
    # the document says what was left unchecked, even after one problem
    out = json.loads(validate(tmp_path, text, None, "-o", "json"))
    assert out["valid"] is False and out["note"] == UNCHECKED and len(out["problems"]) == 1
    # once the address is fixed, the cross-checks speak (and nothing says they did not run)
    assert validate(tmp_path, text.replace("10.300.0.1", "10.244.0.9")) == [
        "t.yaml:2: nodes[1].name: 'n1' is already used by nodes[0].name (nodes, pods and internet hosts share "
        "namespace names); rename one",
        "t.yaml:4: pods[0].node: unknown node 'n2'; use one of the nodes: n1"]


@pytest.mark.parametrize("text, line", [
    ("name: qx3d\nnodes: [{name: n1}, {name: n1}]\n",
     "t.yaml:2: nodes[1].name: 'n1' is already used by nodes[0].name (nodes, pods and internet hosts share "
     "namespace names); rename one"),
    ("name: qx3d\nnodes: [{name: n1}]\npods: [{name: p, node: n1}, {name: p, node: n1}]\n",
     "t.yaml:3: pods[1].name: 'p' is already used by pods[0].name (nodes, pods and internet hosts share "
     "namespace names); rename one"),
    ("name: qx3d\nnodes: [{name: n1}]\npods:\n  - name: p\n    node: n1\n    containers: [{name: web}, {name: web}]\n",
     "t.yaml:6: pods[0].containers[1].name: duplicate container name 'web' in pod 'p'; rename one"),
])
def test_a_duplicate_name_is_one_line(tmp_path, text, line):
    assert validate(tmp_path, text) == [line]
