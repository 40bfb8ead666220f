"""What a lab's interfaces suffer now, read from the kernel: ``netlab impair [NAME:IFACE]`` with no option.

Rates and delays are the interfaces' qdiscs (kernel/tc.py reads them as the
impairment feature compares them); a loss is the rule of its chain in the
``netdev netlab-impair`` table where it is dropped (plan/impair.py), its share
read back from the rule and its counter said: how many frames it dropped so
far. Each line says too what the lab's desired state says, and whether
``netlab impair`` set it at run time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from netlab.impair import lifecycle
from netlab.kernel import netns as nsmod
from netlab.kernel import nft, tc
from netlab.model.impair import POD_INTERFACES, LOSS_SCALE, describe, node_interfaces
from netlab.model.lab import Lab
from netlab.plan import impair as plan_impair
from netlab.plan.cniadd import lab_bridge


@dataclass(frozen=True)
class Shown:
    """One interface: what the kernel has, what the lab wants."""

    target: str  # NAME:IFACE
    netns: str
    interface: str
    kernel: str  # "rate 10mbit loss 1%", "none", or "no such interface"
    topology: str  # what the lab's desired state says ("none")
    set_at: str | None  # when `netlab impair` set it (UTC), None: as the lab's file says
    loss_at: str | None  # where its loss is dropped, in words (None: no loss)
    dropped: int | None  # frames the loss rule dropped so far (its counter)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        text = f"{self.target}: {self.kernel}"
        more = []
        if self.loss_at:
            more.append(f"loss {self.loss_at}, {self.dropped or 0} frames dropped so far")
        if self.kernel != self.topology:
            more.append(f"the lab's topology says {self.topology}: `netlab up` puts it so")
        if self.set_at:
            more.append(f"set at run time by `netlab impair` at {self.set_at}")
        return text + (f" ({'; '.join(more)})" if more else "")


def _loss(data: dict | None, chain: str) -> tuple[str, int] | None:
    """The share a loss chain's rule drops (``numgen random mod M < N``; no numgen: every frame) and its counter."""
    for o in (data or {}).get("nftables", []):
        rule = o.get("rule") if isinstance(o, dict) else None
        if not isinstance(rule, dict) or rule.get("chain") != chain:
            continue
        share, count, drop = 1.0, 0, False
        for e in rule.get("expr", []):
            m = e.get("match") if isinstance(e, dict) else None
            if isinstance(m, dict) and isinstance(m.get("left"), dict) and "numgen" in m["left"]:
                mod = m["left"]["numgen"].get("mod") % 2**32 or LOSS_SCALE  # nft 1.0.6 prints it signed
                share = min(1.0, float(m.get("right", 0)) / mod)
            elif isinstance(e, dict) and isinstance(e.get("counter"), dict):
                count = int(e["counter"].get("packets", 0))
            elif isinstance(e, dict) and "drop" in e:
                drop = True
        if drop:
            return f"{share * 100:.7f}".rstrip("0").rstrip(".") + "%", count
    return None


def read(lab: Lab, runtime: dict[str, dict], only: tuple[str, str] | None = None) -> list[Shown]:
    """Every interface of the lab's pods and nodes netlab can impair (``only``: (NAME, IFACE) alone), with what
    the kernel has on it; the ones with nothing on it and nothing wanted are left out unless asked for."""
    specs = {(ns, iface): spec for _, ns, iface, spec in plan_impair.named(lab)}
    bridge = lab_bridge(lab)  # netlab's cni0, or the one a user's conflist's bridge plugin makes
    ifaces = node_interfaces(lab.topo.network.mode, lab.topo.network.vxlan.vni, bridge)
    bridged = lab.bridge_nodes(pod_side=True)  # a user's conflist's: the nodes with a pod
    places = [(n.name, n.netns, i) for n in lab.nodes for i in ifaces if i != bridge or n.name in bridged]
    places += [(p.name, p.netns, i) for p in lab.pods for i in POD_INTERFACES]
    if only is not None:
        places = [p for p in places if (p[0], p[2]) == only]
    by_ns: dict[str, list[str]] = {}
    for _, ns, iface in places:
        by_ns.setdefault(ns, []).append(iface)
    shaped: dict[tuple[str, str], tc.Shaping | None] = {}
    for ns, names in by_ns.items():
        have = tc.read(ns, names) if nsmod.is_netns_mount(ns) else {}
        shaped.update({(ns, i): have.get(i) for i in names})
    hooks = [plan_impair.hook_of(lab, name, ns, iface, "") for name, ns, iface in places]
    tables = {h.netns: nft.list_table(h.netns, plan_impair.FAMILY, plan_impair.TABLE)
              for h in hooks if nsmod.is_netns_mount(h.netns)}
    out = []
    for (name, ns, iface), hook in zip(places, hooks):
        shaping = shaped.get((ns, iface))
        loss = _loss(tables.get(hook.netns), hook.chain)
        words = lifecycle.words(shaping)
        if loss and shaping is not None:
            words = f"loss {loss[0]}" if words == "none" else f"{words} loss {loss[0]}"
        want = describe(specs.get((ns, iface), {}))
        rt = runtime.get(f"{ns}:{iface}")
        if only is None and words == "none" and want == "none":
            continue  # nothing on it, nothing wanted (cleared by `netlab impair --clear`, maybe)
        out.append(Shown(f"{name}:{iface}", ns, iface, words, want, rt.get("at") if rt else None,
                         hook.where() if loss else None, loss[1] if loss else None))
    return out
