"""What one run changed, in order, so that a failure takes back exactly that.

Every changing step of ``up`` goes through :meth:`Journal.apply` (kernel ops)
or :meth:`Journal.step` (a namespace made, a feature started), which counts
it: the test hooks (netlab.kernel.testhooks) fail, kill or interrupt the run
at the k-th step, after the steps before it have reached the kernel.

:meth:`Journal.undo` applies the inverse of every op that took effect, last
first. Objects that existed before the run are only ever *changed* by it
(set, replaced, written), and their inverse changes them back; objects this
run made are deleted; namespaces this run made go whole (lab/up.py).
"""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING, Sequence

from netlab import signals
from netlab.errors import ApplyFailed, NetlabError, open_files
from netlab.kernel import testhooks
from netlab.kernel.base import Kernel, KernelError, Op
from netlab.lab.ownership import kernel_links
from netlab.plan.build import build_plan
from netlab.realize.diff import diff_netns
from netlab.realize.expect import expected
from netlab.realize.observe import observe
from netlab.realize.repair import ordered, stages

if TYPE_CHECKING:
    from netlab.realize.state import LabState

# What the kernel deletes with a device's last address or the device's going down (routes), or with the device
# (its addresses, neighbours, FDB entries): a rollback that makes the device again adds them again
DROPPED_WITH_THEIR_DEVICE = ("address", "route", "neigh", "fdb")


class Journal:
    def __init__(self, kernel: Kernel, fault_at: int | None = None, fault_mode: str = "fail",
                 signal_at: int | None = None):
        self.kernel = kernel
        self.applied: list[Op] = []
        self.touched: set[str] = set()  # every namespace an op was sent to, taken effect or not
        self.count = 0
        self.fault_at = fault_at if fault_at is not None else testhooks.FAULT_AT
        self.fault_mode = fault_mode if fault_at is not None else testhooks.FAULT_MODE
        self.signal_at = signal_at if signal_at is not None else testhooks.FAULT_SIGNAL
        # The stop signals the run's handler took (lab/up.py). Its exception unwinds the run to its rollback,
        # unless Python ran the handler inside an object's __del__, which drops it: the next step raises it.
        self.stopped: list[int] = []

    def _hook(self, what: str) -> None:
        """Count one step; fire the test hooks when it is the chosen one."""
        if self.stopped:
            raise signals.stopped_by(self.stopped[0])
        self.count += 1
        if self.signal_at == self.count:
            os.kill(os.getpid(), testhooks.FAULT_SIGNUM)  # handled like a user's Ctrl-C or kill
        if self.fault_at == self.count:
            if self.fault_mode == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise ApplyFailed(f"injected fault at operation {self.count} ({what})")

    def step(self, what: str) -> None:
        """A changing step that is not a kernel op (its undo is the caller's)."""
        self._hook(what)

    def apply(self, ops: Sequence[Op], order: Sequence[str] = ()) -> None:
        """Apply ops in order; a failure raises ApplyFailed after recording what took effect.

        The kernel sends a stage's ops namespace by namespace (one batch each, in
        ``order``), so ops that depend on another namespace's are cut into stages
        (realize.repair.stages): a pod's stray eth0 is deleted before the node
        makes the pod's veth pair, whose peer is named eth0 in the pod.
        """
        for stage in stages(list(ops)):
            for i, op in enumerate(stage):
                try:
                    self._hook(op.describe())
                except BaseException:
                    self._send(stage[:i], order)  # "after the k-th": what came before is applied
                    raise
            self._send(stage, order)

    def _send(self, ops: list[Op], order: Sequence[str]) -> None:
        if not ops:
            return
        self.touched.update(op.netns for op in ops)
        try:
            done = self.kernel.apply(ops, order)
        except KernelError as exc:
            self.applied += exc.applied
            raise ApplyFailed(str(exc)) from (exc if open_files(exc) else None)  # the limit's line (cli/base.py)
        except BaseException:
            # A signal (Ctrl-C, SIGTERM: lab/up.py's Interrupted) landed while the kernel worked: which of these
            # took effect is unknown, and a node's rule tables may all have been written (their restores run
            # to their end). Every op but a deletion counts as done, so that the rollback takes it back: taking
            # back what never took effect is harmless (a deletion allowed to find nothing, a table or setting
            # put back as it is). A deletion is left out: its take-back would make a second object if it never
            # took effect; what it did remove, the next `up` makes again.
            self.applied += [op for op in ops if op.verb != "del"]
            raise
        # A deletion the kernel found gone already took nothing away: its take-back would make what was not there
        self.applied += ops if done is None else done

    def attempt(self, op: Op) -> tuple[bool, str | None]:
        """Apply one op whose refusal is not the run's failure (a root qdisc added by hand: impair/stray.py):
        whether it took effect (then journaled: a rollback takes it back; not a deletion allowed to find nothing,
        missing_ok, that did) and the kernel's error in words, or None."""
        self._hook(op.describe())
        self.touched.add(op.netns)
        try:
            done = self.kernel.apply([op])
        except KernelError as exc:
            self.applied += exc.applied
            return False, str(exc)
        except BaseException:  # a signal while the kernel worked: as _send counts it
            self.applied += [op] if op.verb != "del" else []
            raise
        self.applied += [op] if done is None else done
        return done is None or op in done, None

    def undo(self, skip_netns: set[str] = frozenset()) -> list[tuple[Op, str]]:
        """Take back every op that took effect, last first; returns those the kernel would not take back, each
        with its words: the run's op and the kernel's reason ("write sysctl net.ipv4.ip_forward in L-n1
        (Permission denied)")."""
        refused: list[tuple[Op, str]] = []
        for op in reversed(self.applied):
            if op.netns in skip_netns:
                continue  # the namespace goes whole
            inverse = op.inverse()
            if inverse is None:
                continue
            try:
                self.kernel.apply([inverse])
            except KernelError as exc:
                reason = str(exc).removeprefix(f"{inverse.describe()}: ")  # the kernel's words name the inverse
                refused.append((op, f"{op.describe()} ({reason})"))
        self.applied.clear()
        return refused


