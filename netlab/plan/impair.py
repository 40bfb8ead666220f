"""Impairments' loss as nf_tables ``netdev`` chains: one table per namespace that drops.

Loss is what a lossy wire does: a frame sent goes missing, and its sender is
told nothing. So netlab drops it where it arrives, not where it is sent:

- ``loss: 1%`` on a pod's ``eth0`` (a veth) drops on the *ingress* hook of
  its peer, the node's end of the pod's veth (the cni0 port), in the node's
  namespace; on a node's ``eth0`` on the ingress of its peer, its port on
  the underlay bridge, in the underlay's namespace. The sender's ``sendto``
  succeeds, TCP sees a lost segment and retransmits it;
- on a node's ``cni0`` (a bridge) or ``flannel.<vni>`` (VXLAN): on the
  device's own *egress* hook, in the node's namespace. That hook sees what the
  node routes out of the device, as a rate (a qdisc on the same device) does:
  frames bridged between two pods of the node pass the bridge's ports, not
  cni0, and keep going. What passes there is forwarded by the node (from the
  other node, from pods), so its senders are elsewhere and see real loss; a
  packet the node sends itself is dropped as a full queue drops it (a UDP
  send is not failed, TCP sends it again at once).

In the namespace that drops, the table is::

    table netdev netlab-impair
      chain loss-<NAME>-<IFACE> { type filter hook ingress device "<peer>" priority 0 ; }
        numgen random mod 1000000000 < 10000000 counter drop         (1%: a new random number per packet)

It is a plan resource like kube-proxy's table: one ``nft -f`` transaction per
namespace, ``status`` compares it with the kernel and ``up`` repairs it. (An
iptables DROP in ``mangle POSTROUTING`` of the sending namespace, netlab's
first way, failed the sender's own packets with EPERM: UDP sends errored and
TCP resent at once instead of losing anything.) A veth passes GSO packets
whole, so one draw drops one packet as the sender's stack handed it over (up
to 64 KB of TCP), as netem's loss on a veth does: by bytes the share is the
one asked.

Rate and delay are qdiscs, which the impairment feature (netlab.impair) keeps, after the network exists:
:func:`qdisc_steps` says, as ``tc`` commands, what it sets (``netlab plan``
prints them after the objects, as ``up`` sets them after the rest)::

    tc -n <lab>-p1 qdisc replace dev eth0 root handle 1: tbf rate 10mbit burst 12500 latency 50ms
    tc -n <lab>-p2 qdisc replace dev eth0 root handle 1: netem delay 20ms 5ms limit 1000
    tc -n <lab>-p2 qdisc replace dev eth0 parent 1:1 handle 10: tbf rate 10mbit burst 12500 latency 50ms
    tc -n <lab>-p3 qdisc replace dev eth0 root handle 1: netem delay 0ms 10ms limit 1000   (delay: 0ms, jitter: 10ms)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from netlab.model.impair import (LATENCY_US, LOSS_SCALE, NETEM_LIMIT, burst_bytes, loss_fraction, rate_bits,
                                 time_us)
from netlab.model.lab import Lab
from netlab.plan.resources import NftRules

FAMILY = "netdev"
TABLE = "netlab-impair"
PRIORITY = 0


def impaired(lab: Lab) -> list[tuple[str, str, dict[str, str | None]]]:
    """(namespace, interface, spec) of every impairment in the topology, nodes first."""
    return [(ns, iface, spec) for _, ns, iface, spec in named(lab)]


def named(lab: Lab) -> list[tuple[str, str, str, dict[str, str | None]]]:
    """(pod or node name, namespace, interface, spec) of every impairment in the topology, nodes first."""
    out = []
    nodes = {n.name: n for n in lab.nodes}
    for spec in lab.topo.nodes:
        out += [(spec.name, nodes[spec.name].netns, iface, imp.spec()) for iface, imp in sorted(spec.impair.items())]
    for pod in lab.pods:
        out += [(pod.name, pod.netns, iface, imp.spec()) for iface, imp in sorted(pod.spec.impair.items())]
    return out


@dataclass(frozen=True)
class LossHook:
    """Where one interface's loss is dropped: the chain ``chain`` of ``netns``'s table, on ``hook`` of ``device``."""

    target: str  # NAME:IFACE, as `netlab impair` takes it
    impaired_netns: str  # the interface's namespace
    iface: str
    netns: str  # where the chain is
    hook: str  # "ingress" (the veth's peer) or "egress" (the device itself)
    device: str
    loss: str

    @property
    def chain(self) -> str:
        return chain_name(self.target)

    def where(self) -> str:
        """In words: ``on the ingress of veth1234 in lab-n1 (pa:eth0's peer)``."""
        if self.hook == "ingress":
            return f"on the ingress of {self.device} in {self.netns}, {self.target}'s peer"
        return f"on the egress of {self.device} in {self.netns}"


def chain_name(target: str) -> str:
    """``loss-pa-eth0`` for ``pa:eth0`` (names are unique among pods and nodes; interfaces have no dash)."""
    return "loss-" + target.replace(":", "-", 1)


def rule(loss: str) -> str:
    """The rule's words, as nft lists it: a new random number in [0, 10^9) per packet, dropped below the share."""
    below = round(loss_fraction(loss) * LOSS_SCALE)
    return "counter drop" if below >= LOSS_SCALE else f"numgen random mod {LOSS_SCALE} < {below} counter drop"


def hook_of(lab: Lab, name: str, netns: str, iface: str, loss: str) -> LossHook:
    """Where a loss on ``name``'s ``iface`` is dropped."""
    target = f"{name}:{iface}"
    pod = next((p for p in lab.pods if p.name == name), None)
    nodes = {n.name: n for n in lab.nodes}
    if pod is not None:  # a pod's eth0: its veth's other end, a port of its node's cni0
        return LossHook(target, netns, iface, nodes[pod.node].netns, "ingress", pod.host_veth, loss)
    if iface == "eth0":  # a node's eth0: its port on the underlay bridge
        return LossHook(target, netns, iface, lab.underlay_netns, "ingress", nodes[name].underlay_veth, loss)
    return LossHook(target, netns, iface, netns, "egress", iface, loss)  # cni0, flannel.<vni>: what it routes out


def loss_hooks(lab: Lab) -> list[LossHook]:
    """Every interface's loss, and where it is dropped. A pod of a lab whose CNI plugins attach its pods has none
    until its ADD names the node end of its veth (``lab.attached``; a name guessed before it hooked a device no
    kernel had, which the plan made after the ADD then "repaired"), nor after its sandbox's DEL took the veth."""
    pods = {p.name for p in lab.pods}
    return [hook_of(lab, name, netns, iface, str(spec["loss"])) for name, netns, iface, spec in named(lab)
            if spec.get("loss") and (lab.cni == "builtin" or name not in pods or name in lab.attached)]


def chain_line(h: LossHook) -> str:
    """The chain as realize/nftables.py lists the kernel's."""
    return f'chain {h.chain} type filter hook {h.hook} device "{h.device}" priority {PRIORITY}'


def loss_table(netns: str, hooks: list[LossHook]) -> NftRules:
    """One namespace's table, as one ``nft -f`` transaction that replaces it whole."""
    pre = f"{FAMILY} {TABLE}"
    lines = [f"add table {pre}", f"delete table {pre}", f"add table {pre}"]
    listing = []
    for h in sorted(hooks, key=lambda h: h.chain):
        spec = chain_line(h).split(" ", 2)[2]
        lines += [f"add chain {pre} {h.chain} {{ {spec} ; }}", f"add rule {pre} {h.chain} {rule(h.loss)}"]
        listing += [chain_line(h), f"rule {h.chain} 0000 {rule(h.loss)}"]
    return NftRules(netns=netns, family=FAMILY, table=TABLE, payload="\n".join(lines) + "\n",
                    listing=tuple(sorted(listing)))


def resources(lab: Lab) -> list[NftRules]:
    by_ns: dict[str, list[LossHook]] = {}
    for h in loss_hooks(lab):
        by_ns.setdefault(h.netns, []).append(h)
    return [loss_table(ns, hooks) for ns, hooks in sorted(by_ns.items())]


@dataclass(frozen=True)
class QdiscStep:
    """One qdisc an impairment sets (netlab.impair.lifecycle, through kernel/tc.py's codec), as tc would."""

    kind: ClassVar[str] = "qdisc"
    netns: str
    dev: str
    parent: str  # "root", or "1:1" (a tbf under netem's class)
    handle: str
    qdisc: str  # tbf, netem
    options: str

    def command(self) -> str:
        return f"tc -n {self.netns} qdisc replace dev {self.dev} {self.parent} handle {self.handle} " \
            f"{self.qdisc} {self.options}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self), "command": self.command()}


def _tbf(spec: dict[str, str | None]) -> str:
    rate = spec["rate"] or ""
    return f"rate {rate.lower()} burst {burst_bytes(rate_bits(rate))} latency {LATENCY_US // 1000}ms"


def netem_wanted(spec: dict[str, str | None]) -> bool:
    """A netem is set when any of its parameters does something: a delay, or a jitter round a delay of 0
    (``delay: 0ms, jitter: 10ms`` is tc's ``netem delay 0ms 10ms``). netlab's loss is an nftables rule."""
    return any(spec.get(k) and time_us(spec[k] or "") for k in ("delay", "jitter"))


def qdisc_steps(lab: Lab) -> list[QdiscStep]:
    """The qdiscs ``up`` sets for the topology's rates and delays (kernel/tc.py's layout): a rate alone is a root
    tbf; a delay (or a jitter) a root netem, and with a rate a tbf under netem's class. A loss alone sets none."""
    out = []
    for netns, iface, spec in impaired(lab):
        if netem_wanted(spec):  # as impair.lifecycle.shaping and kernel/tc.py
            delay = " ".join(str(spec[k] or "0ms").lower() for k in ("delay", "jitter") if k == "delay" or spec.get(k))
            out.append(QdiscStep(netns, iface, "root", "1:", "netem", f"delay {delay} limit {NETEM_LIMIT}"))
            if spec.get("rate"):
                out.append(QdiscStep(netns, iface, "parent 1:1", "10:", "tbf", _tbf(spec)))
        elif spec.get("rate"):
            out.append(QdiscStep(netns, iface, "root", "1:", "tbf", _tbf(spec)))
    return out
