"""The pytest plugin's topologies: the marker's arguments, where a topology file is looked for, and the unique
name a test's lab gets (netlab.pytest_plugin uses them).

Every mistake here is the test's error in one line, as netlab's CLI says it, never a traceback through
netlab's loader: a marker argument of the wrong kind is a ``pytest.UsageError`` (:func:`marker_error`), a
topology netlab refuses (or a file that is not where the plugin looked) fails the test's setup with the
loader's lines.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    from netlab.api import TopologyInput
    from netlab.api.topology import Loaded
    from netlab.model.lab import Lab

SCOPES = ("function", "class", "module", "package", "session")
MARKER_ARGS = ("topology", "scope", "name")


ONE_LINE = "netlab_one_line"  # set on the plugin's own pytest.UsageError (a final class: no subclass of it)


def marker_error(message: str) -> pytest.UsageError:
    """A wrong argument of ``@pytest.mark.netlab`` or ``netlab_factory``: a pytest.UsageError, reported in one
    line (the plugin's ``pytest_runtest_makereport``), as a topology error is."""
    exc = pytest.UsageError(message)
    setattr(exc, ONE_LINE, True)
    return exc


def fail(message: str) -> NoReturn:
    """The test fails (or errors, at setup) with ``netlab: message``, without a traceback."""
    pytest.fail(f"netlab: {message}", pytrace=False)


def marker_args(marker: pytest.Mark) -> tuple[TopologyInput, str, str | None]:
    if len(marker.args) > 1:
        raise marker_error("@pytest.mark.netlab takes one topology (a path or a dict)")
    unknown = set(marker.kwargs) - set(MARKER_ARGS)
    if unknown:
        raise marker_error(f"@pytest.mark.netlab: unknown arguments {sorted(unknown)} "
                           "(it takes topology, scope and name)")
    topology = marker.args[0] if marker.args else marker.kwargs.get("topology")
    check_topology("@pytest.mark.netlab", topology)
    scope = marker.kwargs.get("scope", "function")
    if scope not in SCOPES:
        raise marker_error(f"@pytest.mark.netlab: scope {scope!r}: want one of {', '.join(SCOPES)}")
    name = marker.kwargs.get("name")
    check_name("@pytest.mark.netlab", name)
    return topology, scope, name


def check_name(where: str, name: Any) -> None:
    """``name``, the base of a lab's unique name, is a lab name (:func:`unique_name` cuts it to fit the suffix):
    one that is not is the marker's mistake, said at its setup, before any topology is read."""
    from netlab.model.location import show
    from netlab.model.naming import LAB_NAME_MAX, lab_name_problem

    if name is None:
        return
    if isinstance(name, str) and len(name) > LAB_NAME_MAX:
        raise marker_error(f"{where}: name {show(name, 30)} is {len(name)} characters: want at most "
                           f"{LAB_NAME_MAX} (a lab name's limit; the plugin cuts it to add the lab's unique suffix)")
    problem = lab_name_problem(name)
    if problem:
        raise marker_error(f"{where}: name {problem}")


def check_topology(where: str, topology: Any) -> None:
    if topology is not None and not isinstance(topology, (str, os.PathLike, Mapping)):
        raise marker_error(f"{where}: topology {topology!r}: want a path (beside the test file), a dict shaped "
                           f"like the YAML or None (the built-in default), not {type(topology).__name__}")
    if isinstance(topology, (str, os.PathLike)) and os.fspath(topology) == "":  # else the test's own folder
        raise marker_error(f"{where}: topology: the path is empty; give a topology file's path (beside the test "
                           "file), a dict or None (the built-in default)")


def check_wait(where: str, wait: Any) -> float:
    """``wait``, the seconds to wait for a lab another process holds, as ``Lab.up``'s: said before any topology
    is read (and without root, where the lab would be skipped and the mistake never seen)."""
    from netlab.api.args import WAIT, check_seconds
    from netlab.errors import UsageError

    try:
        return check_seconds("wait", wait, WAIT)
    except UsageError as exc:
        raise marker_error(f"{where}: {exc}") from None


def resolve_path(test_file: Path, rootdir: Path, topology: TopologyInput) -> TopologyInput:
    """A relative path is looked up beside the test file, then in the rootdir, then as given (the current
    directory); a file in none of them fails the test, naming where it was looked for. A dict's relative
    ``network.cni`` paths are the test file's folder's, as a file's are its own folder's (:func:`cni_rooted`)."""
    if isinstance(topology, Mapping):
        return cni_rooted(test_file.parent, topology)
    if not isinstance(topology, (str, os.PathLike)) or os.path.isabs(topology):
        return topology
    looked: dict[str, list[str]] = {}  # each path, and the places it is
    for where, base in (("beside the test file", test_file.parent), ("the rootdir", rootdir),
                        ("the current directory", Path.cwd())):
        candidate = base / topology
        if candidate.exists():
            return str(candidate)
        looked.setdefault(str(candidate), []).append(where)
    places = ", then ".join(f"{path} ({' and '.join(where)})" for path, where in looked.items())
    fail(f"topology file {os.fspath(topology)!r} not found: looked at {places}")


def cni_rooted(folder: Path, topology: Mapping[str, Any]) -> Mapping[str, Any]:
    """``topology`` with its relative ``network.cni.conflist`` and ``binDir`` made absolute from ``folder`` (a copy:
    the test's own dict is left as written); the same dict when it has none. What is not a path (a number, a
    list) is left for the loader to say."""
    network = topology.get("network")
    cni = network.get("cni") if isinstance(network, Mapping) else None
    if not isinstance(cni, Mapping):
        return topology
    rooted = {key: str(folder / value) if key in ("conflist", "binDir") and isinstance(value, str) and value
              and not os.path.isabs(value) else value for key, value in cni.items()}
    if rooted == dict(cni):
        return topology
    assert isinstance(network, Mapping)
    return {**topology, "network": {**network, "cni": rooted}}


def load(topology: TopologyInput, name: str | None, raising: bool = False) -> Loaded:
    """The topology, loaded and checked; netlab's own errors (a topology it refuses, a bad ``name``) fail the
    test with their lines, as ``netlab validate`` prints them. ``raising``: they are raised instead, for a test
    that calls ``netlab_factory`` itself and may expect them (``pytest.raises(TopologyError)``)."""
    from netlab.api import load as api_load
    from netlab.errors import NetlabError

    try:
        return api_load(topology, name)
    except NetlabError as exc:  # a TopologyError has a line per problem
        if raising:
            raise
        said = str(exc)
    fail(said)  # outside the except block: no "during handling of the above exception"


def suffix() -> str:
    """What makes a lab name unique: the xdist worker (``g1-``) and six random hex digits."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    tag = f"{worker[:1]}{re.sub(r'[^0-9]', '', worker)}-" if worker else ""
    return f"{tag}{uuid.uuid4().hex[:6]}"


def members(lab: Lab) -> list[tuple[str, str]]:
    """(kind, name) of everything that gets a namespace ``<lab>-<name>``: nodes, pods (with those netlab
    adds), the internet's machines and the underlay."""
    return ([("node", n.name) for n in lab.nodes] + [("pod", p.name) for p in lab.pods]
            + [("internet host", h) for h, _ in lab.internet_hosts] + [("namespace", "underlay")])


def unique_name(base: str, loaded: Loaded, tail: str | None = None) -> str:
    """``<base>-<tail>``, the base cut so that the name is a lab name (at most 24 characters) and every
    namespace of the lab (``<lab>-<name>``) stays within the kernel-facing limit netlab enforces: a pod named
    with 56 characters leaves a lab name 6. When not even one character of the base fits beside ``tail``,
    the test fails naming what to shorten."""
    from netlab.model.fields import NETNS_NAME_MAX
    from netlab.model.naming import LAB_NAME_MAX

    tail = suffix() if tail is None else tail
    named = members(loaded.lab)
    longest = max(len(name) for _, name in named)
    room = min(LAB_NAME_MAX, NETNS_NAME_MAX - 1 - longest) - len(tail) - 1  # for the base, before "-<tail>"
    if room < 1:
        most = NETNS_NAME_MAX - 1 - (len(tail) + 2)  # a name beside the shortest unique lab name, "x-<tail>"
        long = [f"{kind} {name[:20]}{'...' if len(name) > 20 else ''} ({len(name)} characters)"
                for kind, name in named if len(name) > most]
        fail(f"{loaded.origin}: the plugin's unique lab name needs {len(tail) + 2} characters (one of the base, "
             f"then '-{tail}'), and a namespace name, <lab>-<name>, at most {NETNS_NAME_MAX}: shorten "
             f"{', '.join(long)} to at most {most} characters")
    return f"{base[:room].rstrip('-')}-{tail}"


def artifacts_folder(nodeid: str) -> str:
    """The folder a failed test's labs are written into, under the artifacts directory: its whole test id
    (the file's path, the test, its parameters), made a safe file name, then 8 hex digits of the id's SHA-256:
    ``dup/test_one.py::test_same[9999]`` is ``dup_test_one.py--test_same_9999_-1a2b3c4d``. The digest keeps
    ids apart that read alike once made safe (``[a b]`` and ``[a_b]``) or cut (at 100 characters, the end
    kept); nothing of the id but ASCII letters, digits, ``_``, ``.`` and ``-`` reaches the file name, and it
    never begins with a dot."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.replace("::", "--"))[-100:].lstrip(".-")
    digest = hashlib.sha256(nodeid.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{readable}-{digest}" if readable else digest
