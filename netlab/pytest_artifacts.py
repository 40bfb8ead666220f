"""The pytest plugin's dump of a failed test's labs (netlab.pytest_plugin's hooks call these).

A test's labs are those its fixtures handed it and those it gave :func:`watch`. When it fails, each is written
into the test's folder: ``inspect/<name>.json`` of every namespace, ``probe.json``, ``status.json``, the test's
own last traces and ``reach`` results (``traces.json``, ``reaches.json``), and the lab's CNI call log for a lab
whose pods CNI plugins attach (``cni-calls.json``, ``netlab cni log -o json``'s): a lab shared by the tests of
a scope is one ``Lab`` object, whose kept results are every test's, so a test takes note of what it held when
the test was handed it, and only what came after is the test's.

A lab the test takes down itself (the end of a ``with Lab.up(...)`` block, a ``lab.down()`` in a ``finally``)
is read as it goes down with the test's failure in flight, before anything of it is changed, and written if
the test fails.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from netlab import outfile
from netlab.errors import UsageError
from netlab.outkinds import ARTIFACT
from netlab.pytest_topology import artifacts_folder

if TYPE_CHECKING:
    from netlab.api import Lab

KEEP_SECTION = "netlab: lab kept up"
RETRY_SECTION = "netlab: lab not kept"  # the names of labs whose take-down failed: the session's end tries again
LABS = pytest.StashKey[list["Lab"]]()  # the labs a test used (dumped when it fails)
WATCHED = pytest.StashKey[list["Lab"]]()  # (a module, class, session) the labs its fixtures gave watch()
FAILED = pytest.StashKey[bool]()
HELD = pytest.StashKey[dict[str, tuple[list[Any], list[Any]]]]()  # lab -> its reaches and traces before the test
TAKEN = pytest.StashKey[dict[str, dict[str, Any]]]()  # lab -> its files, read as the test took it down failing
HOOKS = pytest.StashKey[list[tuple["Lab", Callable[[], None]]]]()  # the labs' before-down hooks this test set
DOWN_BY = pytest.StashKey[dict[str, str]]()  # (config) lab -> the test that took it down itself (lab.down())


def watch(item: pytest.Item | pytest.Collector, lab: Lab) -> None:
    """Dump ``lab`` into the test's folder if the test fails: for a lab the test brought up itself (through the
    CLI, or ``Lab.up``). It is not taken down by the plugin. A lab the test takes down with its failure in
    flight (a ``with Lab.up(...)`` block that ends with the failing assert, a ``lab.down()`` in a ``finally``)
    is read as it goes down, and that is what is written; a lab taken down otherwise is written as down.
    ``item`` may be the ``request.node`` of a fixture of a wider scope (a module, class, package or the
    session): the lab is each of its tests', from the end of that test's setup on (:func:`adopt`).
    Anything but a Lab (its name, say), or a node that is not pytest's (the request itself), is a UsageError
    here, in the test, not pytest's INTERNALERROR at its end, nor a lab silently never written."""
    from netlab.api import Lab
    from netlab.api.args import given
    from netlab.errors import UsageError

    if not isinstance(item, (pytest.Item, pytest.Collector)):
        what = "the fixture request: pass request.node" if hasattr(item, "node") else type(item).__name__
        raise UsageError("netlab.pytest_plugin.watch: node must be a pytest node (request.node: the test's, or the "
                         f"module's, class's or session's a fixture of that scope is given), not {what}")
    if not isinstance(lab, Lab):
        hint = f" (Lab.attach({lab!r}) gives the running lab of that name)" if isinstance(lab, str) else ""
        raise UsageError(f"netlab.pytest_plugin.watch: lab must be a netlab.api.Lab, not {given(lab)}{hint}")
    if isinstance(item, pytest.Item):
        used_by(item, lab)
        return
    watched = item.stash.setdefault(WATCHED, [])
    if not any(other is lab for other in watched):
        watched.append(lab)


def adopt(item: pytest.Item) -> None:
    """The test's setup is over: the labs its module's (class's, package's, session's) fixtures gave
    :func:`watch` are the test's, what they keep of reaches and traces from now on its own."""
    for node in item.listchain()[:-1]:
        for lab in node.stash.get(WATCHED, []):
            if not lab._down:
                used_by(item, lab)


