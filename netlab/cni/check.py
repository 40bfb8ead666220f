"""Are a lab's CNI plugins there, and do they speak its cniVersion? Each is asked VERSION, as libcni asks.

A runtime learns what a plugin supports by running it with
``CNI_COMMAND=VERSION`` and ``{"cniVersion": ...}`` on stdin; the plugin
answers ``{"cniVersion", "supportedVersions"}`` from its own code, with no
namespace and no root. The same answers serve two readers:

- ``netlab validate``: one problem per plugin, at ``network.cni`` (file:line);
- ``netlab doctor``'s ``tool CNI plugins`` line, which ``up`` of a lab whose
  ``network.cni`` is not ``builtin`` runs before it changes anything (exit 3).

Which plugins: a lab's chain (the runtime's ``loopback``, then the list's
types and their ``ipam`` types), in ``CNI_PATH`` (the user's ``binDir``, then
Debian's ``/usr/lib/cni``); for a builtin lab, and plain ``netlab doctor``,
the Debian plugins netlab's reference chain runs and Flannel's conflist names.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from netlab.cni import conf as C
from netlab.cni.invoke import CallLog, PluginFailed
from netlab.cni.runtime import Runtime, find_plugin, refused
from netlab.cni.versions_kept import KEPT as _KEPT
from netlab.errors import UsageError
from netlab.model.cniconf import Conflist, ConflistError
from netlab.model.lab import Lab

FIELD = ("network", "cni")
VERSION_TIMEOUT = 10.0  # seconds a plugin has to answer VERSION (it answers in milliseconds)
# Debian's containernetworking-plugins that a lab uses: loopback (every pod's lo), bridge and host-local (the
# reference chain, as Flannel delegates to them), portmap (the second plugin of Flannel's 10-flannel.conflist).
DEBIAN_PLUGINS = ("loopback", "bridge", "host-local", "portmap")
# Everything that package puts in /usr/lib/cni (Debian 12, 1.1.1): a missing one of these is apt's to install.
PACKAGE_PLUGINS = frozenset(DEBIAN_PLUGINS) | {"bandwidth", "dhcp", "firewall", "host-device", "ipvlan", "macvlan",
                                               "ptp", "sbr", "static", "tuning", "vlan", "vrf"}
PACKAGE = "containernetworking-plugins"


@dataclass(frozen=True)
class Answer:
    """One plugin, found (or not) in CNI_PATH and asked VERSION."""

    plugin: str
    speaks: str  # the cniVersion of the list it runs in: it must be among the supported ones
    path: str | None  # None: in no directory of CNI_PATH (or not executable)
    versions: tuple[str, ...] = ()  # its supportedVersions
    error: str = ""  # VERSION failed, hung or answered something else

    @property
    def state(self) -> str:
        """ok, missing, broken (VERSION failed) or unsupported (it does not speak the list's version)."""
        if self.path is None:
            return "missing"
        if self.error:
            return "broken"
        return "ok" if self.speaks in self.versions else "unsupported"

    def problem(self, dirs: list[str]) -> str:
        """What is wrong, in one phrase ('' when nothing is)."""
        state = self.state
        if state == "missing":
            return f"plugin {self.plugin!r} not found in {':'.join(dirs)} (or not executable)"
        if state == "broken":
            return f"plugin {self.plugin}: VERSION failed: {self.error}"
        if state == "unsupported":
            speaks = ", ".join(self.versions) or "none"
            return f"plugin {self.plugin} does not speak cniVersion {self.speaks} (it speaks {speaks})"
        return ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.plugin, "path": self.path, "state": self.state, "cniVersion": self.speaks,
                "supportedVersions": list(self.versions), "error": self.error}


