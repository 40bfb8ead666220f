"""The portmap plugin's rules for the hostPorts of a builtin lab's pods, in the node's nat table.

Every node's ``/etc/cni/net.d/10-flannel.conflist`` (kube-flannel's, plan/flannel.py) chains ``portmap`` after
``flannel``, with the ``portMappings`` capability: on a real Flannel node a pod's hostPort is portmap's DNAT.
netlab's builtin network plays that plugin as it plays Flannel's bridge: for each pod of the node with host ports,
the rules Debian's portmap (containernetworking/plugins 1.1.1, its iptables backend) adds on the pod's ADD, as
``iptables-save -t nat`` prints them (``snat`` and ``markMasqBit`` at their defaults: true, 13)::

    -A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT          (appended, after kube-proxy's)
    -A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
    -A POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ   (prepended)
    -A CNI-DN-<hash> -s 10.244.0.0/24 -p tcp -m tcp --dport 18080 -j CNI-HOSTPORT-SETMARK   (hairpin)
    -A CNI-DN-<hash> -s 127.0.0.1/32 -p tcp -m tcp --dport 18080 -j CNI-HOSTPORT-SETMARK   (the node's localhost)
    -A CNI-DN-<hash> -p tcp -m tcp --dport 18080 -j DNAT --to-destination 10.244.0.2:8080
    -A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"cbr0\\" id: \\"<id>\\"" -m multiport
       --dports 18080 -j CNI-DN-<hash>
    -A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE
    -A CNI-HOSTPORT-SETMARK -m comment --comment "CNI portfwd masquerade mark" -j MARK --set-xmark 0x2000/0x2000

The pod's chain is ``CNI-DN-`` and the sha512 of network name and container id in hex, 28 characters in all
(``utils.MustFormatChainNameWithPrefix``); its rules come three per mapping in mapping order (``-d <hostIP>``
with a hostIP), its dispatch rules one per protocol (sorted) and up to 15 ports each. A builtin pod has no
runtime sandbox: its container id is the sha256 of ``<lab>/<pod>`` (64 hex, as containerd's), so the plan stays
the same from run to run.

The kubelet stops the sandbox of a terminal pod (every container exited for good: phase Succeeded or Failed,
``Lab.terminal``: syncTerminatingPod -> killPod -> StopPodSandbox), whose CNI DEL runs portmap's: such a pod has
no rules of its own here, as after that DEL.

portmap's DEL (unforwardPorts) takes out the pod's ``CNI-DN-`` chain and its dispatch rules alone: the shared
chains and their jumps stay on the node once an ADD made them, empty ``CNI-HOSTPORT-DNAT`` and all. So a node
of a running lab keeps them after its last pod with a hostPort goes, or loses its hostPorts
(``Held.portmap_nodes``, saved with the lab's addresses), until the node or the lab goes; a lab brought up
afresh makes them only where a pod has a hostPort.

With ``snat`` portmap also sets ``route_localnet=1`` on the node's interface that routes to the pod
(``getRoutableHostIF``: cni0, holding the pod CIDR's gateway), so that the node's own ``127.0.0.1:<hostPort>``
crosses to the pod after the DNAT (the kernel refuses a 127/8 source out of another interface otherwise: kube-proxy's
nftables mode leaves ``all`` at 0); never set back to 0 (its DEL leaves it): :func:`localnet_sysctls`. Pure.
"""

from __future__ import annotations

import hashlib
from itertools import groupby

from netlab.model.hostports import port_mappings
from netlab.model.lab import Lab, NodeInfo
from netlab.model.naming import BRIDGE
from netlab.plan.flannel import CNI_NETWORK_NAME
from netlab.plan.iptables import Ruleset
from netlab.plan.sysctls import interface_sysctls

DISPATCH = "CNI-HOSTPORT-DNAT"  # portmap's chain, jumped to from PREROUTING (and OUTPUT)
POD_CHAIN = "CNI-DN-"  # + a hash of the network and the container: each pod's own DNATs
SETMARK = "CNI-HOSTPORT-SETMARK"
MASQ = "CNI-HOSTPORT-MASQ"
MARK = "0x2000/0x2000"  # 1 << markMasqBit 13
CHAIN_LENGTH = 28  # utils maxChainLength
PORTS_PER_RULE = 15  # multiport's limit (splitPortList)


def container_id(lab: str, pod: str) -> str:
    """A builtin pod's CNI_CONTAINERID: 64 hex, the same for the pod in every run of the lab."""
    return hashlib.sha256(f"{lab}/{pod}".encode()).hexdigest()