def used_by(item: Any, lab: Lab) -> None:
    used = item.stash.setdefault(LABS, [])
    if any(other.name == lab.name for other in used):
        return
    used.append(lab)
    item.stash.setdefault(HELD, {})[lab.name] = (list(lab.reaches), list(lab.traces))
    hook = functools.partial(_going_down, item, lab)
    lab._before_down.append(hook)
    item.stash.setdefault(HOOKS, []).append((lab, hook))


def failed(item: Any) -> bool:
    return bool(item.stash.get(FAILED, False))


def _going_down(item: Any, lab: Lab) -> None:
    """``lab.down()`` during the test: with an exception in flight (the test failing), the lab is read now."""
    config = getattr(item, "config", None)
    if config is not None:  # the next test of a shared lab says who took it down
        config.stash.setdefault(DOWN_BY, {})[lab.name] = item.nodeid
    exc = sys.exc_info()[1]
    if exc is None or not isinstance(exc, (Exception, pytest.fail.Exception)) or isinstance(exc, pytest.skip.Exception):
        return  # no failure, or Ctrl-C / SIGTERM: the lab goes down at once
    item.stash.setdefault(TAKEN, {})[lab.name] = snapshot(lab, *_own(item, lab))


def _own(item: Any, lab: Lab) -> tuple[list[Any], list[Any]]:
    """The reaches and traces ``lab`` keeps that the test made: those it did not hold when the test got it."""
    reaches, traces = item.stash.get(HELD, {}).get(lab.name, ([], []))
    return ([r for r in lab.reaches if not any(r is old for old in reaches)],
            [t for t in lab.traces if not any(t is old for old in traces)])


def unhook(item: Any) -> None:
    """The test's call is over: its labs' hooks go (a shared lab, a lab the test keeps, outlive the test)."""
    for lab, hook in item.stash.get(HOOKS, []):
        if hook in lab._before_down:
            lab._before_down.remove(hook)
    item.stash[HOOKS] = []


def read_going_down(item: Any, lab: Lab) -> None:
    """A lab the plugin takes down as it fails the test's fixture (a container that could not start): the test's,
    read now, before it goes down, and written with the test's failure."""
    used_by(item, lab)
    item.stash.setdefault(TAKEN, {})[lab.name] = snapshot(lab, *_own(item, lab))


def failed_up_folder(item: Any, lab: str) -> Path | None:
    """Where the plugin calls of ``lab``'s up are written if a plugin fails it (None: no test to write them for)."""
    return _artifacts_dir(item) / lab if isinstance(item, pytest.Item) else None


def failed_up(item: pytest.Item, lab: str, exc: BaseException, calls: list[Any], folder: Path) -> str:
    """An up that failed and was rolled back (a CNI plugin of the test author's own that failed its ADD): the lab is
    gone, with its CNI log; the calls its up made (``calls``, each as ``netlab cni log -o json`` shows it: what
    the plugin got on stdin and in its environment, what it answered) are written into the test's folder
    (``cni-calls.json``, as a failed test's lab's), with up's error (``error.txt``). The test's one line."""
    said = "; ".join([str(exc), *getattr(exc, "__notes__", [])])
    item.stash[FAILED] = True
    path = folder / "cni-calls.json"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        outfile.write_output(str(folder / "error.txt"), (said + "\n").encode())
        outfile.write_output(str(path), (json.dumps({"lab": lab, "pod": None, "calls": calls}, indent=2,
                                                    default=str) + "\n").encode())
    except Exception as err:  # noqa: BLE001 - the up's error is the test's; said with it
        return f"lab {lab}: {said} (its plugin calls could not be written: {err})"
    return f"lab {lab}: {said}" + ("" if str(path) in said else f"; this run's calls: {path}")


