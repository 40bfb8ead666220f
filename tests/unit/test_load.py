"""The safe YAML loader: one boring document, with every value's line remembered."""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from netlab.errors import TopologyError
from netlab.model import yamlsource
from netlab.model.load import MAX_BYTES, load_source, load_topology, parse_yaml
from netlab.model.location import format_path
from netlab.model.yamlsource import MAX_DEPTH

ROOT = Path(__file__).resolve().parents[2]


def fail(text: str) -> list:
    """The problems parse_yaml reports for ``text`` (it must refuse it)."""
    with pytest.raises(TopologyError) as info:
        parse_yaml(text, "t.yaml")
    return info.value.problems


def one(text: str) -> tuple[int | None, str, str]:
    problems = fail(text)
    assert len(problems) == 1, problems
    p = problems[0]
    return p.line, p.field, p.message


@contextmanager
def deadline(seconds: int):
    """Fail instead of hanging if the code under test blocks."""
    def expired(signum, frame):
        raise AssertionError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(params=["libyaml", "python"])
def parser(request, monkeypatch):
    """Run a test on libyaml's C parser and on PyYAML's pure-Python one: the loader must not care."""
    if request.param == "python":
        monkeypatch.setattr(yamlsource, "_FastParser", None)
    elif yamlsource._FastParser is None:
        pytest.skip("this PyYAML was built without libyaml (the locked wheels have it)")
    return request.param


# --- data and lines -----------------------------------------------------------------------------

def test_data_and_lines():
    src = parse_yaml("# c\nname: demo\nnodes:\n  - name: a\n    ip: 10.0.0.2\n  - {name: b}\n", "t.yaml")
    assert src.data == {"name": "demo", "nodes": [{"name": "a", "ip": "10.0.0.2"}, {"name": "b"}]}
    assert src.lines[("name",)] == 2
    assert src.lines[("nodes",)] == 3
    assert src.lines[("nodes", 0)] == 4
    assert src.lines[("nodes", 0, "ip")] == 5
    assert src.lines[("nodes", 1, "name")] == 6
    assert src.line_of(("nodes", 1, "name", "deeper")) == 6
    assert src.line_of(("missing",)) == src.lines[()]
    assert src.raw[("nodes", 0, "ip")] == "10.0.0.2"


def test_scalars_keep_their_yaml_meaning():
    src = parse_yaml("a: 1\nb: -7\nc: +3\nd: true\ne: ~\nf: '010'\ng: 1.5\nh: 2001-01-01\ni: 'yes'\n", "t")
    assert src.data == {"a": 1, "b": -7, "c": 3, "d": True, "e": None, "f": "010", "g": 1.5, "h": "2001-01-01",
                        "i": "yes"}
    assert type(src.data["a"]) is int and type(src.data["d"]) is bool


def test_byte_order_mark_and_explicit_document_markers_are_fine():
    assert parse_yaml("\ufeffname: x\n", "t").data == {"name": "x"}
    assert parse_yaml("---\nname: x\n...\n", "t").data == {"name": "x"}


@pytest.mark.parametrize("path,text", [
    (("pods", 3, "ip"), "pods[3].ip"),
    ((), ""),
    (("pods", 0, "labels", "app.kubernetes.io"), 'pods[0].labels["app.kubernetes.io"]'),
    (("a b",), '["a\\u0020b"]'),
    (("x\ny",), '["x\\ny"]'),
    (("x\n",), '["x\\n"]'),
    (("-x",), '["-x"]'),
    (("café",), '["caf\\u00e9"]'),
    ((0, 1), "[0][1]"),
])
def test_format_path(path, text):
    assert format_path(path) == text


def test_format_path_is_bounded():
    assert len(format_path(tuple(["abcdefgh"] * 100))) <= 125
    assert len(format_path(("k" * 10_000,))) < 60


# --- YAML 1.1 surprises ----------------------------------------------------------------------