def wanted(lab: Lab) -> list[tuple[str, str]]:
    """(plugin, the cniVersion it is spoken to in) of every plugin the lab runs, in chain order; Debian's
    plugins for a builtin lab. A conflist that does not parse raises ConflistError."""
    if lab.cni == "builtin":
        return [(kind, C.REFERENCE_VERSION) for kind in DEBIAN_PLUGINS]
    main: Conflist = C.networks(lab, lab.nodes[0], "/nonexistent")[1][0]
    ipam = [p["ipam"]["type"] for p in main.plugins
            if isinstance(p.get("ipam"), dict) and isinstance(p["ipam"].get("type"), str)]
    out = [(kind, C.LOOPBACK.cni_version) for kind in C.LOOPBACK.types]
    out += [(kind, main.cni_version) for kind in list(main.types) + ipam]
    return list(dict.fromkeys(out))


def ask(plugins: list[tuple[str, str]], dirs: list[str], timeout: float | None = None) -> list[Answer]:
    """Find each plugin in ``dirs`` and ask it VERSION, side by side (a hung plugin costs one deadline). Each
    one found is checked before any runs: one someone other than root and the invoking user can change is a
    UsageError naming it (model/trust.py; VERSION runs it as root too)."""
    for line in refusals(plugins, dirs)[:1]:
        raise UsageError(line)
    kept = _KEPT.get()
    if kept is None:
        return _asked(plugins, dirs, timeout)
    kept.update(((a.plugin, a.speaks, *dirs), a) for a in _asked([p for p in plugins if (*p, *dirs) not in kept],
                                                                  dirs, timeout))
    return [kept[(*p, *dirs)] for p in plugins]


def _asked(plugins: list[tuple[str, str]], dirs: list[str], timeout: float | None) -> list[Answer]:
    """Each of ``plugins`` found in ``dirs`` and asked VERSION, side by side."""
    rt = Runtime("/nonexistent", dirs, CallLog(None), timeout=timeout or VERSION_TIMEOUT)

    def one(item: tuple[str, str]) -> Answer:
        kind, speaks = item
        path = find_plugin(kind, dirs)
        if path is None:
            return Answer(kind, speaks, None)
        try:
            answer = rt.version(kind)
        except PluginFailed as exc:
            return Answer(kind, speaks, path, error=str(exc).removeprefix("pod -: "))
        return Answer(kind, speaks, path, tuple(str(v) for v in answer["supportedVersions"]))

    if len(plugins) <= 1:
        return [one(p) for p in plugins]
    with ThreadPoolExecutor(max_workers=min(8, len(plugins))) as pool:
        return list(pool.map(one, plugins))



def refusals(plugins: list[tuple[str, str]], dirs: list[str], skip: tuple[str, ...] = ()) -> list[str]:
    """The line refusing each plugin found in ``dirs`` (but in a folder of ``skip``) that root must not run
    (cni/runtime.refused)."""
    found = [path for path in (find_plugin(kind, dirs) for kind, _ in plugins)
             if path is not None and os.path.dirname(path) not in skip]
    return [line for line in dict.fromkeys(map(refused, found)) if line is not None]


def plugin_problems(lab: Lab) -> list[tuple[tuple[str, ...], str]]:
    """``netlab validate``: (field, message) for every problem of the lab's CNI chain; none for builtin."""
    file, machine, *_ = split_problems(lab)
    return file + machine


Located = list[tuple[tuple[str, ...], str]]  # (field, message)


