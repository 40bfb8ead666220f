"""A conflist is read as the plugins read it: strict JSON (RFC 8259, Go's encoding/json into float64).

Python's json takes NaN, Infinity, -Infinity and numbers past a float64 (1e400); libcni and every plugin refuse
them at ADD, after validate said ok. validate refuses them in its one "is not JSON" line, naming where they are.
"""

from __future__ import annotations

import pytest

from netlab.errors import TopologyError
from netlab.model.cniconf import ConflistError, parse_conflist
from netlab.model.load import load_topology

HEAD = '{"cniVersion": "1.0.0", "name": "n",\n "plugins": [{"type": "bridge", "mtu": '


@pytest.mark.parametrize("value, why", [
    ("NaN", "NaN is no JSON number"),
    ("-Infinity", "-Infinity is no JSON number"),
    ("Infinity", "Infinity is no JSON number"),
    ("1e400", "1e400 is past the largest number the plugins read (a 64-bit float)"),
    ("-1.5e309", "-1.5e309 is past the largest number the plugins read (a 64-bit float)"),
    ("9" * 5000, "a 5000-digit number is past the largest number the plugins read (a 64-bit float)"),
])
def test_what_go_refuses_is_not_json_here_with_its_line_and_column(value, why):
    with pytest.raises(ConflistError) as exc:
        parse_conflist(HEAD + value + "}]}")
    msg = str(exc.value)
    assert msg == f"is not JSON (line 2 column 40: {why})", msg
    assert "sys.set_int_max_str_digits" not in msg and "\n" not in msg


def test_the_words_inside_strings_and_big_but_finite_numbers_are_fine():
    net = parse_conflist('{"cniVersion": "1.0.0", "name": "NaN", "plugins": [{"type": "bridge", "x": "Infinity",'
                         ' "big": 1e308, "small": 1e-400, "int": ' + "9" * 300 + "}]}")
    assert net.name == "NaN" and net.plugins[0]["big"] == 1e308 and net.plugins[0]["int"] == int("9" * 300)


def test_validate_names_the_topology_line_the_field_and_the_conflist(tmp_path):
    (tmp_path / "n.conflist").write_text(HEAD + "NaN}]}\n")
    (tmp_path / "t.yaml").write_text("name: cnt\nnodes: [{name: a}]\nnetwork:\n  cni:\n    conflist: n.conflist\n")
    with pytest.raises(TopologyError) as exc:
        load_topology(str(tmp_path / "t.yaml"))
    [p] = exc.value.problems
    assert (p.line, p.field) == (5, "network.cni.conflist")
    assert p.message == f"{tmp_path / 'n.conflist'}: is not JSON (line 2 column 40: NaN is no JSON number)"
