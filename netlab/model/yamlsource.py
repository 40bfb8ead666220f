"""Read YAML text into plain data, remembering the line of every value.

netlab runs as root and reads YAML written by anyone, so the reader accepts a
small, boring subset of YAML and says exactly where anything else is:

* one document (the file checks are in :mod:`netlab.model.load`), nesting at
  most ``MAX_DEPTH`` deep;
* no anchors/aliases (alias bombs), no tags (``!!python/object`` and
  friends), no merge keys;
* no duplicate keys, keys are strings;
* integers only in plain decimal: YAML 1.1 reads ``010`` as 8 and ``1:30`` as
  90, which is never what a port number meant.

The document is built from the parser's *events* by a small loop of our own
(no recursion, so no depth can blow the stack), on libyaml's C parser when
PyYAML has it (about 30x faster than the pure-Python one, which keeps even a
maximum-size file well under a second). Every value keeps the line it came
from, so a pydantic error at ``pods.3.ip`` becomes
``topo.yaml:17: pods[3].ip: ...``.

Both parsers give the same answer. The one place they differ by themselves:
the libyaml bundled with PyYAML >= 6.0.4 refuses more than 1000 open flow
collections, and its scanner reads ahead (up to 1024 characters of a
possible key) before our loop sees the first of them, so ``[[[[...`` hits
libyaml's limit before ours. The reader then reads the text again with the
pure-Python parser, which stops at our own limit: the same
``nested deeper than 32 levels`` line, at the same place, on every version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, MappingEndEvent, MappingStartEvent, ScalarEvent, SequenceEndEvent, StreamEndEvent
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from netlab.errors import Problem, TopologyError
from netlab.model.location import ROOT_FIELD, YAML_FIELD, Loc, clip, format_path, show, yaml_kind
from netlab.model.places import Note, Places
from netlab.model.topology import Topology

try:
    from yaml.cyaml import CParser as _FastParser
except ImportError:  # PyYAML built without libyaml: the pure-Python parser gives the same events
    _FastParser = None

MAX_DEPTH = 32

_DECIMAL_INT = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")
# Half of a UTF-16 surrogate pair: only a "\\ud800"-style escape makes one. libyaml refuses it;
# the pure-Python parser returns it as is, so the composer refuses it the same way.
_SURROGATE = re.compile("[\ud800-\udfff]")
_STR_TAG = "tag:yaml.org,2002:str"


@dataclass
class Source:
    """The raw data of a topology and where each piece of it came from."""

    file: str
    data: Any
    lines: dict[Loc, int]
    raw: dict[Loc, str]
    # Problems found while reading that did not stop it (duplicate keys, octal numbers...).
    problems: list[Problem] = field(default_factory=list)
    # What validating it found valid and worth saying (an include glob that matches no file now): notes.
    notes: list[Note] = field(default_factory=list)
    # Where its objects were written (its Services, its NetworkPolicies and those of the files it includes), for
    # the notes about them: filled as it is validated (model.load, model.include).
    places: Places = field(default_factory=Places)
    # Paths whose value was replaced by its raw text because of such a problem.
    flagged: set[Loc] = field(default_factory=set)
    # Paths of unquoted scalars that look like numbers but YAML 1.1 reads as text (80e0, 0o17, 0080).
    bare_text: set[Loc] = field(default_factory=set)

    def line_of(self, path: Loc) -> int | None:
        """The line of the deepest known prefix of ``path``."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None

class _Fail(Exception):
    def __init__(self, line: int | None, field: "str | Loc", message: str, quotes: bool = False):
        super().__init__(message)
        self.quotes = quotes  # the message shows text of the file (an anchor's or a tag's name)
        if not isinstance(field, str):  # a path, formatted only when there is a problem to show
            field = format_path(field) or ROOT_FIELD
        self.line, self.field, self.message = line, field, message


# --- YAML text -> plain data -------------------------------------------------------------------

_RESOLVER = Resolver()
_NUMBER_START = frozenset("+-.0123456789")
_CONSTRUCTOR = SafeConstructor()

# Hints for the syntax errors people actually make (libyaml and PyYAML wordings).
_SYNTAX_HINTS = (
    ("mapping values are not allowed", "a value containing ': ' must be quoted, or the indentation is off"),
    ("tab", "indent with spaces, not tabs"),
    ("cannot start any token", "quote values that start with '@', '`', '%' or a tab, and indent with spaces"),
    ("could not find expected ':'", "every key needs ': ' after it; check the indentation"),
    ("did not find expected key", "check the indentation of this block"),
    ("did not find expected '-' indicator", "list items of one list start with '-' at the same indentation"),
    ("did not find expected ',' or ']'", "a [ list ] is missing a ',' or its closing ']'"),
    ("did not find expected ',' or '}'", "a { mapping } is missing a ',' or its closing '}'"),
    ("found unexpected end of stream", "a quoted string is not closed"),
    ("unexpected end of stream", "a quoted string or bracket is not closed"),
    ("block sequence entries are not allowed", "a '- item' needs its own line under a key"),
    ("found undefined alias", "YAML aliases (*name) are not allowed; write the value out"),
)