def split_problems(lab: Lab) -> tuple[Located, Located, str, list[str]]:
    """``netlab validate``'s problems of the lab's CNI chain, the file's apart from the machine's (Debian's
    plugins missing, broken or too old where the machine keeps them: /usr/lib/cni, or NETLAB_CNI_PATH's
    folders; what a valid file cannot mend), the fix of the machine's and the plugins they are about."""
    if lab.cni == "builtin":
        return [], [], "", []
    where = ("network", "cni", "conflist") if lab.cni == "conflist" else FIELD
    try:
        plugins = wanted(lab)
    except ConflistError as exc:
        return [(where, str(exc))], [], "", []
    dirs = C.bin_dirs(lab)
    from netlab.realize.cni_path import plugin_dirs

    # one in the file's binDir is the file's, as its binDir's own refusal is (model/load.resolve_cni_paths); one in
    # the machine's folders (/usr/lib/cni, NETLAB_CNI_PATH's) the machine's, which ask() refuses in its own line
    if lines := refusals(plugins, dirs, skip=tuple(plugin_dirs(C.CNI_BIN_DIR))):
        return [(where, line) for line in lines], [], "", []
    bad = [a for a in ask(plugins, dirs) if a.state != "ok"]
    machine = [a for a in bad if _debians(a, dirs)]
    file = [(where, a.problem(dirs)) for a in bad if a not in machine]
    gone = [a for a in machine if a.state == "missing"]
    said = [f"plugin{'s' if len(gone) > 1 else ''} {', '.join(repr(a.plugin) for a in gone)} not found in "
            f"{':'.join(dirs)} (or not executable)"] if gone else []
    said += [a.problem(dirs) for a in machine if a not in gone]
    return file, [(where, line) for line in said], _fix(machine, dirs), [a.plugin for a in machine]


def _debians(a: Answer, dirs: list[str]) -> bool:
    """A plugin of Debian's package, in no folder or in one where the machine keeps them (CNI_PATH's part after a
    conflist's binDir: /usr/lib/cni, or NETLAB_CNI_PATH's)."""
    from netlab.realize.cni_path import plugin_dirs

    return a.plugin in PACKAGE_PLUGINS and (a.path is None or os.path.dirname(a.path) in plugin_dirs(C.CNI_BIN_DIR))


# --- netlab doctor's line ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    """What the doctor says about a lab's plugins: present (every one answers), the line's detail, its fix."""

    present: bool
    detail: str
    fix: str
    answers: tuple[Answer, ...] = ()


def verdict(lab: Lab, pretend_missing: str = "") -> Verdict:
    """The doctor's judgement of the plugins ``lab`` runs (``pretend_missing``: a test hook's reason)."""
    dirs = C.bin_dirs(lab)
    try:
        plugins = wanted(lab)
    except ConflistError as exc:
        return Verdict(False, f"network.cni.conflist: {exc}", "correct the conflist (netlab validate -t FILE says "
                       "where)")
    if pretend_missing:
        answers = [Answer(kind, speaks, None) for kind, speaks in plugins]
        return Verdict(False, f"{', '.join(a.plugin for a in answers)} reported missing by {pretend_missing}",
                       _fix(answers, dirs), tuple(answers))
    answers = ask(plugins, dirs)
    bad = [a for a in answers if a.state != "ok"]
    gone = [d for d in dirs if not os.path.isdir(d)]
    if bad and len(bad) == len(answers) and all(a.state == "missing" for a in bad) and len(gone) == len(dirs):
        detail = f"{' and '.join(gone)} does not exist: no plugin ({', '.join(a.plugin for a in answers)})"
        return Verdict(False, detail, _fix(answers, dirs), tuple(answers))
    good = [a for a in answers if a.state == "ok"]
    parts = [a.problem(dirs) for a in bad]
    if good:
        speaks = ", ".join(sorted({a.speaks for a in good}))
        parts.append(f"{_where(good)} answer VERSION and speak cniVersion {speaks}")
    if gone and bad:
        parts.append(f"{', '.join(gone)} does not exist")
    return Verdict(not bad, "; ".join(parts), _fix(bad, dirs), tuple(answers))


def _where(answers: list[Answer]) -> str:
    """``loopback, bridge in /usr/lib/cni and bash-bridge in /lab/bin``: the plugins by the directory they are in."""
    by_dir: dict[str, list[str]] = {}
    for a in answers:
        by_dir.setdefault(os.path.dirname(a.path or ""), []).append(a.plugin)
    return " and ".join(f"{', '.join(names)} in {d}" for d, names in by_dir.items())


