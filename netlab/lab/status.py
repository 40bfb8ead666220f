"""Status: the live kernel compared with the plan of a running lab (built again from its saved topology),
and each feature's drift.

Every namespace is read once (its tag with everything else: a dump per object
kind), by the kernel's batch call, which reads many namespaces in forked
readers at once; each reader compares the pods it read with their plan (a pod's
veth ends in its node, and needs nothing else), and a node is compared once
every namespace's links are known. The features' drift is worked out while
the readers read.
"""

from __future__ import annotations

import json

from ipaddress import ip_interface

from dataclasses import dataclass, field, replace
from typing import Collection, Sequence

from netlab.kernel import netns as nsmod
from netlab.kernel.base import Kernel, Snapshot
from netlab.kernel.rtnl_parse import AddrMsg
from netlab.feature import Feature, Note, Reconfigure
from netlab.impair import lifecycle as impair_feature, stray
from netlab.lab import collector
from netlab.realize.elsewhere import refuse_elsewhere
from netlab.lab.ownership import kernel_links, tag_for
from netlab.plan.build import build_plan
from netlab.plan.resources import Netns, Resource, Sysctl, Veth
from netlab.realize import nft_written
from netlab.realize.attachments import is_plugin_made, live_made, plugin_made, plugin_pods
from netlab.realize.diff import Drift, diff_netns
from netlab.realize.expect import expected
from netlab.realize.observe import observe
from netlab.realize.state import LabState, gone
from netlab.realize.state_dir import state_file
from netlab.realize.state_errors import StateGone
from netlab.workload.policy import HELD_BY_ANOTHER
from netlab.workload.terminal import served, still_endpoints, still_mapped


@dataclass
class StatusResult:
    lab: str
    drift: list[str] = field(default_factory=list)
    objects: int = 0
    details: list[dict] = field(default_factory=list)
    # What is as planned but not as the topology asks: a pod's ip: its CNI plugins did not give (said, not drift)
    warnings: list[str] = field(default_factory=list)
    # A feature's drift that only `up --reconfigure` puts right (feature.Reconfigure): a plain `up` refuses it, so
    # the repair named is `up -t FILE --reconfigure` (realize.state.reconfigure_repair: `up --lab L --reconfigure`)
    reconfigure: bool = False

    @property
    def ok(self) -> bool:
        return not self.drift


def onlink_route(snap: Snapshot, index: int, addr: AddrMsg) -> bool:
    """Whether eth0 (``index``) has the connected route of its address ``addr``'s prefix in the main table, as the
    kernel made it (ptp deletes it, and routes the prefix via its gateway instead)."""
    net = ip_interface(f"{addr.address}/{addr.prefixlen}").network
    return any(r.table == 254 and r.oif == index and r.gateway is None and r.dst_len == net.prefixlen
               and r.dst == str(net.network_address) for r in snap.routes)


def status(state: LabState, kernel: Kernel, features: Sequence[Feature] = ()) -> StatusResult:
    """Every difference between the lab's plan and the kernel, and what its features report."""
    with collector.paused():  # what it reads and builds is kept to its end: no garbage for the collector to find
        return _status(state, kernel, features)


