"""What ``up`` does in namespaces that are there already: read them, compare them with the plan, repair the
difference, and prove each repair by reading the kernel again (bounded, ROUNDS).

A mixin of lab/up.py's run (``_Up``), which holds the plan, the kernel, the journal every op goes through (a
failed or stopped run takes them back) and the result the user is told. What a user's CNI plugins made in a
namespace is theirs, never drift (realize/attachments.py); a veth whose pod the run removes goes with the pod's
namespace, not as an extra link before it (but one whose namespace was deleted by hand: after its containers
stopped, as an extra link).
"""

from __future__ import annotations

from typing import Any, Callable

from netlab.errors import ApplyFailed
from netlab.feature import Feature, add_deleted_chains, release_stopped
from netlab.kernel import iptables, testhooks
from netlab.kernel.base import Kernel, KernelError, NftText, Op
from netlab.lab import carrier, mtu_kept, pmtu
from netlab.lab.announce import announce
from netlab.lab.journal import Journal
from netlab.lab.ownership import kernel_links, owned
from netlab.lab.teardown import delete_namespaces
from netlab.impair import stray
from netlab.lab.reading import drift_of, snapshots
from netlab.model.lab import Lab
from netlab.plan.build import Plan, build_plan
from netlab.realize.attachments import is_plugin_made, live_made, plugin_made, plugin_pods
from netlab.realize.diff import Drift
from netlab.realize.expect import expected
from netlab.realize.netfilter_drift import is_policy_hook
from netlab.plan.resources import Link, NatRules, Veth
from netlab.realize.repair import (create_ops, deleted_chains, links_brought_up, ordered, repair_ops, said,
                                   stale_chain_ops, stale_peer_ops)
from netlab.realize.state import LabState

ROUNDS = 3  # a repair is checked by reading the kernel again; bounded