@pytest.mark.parametrize("value,expect", [
    ("010", "octal, hex or binary"),
    ("0o10", None),  # YAML 1.1 has no 0o: this is the string "0o10"
    ("0x1F", "octal, hex or binary"),
    ("0b101", "octal, hex or binary"),
    ("1:30", "sexagesimal"),
    ("1:30.5", "sexagesimal"),
    ("-1:30", "sexagesimal"),
    ("1_000", "without '_'"),
    ("9" * 5000, "5000 digits"),
])
def test_numbers_people_do_not_mean(value, expect):
    text = f"name: x\nport: {value}\n"
    if expect is None:
        assert parse_yaml(text, "t").data["port"] == value
        return
    line, field, message = one(text)
    assert (line, field) == (2, "port") and expect in message
    assert parse_yaml(f"name: x\nport: '{value}'\n", "t").data["port"] == value  # quoted: the text


@pytest.mark.parametrize("text,line,field,expect", [
    ("a: !!python/object/apply:os.system ['id']\n", 1, "a", "YAML tag tag:yaml.org,2002:python/object/apply"),
    ("a: !!str x\n", 1, "a", "YAML tag"),
    ("a: !!binary aGk=\n", 1, "a", "YAML tag"),
    ("a: !!map {}\n", 1, "a", "YAML tag"),
    ("%TAG ! tag:example.com,2000:\n---\na: !x 1\n", 3, "a", "YAML tag tag:example.com,2000:x"),
    ("a: &x 1\nb: *x\n", 1, "a", "YAML anchor &x"),
    ("a: *x\n", 1, "a", "YAML alias *x"),
    ("a:\n  <<: {b: 1}\n", 2, "a", "merge keys"),
    ("a: 1\n? [b]\n: c\n", 2, "topology", "a key must be a plain string"),
    ("a: 1\n1: c\n", 2, "topology", "key '1' is read as int"),
    ("a: {no: 1}\n", 1, "a", "key 'no' is read as bool"),
])
def test_refused_constructs(text, line, field, expect):
    problems = fail(text)
    assert any(p.line == line and p.field == field and expect in p.message for p in problems), problems


def test_alias_bomb_is_refused_fast(monkeypatch):
    """Refused at the first anchor, before any alias is expanded (a billion laughs never grows)."""
    pulled = counted_events(monkeypatch)
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    line, _, message = one("\n".join(lines) + "\n")
    assert line == 1 and "anchor" in message
    assert 0 < len(pulled) < 20, len(pulled)


def test_duplicate_keys_are_all_reported():
    problems = fail("name: a\nnodes: []\nname: b\nx: {k: 1, k: 2}\n")
    assert [(p.line, p.field, p.message) for p in problems] == [
        (3, "name", "duplicate key (first on line 1); keep one"),
        (4, "x.k", "duplicate key (first on line 4); keep one"),
    ]


def test_soft_problems_let_reading_go_on():
    src = yamlsource.parse("a: 010\na: 2\nb: [0x1, 3]\nc: ok\n", "t")
    assert [(p.line, p.field) for p in src.problems] == [(1, "a"), (2, "a"), (3, "b[0]")]
    assert src.data == {"a": "010", "b": ["0x1", 3], "c": "ok"}  # first value kept, flagged ones as text
    assert src.flagged == {("a",), ("b", 0)}
    with pytest.raises(TopologyError):
        parse_yaml("a: 010\n", "t")


# --- documents and syntax -----------------------------------------------------------------------

@pytest.mark.parametrize("text,line,field,expect", [
    ("", None, "", "file is empty"),
    ("# just a comment\n\n", None, "", "file is empty"),
    ("---\n", 2, "topology", "the document is empty"),
    ("~\n", 1, "topology", "the document is empty"),
    ("- a\n- b\n", 1, "topology", "is a list; a topology is a mapping"),
    ("hello\n", 1, "topology", "is a string; a topology is a mapping"),
    ("a: 1\n---\nb: 2\n", 2, "yaml", "several YAML documents"),
    ("a: 1\n--- \n", 2, "yaml", "several YAML documents"),
    ("a: [1, 2\nb: 3\n", 2, "a", "YAML syntax error"),
    ("a: 'x\nb: 3\n", 3, "a", "quoted string is not closed"),
    ("a:\n\t- x\n", 2, "a", "YAML syntax error"),
    ("a: b: c\n", 1, "yaml", "must be quoted"),
    ("a:\n  - b\n c: d\n", 3, "yaml", "YAML syntax error"),
    ("a: 1\x07\n", 1, "yaml", "character U+0007 is not allowed"),
    ("a: \x00\n", 1, "yaml", "character U+0000 is not allowed"),
    ('a: "\\ud800"\n', 1, "a", "YAML syntax error: found invalid Unicode character escape"),
])
def test_documents(parser, text, line, field, expect):
    problems = fail(text)
    assert (problems[0].line, problems[0].field) == (line, field), problems
    assert expect in problems[0].message, problems


