"""The flows NetworkPolicies allow, drawn: an arrow from pod to pod.

One arrow per ordered pair of pods (never a pod to itself) that the policies
allow on at least one port the destination serves (the ports ``probe`` sends to: those its containers declare,
the echo server's; :func:`~netlab.probe.matrix.probe_ports`), labelled with those ports (``all served ports``
when every one of them is allowed). Only those ports are evaluated: a pair with no arrow is denied on every port
the destination serves, and may be allowed on another (a policy allowing port 80 to a pod that serves 8080 only
draws no arrow: QA q21 #3); ``netlab trace SRC DST --port N`` judges any port. The verdicts are the evaluator's
(:mod:`netlab.model.netpol`), the same that ``netlab policy table`` prints and ``netlab probe`` checks.
"""

from __future__ import annotations

import re

from netlab.graph import Box, Graph, Group, Link
from netlab.model.lab import Lab
from netlab.model.netpol import Peer, policy_set
from netlab.probe.matrix import probe_ports

ALL_PORTS = "all served ports"  # an arrow's label when every port the destination serves is allowed


def allowed_pairs(lab: Lab) -> list[tuple[str, str, str]]:
    """(source pod, destination pod, label) for every pair allowed on some served port."""
    ps = policy_set(lab)
    views = {p.name: p for p in ps.pods}
    out = []
    for src in lab.pods:
        for dst in lab.pods:
            if src.name == dst.name:
                continue
            s, d = views[src.name], views[dst.name]
            ports = [(proto, port) for port, proto, _ in probe_ports(dst)]
            ok = [(proto, port) for proto, port in ports
                  if ps.flow(Peer(s.ip, s), Peer(d.ip, d), proto.upper(), port).allowed]
            if ok:
                label = ALL_PORTS if len(ok) == len(ports) else ", ".join(f"{p}/{n}" for p, n in ok)
                out.append((src.name, dst.name, label))
    return out


def policy_graph(lab: Lab) -> Graph:
    """Pods framed by Kubernetes namespace, and an arrow per allowed pod-to-pod flow (style ``policy``).

    A picture of its own rather than arrows over the lab's wiring: 9 pods have
    up to 72 arrows, which would hide the wiring and take Graphviz minutes to
    lay out across the node frames.
    """
    g = Graph(title=f"lab {lab.name}: pod-to-pod flows the NetworkPolicies allow on the ports each destination "
                    f"serves (no arrow: denied on every port it serves)")
    box = {}
    for ns in sorted({p.spec.namespace for p in lab.pods}):
        grp = Group(f"ns_{_ident(ns)}", f"namespace {ns}")
        for pod in [p for p in lab.pods if p.spec.namespace == ns]:
            box[pod.name] = f"pod_{_ident(pod.name)}"
            labels = ", ".join(f"{k}={v}" for k, v in pod.spec.labels.items())
            grp.boxes.append(Box(box[pod.name], f"{pod.name}\n{pod.ip} on {pod.node}" + (f"\n{labels}" if labels
                                                                                       else ""), "pod"))
        g.groups.append(grp)
    for src, dst, label in allowed_pairs(lab):
        g.links.append(Link(box[src], box[dst], label, "policy"))
    return g


def _ident(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text)
