"""What a runtime hands CNI plugins, as data: no process is run here.

A kubelet's ``SetupPod`` asks the runtime (containerd) to attach the pod's
network namespace to each network: first ``cni-loopback`` (``lo``), then the
node's conflist (``eth0``). For each plugin of a list the runtime writes one
JSON config on the plugin's stdin, made of the plugin's own entry plus what
libcni injects (``buildOneConfig``):

* ``name`` and ``cniVersion`` of the list, so every plugin speaks the list's version;
* ``prevResult``: the previous plugin's result on ADD (chaining), the cached
  result of the last ADD on CHECK and on DEL (from 0.4.0);
* ``runtimeConfig``: only the capabilities the plugin declares in
  ``capabilities`` (``ips``, ``mac``, ``portMappings``, ``ipRanges``), with the
  values the runtime has for this pod.

The environment carries CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME,
CNI_PATH and CNI_ARGS (``IgnoreUnknown=1;K8S_POD_NAMESPACE=...;...``).
"""

from __future__ import annotations

import copy
import secrets
from ipaddress import IPv4Address, IPv4Interface, ip_interface
from typing import TYPE_CHECKING, Any

from netlab.model.cniconf import Conflist, at_least
from netlab.model.lab import CniAttachment
from netlab.model.topology import CNI_BIN_DIR
from netlab.model.naming import BRIDGE
from netlab.plan import cniadd
# The networks of a pod and what the runtime sets for each call are the plan's too (``netlab plan`` shows a CNI
# lab's ADD steps): one definition, in plan/cniadd.py.
from netlab.plan.cniadd import LOOPBACK as LOOPBACK, POD_IF as POD_IF, REFERENCE_VERSION as REFERENCE_VERSION
from netlab.plan.cniadd import args_text as args_text, asked_ip as asked_ip, capability_args as capability_args
from netlab.plan.cniadd import cni_args as cni_args, network_args as network_args, networks as networks
from netlab.plan.cniadd import reference_conflist as reference_conflist
from netlab.plan.cniadd import runtime_config, user_conflist as user_conflist

if TYPE_CHECKING:
    from netlab.model.lab import Lab


def bin_dirs(lab: Lab) -> list[str]:
    """CNI_PATH (plan/cniadd.py), with Debian's plugins where this module says (the doctor's tests move them)."""
    from netlab.realize.cni_path import plugin_dirs  # NETLAB_CNI_PATH, or the running lab's record

    return cniadd.bin_dirs(lab, plugin_dirs(CNI_BIN_DIR))


def new_container_id() -> str:
    """A new sandbox's id, CNI_CONTAINERID (64 hex: 32 random bytes, as containerd's GenerateID). Each sandbox the
    runtime sets up has its own: a pod's first, and each one made after a DEL (its namespace made anew, a
    re-attach), whose old one is DELed with its own id (the pod's record keeps it: cni/lifecycle.py). An older
    netlab derived it from the lab, pod and run (sha256 of ``lab/pod/run_id``); a record it wrote keeps that id."""
    return secrets.token_hex(32)


def build_one_config(net: Conflist, plugin: dict[str, Any], prev: dict[str, Any] | None,
                     capabilities: dict[str, Any]) -> dict[str, Any]:
    """One plugin's stdin: its entry, with the list's name and version, prevResult, runtimeConfig."""
    conf = copy.deepcopy(plugin)
    conf["name"] = net.name
    conf["cniVersion"] = net.cni_version
    if prev is not None:
        conf["prevResult"] = convert_result(prev, net.cni_version)
    runtime = runtime_config(plugin, capabilities)
    if runtime:
        conf["runtimeConfig"] = runtime
    return conf


def supports_check(net: Conflist) -> bool:
    return at_least(net.cni_version, "0.4.0")


# --- results -----------------------------------------------------------------------------


