"""Why a Service's spread over its endpoints cannot be measured: the answers of netlab's echo server name the pod
that gave them, and only endpoints whose echo server listens on their targetPort give any."""

from __future__ import annotations

from typing import TYPE_CHECKING

from netlab.probe.matrix import echo_ports

if TYPE_CHECKING:
    from netlab.model.lab import Lab
    from netlab.plan.services import ServicePortInfo


def unmeasured(lab: "Lab", sp: "ServicePortInfo", eps: tuple[tuple[str, str, int], ...]) -> str:
    """Why a Service port's answers cannot say which endpoint gave them: the endpoints whose echo server does
    not listen on their targetPort (each refuses its share: what it listens on instead, as `get pods` lists it),
    and those whose own command serves it (only netlab's echo server names the pod that answered)."""
    pods = {p.name: p for p in lab.pods}
    proto = sp.protocol.upper()
    deaf: dict[tuple[str, str], list[str]] = {}  # (its targetPort, what it listens on) -> endpoints
    commanded = []
    for pod, _, port in eps:
        info = pods[pod]
        if (port, proto) in echo_ports(info):
            continue
        if any(c.command is not None for c in info.containers):
            commanded.append(pod)
        else:
            heard = ", ".join(f"{p}/{q}" for p, q in sorted(echo_ports(info)))
            deaf.setdefault((f"{port}/{proto}", heard), []).append(pod)
    parts = []
    for (target, heard), names in deaf.items():
        many = len(names) > 1
        parts.append(f"endpoint{'s' if many else ''} {', '.join(names)} {'do' if many else 'does'} not listen on "
                     f"{target}: {'their echo servers listen' if many else 'its echo server listens'} on {heard} "
                     f"only (netlab get pods lists it), so {'they refuse their' if many else 'it refuses its'} share "
                     "of the connections")
    if commanded:
        many = len(commanded) > 1
        parts.append(f"endpoint{'s' if many else ''} {', '.join(commanded)} {'run' if many else 'runs'} a command "
                     "of the topology there, not netlab's echo server, so nothing says which one answered")
    return "; ".join(parts)
