"""Load a topology file: safe YAML with line numbers, then the typed model.

netlab runs as root and reads YAML written by anyone, so the loader accepts a
small, boring subset of YAML and says exactly where anything else is:

* one document, a regular file of at most ``MAX_BYTES`` (a FIFO or device
  would block or never end);
* no anchors/aliases (alias bombs), no tags (``!!python/object`` and
  friends), nesting at most ``MAX_DEPTH`` deep;
* no duplicate keys, keys are strings;
* integers only in plain decimal: YAML 1.1 reads ``010`` as 8 and ``1:30`` as
  90, which is never what a port number meant.

Every value keeps the line it came from, so a pydantic error at
``pods.3.ip`` becomes ``topo.yaml:17: pods[3].ip: ...``.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from netlab.errors import Problem, TopologyError

MAX_BYTES = 512 * 1024
MAX_DEPTH = 32
DEFAULT_TOPOLOGY = "<built-in default topology>"

_DECIMAL_INT = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")
_YAML_BOOL_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false"}

Path = tuple[str | int, ...]


@dataclass
class Source:
    """The raw data of a topology and where each piece of it came from."""

    file: str
    data: Any
    lines: dict[Path, int]
    raw: dict[Path, str]

    def line_of(self, path: Path) -> int | None:
        """The line of the deepest known prefix of ``path``."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None


class _Fail(Exception):
    def __init__(self, line: int | None, field: str, message: str):
        super().__init__(message)
        self.line, self.field, self.message = line, field, message