def _status(state: LabState, kernel: Kernel, features: Sequence[Feature]) -> StatusResult:
    lab = state.resolved()
    lab = served(lab, state)  # Completed/Error pods: no endpoints (up takes them out)
    plan = build_plan(lab)
    tag = tag_for(state)
    want = expected(plan)
    result = StatusResult(lab=lab.name, objects=sum(len(v) for v in want.values()), warnings=lab.plugin_addresses())
    tag_keys = list(nsmod.TAG_SYSCTLS)
    asks = {ns: (asked_sysctls(want, ns), True) for ns in plan.netns if kernel.netns_mounted(ns)}
    nft_written.load(lab.name, kernel)  # tables nothing has changed since the last up: not read again
    links = kernel_links(state)
    made = plugin_made(lab, state)  # what a user's CNI plugins made: their CHECK judges it
    pods_of = plugin_pods(state)  # a node's own pods: its plugins' veths are those to them (live_made)

    notes = impair_feature.loss_notes(lab, state)  # status -t FILE: a loss `netlab impair` set, said as a rate is
    shaped = stray.shaped(lab, state)  # the impairment feature's interfaces: a root qdisc on any other is drift

    def compare(ns: str, snap: Snapshot, peers: dict[str, Snapshot], gone: Collection[str] = ()) -> Compared:
        obs = observe(snap, {r.key: r for r in want.get(ns, [])}, peers)
        theirs = live_made(made, ns, peers, pods_of, kernel.nsids)  # a node's: its plugins' veths to its pods
        found = stray.merged(diff_netns(want.get(ns, []), obs, links.get(ns, ()), gone),
                             stray.found(ns, snap, want.get(ns, ()), shaped))
        found = [d for d in found if not is_plugin_made(d, theirs)]
        found = [replace(d, detail="; ".join(filter(None, (d.detail, notes[ns]))))
                 if ns in notes and impair_feature.is_loss_table(d.resource) else d for d in found]
        return Compared(True, [str(d) for d in found], [d.to_json() for d in found], snap.links,
                        warnings=wide_prefix(ns, snap))

    pod_of = {p.netns: p.name for p in lab.pods if p.name in lab.attached}

    def wide_prefix(ns: str, snap: Snapshot) -> list[str]:
        """A CNI pod's eth0 prefix wider than its node's podCIDR, as its plugins made it: said, not drift."""
        eth0 = snap.links.get("eth0")
        if ns not in pod_of or eth0 is None:
            return []
        addrs = [a for a in snap.addrs if a.index == eth0.index and ":" not in a.address][:1]
        return [line for line in (lab.wide_prefix(pod_of[ns], a.prefixlen, onlink_route(snap, eth0.index, a))
                                  for a in addrs) if line]

    def judge(ns: str, snap: Snapshot) -> Compared:
        # Run by whichever process read the namespace (a forked reader too): the tag, and the comparison of a
        # namespace whose veths have no peer elsewhere (a pod's); the others go back whole, to be compared
        # once every namespace's links are known.
        if nsmod.tag_of([snap.sysctls.pop(key, None) for key in tag_keys]) != tag:
            return Compared(False)
        if any(isinstance(r, Veth) for r in want.get(ns, ())) or made.get(ns) is not None:  # a node's: live_made
            return Compared(True, snapshot=snap)
        return compare(ns, snap, {})

    # The features' drift (containers, Services' files, plugins' CHECK) needs no snapshot: it is worked out
    # while the other readers finish theirs.
    feature_drift: list[str] = []
    judged = kernel.snapshot_many(asks, lambda: feature_drift.extend(
        line for feature in features for line in feature.drift(lab, state)), judge)
    peers = {ns: c.snapshot or Snapshot(netns=ns, links=c.links) for ns, c in judged.items() if c.tagged}
    def namespace(state: str, name: str, detail: str = "") -> None:
        d = Drift(state, Netns(name), detail)
        result.drift.append(str(d))
        result.details.append(d.to_json())

    if not any(c.tagged for c in judged.values()) and gone(state, kernel):  # list's `gone`: not up, said once
        refuse_elsewhere(state, kernel.netns_mounted)
        raise StateGone(state.lab, state_file(state.lab))
    missing = {name for name in plan.netns if name not in judged}  # a veth's peer there: "namespace ... is missing"
    for name in plan.netns:
        got = judged.get(name)
        if got is None:
            namespace("missing", name)
            continue
        if not got.tagged:
            namespace("different", name, HELD_BY_ANOTHER)  # up refuses the lab: no repair named
            continue
        if got.snapshot is not None:
            got = compare(name, got.snapshot, peers, missing)
        result.drift += got.drift
        result.details += got.details
        result.warnings += got.warnings
    # A namespace the lab made that the plan has no more (status -t FILE of a file without that pod): up deletes
    # it, with the containers in it.
    planned = set(plan.netns)
    for name in state.netns:
        if name not in planned:
            namespace("extra", name, "not in the plan: up deletes it and what runs in it")
    result.warnings += [line for line in feature_drift if isinstance(line, Note)]  # left alone, as up says
    feature_drift = [line for line in feature_drift if not isinstance(line, Note)]
    whole = [json.dumps(d, default=str) for d in result.details]
    feature_drift = still_endpoints(lab, whole) + still_mapped(lab, whole) + feature_drift  # Completed/Error pods
    result.drift += feature_drift
    result.reconfigure = any(isinstance(line, Reconfigure) for line in feature_drift)
    for line in feature_drift:  # containers, the Services' files, the CNI plugins' CHECK: said in words
        what, _, detail = line.partition(": ")
        result.details.append({"state": "problem", "object": what, "detail": detail or line,
                               "differences": [detail or line], "resource": None})
    return result


def asked_sysctls(want: dict[str, list[Resource]], ns: str) -> list[str]:
    """The sysctls read of a namespace: the expected ones and its tag (two sysctls no plan holds), so
    that each namespace is read once."""
    return [r.name for r in want.get(ns, []) if isinstance(r, Sysctl)] + list(nsmod.TAG_SYSCTLS)


@dataclass
class Compared:
    """One namespace as its reader judged it: tagged as this lab's, its drift, and its links (other
    namespaces' veths are paired with them); or, for a namespace whose veths end elsewhere, its snapshot."""

    tagged: bool
    drift: list[str] = field(default_factory=list)
    details: list[dict] = field(default_factory=list)
    links: dict = field(default_factory=dict)
    snapshot: Snapshot | None = None
    warnings: list[str] = field(default_factory=list)  # what is as planned, and said (StatusResult.warnings)
