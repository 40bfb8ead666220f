"""What a lab's state recorded of its CNI plugins, read without the topology file: the plugin folders the lab was
made with (CNI_PATH for DEL at ``down`` and for a rollback) and a pod's cached result (``inspect``: what its main
network's plugins answered to ADD, as libcni keeps it under the lab's ``cni`` folder)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from netlab.cni import conf as C
from netlab.cni.invoke import CallLog
from netlab.cni.runtime import Runtime, RuntimeConf
from netlab.realize import cni_path
from netlab.realize.attachments import pod_records
from netlab.realize.state_dir import lab_dir

if TYPE_CHECKING:
    from netlab.realize.state import LabState


def bin_dirs_of(state: LabState) -> list[str]:
    """CNI_PATH from the saved topology (down needs no file)."""
    cni = ((state.topology.get("network") or {}).get("cni")) if isinstance(state.topology, dict) else None
    user = cni.get("binDir") if isinstance(cni, dict) else None
    machine = cni_path.recorded(state) or cni_path.plugin_dirs(C.CNI_BIN_DIR)  # as the lab was made (cni/paths.py)
    return ([user] if isinstance(user, str) and user not in machine else []) + machine


def result_of(state: LabState, pod: str) -> dict[str, Any] | None:
    """The pod's cached CNI result (its main network), for inspect."""
    prec = pod_records(state).get(pod)
    if not isinstance(prec, dict) or not prec.get("networks"):
        return None
    raw, ifname = prec["networks"][-1]
    rt = RuntimeConf(pod=pod, container_id=prec["containerId"], netns=prec["netns"], ifname=ifname, node_netns=None)
    rt_ = Runtime(os.path.join(lab_dir(state.lab, create=False), "cni"), bin_dirs_of(state), CallLog(None))
    return rt_.cached_result(raw.get("name", ""), rt)
