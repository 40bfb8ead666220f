"""portmap's hostPort DNAT, named as kube-proxy's nodePort DNAT is: the rule that took the packet, and the pod.

The CNI portmap plugin (chained after bridge, say) gives a container port's
``hostPort`` a DNAT in the node's nat table, as ``iptables-save`` shows it::

    -A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
    -A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: ..." -m multiport --dports 18081 -j CNI-DN-<hash>
    -A CNI-DN-<hash> -p tcp -m tcp --dport 18081 -j DNAT --to-destination 10.244.0.2:8080

conntrack says where the packet went (nat.py); the pod's chain says who sent
it there, and the DNAT's address which pod that is. A trace to a node's
hostPort ended "delivered to n1", ``endpoint`` null, its DNAT row naming no
rule, though the packet was delivered to the pod (QA qr3 #4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator

from netlab.cni.portmap import DISPATCH, POD_CHAIN, missing_rules, uses_portmap
from netlab.errors import NetlabError
from netlab.kernel.iptables import command as ipt_command
from netlab.model.cniconf import ConflistError
from netlab.model.hostports import port_mappings
from netlab.plan.cniadd import user_conflist
from netlab.plan.flannel import CNI_NETWORK_NAME
from netlab.plan.portmap_rules import container_id, pod_chain
from netlab.probe.matrix import terminated
from netlab.realize.attachments import KEY as CNI_KEY
from netlab.trace.facts import NatRule, NatTable
from netlab.trace.flow import Flow

if TYPE_CHECKING:
    from netlab.model.lab import Lab


@dataclass(frozen=True)
class HostPortDnat:
    """The portmap rules that DNATed a packet to a pod: the dispatch's jump and the pod's DNAT."""

    jump: NatRule  # in CNI-HOSTPORT-DNAT, to the pod's chain
    rule: NatRule  # in the pod's CNI-DN-<hash>, the DNAT

    @property
    def chain(self) -> str:
        return self.rule.chain

    def counted(self) -> str:
        """`` (its counter went up by 1 during the trace)``, or nothing when the counter was not read before."""
        d = self.rule.delta
        return "" if d is None else f" (its counter went up by {d} during the trace)"


def _words(line: str) -> list[str]:
    return line.split()


def _after(words: list[str], flag: str) -> str | None:
    return next((words[i + 1] for i, w in enumerate(words[:-1]) if w == flag), None)


def _local_to(words: list[str], dst: str) -> bool:
    """No ``-d`` (every local address: a hostPort without hostIP), or ``-d`` the packet's address."""
    d = _after(words, "-d")
    return d is None or d.split("/")[0] == dst


def _dnats(table: NatTable | None, old: Flow) -> Iterator[tuple[HostPortDnat, Flow]]:
    """The portmap rules that DNAT ``old`` (a packet to a local address and a hostPort), each with the packet they
    make of it."""
    if table is None or DISPATCH not in table.chains or old.dport is None:
        return
    for jump in table.chain_rules(DISPATCH):
        words = _words(jump.line)
        ports = (_after(words, "--dports") or _after(words, "--dport") or "").split(",")
        if not (jump.target or "").startswith(POD_CHAIN) or str(old.dport) not in ports \
                or _after(words, "-p") not in (None, old.proto) or not _local_to(words, old.dst):
            continue
        for rule in table.chain_rules(jump.target or ""):
            w = _words(rule.line)
            to = (_after(w, "--to-destination") or "").rpartition(":")
            if rule.target == "DNAT" and to[2].isdigit() and _after(w, "-p") == old.proto \
                    and _after(w, "--dport") == str(old.dport) and _local_to(w, old.dst):
                yield HostPortDnat(jump, rule), old.with_dst(to[0], int(to[2]))


def dnat_of(table: NatTable | None, old: Flow, new: Flow) -> HostPortDnat | None:
    """The portmap rules that DNAT ``old`` (a packet to a local address and a hostPort) to ``new``'s destination;
    None when the node's nat table has none that does (kube-proxy's, another rule, a table not read)."""
    if new.dport is None:
        return None
    return next((found for found, to in _dnats(table, old) if (to.dst, to.dport) == (new.dst, new.dport)), None)


def rule_for(table: NatTable | None, old: Flow) -> tuple[HostPortDnat, Flow] | None:
    """The portmap rules that DNAT ``old`` and the packet they make of it, read from the rules alone (a packet
    dropped before conntrack kept an entry: no entry says where it went); None when no rule of portmap's does."""
    return next(_dnats(table, old), None)


def facts(found: HostPortDnat, pod: str, new: Flow) -> dict:
    """The DNAT row's facts, which make the trace's ``endpoint`` (render.py): the pod, its address and port, the
    pod's chain and the rule, ``via`` HostPort."""
    return {"endpoint": pod, "endpoint_ip": new.dst, "endpoint_port": new.dport, "sep_chain": found.chain,
            "svc_chain": DISPATCH, "rule": found.rule.line, "rule_counted": found.rule.delta, "via": "HostPort"}


def words(found: HostPortDnat, pod: str, old: Flow) -> str:
    """``: hostPort 18081 of pod a, CNI-HOSTPORT-DNAT → CNI-DN-...: portmap's `-A CNI-DN-... -j DNAT ...```."""
    return (f": hostPort {old.dport} of pod {pod}, {DISPATCH} → {found.chain}: portmap's `{found.rule.line}`"
            f"{found.counted()}")