def convert_result(result: dict[str, Any], version: str) -> dict[str, Any]:
    """A result in another spec version (libcni's GetAsVersion), between 0.2.0, 0.3.x/0.4.0 and 1.x.

    0.2.0 has ``ip4: {ip, gateway, routes}``; 0.3.0 brought ``interfaces`` and
    ``ips`` with ``version: "4"`` and an ``interface`` index; 1.0.0 dropped ``version``.
    """
    out = copy.deepcopy(result)
    if "ip4" in out or "ip6" in out or out.get("cniVersion") in RESULT_TYPES[0][0]:  # 0.1.0/0.2.0 -> 0.3.x
        ips, routes = [], []
        for fam in ("ip4", "ip6"):
            sect = out.pop(fam, None)
            if sect:
                ip = {"version": fam[2], "address": sect["ip"]}
                if sect.get("gateway"):
                    ip["gateway"] = sect["gateway"]
                ips.append(ip)
                routes += sect.get("routes", [])
        out.update({"interfaces": [], "ips": ips, "routes": routes})
    if at_least(version, "1.0.0"):
        for ip in out.get("ips", []):
            ip.pop("version", None)
    elif at_least(version, "0.3.0"):
        for ip in out.get("ips", []):
            ip.setdefault("version", "6" if ":" in ip.get("address", "") else "4")
    out["cniVersion"] = version
    return out


# The result types libcni reads (pkg/types/020, 040, 100: the versions each is created for) and the fields each has:
# a result is read by the version it says it is (create.Create), and a field its type lacks is lost.
RESULT_TYPES = ((("0.1.0", "0.2.0"), ("ip4", "ip6", "dns")),
                (("0.3.0", "0.3.1", "0.4.0"), ("interfaces", "ips", "routes", "dns")),
                (("1.0.0", "1.1.0"), ("interfaces", "ips", "routes", "dns")))


def result_as_declared(result: dict[str, Any], version: str) -> dict[str, Any]:
    """A plugin's result as libcni reads it (invoke.ExecPluginWithResult): by the cniVersion it declares, or the
    config's ``version`` when it declares none (fixupResultVersion); only the fields of that version's type. A
    version libcni has no type for is a ValueError, as create.Create's "unsupported CNI result version"."""
    declared = result.get("cniVersion")
    if not isinstance(declared, str) or not declared:
        declared = version
    fields = next((f for versions, f in RESULT_TYPES if declared in versions), None)
    if fields is None:
        known = ", ".join(v for versions, _ in RESULT_TYPES for v in versions)
        raise ValueError(f"its result says cniVersion {str(declared)[:20]!r}, which libcni has no result type for "
                         f"({known}): a real runtime fails the pod there (unsupported CNI result version)")
    return {"cniVersion": declared, **{k: result[k] for k in fields if k in result}}


def check_result(result: Any, version: str) -> dict[str, Any]:
    """A plugin's stdout as a result, read by the version it declares (:func:`result_as_declared`) and handed on in
    the list's ``version``; ValueError (one line) when it is not one."""
    if not isinstance(result, dict):
        raise ValueError("its output is not a JSON object")
    result = result_as_declared(result, version)
    for fam in ("ip4", "ip6"):
        sect = result.get(fam)
        if sect is not None and not (isinstance(sect, dict) and isinstance(sect.get("ip"), str)):
            raise ValueError(f"its result's {fam} has no ip")
    for key in ("interfaces", "ips", "routes"):
        if key in result and not isinstance(result[key], list):
            raise ValueError(f"its result's {key} is not a list")
    result = convert_result(result, version)
    for ip in result.get("ips", []):
        if not isinstance(ip, dict) or "address" not in ip:
            raise ValueError("its result has an ips entry without address")
        try:
            if "/" not in ip["address"]:
                raise ValueError
            ip_interface(ip["address"])
        except (TypeError, ValueError):  # the address with its prefix, as the spec has it (10.244.0.2/24)
            raise ValueError(f"its result's ips address {str(ip['address'])[:50]!r} is not an address with its "
                             "prefix length (10.244.0.2/24)") from None
    _check_interface_indexes(result)
    return result