def _syntax_message(exc: yaml.MarkedYAMLError) -> str:
    problem = (exc.problem or "invalid YAML").strip()
    msg = f"YAML syntax error: {problem}"
    if exc.context and exc.context_mark is not None and exc.problem_mark is not None \
            and exc.context_mark.line != exc.problem_mark.line:
        msg += f" ({exc.context.strip()} started on line {exc.context_mark.line + 1})"
    elif exc.context:
        msg += f" ({exc.context.strip()})"
    hint = next((h for key, h in _SYNTAX_HINTS if key in problem), "check the indentation and quoting here")
    return " ".join(f"{msg}; {hint}".split())


def _scalar(event: ScalarEvent, line: int, where: "str | Loc") -> Any:
    """The value of one scalar, refusing the YAML 1.1 readings nobody means."""
    value = event.value
    if not event.implicit[0]:  # quoted, or the non-specific tag "!": always a string
        return value
    tag = _RESOLVER.resolve(ScalarNode, value, (True, False))
    if tag == _STR_TAG:
        return value
    if tag == "tag:yaml.org,2002:int":
        if not _DECIMAL_INT.fullmatch(value):
            if ":" in value:
                raise _Fail(line, where, f"{show(value)} is a sexagesimal (base 60) number in YAML 1.1; quote it")
            if "_" in value:
                raise _Fail(line, where, f"{show(value)}: write numbers as plain decimal digits without '_'")
            raise _Fail(line, where, f"{show(value)} is an octal, hex or binary number in YAML 1.1; "
                                     "write it in plain decimal, or quote it if it is text")
        try:
            return int(value)
        except ValueError:  # more digits than Python converts
            raise _Fail(line, where, f"{show(value)} has {len(value)} digits; no number here is that long") from None
    if tag == "tag:yaml.org,2002:float":
        if ":" in value:
            raise _Fail(line, where, f"{show(value)} is a sexagesimal (base 60) number in YAML 1.1; quote it")
        return _CONSTRUCTOR.construct_yaml_float(ScalarNode(tag, value))
    if tag == "tag:yaml.org,2002:bool":
        return _CONSTRUCTOR.bool_values[value.lower()]
    if tag == "tag:yaml.org,2002:null":
        return None
    if tag == "tag:yaml.org,2002:merge":
        raise _Fail(line, where, "YAML merge keys (<<) are not allowed; write the keys out")
    # timestamps (dates mean nothing here) and the odd "=" value tag: keep the text, the model judges it
    return value


class _Frame:
    """A mapping or sequence being built."""

    __slots__ = ("path", "value", "key", "discard", "discard_next")

    def __init__(self, path: Loc, value: dict | list, discard: bool):
        self.path, self.value, self.discard = path, value, discard
        self.key: str | None = None  # mapping: the key whose value comes next
        # Set when the pending value is to be read and dropped (a duplicate or unusable key).
        self.discard_next = False


def _where(stack: list[_Frame]) -> str:
    """Where the composer is: the innermost open collection (and pending key), for syntax errors."""
    if not stack:
        return YAML_FIELD
    top = stack[-1]
    path = top.path + ((top.key,) if isinstance(top.value, dict) and top.key is not None else ())
    return format_path(path) or YAML_FIELD


