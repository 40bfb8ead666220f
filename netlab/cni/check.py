"""``netlab validate`` for CNI: the conflist parses, every plugin is there, and each speaks the list's version.

Each plugin is asked with VERSION (no namespace, no root: a plugin answers it
from its own code), as a runtime would learn what it supports.
"""

from __future__ import annotations

from netlab.cni import conf as C
from netlab.cni.invoke import CallLog, PluginFailed
from netlab.cni.runtime import Runtime, find_plugin
from netlab.model.cniconf import Conflist, ConflistError
from netlab.model.lab import Lab

FIELD = ("network", "cni")


def plugin_problems(lab: Lab) -> list[tuple[tuple[str, ...], str]]:
    """(field, message) for every problem of the lab's CNI chain; none for builtin."""
    if lab.cni == "builtin":
        return []
    dirs = C.bin_dirs(lab)
    where = ("network", "cni", "conflist") if lab.cni == "conflist" else FIELD
    try:
        main = C.networks(lab, lab.nodes[0], "/nonexistent")[1][0]
    except ConflistError as exc:
        return [(where, str(exc))]
    rt = Runtime("/nonexistent", dirs, CallLog(None), timeout=10)
    out: list[tuple[tuple[str, ...], str]] = []
    lists: list[Conflist] = [C.LOOPBACK, main]
    ipam = [p["ipam"]["type"] for p in main.plugins
            if isinstance(p.get("ipam"), dict) and isinstance(p["ipam"].get("type"), str)]
    for net in lists:
        kinds = list(net.types) + (ipam if net is main else [])
        for kind in kinds:
            if find_plugin(kind, dirs) is None:
                out.append((where, f"plugin {kind!r} not found in {':'.join(dirs)} (or not executable)"))
                continue
            try:
                answer = rt.version(kind)
            except PluginFailed as exc:
                out.append((where, f"plugin {kind}: VERSION failed: {exc}"))
                continue
            supported = answer.get("supportedVersions", [])
            if net.cni_version not in supported:
                out.append((where, f"plugin {kind} does not speak cniVersion {net.cni_version} "
                                   f"(it speaks {', '.join(map(str, supported))})"))
    return out