class Converging:
    """Read, compare and repair the namespaces a run finds there (``_Up``'s attributes, set by its __init__)."""

    lab: Lab
    plan: Plan
    kernel: Kernel
    journal: Journal
    result: Any  # lab/up.UpResult
    features: list[Feature]
    chains_deleted: dict[tuple[str, str], list[str]]
    leaving_veths: set[tuple[str, str]]
    leaving_by_netns: dict[str, set[tuple[str, str]]]
    held_before: dict[str, set[tuple]]
    _snaps: dict[str, Any]
    _observed: dict[str, Any]
    strays_refused: set[tuple[str, str, bool]]  # (namespace, interface, ingress) of a stray qdisc the kernel kept
    _strays: dict[str, list[stray.Stray]]  # namespace -> the qdiscs added by hand _drift found (impair/stray)
    heard: Callable[[], None] | None
    before: tuple[Any, str | None, str, Any]  # the lab's last topology, source, phase, addresses (lab/up.py)

    def _repair_after_removal(self, state: LabState) -> None:
        """The namespaces that held the removed veths' other ends are read and repaired once more: the veth of a pod
        whose namespace was deleted by hand stands until the kernel frees that namespace, later: deleted here as an
        extra link, and its namespace read and repaired once more. (A bridge whose last port went has the MTU the
        kernel gives a bridge without ports, 1500, as cni0 after the bridge plugin's last DEL: no drift,
        realize/diff.py's _kernel_mtu.)"""
        touched = sorted({ns for veths in self.leaving_by_netns.values() for ns, _ in veths} & set(self.plan.netns))
        want = expected(self.plan)
        for _ in range(2):
            repairs = self._repairs(self._drift(touched, want, state), want)
            if not repairs:
                return
            self.journal.step("repair the nodes that lost pods")
            self.journal.apply(repairs, order=self.plan.netns)
            self._say_repairs(repairs)
            if not any(op.verb == "del" and isinstance(op.res, Link) for op in repairs):
                return

    def _say_repairs(self, repairs: list[Op]) -> None:
        """The result's lines for ``repairs``; the stale chains their restores deleted are said at the end, with
        those the features deleted (one line per namespace and table)."""
        self.result.fixed += said(repairs, iptables.default_backend())
        add_deleted_chains(self.chains_deleted, deleted_chains(repairs))

    def _make_and_repair(self, state: LabState, made: set[str], among: set[str] | None = None,
                         followed: frozenset = frozenset()) -> None:
        """Everything of the plan in the namespaces just ``made``, in one batch; the others (those ``among``, when
        given) read and repaired, each repair proven by reading the kernel again. ``followed``: the keys of what
        the plan holds anew as it follows the run's CNI ADDs (a loss hooked on a veth a plugin just made): made,
        not said as a repair (one the kernel did not take is, as the proof's rounds find it)."""
        ops: list[Op] = create_ops(r for r in self.plan.resources if r.netns in made)
        existing = [ns for ns in self.plan.netns if ns not in made and (among is None or ns in among)]
        # What the namespaces read must hold; those just made are not read (a fresh lab's 500 pods: 45 ms of
        # CPU for ~8,000 objects nothing would compare)
        want = expected(self.plan) if existing else {}
        drifts = self._drift(existing, want, state)
        self._delete_stale_chains(want)
        repairs = self._repairs(drifts, want)
        repairs += stale_peer_ops((r for r in self.plan.resources if r.netns in made), self._observed)
        if existing:  # a root test changes the kernel here, between the read and the repair
            testhooks.fault_point("repair-read")
            if self.heard is not None and self.journal.count == 0:
                # The run has changed nothing yet: what the kernel told a listener until this read is someone
                # else's change, which this run now mends (up --watch says it in the repair's line: read with the
                # repair's echo, after it, it was taken for the echo, and said by no line)
                self.heard()
        self.journal.apply(ordered(ops + repairs), order=self.plan.netns)
        self._say_repairs([op for op in repairs if _key(op) not in followed])
        self._take_off_strays()
        repaired = list(repairs)
        rounds = 1
        while repairs and rounds < ROUNDS:  # a repair is proven by reading the kernel again
            touched = sorted({op.netns for op in repairs} & set(existing))
            drifts = self._drift(touched, want, state)
            repairs = self._repairs(drifts, want)
            self.journal.apply(repairs, order=self.plan.netns)
            self._say_repairs(repairs)
            self._take_off_strays()
            repaired += repairs
            rounds += 1
        if repairs:
            left = self._drift(sorted({op.netns for op in repairs}), want, state)
            if left:
                raise ApplyFailed(f"could not converge: {left[0]}")
        # A path MTU learned while an MTU was wrong outlives its repair by 600 s: forgotten (lab/pmtu.py)
        flushed, unflushed = pmtu.forget_learned(self.kernel, repaired, existing)
        self.result.fixed += flushed
        self.result.warnings += unflushed
        # A backend switch set the running pods' MTU in place, which a real cluster does not (lab/mtu_kept.py)
        self.result.warnings += mtu_kept.in_place_words(self.before[0], self.lab, repaired)
        # A link a repair brought up carries traffic only once the kernel says it runs (lab/carrier.py).
        for ns, name in carrier.wait_running(self.kernel, links_brought_up(repaired, self.plan.of_kind("veth"))):
            self.result.warnings.append(f"{name} in {ns} is up but not running yet (no carrier after "
                                        f"{carrier.CARRIER_WAIT:g}s): traffic through it is dropped until it is")
        # Each pod's or node's new address announced, as a real one is: neighbours drop a freed owner's MAC
        # (none to correct when every namespace is new).
        if existing:
            self.result.warnings += announce(self.kernel, self.lab, self.plan, ops + repaired)

    def _take_off_strays(self) -> None:
        """The root and ingress qdiscs added by hand that the last read found go (after the link's own repair: its
        txqueuelen); a root one through the journal: a rollback puts it back with the txqueuelen it came with (an
        ingress one is not: impair/stray). One the kernel refuses is said once and not tried again in this run (a
        proof's round reads it again)."""
        for ns, found in sorted(getattr(self, "_strays", {}).items()):
            for s in found:
                if (ns, s.link.name, s.ingress) in self.strays_refused:
                    continue
                done, problem = stray.ingress_qdisc_del(ns, s) if s.ingress else \
                    self.journal.attempt(stray.root_qdisc_del(ns, s))
                if problem is None and not done and stray.replaced(self.kernel, ns, s):
                    self.strays_refused.add((ns, s.link.name, s.ingress))  # this run read another: not its to take
                    self.result.warnings.append(stray.removed_words(ns, s, done, changed=True))
                elif problem is None:  # done False: someone took it off since the read (ENOENT, EINVAL)
                    self.result.fixed.append(stray.removed_words(ns, s, done))
                else:
                    self.strays_refused.add((ns, s.link.name, s.ingress))
                    self.result.warnings.append(stray.refused_words(ns, s, problem))
        self._strays = {}

    def _drift(self, namespaces: list[str], want: dict, state: LabState) -> list[Drift]:
        self._snaps = {}
        self._observed = {}
        self._strays = {}
        if not namespaces:
            return []
        links = kernel_links(state)
        made = plugin_made(self.lab, state)  # what a user's CNI plugins made is theirs
        pods_of = plugin_pods(state)  # a node's own pods: its plugins' veths are those to them (live_made)
        names = set(namespaces)
        shaped = stray.shaped(self.lab, state)  # the impairment feature's interfaces (their qdiscs are its)
        # A veth's peer may live in a namespace outside those asked for: read it too.
        peers = {r.peer_netns for r in self.plan.of_kind("veth") if r.netns in names}  # type: ignore[attr-defined]
        if any(made.get(ns) is not None for ns in names):  # a node's plugins' veths, by their peers (live_made)
            peers |= {ns for ns, devs in made.items() if devs is None}
        # Read side by side, as status does (a namespace deleted a moment ago is left out: said below).
        self._snaps = snapshots(self.kernel, want, names, peers)
        out: list[Drift] = []
        for ns in namespaces:
            if ns not in self._snaps:
                raise ApplyFailed(f"namespace {ns} vanished while the lab was read")
            self._observed[ns], drifts = drift_of(ns, want, self._snaps, links.get(ns, ()))
            self.held_before.setdefault(ns, set(self._observed[ns].objects))
            theirs = live_made(made, ns, self._snaps, pods_of, self.kernel.nsids)
            out += [d for d in drifts if not is_plugin_made(d, theirs)]
            found = [s for s in stray.found(ns, self._snaps[ns], want.get(ns, ()), shaped)
                     if not is_plugin_made(Drift("different", s[0]), theirs)]
            if found:
                self._strays[ns] = found
        return out

    def _delete_stale_chains(self, want: dict) -> None:
        """kube-proxy's nftables chains an earlier sync emptied: deleted now, before this sync, each node in a
        transaction of its own (not journaled: an empty chain nothing names is nothing to put back). One that
        cannot go yet (a kernel before 6.2 frees it a moment later) stays for the next up, as in kube-proxy."""
        for op, chains in stale_chain_ops(want, self._observed):
            try:
                self.kernel.apply([op])
            except KernelError as exc:
                self.result.warnings.append(f"{op.res.netns}: emptied nftables chains stay until the next up ({exc})")
                continue
            self.result.fixed.append(f"deleted {len(chains)} nftables chain{'s' if len(chains) > 1 else ''} an "
                                     f"earlier sync emptied in {op.res.netns} (kube-proxy deletes them a sync later)")

    def _follow_pod_sides(self, attached: Lab, state: LabState) -> None:
        """The plan of ``attached``, the lab with the pods as this run's ADDs attached them (a new lab's, one added,
        a new sandbox) at their addresses of before: the reference plugins' veths are the plan's from now on
        (plan/build.pod_side). Read against the plan made before the ADDs, they were extra links, which a later
        repair deleted, the pods left without eth0 (_policy_hooks_first; QA q57 #1). What else of the plan follows
        those veths (a loss on a pod's eth0, dropped on the ingress of the pair's node end: plan/impair.py) is read
        and repaired in its namespaces; the pods' own side is the plugins' work, which their CHECK judges."""
        plan = build_plan(attached)
        pods = {p.netns for p in attached.pods}
        was, now = {r.key: r for r in self.plan.resources}, {r.key: r for r in plan.resources}
        changed = [now.get(key) or was[key] for key in was.keys() | now.keys() if was.get(key) != now.get(key)]
        read = {r.netns for r in changed if r.netns not in pods and not (isinstance(r, Veth) and r.peer_netns in pods)}
        self_plan, self.lab, self.plan = self.plan, attached, plan
        if read:  # what the plan holds anew there is made, not said as a repair (a loss on a veth just made)
            self.journal.step("repair what follows the pods' veths the CNI plugins made")
            self._make_and_repair(state, set(), among=read, followed=followed(self_plan, plan))

    def _policy_hooks_first(self, state: LabState) -> None:
        """After the CNI plugins' ADDs: a plugin may have put its jump above netlab's policy hook (the firewall
        plugin inserts its CNI-FORWARD jump at the top of FORWARD). The nodes whose filter table has that hook are
        read and repaired once more, which puts the hook first again, as a policy controller's sync does
        (realize/netfilter_drift.py, is_policy_hook). Only their rule tables are repaired here: links, addresses
        and routes are the run's converge's, done before the ADDs (one repaired after them against a plan that did
        not know what they made deleted their veths: QA q57 #1)."""
        nodes = sorted({r.netns for r in self.plan.resources if isinstance(r, NatRules) and r.plugin_jumps
                        and any(is_policy_hook(line) for line in r.rules)})
        if not nodes:
            return
        want = expected(self.plan)
        repairs = self._repairs([d for d in self._drift(nodes, want, state) if isinstance(d.resource, NatRules)], want)
        if repairs:
            self.journal.step("put netlab's policy hooks above the CNI plugins' jumps")
            self.journal.apply(repairs, order=self.plan.netns)
            self._say_repairs(repairs)

    def _repairs(self, drifts: list[Drift], want: dict) -> list[Op]:
        ops = repair_ops(drifts, want, self._observed) if drifts else []
        return [op for op in ops if not (op.verb == "del" and (op.netns, getattr(op.res, "name", None))
                                         in self.leaving_veths)]

    def _release_stopped(self, state: LabState, tag: str) -> None:
        """The network namespace of each terminal pod whose sandbox's CNI DEL ran (plan.stopped) removed, as
        containerd's StopPodSandbox removes a sandbox's namespace after teardownPodNetwork: nothing runs there
        (its containers exited for good), its plugins' DEL took what they made. One that is not the lab's (another
        mounted one at its name) is left alone; the state forgets it, and down DELs the pod with no namespace."""
        gone = sorted(ns for ns in self.plan.stopped if ns in state.netns)
        for ns in gone:
            self.journal.step(f"remove the network namespace {ns} of a stopped sandbox")
            if owned(self.kernel, ns, tag):
                delete_namespaces(self.kernel, [ns])  # (said with its DEL: cni/terminated.stop_terminal)
            else:  # unmounted by hand: its empty file, which a later up making the pod again took for another's
                self.kernel.remove_placeholder(ns)
            state.netns.pop(ns, None)
            kernel_links(state).pop(ns, None)
        if gone:  # what of the features was theirs alone goes with them: the pods' /etc/netns files, as recorded
            self.journal.step("take away what the stopped sandboxes' namespaces alone had")
            for feature in self.features:
                release_stopped(feature, state, gone)
            state.save()


def followed(was: Plan, now: Plan) -> frozenset:
    """The keys of what the plan ``now`` (following the run's CNI ADDs) holds that the plan ``was`` did not, or held
    otherwise: made as the plan follows the ADDs (_make_and_repair's ``followed``), not repairs."""
    before = {r.key: r for r in was.resources}
    return frozenset(r.key for r in now.resources if before.get(r.key) != r)


def _key(op: Op) -> tuple | None:
    """The plan's key of what ``op`` makes (a table's transaction, NftText, by its table's NftRules key)."""
    if isinstance(op.res, NftText):
        return ("nft", op.res.netns, op.res.family, op.res.table)
    return getattr(op.res, "key", None)
