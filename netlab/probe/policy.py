"""What the probe matrix expects once NetworkPolicies exist: the evaluator's verdict.

Pure (model only). Without policies every pod and node reaches every pod (the
Kubernetes network model); with them, :mod:`netlab.model.netpol` says which
flows are allowed, from the policies' meaning alone, and the prober checks
the kernel agrees. ``expect:`` entries still override (matrix.py applies them
after this).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from netlab.model.netpol import Peer, lab_peer, policy_set

if TYPE_CHECKING:
    from netlab.model.lab import Lab
    from netlab.probe.matrix import Endpoint

Judge = Callable[["Endpoint", "Endpoint", str, "int | None"], "tuple[bool, str]"]


def policy_judge(lab: "Lab") -> Judge | None:
    """(source, destination, proto, port) -> (expected reachable, reason); None without policies."""
    if not lab.topo.network_policies:
        return None
    ps = policy_set(lab)
    peers: dict[str, Peer | None] = {}

    def peer(name: str) -> Peer | None:
        if name not in peers:
            peers[name] = lab_peer(lab, ps, name)
        return peers[name]

    def judge(src: "Endpoint", dst: "Endpoint", proto: str, port: int | None) -> tuple[bool, str]:
        s, d = peer(src.name), peer(dst.name)
        if s is None or d is None:
            return True, "default"
        verdict = ps.flow(s, d, "ICMP" if proto == "icmp" else proto.upper(), port)
        return verdict.allowed, "policy: " + verdict.describe()

    return judge