def report_failure(item: pytest.Item, rep: pytest.TestReport, retried: Collection[str] = ()) -> None:
    """The test failed (its setup, its call, or its teardown: the first that did, once): its labs are written into
    its folder; with --netlab-keep, how to reach them. At its teardown, only the labs still there to read (a
    lab a scope's tests share, one whose take-down failed): those its fixtures took down are gone.

    ``retried``: the labs whose take-down by the plugin failed, which the session's end takes down again: not
    kept, whatever --netlab-keep says (the summary says what became of them); a lab down already is not kept
    either (one whose container could not start, taken down at its setup)."""
    item.stash[FAILED] = True
    taken = item.stash.get(TAKEN, {})
    labs = [lab for lab in item.stash.get(LABS, []) if rep.when != "teardown" or not lab._down or lab.name in taken]
    if not labs:
        return
    folder = _artifacts_dir(item)
    written, down, absent = [], [], set()
    for lab in labs:
        if lab._down and lab.name not in taken:  # taken down before the test failed: nothing of it to read
            down.append(f"lab {lab.name} was down when the test failed ({down_by(item.config, lab)}): "
                        "nothing of it to write")
            continue
        gone = None if lab.name in taken else not_up(lab.name)
        if gone is not None:  # taken down by another command meanwhile: nothing of it to read either
            down.append(f"lab {lab.name} was not up when the test failed: {gone}: nothing of it to write")
            absent.add(lab.name)
            continue
        files = taken[lab.name] if lab.name in taken else snapshot(lab, *_own(item, lab))
        try:
            at = write(files, folder / lab.name)
        except UsageError as exc:  # a name that holds another file (outfile's rules): nothing of the lab written
            down.append(f"lab {lab.name} could not be written when the test failed: {exc}")
            continue
        if "error.txt" in files and not any(path.startswith("inspect/") for path in files):
            down.append(f"lab {lab.name} could not be read when the test failed: {at / 'error.txt'} says why")
        else:
            written.append(str(at))
    said = (["the lab as it was when the test failed: " + ", ".join(written)] if written else []) + down
    rep.sections.append(("netlab", "\n".join(said)))
    if item.config.getoption("netlab_keep"):
        up = [lab.name for lab in labs if not lab._down and lab.name not in absent]  # none to keep of a lab gone
        kept = [name for name in up if name not in retried]
        # Said once per lab, in the run's summary (kept_lines): not in each failed test's report too. The report's
        # user_properties carry them there (xdist sends them from its workers with the report).
        if kept:
            rep.user_properties.append((KEEP_SECTION, "\n".join(keep_line(name) for name in kept)))
        if len(kept) < len(up):
            rep.user_properties.append((RETRY_SECTION, "\n".join(name for name in up if name in retried)))


def down_by(config: pytest.Config, lab: Lab) -> str:
    """Who took ``lab`` down: the test that called its ``down()``, as far as the plugin saw it."""
    test = config.stash.get(DOWN_BY, {}).get(lab.name)
    return f"taken down by {test} (its lab.down())" if test else "taken down during the test"


def not_up(lab: str) -> str | None:
    """Why lab ``lab``, which the test was handed up, is not up now, when another command took it down meanwhile
    (a `netlab down` in another shell): it has no state, or a `netlab down` is at work on it (its state says
    phase deleting, and it holds the lab's lock: named as the kernel shows it). None when it is there to read
    (or its state cannot be read: the dump says why)."""
    from netlab.errors import NetlabError
    from netlab.realize.lab_lock import lab_lock_holder
    from netlab.realize.state import load_state

    try:
        st = load_state(lab)
    except (NetlabError, OSError):
        return None
    if st is None:  # a down removes the lab's folder, its lock with it: who it was is not kept
        return ("it was taken down outside the test (a `netlab down` in another shell, say; netlab keeps no "
                "record of who took it down)")
    holder = lab_lock_holder(lab) if st.phase == "deleting" else None
    return f"{holder} was taking it down" if holder else None


def keep_line(name: str) -> str:
    """What a kept lab's user types to look at it and to take it down, its state folder in each line, shell-quoted
    (errors.netlab_command: a folder with a space in its name was two words)."""
    from netlab.errors import down_command, netlab_command

    return (f"lab {name} stays up: {netlab_command(f'status --lab {name}')}; "
            f"{netlab_command(f'exec --lab {name} NAME')}; take it down with: {down_command(name)}")


def kept_lines(reports: list[Any], section: str = KEEP_SECTION) -> list[str]:
    """The failed reports' kept labs, each once (a lab shared by a scope's tests is in each failed test's); or
    the lines of another of their properties."""
    lines: dict[str, None] = {}
    for rep in reports:
        for title, text in getattr(rep, "user_properties", []):
            if title == section:
                lines.update(dict.fromkeys(text.splitlines()))
    return list(lines)