def format_path(path: Path) -> str:
    """``('pods', 3, 'ip')`` -> ``pods[3].ip``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses aliases, tags and deep nesting while composing."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):  # noqa: ANN001 - PyYAML's signature
        if self.check_event(AliasEvent):
            event = self.peek_event()
            raise _Fail(event.start_mark.line + 1, "", f"YAML alias *{event.anchor} is not allowed (write the value out)")
        event = self.peek_event()
        if getattr(event, "anchor", None):
            raise _Fail(event.start_mark.line + 1, "", f"YAML anchor &{event.anchor} is not allowed (write the value out)")
        tag = getattr(event, "tag", None)
        if tag is not None and tag != "!":
            raise _Fail(event.start_mark.line + 1, "", f"YAML tag {tag} is not allowed")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Fail(event.start_mark.line + 1, "", f"nesting deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct(loader: _Loader, node: yaml.Node, path: Path, src: Source) -> Any:
    """Build plain Python data from a composed node, recording lines."""
    src.lines[path] = node.start_mark.line + 1
    where = format_path(path)
    if isinstance(node, MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise _Fail(key_node.start_mark.line + 1, where, "a key must be a plain string")
            key = loader.construct_object(key_node)
            if not isinstance(key, str):
                raise _Fail(key_node.start_mark.line + 1, where,
                            f"key {key_node.value!r} is read as {type(key).__name__}; quote it")
            if key in out:
                raise _Fail(key_node.start_mark.line + 1, format_path(path + (key,)),
                            f"duplicate key (first on line {src.lines[path + (key,)]})")
            src.lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _construct(loader, value_node, path + (key,), src)
        return out
    if isinstance(node, SequenceNode):
        return [_construct(loader, item, path + (i,), src) for i, item in enumerate(node.value)]
    value = loader.construct_object(node)
    src.raw[path] = node.value
    if node.tag == "tag:yaml.org,2002:int" and not _DECIMAL_INT.match(node.value.replace("_", "!")):
        raise _Fail(node.start_mark.line + 1, where,
                    f"{node.value!r} is an octal, hex or sexagesimal number in YAML 1.1; write it in decimal or quote it")
    if node.tag == "tag:yaml.org,2002:float" and ":" in node.value:
        raise _Fail(node.start_mark.line + 1, where, f"{node.value!r} is a sexagesimal number in YAML 1.1; quote it")
    if node.tag == "tag:yaml.org,2002:timestamp":
        value = node.value  # dates mean nothing here; keep the text and let the model judge it
    return value


def _read_file(path: str) -> str:
    """Read a regular file of bounded size without blocking on FIFOs or devices."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise TopologyError([Problem(path, None, "", "no such file")]) from None
    except IsADirectoryError:
        raise TopologyError([Problem(path, None, "", "is a directory, not a topology file")]) from None
    except OSError as exc:
        raise TopologyError([Problem(path, None, "", f"cannot open: {exc.strerror}")]) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise TopologyError([Problem(path, None, "", "is not a regular file (a FIFO, device or socket?)")])
        if st.st_size > MAX_BYTES:
            raise TopologyError([Problem(path, None, "", f"is {st.st_size} bytes; topologies are limited to {MAX_BYTES}")])
        data = os.read(fd, MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise TopologyError([Problem(path, None, "", f"is larger than {MAX_BYTES} bytes")])
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TopologyError([Problem(path, line, "", "is not valid UTF-8")]) from None


def parse_yaml(text: str, file: str) -> Source:
    """Parse YAML text into a :class:`Source`; every failure is a TopologyError."""
    src = Source(file=file, data=None, lines={}, raw={})
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise _Fail(None, "", "file is empty; see topologies/ for examples")
        src.data = _construct(loader, root, (), src)
    except _Fail as exc:
        raise TopologyError([Problem(file, exc.line, exc.field, exc.message)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = exc.problem or exc.context or "invalid YAML"
        if "expected a single document" in str(exc.context or ""):
            what = "several YAML documents; a topology is exactly one"
        raise TopologyError([Problem(file, line, "", f"YAML syntax: {what}")]) from None
    except yaml.YAMLError as exc:
        raise TopologyError([Problem(file, None, "", f"YAML: {exc}")]) from None
    except RecursionError:
        raise TopologyError([Problem(file, None, "", f"nesting deeper than {MAX_DEPTH} levels")]) from None
    finally:
        loader.dispose()
    if not isinstance(src.data, dict):
        raise TopologyError([Problem(file, 1, "", "a topology is a mapping (name:, nodes:, pods: ...)")])
    return src


def _describe(err: dict, src: Source) -> str:
    """A pydantic error in words a YAML author understands."""
    loc = tuple(err["loc"])
    value = err.get("input")
    raw = src.raw.get(loc)
    if isinstance(value, bool) and err["type"] in ("string_type", "int_type", "list_type", "dict_type"):
        word = raw if raw is not None else str(value).lower()
        if word.lower() in _YAML_BOOL_WORDS:
            return f"{word!r} is a YAML boolean here; quote it if you meant the string"
    if err["type"] == "extra_forbidden":
        return "unknown field (check the spelling; see the JSON Schema in schema/)"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return msg


def problems_from_validation(exc: ValidationError, src: Source) -> list[Problem]:
    """Turn every pydantic error into a located Problem."""
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        out.append(Problem(src.file, src.line_of(loc), format_path(loc), _describe(err, src)))
    return out


def load_source(path: str | None) -> Source:
    """Read a topology file (or the built-in default) into a :class:`Source`."""
    if path is None:
        text = resources.files("netlab").joinpath("data/default.yaml").read_text("utf-8")
        return parse_yaml(text, DEFAULT_TOPOLOGY)
    return parse_yaml(_read_file(path), path)


def load_topology(path: str | None = None):
    """Load and validate a topology; raise TopologyError listing every problem."""
    from netlab.model.topology import Topology, check_topology

    src = load_source(path)
    try:
        topo = Topology.model_validate(src.data)
    except ValidationError as exc:
        raise TopologyError(problems_from_validation(exc, src)) from None
    problems = [Problem(src.file, src.line_of(loc), format_path(loc), msg) for loc, msg in check_topology(topo)]
    if problems:
        raise TopologyError(problems)
    return topo