def test_lone_surrogate_in_text():
    assert one("a: 1\nb: \ud800\n") == (2, "yaml", "not valid Unicode text (a lone surrogate)")


def deep_text(opening: str, closing: str, deep: int = 100_000) -> str:
    if opening == "- ":
        return "a:\n" + opening * deep + "x\n"
    return "a: " + opening * deep + ("1" if opening != "[" else "") + closing * deep + "\n"


def counted_events(monkeypatch) -> list[int]:
    """Count the events the loader pulls from the parser (one list entry each)."""
    pulled: list[int] = []
    real = yamlsource._read

    def read(parser_class, *args, **kwargs):
        class Counting(parser_class):
            def get_event(self):
                pulled.append(1)
                return super().get_event()

        return real(Counting, *args, **kwargs)

    monkeypatch.setattr(yamlsource, "_read", read)
    return pulled


@pytest.mark.parametrize("opening,closing", [("[", "]"), ("{a: ", "}"), ("- ", ""), ("[", "")])
def test_deep_nesting_is_refused_fast(parser, opening, closing, monkeypatch):
    """Refused at level 33: the loader stops pulling events there, whatever follows (no work per level
    beyond; how long that takes is for scripts/bench_validate.py, not a timed test)."""
    pulled = counted_events(monkeypatch)
    line, field, message = one(deep_text(opening, closing))
    assert message == f"nested deeper than {MAX_DEPTH} levels; a topology needs a few"
    assert line == (2 if opening == "- " else 1)
    assert field.startswith("a[0]" if opening != "{a: " else "a.a.a")
    assert 0 < len(pulled) < 3 * MAX_DEPTH, len(pulled)


def test_deep_unclosed_document_is_refused_with_our_message(parser):
    line, field, message = one("[" * 100_000)
    assert (line, message) == (1, f"nested deeper than {MAX_DEPTH} levels; a topology needs a few")
    assert field == "[0]" * (MAX_DEPTH - 1)  # the innermost of the 32 open lists


def test_libyaml_depth_limit_gives_way_to_ours(monkeypatch):
    """Whatever libyaml's own nesting limit (PyYAML >= 6.0.4 has one, older ones none), the message is ours."""
    calls = []

    class LimitedCParser:
        """libyaml as bundled with PyYAML 6.0.4: refuses at once with its own nesting error."""

        def __init__(self, data):
            calls.append(data)

        def get_event(self):
            mark = yaml.Mark("<byte string>", 1000, 0, 1000, None, None)
            raise yaml.scanner.ScannerError("while increasing flow level", mark,
                                            "exceeded maximum nesting depth", mark)

    monkeypatch.setattr(yamlsource, "_FastParser", LimitedCParser)
    line, field, message = one("a: " + "[" * 2000)
    assert calls, "the C parser was not tried first"
    assert (line, field, message) == (1, "a" + "[0]" * (MAX_DEPTH - 2),
                                      f"nested deeper than {MAX_DEPTH} levels; a topology needs a few")
    # Any other libyaml error is reported as it is, without a second reading.
    class BrokenCParser(LimitedCParser):
        def get_event(self):
            mark = yaml.Mark("<byte string>", 3, 2, 3, None, None)
            raise yaml.scanner.ScannerError(None, None, "found character '\\t' that cannot start any token", mark)

    monkeypatch.setattr(yamlsource, "_FastParser", BrokenCParser)
    assert one("a: 1\n")[:2] == (3, "yaml")


def test_nesting_up_to_the_limit_is_fine(parser):
    depth = MAX_DEPTH - 1  # the root mapping is one level
    assert parse_yaml("a: " + "[" * depth + "]" * depth + "\n", "t").data["a"] is not None
    fail("a: " + "[" * (depth + 1) + "]" * (depth + 1) + "\n")