def unmapped(lab: Lab, ip_names: dict[str, str], nat_table: Callable[[str], NatTable | None], netns: str,
             proto: str, port: int) -> tuple[str, str | None] | None:
    """A packet to ``port`` of node ``netns`` that no socket there took: when that port is a hostPort of a pod of
    this node whose DNAT portmap's rules no longer hold (flushed by hand: QA cnihost 2), which pod and which rule is
    gone, and the iptables command that puts it back (None: more than one is gone, up puts them back). None: no
    pod's hostPort, or its rules are there, or the nat table was not read, or the pod's chain has no portmap of
    iptables rules (:func:`portmap_pods`), or the pod is terminal (:func:`terminal_port`)."""
    node = next((n for n in lab.nodes if n.netns == netns), None)
    if node is None:
        return None
    pods = [(pod, mappings) for pod in lab.pods if pod.node == node.name
            if (mappings := [m for m in port_mappings(pod.spec) if m["hostPort"] == port and m["protocol"] == proto])]
    portmapped = portmap_pods(lab) - lab.terminal if pods else set()  # a terminal pod's sandbox DEL took them
    pods = [(pod, mappings) for pod, mappings in pods if pod.name in portmapped]  # no portmap: no DNAT to lose
    table = nat_table(netns) if pods else None  # read only for a port that is a hostPort here
    if table is None:
        return None
    lines = [r.line for r in table.rules]
    for pod, mappings in pods:
        ip = next((a for a, name in ip_names.items() if name == pod.name), str(pod.ip))
        # a builtin pod's chain is netlab's to name (plan/portmap_rules.py); a plugin's is its container's
        cid = container_id(lab.name, pod.name) if lab.cni == "builtin" else None
        chain = pod_chain(CNI_NETWORK_NAME, cid) if cid else None
        said = f'dnat name: "{CNI_NETWORK_NAME}" id: "{cid}"' if cid else None  # its dispatch rule's comment
        gone = missing_rules(lines, mappings, ip, chain, said)
        if gone:
            heal = "writes the node's nat rules again" if lab.cni == "builtin" else "re-attaches the pod"
            fix = f"ip netns exec {netns} {ipt_command()} -t nat {gone.rule}" if gone.rule else None
            return (f"{proto} port {port} of {node.name} is pod {pod.name}'s hostPort, but {gone.text}; up {heal} "
                    f"(ip netns exec {netns} {ipt_command('iptables-save')} -t nat)", fix)
    return None


def terminal_port(lab: Lab, netns: str, proto: str, port: int) -> str | None:
    """A packet to ``port`` of node ``netns`` that no socket there took: when that port is a hostPort of a terminal
    pod whose chain has portmap (every pod's of a builtin lab: :func:`portmap_pods`), why nothing DNATs it (as
    planned: no fault, no fix). None otherwise."""
    node = next((n for n in lab.nodes if n.netns == netns), None)
    pod = next((pod for pod in lab.pods if node is not None and pod.node == node.name and pod.name in lab.terminal
                and any(m["hostPort"] == port and m["protocol"] == proto for m in port_mappings(pod.spec))), None)
    if pod is not None and lab.cni != "builtin" and pod.name not in portmap_pods(lab):
        return None
    if node is None or pod is None:
        return None
    return (f"{proto} port {port} of {node.name} is pod {pod.name}'s hostPort, but {terminated(pod.name)}: a kubelet "
            "stops a terminated pod's sandbox, whose CNI DEL took out portmap's DNAT of it")


def stale_note(lab: Lab, endpoint: dict | None) -> list[str]:
    """The note of a trace that portmap's DNAT took to a terminal pod (``endpoint``: the trace's, via HostPort): rules
    left from when it ran, which the CNI DEL of its stopped sandbox would have taken out."""
    pod = (endpoint or {}).get("endpoint")
    if (endpoint or {}).get("via") != "HostPort" or pod not in lab.terminal:
        return []
    return [f"{terminated(pod)}: portmap's DNAT of its hostPort is left from when it ran (a kubelet stops a "
            "terminated pod's sandbox, whose CNI DEL takes it out); up takes it out"]


def portmap_pods(lab: Lab) -> set[str]:
    """The pods whose chain has portmap with its iptables rules (cni/portmap.uses_portmap), as each was ADDed (in a
    builtin lab, every pod: netlab writes portmap's rules itself): the
    networks its record keeps, else the lab's conflist now (a pod not attached yet). A chain whose plugin given
    portMappings is another (portmap's nftables backend, a plugin of the user's) writes no CNI-HOSTPORT-DNAT:
    nothing of portmap's is gone for its pods, and up's re-attach would make none (status compares only a chain
    with portmap: cni/changed.node_side)."""
    from netlab.realize.state import load_state

    if lab.cni == "builtin":  # netlab writes portmap's rules itself for every pod's hostPorts (plan/portmap_rules.py)
        return {pod.name for pod in lab.pods}
    try:
        state = load_state(lab.name)
    except NetlabError:  # said by status; here the pods' chains are the conflist's
        state = None
    rec = state.extra.get(CNI_KEY) if state is not None else None
    records = rec.get("pods") if isinstance(rec, dict) else None
    try:
        now = uses_portmap(user_conflist(lab).plugins) if lab.cni == "conflist" else False
    except ConflistError:
        now = False
    out = set()
    for pod in lab.pods:
        prec = records.get(pod.name) if isinstance(records, dict) else None
        nets = prec.get("networks") if isinstance(prec, dict) else None
        if not isinstance(nets, list) or not nets:
            if now:
                out.add(pod.name)
        elif any(isinstance(net, list) and net and isinstance(net[0], dict) and isinstance(net[0].get("plugins"), list)
                 and uses_portmap(net[0]["plugins"]) for net in nets):
            out.add(pod.name)
    return out