def _chosen(names: list[str]) -> str:
    """Where NETLAB_CNI_PATH (or a running lab's record of it) names the folders Debian's plugins are looked for in,
    the fix of missing ones: the package fills /usr/lib/cni, which netlab then does not look in."""
    from netlab.realize.cni_path import PATH_ENV, plugin_dirs

    folders = plugin_dirs(C.CNI_BIN_DIR)
    if folders == [C.CNI_BIN_DIR]:
        return ""
    where, what = ":".join(folders), ", ".join(names)
    if os.environ.get(PATH_ENV):
        return (f"put {what} in {where} ({PATH_ENV} names it), or point {PATH_ENV} at the folder that has them, or "
                f"unset it to use {C.CNI_BIN_DIR}'s")
    return f"put {what} in {where} (what {PATH_ENV} named when the lab was made)"


def _fix(bad: list[Answer], dirs: list[str]) -> str:
    """Debian's plugins come from its package (its directory ends CNI_PATH); a user's own plugin goes into
    network.cni.binDir."""
    debian = [a for a in bad if _debians(a, dirs)]
    own = [a for a in bad if a not in debian]
    states = {a.state for a in debian}
    out = []
    gone = [a.plugin for a in debian if a.state == "missing"]
    if "missing" in states and _chosen(gone):
        out.append(_chosen(gone))
    elif "missing" in states:
        out.append(f"apt-get install {PACKAGE} (or sudo ./scripts/setup.sh)")
    elif "broken" in states:
        out.append(f"apt-get install --reinstall {PACKAGE} (or sudo ./scripts/setup.sh)")
    elif states:  # what the plugins here answered VERSION (Debian 12's 1.1.1: up to 1.0.0)
        old = [a for a in debian if a.state == "unsupported"]
        spoken = _highest(set.intersection(*(set(a.versions) for a in old)))
        have = f"those here speak up to {spoken}" if spoken else "those here have no version in common"
        # An older distribution's package (0.9.x: Ubuntu 22.04, Debian 11) speaks up to 0.4.0, and apt has no newer
        # there: say which labs need it, and what runs without it
        out.append(f"a {PACKAGE} whose plugins speak cniVersion {old[0].speaks} ({have}); only labs that run these "
                   f"plugins need it (network.cni: reference, or a conflist of cniVersion {old[0].speaks}): the "
                   "default network.cni: builtin runs without them"
                   + (f", and a conflist of your own at cniVersion {spoken} runs with those here" if spoken else ""))
    if own:
        names = ", ".join(a.plugin for a in own)
        what = f"an executable {names} that answers" if len(own) == 1 else f"executables {names} that answer"
        out.append(f"put {what} VERSION for cniVersion {own[0].speaks} in {dirs[0]} (network.cni.binDir)")
    return "; ".join(out)


def _highest(versions: set[str]) -> str | None:
    """The highest of these CNI versions (``1.0.0`` of ``0.3.1, 1.0.0``); None when there is none."""
    def key(v: str) -> tuple[int, ...]:
        try:
            return tuple(int(p) for p in v.split("."))
        except ValueError:
            return ()
    return max(versions, key=key) if versions else None


def gone_since_up(lab: Lab) -> str | None:
    """For ``status``: the doctor's ``tool CNI plugins`` line (FAIL, with the fix) when a plugin the lab runs is
    in no folder of CNI_PATH (removed since ``up``: the machine's, exit 3, as ``up`` refuses it, not drift that
    ``up`` repairs); None when every one is there (found only, not run: a status of a healthy lab asks nothing)."""
    try:
        plugins = wanted(lab)
    except ConflistError:
        return None  # the conflist's own line (cni/edited.py) says it
    if all(find_plugin(kind, C.bin_dirs(lab)) is not None for kind, _ in plugins):
        return None
    from netlab.doctor_verdict import verdict as doctor_verdict  # the doctor's words, as `up` refuses it

    found = verdict(lab)
    return None if found.present else doctor_verdict("cni-plugins", False, found.detail, True, found.fix).line()