def test_pure_python_parser_gives_the_same_result(monkeypatch):
    texts = [(ROOT / "netlab/data/default.yaml").read_text()] + [p.read_text() for p in (ROOT / "topologies").glob("*.yaml")]
    fast = [parse_yaml(t, "t") for t in texts]
    bad = ["a: [1\n", "a: 010\n", "a: &x 1\n", "a: 1\na: 2\n", "- x\n", "a: 1\n---\nb: 1\n", "a: " + "[" * 40 + "\n",
           deep_text("[", "]"), deep_text("{a: ", "}"), "[" * 100_000, "a:\n  b: 1\n  " + "[" * 100_000,
           "a: 1\x07\n", 'a:\n  b: "\\ud800"\n', 'a: {"\\udc80": 1}\n', 'a: ["\\ud83d\\ude00"]\n']
    fast_bad = [fail(t)[0] for t in bad]
    monkeypatch.setattr(yamlsource, "_FastParser", None)
    for src, text in zip(fast, texts):
        slow = parse_yaml(text, "t")
        assert (slow.data, slow.lines, slow.raw) == (src.data, src.lines, src.raw)
    for problem, text in zip(fast_bad, bad):
        slow = fail(text)[0]
        assert (slow.line, slow.field) == (problem.line, problem.field), (slow, problem)


# --- files -----------------------------------------------------------------------------------

def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "t.yaml"
    os.mkfifo(fifo)
    with deadline(5), pytest.raises(TopologyError) as info:
        load_source(str(fifo))
    assert str(info.value) == f"{fifo}: is not a regular file (a FIFO, device or socket); give a topology file"


def test_device_is_refused():
    with deadline(5), pytest.raises(TopologyError, match="not a regular file"):
        load_source("/dev/zero")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(TopologyError, match="no such file"):
        load_source(str(tmp_path / "nope.yaml"))
    with pytest.raises(TopologyError, match="is a directory"):
        load_source(str(tmp_path))


def test_size_limit(tmp_path):
    head = b"name: x\nnodes: [{name: a}]\n"
    path = tmp_path / "t.yaml"
    path.write_bytes(head + b"#" * (MAX_BYTES - len(head) - 1) + b"\n")
    assert os.path.getsize(path) == MAX_BYTES
    assert load_topology(str(path)).name == "x"
    path.write_bytes(head + b"#" * (MAX_BYTES - len(head)) + b"\n")
    with pytest.raises(TopologyError) as info:
        load_source(str(path))
    assert info.value.problems[0].line is None
    assert f"over the {MAX_BYTES}-byte limit" in str(info.value)


def test_invalid_utf8_is_located(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_bytes(b"name: x\n\nnodes: [{name: \xc3\x28}]\n")
    with pytest.raises(TopologyError) as info:
        load_source(str(path))
    assert str(info.value) == f"{path}:3: yaml: is not valid UTF-8; save the file as UTF-8"


def test_unreadable_file(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("name: x\n")
    path.chmod(0)
    if os.access(path, os.R_OK):
        pytest.skip("root reads any file")
    with pytest.raises(TopologyError, match="cannot open it"):
        load_source(str(path))


def test_default_topology_loads():
    topo = load_topology(None)
    assert topo.name == "demo"
    assert [n.name for n in topo.nodes] == ["minikube", "minikube-m02"]
    assert [(p.name, str(p.ip)) for p in topo.pods] == [
        ("fedora-1", "10.244.0.2"), ("fedora-2", "10.244.1.3"), ("fedora-3", "10.244.0.3"), ("fedora-4", "10.244.1.2")]


def test_two_expectations_of_one_flow_that_disagree_are_refused():
    """validate accepted them, and the last one won, unsaid."""
    import pytest

    from netlab.errors import TopologyError
    from netlab.api.topology import load

    data = {"name": "ex", "nodes": [{"name": "n1"}], "pods": [{"name": "a", "node": "n1"}, {"name": "b", "node": "n1"}],
            "expect": [{"from": "a", "to": "b", "proto": "tcp", "port": 8080},
                       {"from": "a", "to": "b"},
                       {"from": "a", "to": "b", "proto": "tcp", "port": 8080, "reach": False}]}
    with pytest.raises(TopologyError, match=r"expect\[2\]\.reach: contradicts expect\[0\] \(the same flow, a to b "
                                            r"tcp/8080, reach: true\); keep one"):
        load(data)