def retried_lines(reports: list[Any]) -> list[str]:
    """What became of the labs whose take-down failed (--netlab-keep did not keep them): said at the end of the
    run, once the session's end tried again, from the state folder (a lab whose down finished has none)."""
    from netlab.errors import down_command, netlab_command
    from netlab.realize import state_dir

    lines = []
    for name in kept_lines(reports, RETRY_SECTION):
        said = f"lab {name}: not kept up: its take-down failed (its test's teardown says why)"
        if os.path.lexists(os.path.join(state_dir.STATE_ROOT, name)):
            lines.append(f"{said}, and the end of the run could not take it down either; it is still up: "
                         f"{netlab_command(f'status --lab {name}')}; take it down with: {down_command(name)}")
        else:
            lines.append(f"{said}; the end of the run took it down")
    return lines


def _artifacts_dir(item: pytest.Item) -> Path:
    root = item.config.getoption("netlab_artifacts")
    if root is None:
        factory = getattr(item.config, "_tmp_path_factory", None)  # pytest's tmp_path_factory
        if factory is None:
            return Path("netlab-artifacts") / artifacts_folder(item.nodeid)
        base = factory.getbasetemp()
        worker = getattr(item.config, "workerinput", {}).get("workerid")
        if worker is not None and base.name == f"popen-{worker}":  # an xdist worker's: the run's basetemp is above
            base = base.parent  # one netlab/ folder for all workers, as documented; each lab's under its own name
        root = base / "netlab"
    return Path(root) / artifacts_folder(item.nodeid)


def dump_lab(lab: Lab, folder: Path) -> Path:
    """Write a lab's state into ``folder``: inspect/<name>.json per namespace, probe.json, status.json,
    traces.json, reaches.json (all the lab keeps), cni-calls.json (a CNI lab's). What cannot be read is written as
    an error, never raised."""
    return write(snapshot(lab, list(lab.reaches), list(lab.traces)), folder)


def snapshot(lab: Lab, reaches: list[Any], traces: list[Any]) -> dict[str, Any]:
    """A lab's files, by path in its folder (``error.txt``: text; the others' JSON), read now: what cannot be
    read is an error in its file, never raised (a dump must not hide the test's own failure)."""
    from netlab.api import to_json

    files: dict[str, Any] = {}

    def read(path: str, produce: Callable[[], Any]) -> None:
        try:
            files[path] = to_json(produce())
        except Exception as exc:  # noqa: BLE001
            files[path] = {"error": f"{type(exc).__name__}: {exc}"}

    names: list[tuple[str, str]] = []
    try:
        names = list(lab.namespaces())
    except Exception as exc:  # noqa: BLE001
        files["error.txt"] = f"{type(exc).__name__}: {exc}\n"
    for name, _ in names:
        read(f"inspect/{name}.json", functools.partial(lab.inspect, name))
    read("status.json", lab.status)
    read("probe.json", lab.probe)
    read("traces.json", lambda: traces)
    read("reaches.json", lambda: reaches)  # what most asserts check: lab.reach(...)
    if _attached_by_plugins(lab):  # a plugin author's first look: what each plugin got and answered
        read("cni-calls.json", lab.cni_log)
    return files


def _attached_by_plugins(lab: Lab) -> bool:
    """The lab's pods are attached by CNI plugins (a conflist, or ``cni: reference``); False when it cannot be read
    (status.json says why)."""
    try:
        return lab.model.cni != "builtin"
    except Exception:  # noqa: BLE001
        return False


def write(files: dict[str, Any], folder: Path) -> Path:
    """The files in ``folder``, each replacing only an empty file or an earlier dump (outkinds.ARTIFACT), never
    through another user's symlink (netlab/outfile.py): all are checked before any is written, so that a name
    refused (a UsageError, one line) leaves every file as it was."""
    (folder / "inspect").mkdir(parents=True, exist_ok=True)
    texts = {str(folder / path): (data if path.endswith(".txt") else json.dumps(data, indent=2, default=str) + "\n")
             for path, data in files.items()}
    for path in texts:
        outfile.check(path, ARTIFACT)
    for path, text in texts.items():
        outfile.write_output(path, text.encode(), kind=ARTIFACT)
    return folder
