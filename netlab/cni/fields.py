"""The config fields a conflist gives a plugin that the plugin on this machine does not read: a field added in a
later release of containernetworking-plugins than the one installed, which the older plugin passes over in
silence. The bridge plugin's ``vlanTrunk`` (tagged VLANs on each pod's port, and VLAN filtering on the bridge for
them) came in v1.3.0 (containernetworking/plugins#829), ``preserveDefaultVlan`` with it (#875); Debian 12's package
is 1.1.1, whose bridge reads ``vlan`` but neither: a conflist that asks for a trunk there gets a plain bridge, and
needs no VLAN filtering, and a pod's port with a ``vlan`` keeps the default VLAN whatever preserveDefaultVlan says.

Which fields a plugin reads is in its binary: the plugins decode their config with Go's encoding/json, which fills
a struct field by its tag (``json:"vlanTrunk"``), and the tags stay in the binary for reflection to read at run
time. ``VERSION`` cannot tell: it answers the CNI spec versions a plugin speaks (1.1.1's and 1.3.0's are the same,
up to 1.0.0), and Debian's builds say ``CNI bridge plugin version unknown``. Nothing is run: the file is read.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, replace
from typing import Any, Iterable

# (plugin type, field) -> the upstream release that added the field. preserveDefaultVlan (containernetworking/
# plugins#875) came with vlanTrunk: false takes the bridge's default VLAN (1, untagged) off a pod's port beside its
# vlan; an older bridge always leaves it there, as true does.
LATER_FIELDS = {("bridge", "vlanTrunk"): "v1.3.0", ("bridge", "preserveDefaultVlan"): "v1.3.0"}
# A bridge plugin that reads vlanTrunk (upstream v1.3.0 on) refuses it beside a vlan: a port is an access port
# (untagged) or a trunk (tagged), not both (bridge.go's loadNetConf).
TRUNK_AND_VLAN = "cannot set vlan and vlanTrunk at the same time"


def trunk_vlans(plugin: dict[str, Any]) -> bool:
    """Whether the plugin's vlanTrunk names a VLAN (an ``id``, or a ``minID``..``maxID``): an empty trunk gives a
    port none, and a plugin that reads it takes it beside a vlan."""
    trunk = plugin.get("vlanTrunk")
    return isinstance(trunk, list) and any(isinstance(t, dict) and (t.get("id") is not None or (
        t.get("minID") is not None and t.get("maxID") is not None)) for t in trunk)


def effect(plugin: dict[str, Any], field: str, unread: set[str]) -> str:
    """What the plugin that does not read ``field`` makes otherwise than ``plugin`` asks, for that config: a bridge
    that reads neither vlanTrunk nor preserveDefaultVlan (Debian's 1.1.1) still reads ``vlan``, which gives each
    pod's port that VLAN untagged and turns VLAN filtering on. ``unread``: the plugin's other fields not read."""
    vlan = plugin.get("vlan") if isinstance(plugin.get("vlan"), int) and not isinstance(plugin.get("vlan"), bool) \
        else 0
    if field == "vlanTrunk":
        if not vlan:
            return "its pods' ports get no VLANs and the bridge no VLAN filtering"
        said = (f"its pods' ports get their vlan {vlan} alone (untagged, the bridge filtering VLANs), none of the "
                "trunk's tagged VLANs")
        if trunk_vlans(plugin):
            said += (f"; a bridge plugin that reads vlanTrunk (upstream v1.3.0 and later) refuses it beside a vlan "
                     f"(\"{TRUNK_AND_VLAN}\"): keep one of them")
        return said
    if vlan:  # preserveDefaultVlan false
        return f"its pods' ports keep the bridge's default VLAN 1 (untagged) beside their vlan {vlan}"
    if "vlanTrunk" in unread:
        return ("with vlanTrunk unread too the bridge filters no VLANs: its pods' ports carry every frame untagged, "
                "as a plain bridge's do")
    return "its pods' ports keep the bridge's default VLAN 1 (untagged) beside their trunk's tagged VLANs"


def asks(plugin: dict[str, Any], field: str) -> bool:
    """Whether ``plugin`` gives ``field`` a value an older plugin acts otherwise on: any vlanTrunk (an empty one
    too: a plugin that reads it turns VLAN filtering on), a preserveDefaultVlan false beside a vlan or a trunk
    (true, or without one, is what an older plugin does anyway)."""
    if field == "preserveDefaultVlan":
        return plugin.get(field) is False and (bool(plugin.get("vlan")) or plugin.get("vlanTrunk") is not None)
    return plugin.get(field) is not None


# Debian's package of the reference plugins: the version that installed a plugin, from dpkg's own files (read, not
# run; no root needed). Another build (upstream's release, one a user put in binDir) is named by what it lacks.
PACKAGE = "containernetworking-plugins"
DPKG = "/var/lib/dpkg"


def package_version(path: str, dpkg: str | None = None) -> str | None:
    """The version of Debian's containernetworking-plugins whose file list names ``path`` (or the file it links
    to), as dpkg's status says it is installed; None for a plugin no such package installed. ``dpkg``: dpkg's
    folder (DPKG)."""
    dpkg = dpkg or DPKG
    names = {path, os.path.realpath(path)}
    try:
        lists = [f for f in os.listdir(os.path.join(dpkg, "info")) if f == f"{PACKAGE}.list"
                 or (f.startswith(f"{PACKAGE}:") and f.endswith(".list"))]
        if not any(names & _lines(os.path.join(dpkg, "info", f)) for f in lists):
            return None
        with open(os.path.join(dpkg, "status")) as fh:
            stanzas = fh.read().split("\n\n")
    except (OSError, UnicodeDecodeError):
        return None
    for stanza in stanzas:
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[:1] != " ")
        if fields.get("Package") == PACKAGE and fields.get("Status", "").endswith(" installed"):
            return fields.get("Version")
    return None


def _lines(path: str) -> set[str]:
    """A dpkg file list's paths (one a line)."""
    with open(path) as fh:
        return set(fh.read().splitlines())