def _compose(parser: Any, src: Source, stack: list[_Frame]) -> Any:
    """Build plain Python data from the parser's events, iteratively.

    ``stack`` is the caller's, so a syntax error can say where it happened.
    Problems that do not stop reading (an octal number, a duplicate key) go to
    ``src.problems`` and reading goes on, so a user sees them all at once;
    anything that could make reading costly (aliases, tags, depth) stops it.
    """
    parser.get_event()  # StreamStartEvent
    if parser.check_event(StreamEndEvent):
        raise _Fail(None, "", "file is empty; a topology needs at least name: and nodes: (see topologies/)")
    parser.get_event()  # DocumentStartEvent
    root: Any = None
    while True:
        event = parser.get_event()
        line = event.start_mark.line + 1
        if isinstance(event, AliasEvent):
            raise _Fail(line, _where(stack), f"YAML alias *{clip(event.anchor)} is not allowed; write the value out",
                        quotes=True)
        if isinstance(event, ScalarEvent) and (half := _SURROGATE.search(event.value)):
            raise _Fail(line, _where(stack), "YAML syntax error: found invalid Unicode character escape code "
                                             f"(U+{ord(half[0]):04X} is half of a surrogate pair, not a character); "
                                             "write the character itself")
        if isinstance(event, (MappingEndEvent, SequenceEndEvent)):
            done = stack.pop()
            value: Any = done.value
        else:
            if event.anchor:
                raise _Fail(line, _where(stack),
                            f"YAML anchor &{clip(event.anchor)} is not allowed; write the value out", quotes=True)
            if event.tag is not None and event.tag != "!":
                raise _Fail(line, _where(stack), f"YAML tag {clip(event.tag)} is not allowed; remove it",
                            quotes=True)
            parent = stack[-1] if stack else None
            discard = parent is not None and (parent.discard or parent.discard_next)
            if parent is not None and isinstance(parent.value, dict) and parent.key is None:
                # A mapping key: a plain string, not seen before.
                where = parent.path  # formatted when needed: once per key would cost a third of the parse
                if not isinstance(event, ScalarEvent):
                    raise _Fail(line, where, "a key must be a plain string, not a list or mapping")
                key = event.value
                try:
                    read = _scalar(event, line, where)
                except _Fail as exc:
                    src.problems.append(Problem(src.file, exc.line, exc.field, exc.message))
                    parent.key, parent.discard_next = key, True
                    continue
                if not isinstance(read, str):
                    kind = "null" if read is None else type(read).__name__
                    src.problems.append(Problem(src.file, line, format_path(where) or ROOT_FIELD,
                                                f"key {show(event.value)} is read as {kind}; quote it"))
                    parent.key, parent.discard_next = key, True
                    continue
                parent.key, parent.discard_next = read, False
                path = parent.path + (read,)
                if read in parent.value:
                    if not parent.discard:
                        src.problems.append(Problem(src.file, line, format_path(path),
                                                    f"duplicate key (first on line {src.lines.get(path)}); keep one"))
                    parent.discard_next = True
                elif not parent.discard:
                    src.lines[path] = line
                continue
            if parent is None:
                path = ()
            elif isinstance(parent.value, list):
                path = parent.path + (len(parent.value),)
            else:
                path = parent.path + (parent.key,)  # type: ignore[operator]
            if not discard and (parent is None or isinstance(parent.value, list)):
                src.lines[path] = line
            if isinstance(event, ScalarEvent):
                try:
                    value = _scalar(event, line, path)
                except _Fail as exc:
                    src.problems.append(Problem(src.file, exc.line, exc.field, exc.message))
                    value = event.value
                    if not discard:
                        src.flagged.add(path)
                if not discard:
                    src.raw[path] = event.value
                    if isinstance(value, str) and event.implicit[0] and value[:1] in _NUMBER_START:
                        src.bare_text.add(path)
            else:
                if len(stack) >= MAX_DEPTH:
                    raise _Fail(line, _where(stack), f"nested deeper than {MAX_DEPTH} levels; a topology needs a few")
                stack.append(_Frame(path, {} if isinstance(event, MappingStartEvent) else [], discard))
                continue
        # A finished value: store it in its parent, or it is the document.
        if not stack:
            root = value
            break
        parent = stack[-1]
        if isinstance(parent.value, list):
            parent.value.append(value)
        else:
            if not parent.discard_next:
                parent.value[parent.key] = value
            parent.key, parent.discard_next = None, False
    parser.get_event()  # DocumentEndEvent
    if not parser.check_event(StreamEndEvent):
        event = parser.peek_event()
        raise _Fail(event.start_mark.line + 1, YAML_FIELD,
                    "several YAML documents (a second '---'); a topology file holds exactly one")
    return root


def _line_at(buf: str | bytes, position: int | None) -> int | None:
    if position is None or position < 0:
        return None
    newline = b"\n" if isinstance(buf, bytes) else "\n"
    return buf[:position].count(newline) + 1


def parse(text: str, file: str, hide_foreign: bool = False, null_ok: bool = False) -> Source:
    """Parse YAML text; problems that did not stop reading are left in ``src.problems``.

    ``hide_foreign`` (a file given by the user): a document whose top level has
    no topology field is refused without showing anything of it. ``null_ok`` (a document of an included
    manifest file): a null document is a Source whose data is None, as kubectl skips it, not a refusal.
    """
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        line = text[: exc.start].count("\n") + 1
        raise TopologyError([Problem(file, line, YAML_FIELD, "not valid Unicode text (a lone surrogate)")]) from None
    if _FastParser is not None:
        try:
            return _read(_FastParser, data, file, libyaml=True, hide_foreign=hide_foreign, null_ok=null_ok)
        except _LibyamlDepthLimit:
            pass  # libyaml gave up on nesting before our own check could speak: the pure parser decides
    return _read(yaml.SafeLoader, text, file, libyaml=False, hide_foreign=hide_foreign, null_ok=null_ok)


