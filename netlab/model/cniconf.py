"""A CNI network configuration list (a ``.conflist``), read and checked without running anything.

The CNI spec's format: ``{"cniVersion", "cniVersions", "name", "disableCheck", "plugins": [
{"type": ..., "capabilities": {...}, ...}, ...]}``. The runtime (netlab.cni)
runs the plugins in this order for ADD and in the reverse order for DEL,
looking each ``type`` up as a file name in the bin directory (``CNI_PATH``),
so a type is a plain file name: never a path.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

from netlab.model.files import Unreadable, read_regular
from netlab.model.trust import refusal, untrusted

# libcni's rules for the network name and plugin types (a file name in CNI_PATH).
NETWORK_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")
PLUGIN_TYPE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")
VERSION = re.compile(r"^\d+\.\d+\.\d+$")
MAX_BYTES = 1 << 20
SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")  # what netlab's runtime speaks


class ConflistError(ValueError):
    """What is wrong with a conflist, in one line. ``missing``: its file is not there (deleted, or moved)."""

    missing = False


@dataclass(frozen=True)
class Conflist:
    name: str
    cni_version: str
    plugins: tuple[dict[str, Any], ...]
    disable_check: bool = False
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def types(self) -> list[str]:
        return [p["type"] for p in self.plugins]

    def to_json(self) -> dict[str, Any]:
        return self.raw


def version_tuple(version: str) -> tuple[int, int, int]:
    if not isinstance(version, str) or not VERSION.fullmatch(version):
        raise ConflistError(f"cniVersion {version!r} is not a version like 1.0.0")
    a, b, c = (int(x) for x in version.split("."))
    return a, b, c


def at_least(version: str, minimum: str) -> bool:
    return version_tuple(version) >= version_tuple(minimum)


def _line_of_entry(text: str, key: str, index: int, entries: list[str]) -> int | None:
    """The line of ``text`` (a conflist's JSON) that holds ``key``'s ``index``-th entry: found as the JSON strings
    of the entries one after the other, past the key (None when the text writes them some other way, escaped)."""
    at = text.find(json.dumps(key))
    if at < 0:
        return None
    for entry in entries[:index + 1]:
        at = text.find(json.dumps(entry), at + 1)
        if at < 0:
            return None
    return text.count("\n", 0, at) + 1


def chosen_version(data: dict[str, Any], text: str = "") -> str:
    """The list's version, as the spec has a runtime choose it: the highest of ``cniVersion`` and ``cniVersions``
    (CNI 1.1.0's list), leaving out those past the highest netlab speaks, as libcni leaves out those past its own
    (NetworkConfFromBytes); ``cniVersion`` alone is taken as it is."""
    version = data.get("cniVersion")
    if version is not None:
        version_tuple(version)
    versions = data.get("cniVersions")
    if versions is not None:
        if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
            raise ConflistError("cniVersions must be a list of versions like 1.0.0")
        for i, v in enumerate(versions):
            if not VERSION.fullmatch(v):
                line = _line_of_entry(text, "cniVersions", i, versions) if text else None
                raise ConflistError(f"cniVersions[{i}] {v!r}{f' (line {line})' if line else ''} is not a version "
                                    "like 1.0.0")
        newest = version_tuple(SUPPORTED_VERSIONS[-1])
        known = [v for v in versions + ([version] if version is not None else []) if version_tuple(v) <= newest]
        if known:
            version = max(known, key=version_tuple)
        elif versions:
            raise ConflistError(f"cniVersions {', '.join(versions)}: none is one netlab speaks "
                                f"({', '.join(SUPPORTED_VERSIONS)})")
    if version is None:
        raise ConflistError("has no cniVersion (nor cniVersions)")
    return version


class _NotGoJson(ValueError):
    """A literal Python's json takes and Go's encoding/json (libcni, every plugin) refuses."""

    def __init__(self, literal: str, why: str) -> None:
        super().__init__(why)
        self.literal, self.why = literal, why


# A JSON string (skipped) or a bare literal that could be a number or NaN/Infinity.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|-?Infinity|NaN|-?[0-9][0-9.eE+-]*')


def _constant(literal: str) -> Any:
    raise _NotGoJson(literal, f"{literal} is no JSON number")


def _number(literal: str) -> Any:
    if math.isinf(float(literal)):  # float() has no digit limit: a 5000-digit integer is inf here, as in Go
        shown = literal if len(literal) <= 20 else f"a {len(literal.lstrip('-'))}-digit number"
        raise _NotGoJson(literal, f"{shown} is past the largest number the plugins read (a 64-bit float)")
    return float(literal) if any(c in literal for c in ".eE") else int(literal)


def _strict_json(text: str) -> Any:
    """``text`` read as Go reads it (RFC 8259): NaN, Infinity and numbers past a float64 refused, where they are."""
    try:
        return json.loads(text, parse_constant=_constant, parse_float=_number, parse_int=_number)
    except _NotGoJson as exc:
        at = next((m.start() for m in _TOKEN.finditer(text) if m.group() == exc.literal), 0)
        line = text.count("\n", 0, at) + 1
        raise ConflistError(f"is not JSON (line {line} column {at - text.rfind(chr(10), 0, at)}: {exc.why})") \
            from None


def parse_conflist(text: str) -> Conflist:
    """A conflist from its JSON text (a single plugin's .conf becomes a one-plugin list, as libcni does)."""
    try:
        data = _strict_json(text)
    except ConflistError:
        raise
    except ValueError as exc:
        raise ConflistError(f"is not JSON ({exc})") from None
    except RecursionError:  # arrays or objects nested thousands deep: Python's parser gives up
        raise ConflistError("is nested too deep to be a CNI configuration") from None
    if not isinstance(data, dict):
        raise ConflistError("must be a JSON object with cniVersion, name and plugins")
    if "plugins" not in data and "type" in data:  # a .conf: one plugin
        data = {**{k: data[k] for k in ("cniVersion", "name") if k in data}, "plugins": [data]}
    version = chosen_version(data, text)
    if version not in SUPPORTED_VERSIONS:
        raise ConflistError(f"cniVersion {version} is not one netlab speaks ({', '.join(SUPPORTED_VERSIONS)})")
    name = data.get("name")
    if not isinstance(name, str):
        raise ConflistError(_not_text(data, "name", "has no name; give the network one (letters, digits, '_', "
                                                    "'.', '-')"))
    if not NETWORK_NAME.fullmatch(name):
        raise ConflistError(f"name {name!r} is not a CNI network name (letters, digits, '_', '.', '-')")
    plugins = data.get("plugins")
    if not isinstance(plugins, list) or not plugins:
        raise ConflistError("plugins must be a non-empty list")
    for i, p in enumerate(plugins):
        if not isinstance(p, dict):
            raise ConflistError(f"plugins[{i}] must be an object")
        kind = p.get("type")
        if not isinstance(kind, str):
            raise ConflistError(_not_text(p, "type", "has no type; give the plugin's file name (bridge, "
                                                     "portmap...)", f"plugins[{i}]"))
        if not PLUGIN_TYPE.fullmatch(kind):
            raise ConflistError(f"plugins[{i}].type {kind!r} must be a plugin's file name (no '/')")
        caps = p.get("capabilities", {})
        if not isinstance(caps, dict):
            raise ConflistError(f"plugins[{i}].capabilities must be an object")
        for cap, on in caps.items():  # libcni reads them as map[string]bool: "yes" fails its JSON decoding
            if not isinstance(on, bool):
                raise ConflistError(f"plugins[{i}].capabilities.{cap} is {_kind(on)}; it must be true or false")
    disable = data.get("disableCheck", False)
    if not isinstance(disable, bool):
        raise ConflistError("disableCheck must be true or false")
    return Conflist(name=name, cni_version=version, plugins=tuple(plugins), disable_check=disable, raw=data)


def _not_text(obj: dict, key: str, missing: str, where: str = "") -> str:
    """Why ``obj[key]`` is no string, in the words of the JSON: absent, null, or another kind of value."""
    value = obj.get(key)
    path = f"{where}.{key}" if where else key
    if key not in obj:
        return f"{where} {missing}" if where else missing
    if value is None:
        return f"{path} is null; it must be a string"
    return f"{path} must be a string, not {_kind(value)}"


def _kind(value: Any) -> str:
    """A JSON value's kind, as its reader says it."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"the string {value!r}"
    kind = {bool: "a boolean", int: "a number", float: "a number", list: "an array", dict: "an object"}
    return kind.get(type(value), type(value).__name__)


def conflist_bridge(net: Conflist) -> str | None:
    """The bridge a conflist's bridge plugin makes on each node (its ``bridge``, the plugin's default cni0 when it
    names none); None when it has no bridge plugin (ptp routes each pod alone)."""
    bridge = next((p.get("bridge", "cni0") for p in net.plugins if p["type"] == "bridge"), None)
    return bridge if isinstance(bridge, str) and bridge else None


def read_conflist(path: str) -> Conflist:
    """Read and parse a conflist file; ConflistError (one line) for every failure."""
    def trusted(st: os.stat_result) -> None:
        why = untrusted(path, st)
        if why is not None:
            raise ConflistError(f"{path}: {refusal(why, 'the CNI plugins it names')}")

    try:
        data = read_regular(path, MAX_BYTES, check=trusted)
    except Unreadable as exc:
        why = {"missing": "no such file", "directory": "is a directory, not a conflist",
               "special": "is not a regular file (a FIFO, device or socket), not a conflist",
               "too_big": f"over {MAX_BYTES} bytes"}.get(exc.kind, f"cannot read it ({exc.strerror})")
        err = ConflistError(f"{path}: {why}")
        err.missing = exc.kind == "missing"
        raise err from None
    try:
        return parse_conflist(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConflistError(f"{path}: is not UTF-8 text") from None
    except ConflistError as exc:
        raise ConflistError(f"{path}: {exc}") from None
