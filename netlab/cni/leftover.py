"""What a pod's plugins may leave behind when its DEL fails, in words, for the warning that says so.

A DEL undoes what the pod's ADD made outside the pod's namespace: an IPAM's lease (host-local's file per address in
its ``dataDir``), portmap's and ipMasq's iptables rules, firewall's chain entries. The pod's namespace goes anyway
(and its veth pair with it, so the bridge port too); what a failed DEL leaves is on the node, or in a directory.
Read from the pod's record (the chains as its ADD got them), nothing run.
"""

from __future__ import annotations

import os
from typing import Any

from netlab.model.hostlocal import data_dir, host_local_ipam

HOST_LOCAL_DIR = "/var/lib/cni/networks"  # host-local's default dataDir


def _ip(prec: dict[str, Any]) -> str | None:
    att = prec.get("attachment")
    if isinstance(att, dict) and isinstance(att.get("ip"), str):
        return str(att["ip"])
    return next((str(a[1]) for a in prec.get("args") or [] if isinstance(a, list) and len(a) == 2 and a[0] == "IP"),
                None)


Undone = list[tuple[str, int]]  # (network, index in its plugins) of each plugin whose DEL failed or never ran


def left_behind(prec: dict[str, Any], outside: str | None = None, undone: Undone | None = None) -> list[str]:
    """What the pod's plugins may keep after a failed DEL, one phrase each; ``outside``: only what lies outside this
    directory and the node (the lab's state directory, when the whole lab goes with its nodes); ``undone``: only
    what these plugins made (DEL runs in reverse order: the plugins after the failing one undid theirs; QA q20 #5).
    host-local's lease is said only when its file (named by the pod's address) is there: an ADD that host-local
    refused before leasing (a range it cannot read, whose DEL it refuses too) left none, and the address is the one
    planned, not one leased.
    """
    out: list[str] = []
    for raw, _ in prec.get("networks") or []:
        if not isinstance(raw, dict):
            continue
        for n, plugin in enumerate(raw.get("plugins") or []):
            if not isinstance(plugin, dict) or (undone is not None and (raw.get("name"), n) not in undone):
                continue
            kind = plugin.get("type")
            if host_local_ipam(plugin) is not None:  # its own ipam, Flannel's, a wrapper's delegate's
                folder = os.path.join(data_dir(plugin) or HOST_LOCAL_DIR, str(raw.get("name", "")))
                if outside is None or not os.path.abspath(folder).startswith(os.path.abspath(outside) + os.sep):
                    ip = _ip(prec)
                    if ip is None or os.path.lexists(os.path.join(folder, ip)):
                        out.append(f"host-local's lease{f' of {ip}' if ip else ''} in {folder}")
            if outside is not None:
                continue  # the rules are the node's, and go with it
            if kind == "portmap":
                out.append("portmap's iptables rules (CNI-HOSTPORT-*, CNI-DN-*)")
            elif kind == "firewall":
                out.append("firewall's iptables rules (CNI-FORWARD)")
            if plugin.get("ipMasq") is True:
                out.append(f"{kind}'s ipMasq rules (CNI-* in nat POSTROUTING)")
    return list(dict.fromkeys(out))


def kept_words(pod: str, prec: dict[str, Any], undone: Undone | None = None) -> str:
    """Said after a removed pod's failed DEL, its node still there: what may be left, and that DEL runs again."""
    what = ", ".join(left_behind(prec, undone=undone)) or "what its plugins keep there"
    return (f"; on node {prec.get('node', '?')} may be left {what}: the lab keeps pod {pod}'s CNI record, and the "
            f"next up or down runs DEL again")


def gone_words(prec: dict[str, Any], lab_dir: str, undone: Undone | None = None) -> str:
    """Said after a failed DEL when the whole lab goes: its nodes take the rules; what lies outside stays."""
    outside = left_behind(prec, outside=lab_dir, undone=undone)
    if outside:
        return f"; the lab goes with its nodes, but {', '.join(outside)} stays (remove it by hand)"
    return "; the lab goes with its nodes and state directory, and what its plugins kept goes with them"