# libyaml's own nesting limit (PyYAML >= 6.0.4: "exceeded maximum nesting depth").
_LIBYAML_DEPTH_LIMIT = "maximum nesting depth"


class _LibyamlDepthLimit(Exception):
    """libyaml refused nesting deeper than its own limit, which is far above MAX_DEPTH."""


def _read(parser_class: Any, buf: str | bytes, file: str, libyaml: bool, hide_foreign: bool = False,
          null_ok: bool = False) -> Source:
    """Read one document of ``buf`` with a parser of ``parser_class`` into a Source, or raise TopologyError."""
    src = Source(file=file, data=None, lines={}, raw={})
    stack: list[_Frame] = []
    parser = None
    try:
        parser = parser_class(buf)  # the pure-Python reader checks every character here already
        src.data = _compose(parser, src, stack)
    except _Fail as exc:
        _refuse_if_foreign_so_far(file, stack, hide_foreign, exc.quotes)
        raise TopologyError([Problem(file, exc.line, exc.field, exc.message)]) from None
    except yaml.reader.ReaderError as exc:
        _refuse_if_foreign_so_far(file, stack, hide_foreign)
        code = ord(exc.character) if isinstance(exc.character, str) else int(exc.character)
        what = f"character U+{code:04X}"
        line = _line_at(buf, exc.position)
        raise TopologyError([Problem(file, line, YAML_FIELD if line else "",
                                     f"{what} is not allowed in YAML (control characters and invalid UTF-8 are not); "
                                     "remove it")]) from None
    except yaml.MarkedYAMLError as exc:
        if libyaml and _LIBYAML_DEPTH_LIMIT in (exc.problem or ""):
            raise _LibyamlDepthLimit() from None
        _refuse_if_foreign_so_far(file, stack, hide_foreign)
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise TopologyError([Problem(file, line, _where(stack) if line else "", _syntax_message(exc))]) from None
    except yaml.YAMLError as exc:
        raise TopologyError([Problem(file, None, "", "YAML error: " + " ".join(str(exc).split()))]) from None
    finally:
        dispose = getattr(parser, "dispose", None)
        if dispose:
            dispose()
    _refuse_if_not_topology(file, src.data, hide_foreign, so_far=bool(src.problems))
    if src.data is None and not null_ok:
        raise TopologyError(src.problems + [Problem(
            file, src.lines.get((), 1), ROOT_FIELD,
            "the document is empty (null); a topology needs at least name: and nodes:")])
    if src.data is not None and not isinstance(src.data, dict):
        kind = yaml_kind(src.data)
        raise TopologyError(src.problems + [Problem(
            file, src.lines.get((), 1), ROOT_FIELD, f"is {kind}; a topology is a mapping (name:, nodes:, pods: ...)")])
    return src


def _root_so_far(stack: list[_Frame]) -> Any:
    """The top-level mapping read before an error, with the key whose value was being read."""
    if not stack or not isinstance(stack[0].value, dict):
        return None
    return {**stack[0].value, **({stack[0].key: None} if stack[0].key is not None else {})}


def _refuse_if_foreign_so_far(file: str, stack: list[_Frame], hide_foreign: bool, quotes: bool = False) -> None:
    """An error in the middle of a file: keys read before it, none of a topology, say some other file.
    An error before any key was read (``{{{``) says nothing of the file: the error itself is shown,
    unless it would show the file's text (a tag's or an anchor's name)."""
    root = _root_so_far(stack)
    if root or quotes:
        _refuse_if_not_topology(file, root if root is not None else {}, hide_foreign, so_far=True)


def _refuse_if_not_topology(file: str, data: Any, hide_foreign: bool, so_far: bool = False) -> None:
    """A mapping without a single topology field is some other file (``-t /etc/shadow``):
    refuse it without showing any of its keys, values or paths. ``so_far``: the keys read before the
    file's first error, which may come before its topology fields."""
    if not hide_foreign or not isinstance(data, dict):
        return
    fields = [f.alias or name for name, f in Topology.model_fields.items()]
    if not data.keys() & set(fields):
        which = ("none of the top-level keys read before its first problem is" if so_far else
                 "none of its top-level keys is")
        raise TopologyError([Problem(file, None, "", f"is not a netlab topology: {which} a topology field "
                                     f"({', '.join(fields)}); its content is not shown")])
