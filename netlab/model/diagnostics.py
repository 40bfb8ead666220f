"""pydantic's validation errors as located, one-line problems a YAML author understands.

pydantic says ``pods.3.ip: Input should be a valid IPv4 address [type=...]``;
a user wants ``topo.yaml:17: pods[3].ip: "10.244.0.300" is not an IPv4
address like 10.244.0.2``. Each error is mapped to its line through the
:class:`~netlab.model.yamlsource.Source` the reader kept, worded after the
YAML the user wrote (a boolean is ``no``, not ``False``), and given a hint
of what to do next: the close field name, the allowed range.
"""

from __future__ import annotations

import difflib
import math
import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from netlab.errors import Problem, TopologyError
from netlab.model.impair import Impairment
from netlab.model.location import ROOT_FIELD, Loc, clip, format_path, show, yaml_kind
from netlab.model.fields import RANGES
from netlab.model.topology import Topology
from netlab.model.yamlsource import Source

MAX_PROBLEMS = 100  # reported at once; the rest are summed up in one line
_YAML_NULL_WORDS = {"~", "null"}
IMPAIRMENT_FIELDS = {f.alias or name for name, f in Impairment.model_fields.items()}


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The pydantic model that the mapping at ``loc`` is validated as (None if not a model)."""
    def unwrap(tp: Any) -> type[BaseModel] | None:
        while True:
            origin = typing.get_origin(tp)
            if origin is typing.Annotated:
                tp = typing.get_args(tp)[0]
            elif origin in (typing.Union, types.UnionType):
                args = [a for a in typing.get_args(tp) if a is not type(None)]
                models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
                # a union of words and one mapping (network.cni): the mapping's fields are the ones a key can be
                tp = args[0] if len(args) == 1 else models[0] if len(models) == 1 else None
            elif origin is list:
                return ("list", typing.get_args(tp)[0])  # type: ignore[return-value]
            else:
                return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None

    current: Any = Topology
    for part in loc:
        if isinstance(current, tuple):  # ("list", item type)
            if not isinstance(part, int):
                return None
            current = unwrap(current[1])
            continue
        if current is None or not isinstance(part, str):
            return None
        field = next((f for name, f in current.model_fields.items() if (f.alias or name) == part), None)
        if field is None:
            return None
        current = unwrap(field.annotation)
    return current if isinstance(current, type) else None


def _suggested(loc: Loc) -> tuple[list[str], list[str]] | None:
    """The fields the model at ``loc[:-1]`` takes, and the one an unknown field ``loc[-1]`` may be a typo of (or
    none); None when no model is known there."""
    key = str(loc[-1])
    model = _model_at(loc[:-1])
    if model is None:
        return None
    allowed = [f.alias or name for name, f in model.model_fields.items()]

    def norm(text: str) -> str:
        return text.lower().replace("_", "").replace("-", "")

    close = [a for a in allowed if norm(a) == norm(key)] or difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    return allowed, close[:1]


def _unknown_field(loc: Loc) -> str:
    key = str(loc[-1])
    got = _suggested(loc)
    if got is None:
        return f"unknown field {show(key)}; remove it"
    allowed, close = got
    where = format_path(loc[:-1]) or "a topology"
    msg = f"unknown field {show(key)}"
    if close:
        msg += f"; did you mean {close[0]!r}?"
    return msg + f" ({where} takes: {', '.join(allowed)})"


def _range_hint(loc: Loc) -> str:
    name = next((p for p in reversed(loc) if isinstance(p, str)), "")
    if name in RANGES:
        low, high, what = RANGES[name]
        return f"; {what} must be {low}-{high}"
    return ""


def _decimal(text: str) -> str | None:
    """The whole number a YAML 1.2 reader makes of ``text`` (0o17, 0080, 80e0), or None."""
    try:
        if re.fullmatch(r"[-+]?0o[0-7]+", text):
            return str(int(text.replace("0o", ""), 8))
        if re.fullmatch(r"[-+]?[0-9]+", text):
            return str(int(text))
        if re.fullmatch(r"[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?", text):
            number = float(text)
            return str(int(number)) if math.isfinite(number) and number == int(number) else None
    except ValueError:  # more digits than Python converts
        return None
    return None


# Values of Kubernetes' API that netlab does not support (yet), by field: (what it is, a hint after the values to use)
_NOT_YET: dict[tuple[str, Any], tuple[str, str]] = {
    ("type", "ExternalName"): ("is a Kubernetes Service type", " (for a name outside the cluster: an internet host, "
                                                                "internet.hosts, reached by its address)"),
    ("protocol", "SCTP"): ("is a Kubernetes port protocol", ""),
}


def describe(err: dict, src: Source) -> str:
    """A pydantic error in words a YAML author understands, on one line."""
    loc = tuple(p for p in err["loc"] if p != "[key]")
    kind = err["type"]
    value = err.get("input")
    raw = src.raw.get(loc)
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        return _unknown_field(loc)
    if kind == "invalid_key":  # a dict given to the library: YAML keys are text already (yamlsource)
        return f"key {show(value)} is {yaml_kind(value)}, not a string; keys are text: write {str(value)!r}"
    if kind == "missing":
        return f"required field is missing; add {loc[-1]}:" if loc else "required field is missing"
    if value is None and kind != "value_error":
        if raw is not None and raw.lower() in _YAML_NULL_WORDS:
            return f"{raw!r} is YAML's null here; quote it if you meant the text, or give a value"
        return "has no value (null); give one or remove the key"
    if isinstance(value, bool) and kind not in ("bool_type", "bool_parsing", "value_error"):
        word = raw if raw is not None else str(value).lower()
        if kind.startswith("int") or kind in ("less_than_equal", "greater_than_equal"):
            return f"{word!r} is a YAML boolean here, not a number; write a number"
        return f"{word!r} is a YAML boolean here; quote it if you meant the text"
    if kind == "string_type" and isinstance(value, (int, float)):
        text = raw if raw is not None else str(value)
        return f"{text} is a number here; quote it (\"{clip(text)}\") if you meant text"
    if kind in ("int_type", "int_parsing") and isinstance(value, str):
        if loc in src.bare_text:  # written without quotes: YAML 1.1 reads it as text
            return (f"{show(value)} is not a plain decimal number, so YAML 1.1 (which netlab reads) makes it text; "
                    f"write {_decimal(value) or 'the number in plain decimal digits'}")
        return f"{show(value)} is text here; write a plain number without quotes"
    if kind in ("int_type", "int_from_float") and isinstance(value, float):
        return f"{raw or value} is not a whole number"
    if kind in ("less_than_equal", "greater_than_equal", "less_than", "greater_than"):
        limit = next(iter(ctx.values()), "?")
        word = "large" if kind.startswith("less") else "small"
        name = next((p for p in reversed(loc) if isinstance(p, str)), "")
        if name in RANGES:  # the range said after it (a VNI's field takes 24 bits, its range is narrower)
            limit = RANGES[name][1] if word == "large" else RANGES[name][0]
        return f"{value} is too {word} (limit {limit}){_range_hint(loc)}"
    if (kind in ("dict_type", "model_type", "model_attributes_type") and len(loc) >= 2 and loc[-2] == "impair"
            and loc[-1] in IMPAIRMENT_FIELDS):
        return (f"impair is keyed by interface: write impair: {{eth0: {{{loc[-1]}: ...}}}} "
                f"(the pod's or node's interface whose egress suffers)")
    if kind in ("dict_type", "model_type", "model_attributes_type", "list_type", "string_type", "int_type",
                "bool_type", "bool_parsing"):
        want = {"dict_type": "a mapping (key: value)", "model_type": "a mapping (key: value)",
                "model_attributes_type": "a mapping (key: value)", "list_type": "a list",
                "string_type": "a string", "int_type": "a number", "bool_type": "true or false",
                "bool_parsing": "true or false"}[kind]
        return f"must be {want}, not {yaml_kind(value)}"
    if kind == "literal_error":
        use = ctx.get('expected', 'one of the listed values')
        later = _NOT_YET.get((str(loc[-1]) if loc else "", value)) if isinstance(value, str) else None
        if later is not None:  # Kubernetes takes it: say it is netlab's gap, not the API's rule
            return f"{show(value)} {later[0]} netlab does not support (yet); use {use}{later[1]}"
        return f"{show(value)} is not allowed; use {use}"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length', 1)} entry; add one"
    if kind == "too_long" or kind == "string_too_long":
        return f"is too long (at most {ctx.get('max_length')})"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return " ".join(msg.split())


def _union_split(loc: Loc) -> tuple[Loc, str, Loc, tuple[Any, ...]] | None:
    """Where ``loc`` passes through a union field: (the field's path, the member's tag, the path inside the
    member, the union's members). pydantic puts a tag in the path of each member's errors
    (``network.cni.CniConflist.conflist``, ``network.cni["literal['builtin','reference']"]``); it is not a key
    the user wrote. None when the path crosses no union."""
    current: Any = Topology
    for i, part in enumerate(loc):
        while True:  # Annotated[X, ...] and Optional[X] are X here
            origin = typing.get_origin(current)
            if origin is typing.Annotated:
                current = typing.get_args(current)[0]
                continue
            if origin in (typing.Union, types.UnionType):
                args = tuple(a for a in typing.get_args(current) if a is not type(None))
                if len(args) > 1:
                    return loc[:i], str(part), loc[i + 1:], args
                current = args[0]
                continue
            break
        origin = typing.get_origin(current)
        if origin is list and isinstance(part, int):
            current = typing.get_args(current)[0]
        elif origin is dict:
            current = typing.get_args(current)[1]
        elif isinstance(current, type) and issubclass(current, BaseModel) and isinstance(part, str):
            field = next((f for name, f in current.model_fields.items() if (f.alias or name) == part), None)
            if field is None:
                return None
            current = field.annotation
        else:
            return None
    return None


def _value_at(data: Any, loc: Loc) -> Any:
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


# How a mapping member of a union is named in "want ...": its required fields, then the optional ones.
_MAPPING_WANT = {"CniConflist": "a conflist mapping {conflist: FILE, binDir: DIR}"}


def _wanted(members: tuple[Any, ...]) -> str:
    """``builtin, reference, or a conflist mapping {...}``: every value a union field takes."""
    words: list[str] = []
    for member in members:
        while typing.get_origin(member) is typing.Annotated:
            member = typing.get_args(member)[0]
        if typing.get_origin(member) is typing.Literal:
            words += [str(v) for v in typing.get_args(member)]
        elif _is_model(member):
            keys = [f.alias or name for name, f in member.model_fields.items()]
            words.append(_MAPPING_WANT.get(member.__name__, "a mapping {" + ", ".join(f"{k}: ..." for k in keys) + "}"))
        else:
            words.append(getattr(member, "__name__", str(member)))
    return ", ".join(words[:-1]) + f", or {words[-1]}" if len(words) > 2 else " or ".join(words)


def _union_problems(path: Loc, errors: list[tuple[dict, str, Loc]], members: tuple[Any, ...],
                    src: Source) -> list[Problem]:
    """One union field's errors, from every member pydantic tried, as what the user meant.

    A mapping was meant for the mapping member: its own errors, at their own keys. Anything else
    (a word misspelt, a number) is one line: what the field takes, and what it got."""
    value = _value_at(src.data, path)
    models = {m.__name__ for m in members if _is_model(m)}
    if isinstance(value, dict) and models:
        out = []
        for err, tag, rest in errors:
            if tag in models:
                loc = path + rest
                out.append(Problem(src.file, src.line_of(loc), format_path(loc) or ROOT_FIELD,
                                   describe({**err, "loc": loc}, src)))
        if out:
            return out
    field = format_path(path) or ROOT_FIELD
    if value is None:  # YAML null: said as for any other field
        return [Problem(src.file, src.line_of(path), field, describe({**errors[0][0], "loc": path}, src))]
    raw = src.raw.get(path)
    if isinstance(value, bool):
        got = f"{raw if raw is not None else str(value).lower()} (a YAML boolean)"
    elif isinstance(value, (int, float)):
        got = raw if raw is not None else str(value)
    elif isinstance(value, str):
        got = show(value)
        words = [str(v) for m in members if typing.get_origin(m) is typing.Literal for v in typing.get_args(m)]
        close = [w for w in words if w.lower() == value.lower()] or difflib.get_close_matches(value, words, n=1)
        if close:
            got += f"; did you mean {close[0]!r}?"
    else:
        got = yaml_kind(value)
    return [Problem(src.file, src.line_of(path), field, f"want {_wanted(members)}; got {got}")]


# A Kubernetes manifest's keys, and what an inline entry of each list that takes manifests by include: is written as
MANIFEST_KEYS = ("apiVersion", "kind", "metadata", "name", "namespace", "labels")
INLINE_FORM = {"networkPolicies": "name:, namespace: (metadata's) and spec: (as it is)",
               "namespaces": "name: and labels: (metadata's)"}


def _inline_manifests(errors: list) -> list[Loc]:
    """The entries of networkPolicies/namespaces written as Kubernetes manifests (apiVersion:, kind:,
    metadata:), by the mapping pydantic found no name in."""
    out: list[Loc] = []
    for err in errors:
        loc, value = tuple(err["loc"]), err.get("input")
        if (err["type"] == "missing" and len(loc) == 3 and loc[0] in INLINE_FORM and loc[2] == "name"
                and isinstance(value, dict) and "metadata" in value and loc[:2] not in out):
            out.append(loc[:2])
    return out


def _manifest_inline(section: str) -> str:
    return (f"a Kubernetes manifest (apiVersion:, kind:, metadata:) here; inline, write {INLINE_FORM[section]}, "
            "or put the manifest in a file as it is and list that file under include:")


def problems_from_validation(exc: ValidationError, src: Source) -> list[Problem]:
    """Turn every pydantic error into a located Problem, minus those about values the reader already flagged.

    The errors of a union field (each member's, tagged) become the problems of the one field the user wrote."""
    out: list[Problem | Loc] = []
    unions: dict[Loc, tuple[tuple[Any, ...], list[tuple[dict, str, Loc]]]] = {}
    errors = exc.errors(include_url=False)
    manifests = _inline_manifests(errors)
    # A required field an unknown field's suggestion names ("nod": did you mean 'node'?) is missing only through
    # that typo: its line would repeat the suggestion.
    typos = set()
    for err in errors:
        loc = tuple(p for p in err["loc"] if p != "[key]")
        got = _suggested(loc) if err["type"] == "extra_forbidden" and loc else None
        if got is not None and got[1]:
            typos.add(loc[:-1] + (got[1][0],))
    for at in manifests:
        out.append(Problem(src.file, src.line_of(at), format_path(at), _manifest_inline(str(at[0]))))
    for err in errors:
        loc = tuple(p for p in err["loc"] if p != "[key]")
        if loc[:2] in manifests and len(loc) == 3 and loc[2] in MANIFEST_KEYS:
            continue  # said once, above
        if err["type"] == "missing" and loc in typos:
            continue  # the unknown field's line says it
        split = _union_split(loc)
        plain = split[0] + split[2] if split else loc  # the path as written, without a member's tag
        if src.flagged and any(plain[:n] in src.flagged for n in range(len(plain) + 1)):
            continue
        if split:
            path, tag, rest, members = split
            if path not in unions:
                unions[path] = (members, [])
                out.append(path)  # its problems go here, in the order pydantic found them
            unions[path][1].append((err, tag, rest))
            continue
        out.append(Problem(src.file, src.line_of(loc), format_path(loc) or ROOT_FIELD, describe(err, src)))
    problems: list[Problem] = []
    for item in out:
        if isinstance(item, Problem):
            problems.append(item)
        else:
            members, errors = unions[item]
            problems += _union_problems(item, errors, members, src)
    return problems


def topology_error(problems: list[Problem], note: str | None = None) -> TopologyError:
    """A TopologyError with at most MAX_PROBLEMS problems: thousands of lines help nobody."""
    if len(problems) <= MAX_PROBLEMS:
        return TopologyError(problems, note)
    shown = sorted(problems, key=lambda p: (p.line or 0, p.field))[:MAX_PROBLEMS]
    last = shown[-1]
    more = Problem(last.file, last.line, ROOT_FIELD,
                   f"... and {len(problems) - MAX_PROBLEMS} more problems; fix these first")
    return TopologyError(shown + [more], note)