def pod_chain(network: str, cid: str) -> str:
    """``CNI-DN-`` + sha512(network + container id), 28 characters."""
    return (POD_CHAIN + hashlib.sha512((network + cid).encode()).hexdigest())[:CHAIN_LENGTH]


def comment(network: str, cid: str) -> str:
    """``dnat name: "cbr0" id: "<id>"``, as the restore payload quotes it (trimComment: at most 255 characters)."""
    text = f'dnat name: "{network}" id: "{cid}"'
    text = text if len(text) <= 255 else text[:253] + "..."
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def localnet_sysctls(lab: Lab, node: NodeInfo) -> tuple[tuple[str, str], ...]:
    """portmap's ``net.ipv4.conf.cni0.route_localnet=1`` on a node of a builtin lab with a pod given hostPorts
    (none: portmap is never given a mapping there), kept with the shared chains after its last one goes (its DEL
    leaves both)."""
    if lab.cni != "builtin":
        return ()
    kept = lab.held_before is not None and node.name in lab.held_before.portmap_nodes
    if not kept and not any(pod.node == node.name and port_mappings(pod.spec) for pod in lab.pods):
        return ()
    return interface_sysctls(BRIDGE, (("route_localnet", "1"),))


def hostport_rules(rs: Ruleset, lab: Lab, node: NodeInfo) -> bool:
    """Into a node's nat Ruleset: portmap's rules for the host ports of the node's pods (none: nothing, as
    portmap adds nothing for a pod without one), in a builtin lab only (a reference or conflist lab's plugins
    are the real ones), but for a terminal pod (Succeeded or Failed, ``lab.terminal``), whose sandbox the kubelet
    stops: its DEL leaves the shared chains. Whether it wrote any (the payload's title names portmap then)."""
    if lab.cni != "builtin":
        return False
    mapped = [(pod, maps) for pod in lab.pods if pod.node == node.name if (maps := port_mappings(pod.spec))]
    kept = lab.held_before is not None and node.name in lab.held_before.portmap_nodes
    if not mapped and not kept:
        return False
    # a terminal pod's sandbox is stopped, and its CNI DEL took out its own chain and dispatch rules: the shared
    # chains its ADD made stay
    pods = [(pod, maps) for pod, maps in mapped if pod.name not in lab.terminal]
    rs.chain(SETMARK)
    rs.chain(MASQ)
    rs.chain(DISPATCH)
    rs.note("portmap (10-flannel.conflist's second plugin): each pod's hostPorts, DNATed from the node's "
            "own addresses" + ("" if pods else "; its shared chains, kept after its last hostPort pod's DEL"))
    rs.add(SETMARK, f'-m comment --comment "CNI portfwd masquerade mark" -j MARK --set-xmark {MARK}')
    rs.add(MASQ, f"-m mark --mark {MARK} -j MASQUERADE")
    rs.jump_first("POSTROUTING", f'-m comment --comment "CNI portfwd requiring masquerade" -j {MASQ}')
    for hook in ("PREROUTING", "OUTPUT"):
        rs.jump(hook, f"-m addrtype --dst-type LOCAL -j {DISPATCH}")
    for pod, maps in pods:
        cid = container_id(lab.name, pod.name)
        chain = rs.chain(pod_chain(CNI_NETWORK_NAME, cid))
        for m in maps:
            base = f"-p {m['protocol']} --dport {m['hostPort']}"
            if m["hostIP"] and m["hostIP"] != "0.0.0.0":
                base += f" -d {m['hostIP']}"
            rs.add(chain, f"{base} -s {pod.ip}/{node.pod_cidr.prefixlen} -j {SETMARK}")
            rs.add(chain, f"{base} -s 127.0.0.1 -j {SETMARK}")
            rs.add(chain, f"{base} -j DNAT --to-destination {pod.ip}:{m['containerPort']}")
        by_proto = sorted(maps, key=lambda m: m["protocol"])
        for proto, group in groupby(by_proto, key=lambda m: m["protocol"]):
            ports = [str(m["hostPort"]) for m in group]
            for i in range(0, len(ports), PORTS_PER_RULE):
                rs.add(DISPATCH, f"-m comment --comment {comment(CNI_NETWORK_NAME, cid)} -m multiport -p {proto} "
                                 f"--destination-ports {','.join(ports[i:i + PORTS_PER_RULE])} -j {chain}")
    return True
