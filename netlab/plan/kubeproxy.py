"""kube-proxy on every node, in the lab's mode (``cluster.kubeProxyMode``, kind's name for it).

``iptables`` (the default): KUBE-* chains in the nat and filter tables
(plan/services.py). ``nftables``: the table ``ip kube-proxy``
(plan/nftables.py). Flannel's chains are iptables in both, as on a real node.
"""

from __future__ import annotations

from netlab.model.lab import Lab
from netlab.plan import nftables, services
from netlab.plan.resources import Resource


def resources(lab: Lab) -> list[Resource]:
    if lab.topo.cluster.kube_proxy_mode == "nftables":
        return nftables.resources(lab)
    return services.resources(lab)
