"""What a backend switch (vxlan <-> host-gw, or another underlay MTU) does to the running pods' MTU, in words.

netlab's `up` converges a running lab to its file: the running pods' eth0 (and their host veths) get the new
pod MTU in place. A real cluster does not do that: a pod keeps the MTU its CNI ADD gave (the bridge plugin sets it
once, from the delegate config flanneld's subnet.env gave) until the pod is recreated, and only new pods get the
new one, so a node runs pods of both MTUs for a while. The run says which pods it changed and how a real cluster
differs (QA 62k), once, as a warning; a repair of an MTU someone set by hand is not a switch and says nothing
more than its repair line.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from netlab.kernel.base import Op
from netlab.model import naming
from netlab.model.lab import Lab
from netlab.plan.resources import Link


def _pod_mtu(topology: Mapping[str, Any]) -> tuple[str, int] | None:
    """(mode, pod MTU) of a saved topology (``model_dump``'s dict: its defaults written out); None: unknown."""
    network = topology.get("network") or {}
    mode, mtu = network.get("mode"), (network.get("underlay") or {}).get("mtu")
    if not isinstance(mode, str) or not isinstance(mtu, int):
        return None
    return mode, mtu - 50 if mode == "vxlan" else mtu


def in_place_words(before: Mapping[str, Any] | None, lab: Lab, applied: Iterable[Op]) -> list[str]:
    """The warning for the pods whose eth0 ``applied`` set to the lab's new pod MTU, when the last topology's
    (``before``) pod MTU was another; none otherwise."""
    was = _pod_mtu(before or {})
    if was is None or was[1] == lab.pod_mtu:
        return []
    pods = {pod.netns: pod.name for pod in lab.pods}
    changed = sorted({pods[op.res.netns] for op in applied
                      if op.verb == "set" and isinstance(op.res, Link) and isinstance(op.old, Link)
                      and op.res.netns in pods and op.res.name == naming.POD_IF
                      and op.old.mtu == was[1] and op.res.mtu == lab.pod_mtu})
    if not changed:
        return []
    why = (f"the backend changed from {was[0]} to {lab.mode}" if was[0] != lab.mode else
           f"the underlay's MTU changed to {lab.underlay_mtu}")
    return [f"pod{'s' if len(changed) > 1 else ''} {', '.join(changed)}: eth0's MTU set from {was[1]} to "
            f"{lab.pod_mtu} in place ({why}); on a real cluster a running pod keeps the MTU its CNI ADD gave until "
            f"it is recreated, and only new pods get {lab.pod_mtu}"]
