"""What the lab's state remembers of each pod's CNI attachment (``state.extra["cni"]``), without running anything.

``{"pods": {POD: {"phase": "adding" | "added", "node", "containerId", "netns",
"networks": [[conflist, ifname], ...], "attachment": {ip, mac, host_veth, host_mac}}}}``.
"adding" is written before the first plugin runs, so a crash or a failed ADD
still leaves the lab a record to DEL.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Any

from netlab.model.lab import CniAttachment, Lab

if TYPE_CHECKING:
    from netlab.realize.state import LabState

KEY = "cni"


def pod_records(state: "LabState") -> dict[str, dict[str, Any]]:
    rec = state.extra.get(KEY)
    if not isinstance(rec, dict) or not isinstance(rec.get("pods"), dict):
        rec = {"pods": {}}
        state.extra[KEY] = rec
    return rec["pods"]


def attachments(state: "LabState") -> dict[str, CniAttachment]:
    out = {}
    rec = state.extra.get(KEY)
    pods = rec.get("pods") if isinstance(rec, dict) else None
    for name, prec in (pods or {}).items():
        att = prec.get("attachment") if isinstance(prec, dict) and prec.get("phase") == "added" else None
        if not isinstance(att, dict):
            continue
        try:
            out[name] = CniAttachment(ip=IPv4Address(att["ip"]), mac=att.get("mac"), host_veth=att.get("host_veth"),
                                      host_mac=att.get("host_mac"))
        except (KeyError, ValueError, TypeError):
            continue  # a damaged record: status shows the pod as netlab planned it
    return out


def attachment_json(att: CniAttachment) -> dict[str, Any]:
    return {"ip": str(att.ip), "mac": att.mac, "host_veth": att.host_veth, "host_mac": att.host_mac}


def attached_lab(lab: Lab, state: "LabState | None") -> Lab:
    """``lab`` with its pods as their plugins made them (a builtin lab is left as it is)."""
    if state is None or lab.cni == "builtin":
        return lab
    known = {p.name for p in lab.pods}
    return lab.with_attachments({k: v for k, v in attachments(state).items() if k in known})