def put_back_dropped(kernel: Kernel, state: "LabState", touched: set[str],
                     held: dict[str, set[tuple]]) -> list[str]:
    """Undoing a run's ops does not bring back what the kernel removed along with them: every route through
    a device whose last address was deleted, or that went down or was made again (a node's eth0 given its
    new ip:, flannel.1 made again with a new local address), and a device's addresses, neighbours and FDB
    entries when it was made again. The namespaces the run changed (``touched``) are read again, and what the
    lab's plan before the run (``state``, put back) has there, they held when the run first read them
    (``held``: namespace -> keys) and they lack now is added: the kernel as it was, not as planned (what was
    missing before the run, a route deleted by hand, stays missing for status to name and the next up to
    repair). Returns what could not be added, each in words."""
    if not touched:
        return []
    try:
        plan = build_plan(state.resolved())
    except NetlabError:
        return []  # a saved topology that no longer resolves: the next up converges it
    want = expected(plan)
    names = sorted(ns for ns in touched if ns in want and kernel.netns_mounted(ns))
    snaps = kernel.snapshot_many({ns: ([], True) for ns in names})
    ops = []
    for ns in names:
        if ns not in snaps:
            continue
        obs = observe(snaps[ns], {r.key: r for r in want[ns]}, snaps)
        ops += [Op("add", d.resource) for d in diff_netns(want[ns], obs, kernel_links(state).get(ns, ()))
                if d.state == "missing" and d.resource.kind in DROPPED_WITH_THEIR_DEVICE
                and d.resource.key in held.get(ns, ())]
    failed = []
    for op in ordered(ops):
        try:
            kernel.apply([op])
        except KernelError as exc:
            failed.append(f"{op.res.describe()} ({exc})")
    return failed
