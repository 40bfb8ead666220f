"""ADD, CHECK and DEL through a plugin chain, with libcni's result cache.

* ADD runs the plugins in list order; each gets the previous one's result as
  ``prevResult`` (converted to the list's version), and the last result is the
  network's. It is cached (``results/<network>-<containerID>-<ifname>``) with
  the config and arguments it was made with.
* CHECK (list version >= 0.4.0, unless ``disableCheck``) runs the plugins in
  list order, each with the cached result as ``prevResult``.
* DEL runs them in reverse order, with the cached result from 0.4.0 on, and
  with the cached config when there is one (so a changed or deleted conflist
  file still deletes what its plugins made). It goes on when nothing is cached:
  plugins treat "already gone" as success, so DEL is safe twice.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from netlab.cni import conf as C
from netlab.cni.invoke import PluginFailed, error_object_words, exec_plugin
from netlab.errors import loads_json
from netlab.model.cniconf import ConflistError, parse_conflist
from netlab.model.naming import netns_path
from netlab.model.trust import program, refusal
from netlab.model.hostlocal import with_data_dir
from netlab.realize.state_dir import write_atomic

if TYPE_CHECKING:
    from netlab.cni.invoke import CallLog
    from netlab.model.cniconf import Conflist

CACHE_KIND = "cniCacheV1"
# libcni's GetVersionInfo (pkg/invoke/exec.go): VERSION with "dummy" CNI_NETNS, CNI_IFNAME and CNI_PATH ("fake values
# required by plugins built against an older version of skel", whose arg check refuses a call without them), and
# CNI_CONTAINERID and CNI_ARGS empty (Args.AsEnv sets all six).
VERSION_ENV = {"CNI_CONTAINERID": "", "CNI_NETNS": "dummy", "CNI_IFNAME": "dummy", "CNI_ARGS": "", "CNI_PATH": "dummy"}


@dataclass
class RuntimeConf:
    """One pod's attachment to one network: libcni's RuntimeConf."""

    pod: str
    container_id: str
    netns: str  # the pod's namespace (CNI_NETNS is its path); "" when it is gone (a DEL's CNI_NETNS is empty then)
    ifname: str
    node_netns: str | None  # where plugins run: the node's namespace, the lab's "host"
    args: list[tuple[str, str]] = field(default_factory=list)
    capability_args: dict[str, Any] = field(default_factory=dict)
    # The pod's namespace is gone (its name holds another's now, or no namespace is mounted there): CNI_NETNS is
    # empty (a DEL's "no namespace", as containerd hands it for a sandbox whose namespace closed), never that path.
    netns_gone: bool = False


def find_plugin(kind: str, bin_dirs: list[str]) -> str | None:
    """The first executable file named ``kind`` in the directories (``kind`` is a file name, never a path)."""
    if "/" in kind or kind in ("", ".", ".."):
        return None
    for d in bin_dirs:
        path = os.path.join(d, kind)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def _resolved(path: str) -> tuple[str, str | None]:
    """The plugin ``path`` resolved once (model/trust.program: the file to exec) and the line that refuses to run
    it as root (someone other than root and the invoking user can change it, or a folder or link on the way), or
    None."""
    try:
        real, why = program(path)
    except OSError as exc:
        return path, f"CNI plugin {path}: cannot resolve it ({exc.strerror})"
    return real, None if why is None else f"CNI plugin {path}: {refusal(why, 'it')}"


def refused(path: str) -> str | None:
    """The line that refuses to run the plugin ``path`` as root, or None (:func:`_resolved`)."""
    return _resolved(path)[1]


class Runtime:
    def __init__(self, cache_dir: str, bin_dirs: list[str], log: CallLog, timeout: float | None = None,
                 leases_theirs: tuple[str, str] | None = None):
        self.cache_dir, self.bin_dirs, self.log, self.timeout = cache_dir, list(bin_dirs), log, timeout
        self.bin_dir = ":".join(self.bin_dirs)  # CNI_PATH: searched in order, like libcni's FindInPath
        # (the lab's cni/ that is a user's, an empty folder of netlab's): DEL hands host-local the second as the
        # dataDir it had below the first, so host-local releases (and writes) nothing there, and the result cache
        # in it is neither read (the state's record gives the config) nor removed (cni/lifecycle.stop)
        self.leases_theirs = leases_theirs

    # --- one plugin -----------------------------------------------------------------------

    def plugin(self, kind: str) -> tuple[str, str]:
        """The one way to a plugin netlab runs (ADD, CHECK, DEL, VERSION: every exec goes through here): found in
        the folders, resolved once and checked (model/trust.py: the file, every folder above it, every symlink on
        the way); (the path found, the resolved file to exec, which no one else can swap before the exec)."""
        found = find_plugin(kind, self.bin_dirs)
        if found is None:
            raise PluginFailed(f"CNI plugin {kind!r} not found in {self.bin_dir} (or not executable)")
        real, line = _resolved(found)
        if line is not None:  # a plugin someone else can change: their program run as root
            raise PluginFailed(line)
        return found, real

    def plugin_path(self, kind: str) -> str:
        return self.plugin(kind)[0]

    def _env(self, command: str, rt: RuntimeConf, net: Conflist) -> dict[str, str]:
        # no namespace (a DEL of a sandbox whose namespace is gone, or whose name another's now holds): CNI_NETNS
        # empty, as containerd hands it
        netns = "" if rt.netns_gone or not rt.netns else netns_path(rt.netns)
        args = C.network_args(net, rt.args, rt.capability_args)  # IP= as the network's IPAM takes it
        return {"CNI_COMMAND": command, "CNI_CONTAINERID": rt.container_id, "CNI_NETNS": netns,
                "CNI_IFNAME": rt.ifname, "CNI_PATH": self.bin_dir, "CNI_ARGS": C.args_text(args)}

    def _call(self, command: str, net: Conflist, plugin: dict[str, Any], prev: dict[str, Any] | None,
              rt: RuntimeConf) -> dict[str, Any] | None:
        if self.leases_theirs is not None:
            plugin = with_data_dir(plugin, self.leases_theirs[1], instead_of=self.leases_theirs[0])
        stdin = C.build_one_config(net, plugin, prev, rt.capability_args)
        found, real = self.plugin(plugin["type"])
        return exec_plugin(self.log, pod=rt.pod, network=net.name, plugin_path=found, program=real, command=command,
                           conf=stdin, env=self._env(command, rt, net), node_netns=rt.node_netns, timeout=self.timeout)

    def version(self, kind: str) -> dict[str, Any]:
        """VERSION: which spec versions a plugin speaks (``{"cniVersion", "supportedVersions"}``); the plugin is
        found and checked as for ADD (it runs as root too)."""
        found, real = self.plugin(kind)
        out = exec_plugin(self.log, pod="-", network="-", plugin_path=found, program=real, command="VERSION",
                          conf={"cniVersion": "1.0.0"}, env=dict(VERSION_ENV), node_netns=None, timeout=self.timeout)
        if not isinstance(out, dict) or not isinstance(out.get("supportedVersions"), list):
            raise PluginFailed(f"CNI plugin {kind}: VERSION did not answer supportedVersions")
        return out

    # --- a chain --------------------------------------------------------------------------

    def add(self, net: Conflist, rt: RuntimeConf,
            confirm: Callable[[dict[str, Any]], str | None] | None = None) -> dict[str, Any]:
        """The chain's ADD, its result cached. ``confirm``: what is wrong with the result (None: nothing), asked
        once it is cached (the DEL after a failure gets it), said as the failure of the plugin whose result gave
        the interface's address last (QA q20 #2: it, not the next plugin to trip on it, is at fault)."""
        result: dict[str, Any] | None = None
        address, named, handed = None, net.plugins[-1]["type"], None
        for plugin in net.plugins:
            out = self._call("ADD", net, plugin, result, rt)
            if out is None:
                raise PluginFailed(f"pod {rt.pod}: CNI plugin {plugin['type']} ADD printed no result")
            if "msg" in out and "code" in out and not out.get("interfaces") and not out.get("ips"):
                raise PluginFailed(f"pod {rt.pod}: CNI plugin {plugin['type']} ADD: it exited 0 but printed an error "
                                   f"object{error_object_words(out)} (a plugin that fails exits non-zero)")
            try:
                result = C.check_result(out, net.cni_version)
            except ValueError as exc:
                raise PluginFailed(f"pod {rt.pod}: CNI plugin {plugin['type']} ADD: {exc}") from None
            att = C.attachment(result, rt.ifname)
            if (att.ip if att else None) != address:
                address, named, handed = att.ip if att else None, plugin["type"], address
        assert result is not None
        self._cache_write(net, rt, result)
        why = confirm(result) if confirm is not None else None
        if why:
            was = f" (it changed its prevResult's {handed})" if handed else ""
            raise PluginFailed(f"pod {rt.pod}: CNI plugin {named} ADD: {why}{was}")
        return result

    def check(self, net: Conflist, rt: RuntimeConf) -> str | None:
        """None when every plugin agrees, else why CHECK cannot run or what failed (one line)."""
        failed = self.check_failure(net, rt)
        return failed[1] if failed else None

    def check_failure(self, net: Conflist, rt: RuntimeConf) -> tuple[str | None, str] | None:
        """None when every plugin agrees, else (the plugin whose CHECK failed, None when CHECK could not run; the
        line)."""
        if not C.supports_check(net):
            return None, f"CHECK needs cniVersion 0.4.0 or later (network {net.name} is {net.cni_version})"
        if net.disable_check:
            return None
        cached, result = self._cache_read(net, rt)
        if result is None:
            return None, f"pod {rt.pod}: no cached result for network {net.name}"
        net = cached or net
        for plugin in net.plugins:
            try:
                self._call("CHECK", net, plugin, result, rt)
            except PluginFailed as exc:
                return plugin["type"], str(exc)
        return None

    def delete(self, net: Conflist, rt: RuntimeConf) -> None:
        cached, result = self._cache_read(net, rt)
        net = cached or net
        prev = result if C.supports_check(net) else None  # prevResult on DEL came with 0.4.0 too
        for n in range(len(net.plugins) - 1, -1, -1):
            try:
                self._call("DEL", net, net.plugins[n], prev, rt)
            except PluginFailed as exc:  # DEL goes in reverse: the plugins before this one in the list never ran
                exc.undone = [(net.name, i) for i in range(n + 1)]
                raise
        self._cache_remove(net, rt)

    def cached_result(self, net_name: str, rt: RuntimeConf) -> dict[str, Any] | None:
        data = self._cache_load(net_name, rt)
        return data.get("result") if data else None

    # --- the cache ------------------------------------------------------------------------

    def _cache_path(self, net_name: str, rt: RuntimeConf) -> str:
        return os.path.join(self.cache_dir, "results", f"{net_name}-{rt.container_id}-{rt.ifname}")

    def _cache_write(self, net: Conflist, rt: RuntimeConf, result: dict[str, Any]) -> None:
        os.makedirs(os.path.join(self.cache_dir, "results"), mode=0o700, exist_ok=True)
        data = {"kind": CACHE_KIND, "containerId": rt.container_id, "config": net.raw, "ifName": rt.ifname,
                "networkName": net.name, "netns": netns_path(rt.netns), "cniArgs": [list(a) for a in rt.args],
                "capabilityArgs": rt.capability_args, "result": result}
        write_atomic(self._cache_path(net.name, rt), json.dumps(data, sort_keys=True).encode())

    def _cache_load(self, net_name: str, rt: RuntimeConf) -> dict[str, Any] | None:
        if self.leases_theirs is not None:
            return None  # a user's folder: what is in it is theirs, not netlab's cache
        try:
            with open(self._cache_path(net_name, rt), encoding="utf-8") as fh:
                data = loads_json(fh.read())
        except (OSError, ValueError):
            return None  # no cache (or a cut one): DEL goes on without it, as libcni does
        return data if isinstance(data, dict) and data.get("kind") == CACHE_KIND else None

    def _cache_read(self, net: Conflist, rt: RuntimeConf) -> tuple[Conflist | None, dict[str, Any] | None]:
        """The cached config and result; ``rt`` takes the cached CNI_ARGS and capability arguments,
        as containerd's DEL does (libcni's GetNetworkListCachedConfig)."""
        data = self._cache_load(net.name, rt)
        if data is None:
            return None, None
        if isinstance(data.get("cniArgs"), list):
            rt.args = [(str(a[0]), str(a[1])) for a in data["cniArgs"] if isinstance(a, list) and len(a) == 2]
        if isinstance(data.get("capabilityArgs"), dict):
            rt.capability_args = data["capabilityArgs"]
        try:
            cached = parse_conflist(json.dumps(data.get("config")))
        except ConflistError:
            cached = None
        result = data.get("result")
        if isinstance(result, dict):
            result = C.convert_result(result, (cached or net).cni_version)
        else:
            result = None
        return cached, result

    def _cache_remove(self, net: Conflist, rt: RuntimeConf) -> None:
        if self.leases_theirs is not None:
            return  # nothing removed in a user's folder
        try:
            os.unlink(self._cache_path(net.name, rt))
        except FileNotFoundError:
            pass
