"""An unquoted number YAML 1.1 does not read as one (80e0, 0o120, 0080, 0o17) is text to netlab: the message says
so and what to write, not "write a plain number without quotes" to someone who wrote no quotes."""

from __future__ import annotations

import pytest

from netlab.errors import TopologyError
from netlab.model.load import load_topology

TOPO = "name: a\nnodes: [{name: n1}]\npods: [{name: p, node: n1, containers: [{name: c, ports: [{containerPort: %s}]}]}]\n"
FIELD = "pods[0].containers[0].ports[0].containerPort"


def problem(tmp_path, value: str):
    (tmp_path / "t.yaml").write_text(TOPO % value)
    with pytest.raises(TopologyError) as exc:
        load_topology(str(tmp_path / "t.yaml"))
    [p] = exc.value.problems
    assert (p.line, p.field) == (3, FIELD), p
    return p.message


@pytest.mark.parametrize("value, decimal", [("80e0", "80"), ("0o120", "80"), ("0080", "80"), ("0o17", "15"),
                                            ("+0o17", "15"), ("8.0e1", "80")])
def test_an_unquoted_number_yaml_reads_as_text_is_said_so_with_its_decimal(tmp_path, value, decimal):
    assert problem(tmp_path, value) == (f"{value!r} is not a plain decimal number, so YAML 1.1 (which netlab "
                                        f"reads) makes it text; write {decimal}")


def test_one_without_a_whole_decimal_is_told_to_write_plain_digits(tmp_path):
    assert problem(tmp_path, "8.5e1x") == ("'8.5e1x' is not a plain decimal number, so YAML 1.1 (which netlab reads) "
                                           "makes it text; write the number in plain decimal digits")


@pytest.mark.parametrize("value", ['"80"', "'80e0'", '"0o17"'])
def test_a_quoted_number_is_still_told_to_lose_its_quotes(tmp_path, value):
    assert problem(tmp_path, value).endswith("is text here; write a plain number without quotes")