def _check_interface_indexes(result: dict[str, Any]) -> None:
    """ValueError (one line) for an ips entry whose ``interface`` is no index of the result's ``interfaces``:
    containerd's go-cni refuses such a result (createResult's validateInterfaceConfig: an invalid result, the sandbox
    fails), the plugins' ipam.ConfigureIface too ("invalid interface index"), and libcni reads ``interface`` as an
    integer (a Go *int): another JSON value is no result it can read."""
    count = len(result.get("interfaces") or [])
    has = ("no interfaces" if not count else "1 interface (0)" if count == 1 else
           f"{count} interfaces (0 to {count - 1})")
    for n, ip in enumerate(result.get("ips", [])):
        idx = ip.get("interface")
        if idx is None or (type(idx) is int and 0 <= idx < count):
            continue
        whole = type(idx) is int
        raise ValueError(f"its result's ips[{n}] ({str(ip['address'])[:50]}) names interface "
                         + (f"{idx}, but its result lists {has}" if whole else
                            f"{str(idx)[:20]!r}, which is no index (a whole number)")
                         + ": containerd refuses it (an invalid result: the pod's sandbox fails), as the plugins' own "
                         "IPAM code does (\"invalid interface index\")")


def kept_devices(net: Conflist) -> list[str]:
    """The node devices a chain's config names that its plugins keep between pods: each plugin's ``bridge`` (the
    bridge plugin's, cni0 when it names none; a plugin of its own with the same key, as examples/cni/bash-bridge)."""
    out = []
    for plugin in net.plugins:
        name = plugin.get("bridge", BRIDGE if plugin.get("type") == "bridge" else None)
        if isinstance(name, str) and name:
            out.append(name)
    return out


def host_interfaces(result: dict[str, Any]) -> list[str]:
    """The interfaces a result says the plugins made outside the pod (a bridge, the host end of a veth)."""
    return [i["name"] for i in result.get("interfaces", [])
            if isinstance(i, dict) and not i.get("sandbox") and isinstance(i.get("name"), str)]


def attachment(result: dict[str, Any], ifname: str = POD_IF) -> CniAttachment | None:
    """The pod as a result describes it: its address on ``ifname``, its MAC, the host's end of its veth.

    The container's interface is the one with a ``sandbox`` and the name ``ifname``.
    """
    ifaces = [i for i in result.get("interfaces", []) if isinstance(i, dict)]
    pod_idx = next((n for n, i in enumerate(ifaces) if i.get("sandbox") and i.get("name") == ifname), None)
    ip = gateway = prefixlen = None
    for entry in result.get("ips", []):
        idx = entry.get("interface")
        if pod_idx is None or idx is None or idx == pod_idx:
            iface = IPv4Interface(entry["address"]) if ":" not in entry["address"] else None
            if iface is not None:
                ip, prefixlen = iface.ip, iface.network.prefixlen  # its on-link prefix, as eth0 has it
                try:
                    gateway = IPv4Address(entry["gateway"]) if entry.get("gateway") else None
                except (TypeError, ValueError):  # not an IPv4 address: the result names no gateway we can use
                    gateway = None
                break
    if ip is None:
        return None
    # The host end of the pod's pair: the reference plugins list it just before the pod's interface
    # (bridge: [cni0, vethX, eth0]; ptp: [vethX, eth0]); a plugin that names no such interface has none.
    host = None
    if pod_idx is not None and pod_idx > 0 and not ifaces[pod_idx - 1].get("sandbox"):
        host = ifaces[pod_idx - 1]
    return CniAttachment(ip=ip, mac=ifaces[pod_idx].get("mac") if pod_idx is not None else None,
                         host_veth=host.get("name") if host else None, host_mac=host.get("mac") if host else None,
                         gateway=gateway, prefixlen=prefixlen)