@dataclass(frozen=True)
class Ignored:
    """A field of plugin ``index`` of a conflist that the plugin at ``path`` does not read."""

    index: int
    plugin: str
    field: str
    path: str
    since: str
    effect: str = ""  # what the plugin makes otherwise than the conflist asks (:func:`effect`)

    def words(self, conflist: str) -> str:
        version = package_version(self.path)
        found = (f"it is Debian's {PACKAGE} {version}" if version else
                 f"its binary has no json:\"{self.field}\" tag: an older build")
        return (f"the {self.plugin} plugin {self.path} reads no {self.field} (added in containernetworking-plugins "
                f"{self.since}; {found}): the {self.field} of {conflist} has no effect, {self.effect}")


# (device, inode, size, mtime, field) -> whether that very file has the field's tag: a doctor run asks of each check
# what the conflist needs (doctor_needs.cni_needs), and each ask scanned the plugins' binaries (megabytes) again.
_SCANNED: dict[tuple[int, int, int, int, str], bool] = {}


def reads_field(path: str, field: str) -> bool | None:
    """Whether the Go binary ``path`` decodes a JSON field ``field`` (its struct tag is in it); None when it cannot
    be read. A file scanned once is not scanned again while it is the same file (a new build has another inode or
    mtime)."""
    tags = (f'json:"{field}"'.encode(), f'json:"{field},'.encode())
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, field)
            if key not in _SCANNED:
                with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                    _SCANNED[key] = any(data.find(tag) != -1 for tag in tags)
            return _SCANNED[key]
    except (OSError, ValueError):  # unreadable, or empty (mmap refuses a file of no bytes)
        return None


def ignored_fields(plugins: Iterable[dict[str, Any]], find: Any) -> list[Ignored]:
    """The fields of LATER_FIELDS that ``plugins`` (a conflist's, in order) give and their plugin, as ``find`` (type
    -> path, None when not found) finds it, does not read. A plugin not found, or not readable, is not judged."""
    out = []
    for i, plugin in enumerate(plugins):
        kind = plugin.get("type")
        found = []
        for (of, field), since in LATER_FIELDS.items():
            if kind != of or not asks(plugin, field):
                continue
            path = find(kind)
            if path is not None and reads_field(path, field) is False:
                found.append(Ignored(i, kind, field, path, since))
        unread = {f.field for f in found}
        out += [replace(f, effect=effect(plugin, f.field, unread)) for f in found]
    return out


def lab_ignored_fields(lab: Any) -> list[Ignored]:
    """:func:`ignored_fields` of the lab's conflist, its plugins looked for in its CNI_PATH; none for a lab that
    has no conflist, or one that cannot be read now (validate and the doctor's plugins line say why)."""
    if lab.cni != "conflist":
        return []
    from netlab.cni.conf import bin_dirs
    from netlab.cni.runtime import find_plugin
    from netlab.model.cniconf import ConflistError
    from netlab.plan.cniadd import user_conflist

    try:
        plugins = user_conflist(lab).plugins
    except (ConflistError, OSError):
        return []
    dirs = bin_dirs(lab)
    return ignored_fields(plugins, lambda kind: find_plugin(kind, dirs))


def unread_fields(lab: Any, ignored: list[Ignored] | None = None) -> list[str]:
    """``up``'s warning for each field of the lab's conflist that its plugin here does not read (the doctor's words,
    on its plugins line); ``ignored``: :func:`lab_ignored_fields` of the lab, when the caller has it already (the
    plugins' binaries are not read again)."""
    file = getattr(lab.topo.network.cni, "conflist", "the conflist")
    return [i.words(file) for i in (lab_ignored_fields(lab) if ignored is None else ignored)]


def unread_notes(lab: Any, places: Any = None) -> list[Any]:
    """validate's note for each field of the lab's conflist that its plugin here does not read (up's warning, the
    doctor's words), at the topology's network.cni.conflist: the plugin's binary is read, which needs no root."""
    from netlab.model.places import TOPOLOGY, Places

    file = getattr(lab.topo.network.cni, "conflist", "the conflist")
    return [(places if places is not None else Places()).note(TOPOLOGY, ("network", "cni", "conflist"), i.words(file))
            for i in lab_ignored_fields(lab)]
