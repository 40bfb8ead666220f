"""What flanneld and Flannel's CNI plugin leave on a node besides the overlay: rules and files.

Rules (flannel-io/flannel ``pkg/trafficmngr/iptables``, checked by its own
``e2e/rules.go``), with ``<network>`` the cluster pod CIDR (Flannel's
``Network``, 10.244.0.0/16) and ``<lease>`` the node's subnet (10.244.0.0/24)::

    nat POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG
    FLANNEL-POSTRTG (each rule commented "flanneld masq"):
      -m mark --mark 0x4000/0x4000 -j RETURN     kube-proxy already masquerades what it marked
      -s <lease> -d <network> -j RETURN           pod to pod keeps its source (rule 1)
      -s <network> -d <lease> -j RETURN
      ! -s <network> -d <lease> -j RETURN         from outside to this node's pods: no NAT
      -s <network> ! -d 224.0.0.0/4 -j MASQUERADE --random-fully   pods leaving the pod network
      ! -s <network> -d <network> -j MASQUERADE --random-fully     the node itself into the overlay

    filter FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD
    FLANNEL-FWD: -s <network> ... -j ACCEPT, -d <network> ... -j ACCEPT ("flanneld forward")

``--random-fully`` is there because this machine's iptables supports it (Flannel
checks ``HasRandomFully``, as kube-proxy does).

Files:

- ``/run/flannel/subnet.env``, written by flanneld (``WriteSubnetFile``):
  ``FLANNEL_NETWORK``, ``FLANNEL_SUBNET`` (the lease's first address, the
  bridge's), ``FLANNEL_MTU``, ``FLANNEL_IPMASQ`` (``true``: kube-flannel runs
  flanneld with ``--ip-masq``);
- ``/etc/cni/net.d/10-flannel.conflist``: kube-flannel.yml's ``cni-conf.json``,
  which the install-cni container copies there;
- the delegate config Flannel's CNI plugin builds from both for the ``bridge``
  plugin (flannel-io/cni-plugin ``doCmdAdd``): where a pod's veth, addresses
  and routes come from.
"""

from __future__ import annotations

import json
from typing import Any

from netlab.model.lab import Lab, NodeInfo
from netlab.plan.iptables import Ruleset

FLANNEL_POSTRTG = "FLANNEL-POSTRTG"
FLANNEL_FWD = "FLANNEL-FWD"
KUBE_PROXY_MARK = "0x4000/0x4000"  # trafficmngr.KubeProxyMark
MULTICAST = "224.0.0.0/4"
MASQ_COMMENT = '-m comment --comment "flanneld masq"'
FORWARD_COMMENT = '-m comment --comment "flanneld forward"'
IP_MASQ = True  # kube-flannel.yml: flanneld --ip-masq

SUBNET_ENV = "/run/flannel/subnet.env"
CNI_CONFLIST = "/etc/cni/net.d/10-flannel.conflist"
CNI_NETWORK_NAME = "cbr0"
CNI_VERSION = "0.3.1"


def masq_rules(rs: Ruleset, lab: Lab, node: NodeInfo) -> None:
    """FLANNEL-POSTRTG of one node (``masqRules``), in a nat Ruleset."""
    network, lease = lab.topo.cluster.pod_cidr, node.pod_cidr
    rs.chain(FLANNEL_POSTRTG)
    rs.jump("POSTROUTING", f"{MASQ_COMMENT} -j {FLANNEL_POSTRTG}")
    rs.note(f"Flannel (flanneld --ip-masq): pod traffic leaving the pod network {network} goes out with the")
    rs.note("node's address; pod to pod, also after a Service's DNAT, keeps its source (rule 1 of the model).")
    for spec in (f"-m mark --mark {KUBE_PROXY_MARK} {MASQ_COMMENT} -j RETURN",
                 f"-s {lease} -d {network} {MASQ_COMMENT} -j RETURN",
                 f"-s {network} -d {lease} {MASQ_COMMENT} -j RETURN",
                 f"! -s {network} -d {lease} {MASQ_COMMENT} -j RETURN",
                 f"-s {network} ! -d {MULTICAST} {MASQ_COMMENT} -j MASQUERADE --random-fully",
                 f"! -s {network} -d {network} {MASQ_COMMENT} -j MASQUERADE --random-fully"):
        rs.add(FLANNEL_POSTRTG, spec)


def forward_rules(rs: Ruleset, lab: Lab) -> None:
    """FLANNEL-FWD (``forwardRules``), in a filter Ruleset: the same on every node."""
    network = lab.topo.cluster.pod_cidr
    rs.chain(FLANNEL_FWD)
    rs.jump("FORWARD", f"{FORWARD_COMMENT} -j {FLANNEL_FWD}")
    rs.note("Flannel: forward to and from the pod network whatever the FORWARD policy is.")
    rs.add(FLANNEL_FWD, f"-s {network} {FORWARD_COMMENT} -j ACCEPT")
    rs.add(FLANNEL_FWD, f"-d {network} {FORWARD_COMMENT} -j ACCEPT")


def flannel_mtu(lab: Lab) -> int:
    """The MTU flanneld writes (and pods get): the VTEP's, or the NIC's with host-gw."""
    return lab.pod_mtu


def subnet_env(lab: Lab, node: NodeInfo) -> str:
    """``/run/flannel/subnet.env`` of a node, byte for byte as ``WriteSubnetFile`` writes it."""
    return (f"FLANNEL_NETWORK={lab.topo.cluster.pod_cidr}\n"
            f"FLANNEL_SUBNET={node.gateway}\n"
            f"FLANNEL_MTU={flannel_mtu(lab)}\n"
            f"FLANNEL_IPMASQ={'true' if IP_MASQ else 'false'}\n")


def cni_conflist() -> str:
    """``/etc/cni/net.d/10-flannel.conflist``: kube-flannel.yml's cni-conf.json, as the file holds it."""
    return """{
  "name": "cbr0",
  "cniVersion": "0.3.1",
  "plugins": [
    {
      "type": "flannel",
      "delegate": {
        "hairpinMode": true,
        "isDefaultGateway": true
      }
    },
    {
      "type": "portmap",
      "capabilities": {
        "portMappings": true
      }
    }
  ]
}
"""


def delegate_config(lab: Lab, node: NodeInfo) -> dict[str, Any]:
    """What Flannel's CNI plugin hands the ``bridge`` plugin for a pod of ``node`` (``doCmdAdd``).

    The conflist's delegate (hairpinMode, isDefaultGateway), plus ``name``,
    ``type: bridge``, ``ipMasq`` (the opposite of FLANNEL_IPMASQ: flanneld
    masquerades already), ``mtu`` (FLANNEL_MTU), ``isGateway``, ``cniVersion``,
    and an ipam section: host-local over FLANNEL_SUBNET with a route to
    FLANNEL_NETWORK. The bridge's name is the bridge plugin's default, cni0.
    """
    conf = json.loads(cni_conflist())
    delegate = dict(conf["plugins"][0]["delegate"])
    delegate.update({
        "name": conf["name"], "type": "bridge", "ipMasq": not IP_MASQ, "mtu": flannel_mtu(lab), "isGateway": True,
        "cniVersion": conf["cniVersion"],
        "ipam": {"type": "host-local", "ranges": [[{"subnet": str(node.pod_cidr)}]],
                 "routes": [{"dst": str(lab.topo.cluster.pod_cidr)}]},
    })
    return delegate
