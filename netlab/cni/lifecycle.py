"""The CNI feature of a lab: ``up`` ADDs each pod, ``status`` CHECKs it, ``down`` DELs it.

As on a node, where the kubelet asks the runtime to set up each pod's
sandbox: the namespaces and the node's network (underlay, overlay, Flannel's
routes) are netlab's, as they are flanneld's; the pod's interface, address
and routes are the plugins'. Pods are attached concurrently, as many at once
as the machine has cores. A failed ADD is DELed and, when a plugin failed it of
itself, tried again as a new sandbox (cni/retry.py); one that fails every try
fails ``up``, which rolls the lab back: stop() DELs every pod that has a record
(written before its ADD began).

The feature's preflight checks only ``NETLAB_CNI_TIMEOUT`` (exit 2 before any
change when it is no positive number of seconds): whether the plugins are
there and speak the chain's cniVersion is ``netlab doctor``'s ``tool CNI
plugins`` check (netlab.cni.check), which ``up`` runs for a CNI lab before it
changes anything (exit 3 with the doctor's line).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from netlab.cni import conf as C
from netlab.cni import edited, first_check
from netlab.cni.attach import WORKERS, detach_said, safe_detach
from netlab.cni.cached import bin_dirs_of
from netlab.cni.changed import changed, conf_text, readdressed
from netlab.cni.edited import host_local_dir as host_local_dir
from netlab.cni.leftover import gone_words, kept_words
from netlab.cni.node_reads import NodeReads
from netlab.cni.retry import add_tried
from netlab.cni import terminated as T
from netlab.cni.invoke import TIMEOUT_VAR, CallLog, cni_timeout, timeout_problem
from netlab.cni.invoke import keep_copy, log_words
from netlab.realize import attachments
from netlab.realize.attachments import UNCHECKED, node_devices, note_devices, pod_records, recorded_moves
from netlab.cni.runtime import Runtime
from netlab.errors import ApplyFailed, EnvironmentNotReady, UsageError, netlab_command
from netlab.feature import FRESH_ADD_FAILS, Note, StartResult, Unmendable
from netlab.kernel import testhooks
from netlab.kernel.netns import is_netns_mount
from netlab.model.cniconf import ConflistError, parse_conflist
from netlab.realize import lab_writes
from netlab.realize.state_dir import ensure_dir, lab_dir

if TYPE_CHECKING:
    from netlab.model.lab import Lab, PodInfo
    from netlab.realize.state import LabState

# (lab, containerId) of the removed pods whose DEL failed in this process: up's start does not run it again in the
# run whose stop just tried (the next run does).
_failed_now: set[tuple[str, Any]] = set()
# The pods of a lab whose re-attach a watcher holds back (api/watch_converge.py): their chain failed the CHECK of
# their own fresh ADD lately, and a re-attach for another failure waits for their back-off; the lab's other drift is
# repaired meanwhile, by the same up.
_held_back: dict[str, frozenset[str]] = {}


@contextlib.contextmanager
def held_back(lab_name: str, pods: Iterable[str]) -> Iterator[None]:
    """While it lasts, ``up`` of lab ``lab_name`` re-attaches none of ``pods`` for a chain that no longer matches
    it (it attaches a detached one, and re-attaches one whose spec changed)."""
    _held_back[lab_name] = frozenset(pods)
    try:
        yield
    finally:
        _held_back.pop(lab_name, None)
# lab: its pods whose ADD or re-attach a signal or an error cut short, and the `up` that attaches them again (roll_back)
_cut: dict[str, tuple[set[str], str]] = {}
DELETED = attachments.DELETED  # a record's phase: its ADD failed and the DEL that followed ran; nothing left to DEL
# A record's phase, written before a re-attach's DEL (write-ahead, as "adding" before an ADD): a run cut short
# (killed) after that DEL leaves a pod with no interface, which the next up or status must see as such.
DETACHING = attachments.DETACHING
DEL_FAILED = T.DEL_FAILED  # a record's mark: a DEL of the pod failed (the next one runs it again)
SANDBOX_GONE = attachments.SANDBOX_GONE  # a record's mark: its namespace was deleted under it (up marks it)


def cni_dir(lab_name: str, make: bool = True) -> str:
    """The lab's cni/ (host-local's leases, the plugins' results, their call log); made with the lab's folder when
    ``make`` (up, down, a rollback: the lab's writers), never by a reader (status), whose lab a ``down`` may be
    taking away: its folder, once taken, is never made again."""
    if not make:
        return os.path.join(lab_dir(lab_name, create=False), "cni")
    return ensure_dir(os.path.join(lab_dir(lab_name), "cni"))


def log_path(lab_name: str) -> str:
    return os.path.join(lab_dir(lab_name, create=False), "cni", "calls.jsonl")


def runtime(lab_name: str, bin_dirs: list[str], timeout: float, make: bool = True) -> Runtime:
    """The lab's plugin runtime; ``make``: see :func:`cni_dir` (a reader's CHECKs are logged only to a log there)."""
    base = cni_dir(lab_name, make)
    return Runtime(base, bin_dirs, CallLog(os.path.join(base, "calls.jsonl"), make), timeout=timeout)


def preflight(lab: Lab) -> None:
    """Before ``up`` changes anything (under the lab's lock): a CNI lab's plugin calls need a deadline, and a pod
    its plugins attached keeps the address they gave it (UsageError, exit 2)."""
    if lab.cni == "builtin":
        return
    refused = lab_writes.tree_problem(lab.name, ["cni"])
    if refused is not None:  # host-local would write its leases through it: nothing changed, nothing written
        raise EnvironmentNotReady(f"lab {lab.name}: {refused.path}: {refused.why}; up writes nothing through it "
                                  "(the CNI plugins keep their leases and results below the lab's cni/): move it "
                                  "away, then run up again")
    cni_timeout()
    keep_copy(lab.name)  # NETLAB_CNI_LOG: opened now, its name refused before any change
    from netlab.realize.state import load_state

    state = load_state(lab.name)
    changed = readdressed(lab, state) if state is not None else []
    if changed:
        pod, was, now = changed[0]
        more = f" (and {len(changed) - 1} more pods)" if len(changed) > 1 else ""
        raise UsageError(f"lab {lab.name}: pod {pod}'s ip changes from {was} to {now}{more}, and its CNI plugins "
                         f"attached it with {was} (a sandbox keeps its address): take the pod out of the file and "
                         f"`up` (its plugins' DEL runs), then put it back with ip {now} and `up` again")


def _record(lab: Lab, pod: PodInfo, state: LabState, old: Any = None) -> dict[str, Any]:
    """The record written before a pod's ADD. A pod attached before keeps its old attachment in it until the ADD
    gives the new one: the node-side devices its result named (a bridge the plugin made and keeps) stay the
    plugins', never extra to status nor deleted by up, also when the ADD fails (attachments() reads "added" only)."""
    node, cid = lab.node(pod.node), C.new_container_id()  # a new sandbox: its own id (its old one was DELed with its)
    networks = C.networks(lab, node, host_local_dir(lab.name, node.name))
    nets = [[n.raw, ifname] for n, ifname in networks]
    planned = C.asked_ip(lab, pod, networks[-1][0])  # what both the ADD's IP= and ips ask for (None: neither)
    rec = {"phase": "adding", "node": node.name, "containerId": cid, "netns": pod.netns, "node_netns": node.netns,
           "args": [list(a) for a in C.cni_args(pod, cid, planned)], "networks": nets,
           "capabilityArgs": C.capability_args(lab, pod, planned), UNCHECKED: True}  # no CHECK yet: first_check
    if isinstance(old, dict) and isinstance(old.get("attachment"), dict):
        rec["attachment"] = old["attachment"]
    return rec


def start(lab: Lab, state: LabState, only: set[str] | None = None) -> StartResult:
    """ADD each pod that has no attachment; DEL, then ADD, each whose chain no longer matches it (``only``: the pods
    of these namespaces alone; no other pod is CHECKed). A DEL that fails stops that pod there: no ADD (the spec: no
    second ADD without a DEL between), the record keeps its attachment (a later ``up`` or ``down`` runs DEL again)
    and ``up`` fails naming the DEL. A failed ADD is followed by the DEL of the pod's chains, as the spec asks of a
    runtime; what the plugins made stays theirs either way."""
    if lab.cni == "builtin":
        return StartResult()
    records = pod_records(state)
    _cut.pop(lab.name, None)
    try:
        out, failed = _start(lab, state, only, records)
    except BaseException:  # a signal or an error between a DEL and its ADD: the rollback DELs those pods (roll_back)
        try:
            again = edited.up_again(state, lab)
        except Exception:  # the words only: never in the way of the error being raised
            again = netlab_command(f"up --lab {lab.name}")
        _cut[lab.name] = ({pod for pod, prec in records.items() if isinstance(prec, dict)
                           and prec.get("phase") in ("adding", DETACHING)}, again)
        raise
    if failed is not None:  # each pod's ADD ended, and what failed is said (its DEL ran, or its failure is said)
        raise failed
    return out


def _start(lab: Lab, state: LabState, only: set[str] | None,
           records: dict[str, Any]) -> tuple[StartResult, ApplyFailed | None]:
    out = StartResult()
    running = any(isinstance(prec, dict) for prec in records.values())  # not a lab made now (cni/announce.py)
    rt_ = runtime(lab.name, C.bin_dirs(lab), cni_timeout())
    todo: list[PodInfo] = []
    failures: list[str] = []
    if only is None:  # and a terminal pod's sandbox is stopped: its DEL (cni/terminated.py)
        _delete_removed(rt_, lab, state, records, out)
        failures += T.stop_terminal(rt_, lab, state, records, out)
    # Pods attached with another config than now's (up --reconfigure: a plain up refused them, cni/edited.py)
    stale = set(edited.stale(lab, state)) if only is None else set()
    previous: dict[str, dict[str, Any]] = {}  # a re-attached pod's record: what a failed ADD restores
    marks_gone = False
    for pod in [p for p in lab.pods if only is None or p.netns in only]:
        prec = records.get(pod.name)
        if pod.name in lab.terminal:  # no ADD for a terminal pod: its sandbox is stopped, or it never had one
            continue
        if prec is None or prec.get("phase") in (DELETED, T.TERMINATED):  # (a terminated one runs again: new sandbox)
            todo.append(pod)
            continue
        if prec.get(SANDBOX_GONE):  # the kubelet's SandboxChanged: the old sandbox's DEL, then a new sandbox's ADD
            said = safe_detach(rt_, lab.name, prec, pod.name, None)
            if said:  # as StopPodSandbox failing: the kubelet makes no new sandbox before the old one is stopped
                prec[DEL_FAILED] = True
                state.save()
                failures.append(f"{said[0]}; so pod {pod.name}'s old sandbox (its network namespace was made anew) "
                                "is not deleted and no new one was ADDed: the next up or down runs DEL again")
            else:
                todo.append(pod)
                out.actions.append(f"re-attached pod {pod.name} through CNI (its network namespace was made anew: the "
                                   "CNI DEL of its old sandbox ran with an empty CNI_NETNS, the ADD of a new one with "
                                   "a new CNI_CONTAINERID)")
            continue
        if prec.get("phase") != "added":  # an ADD that never finished (or a re-attach cut short): take it back first
            cut = prec.get("phase") == DETACHING
            said = safe_detach(rt_, lab.name, prec, pod.name, None)
            if said:
                earlier = "re-attach" if cut else "ADD"
                failures.append(f"{said[0]}; an earlier {earlier} of pod {pod.name} never finished, so it was not "
                                f"ADDed again (the next up or down runs DEL again)")
            else:
                todo.append(pod)
                if cut:
                    out.actions.append(f"re-attached pod {pod.name} through CNI (an earlier re-attach was cut short "
                                       f"after its DEL: it had no {C.POD_IF})")
            continue
        why = edited.reattach_reason(lab) if pod.name in stale else None
        found = None if why else changed(rt_, lab, pod, prec)
        if found is None and not why and prec.pop("check_fails", None) is not None:
            marks_gone = True  # its chain passes again: a later failure is a re-attach's to mend
        marks_gone = (not why and first_check.settle(prec, found)) or marks_gone  # its first CHECK since its ADD
        if found is not None and found.first:  # the plugin's own CHECK failing its ADD: no ADD mends it
            out.failed.append(found.fresh_words(pod.name))
            continue
        if found is not None and found.marked(prec.get("check_fails")):
            out.failed.append(found.fresh_words(pod.name, again=True))  # failed its own fresh ADD: no ADD mends it
            continue
        if found is not None and not found.spec and pod.name in _held_back.get(lab.name, ()):
            continue  # the watcher holds its re-attach back, and says so
        why = why or (found.reattach_reason() if found else None)
        if why:
            prec["phase"] = DETACHING  # write-ahead: killed after the DEL, the record says the pod is detached
            try:
                state.save()
            except BaseException:  # not written (a full disk, a signal): nothing DELed, its attachment stands
                prec["phase"] = "added"
                raise
            said = safe_detach(rt_, lab.name, prec, pod.name, None)
            if said:
                prec["phase"] = "added"  # the DEL failed: it keeps its attachment (DEL runs again, then ADD)
                state.save()
                failures.append(f"{said[0]}; so pod {pod.name} was not re-attached ({why}): "
                                f"it keeps its attachment, and the next up or down runs DEL again")
                continue
            testhooks.fault_point("cni-detached")  # DELed, not yet ADDed again
            todo.append(pod)
            previous[pod.name] = dict(prec)
            out.actions.append(f"re-attached pod {pod.name} through CNI ({why})")
    if todo:
        try:
            for pod in todo:
                records[pod.name] = _record(lab, pod, state, records.get(pod.name))
        except ConflistError as exc:
            raise ApplyFailed(f"network.cni.conflist: {exc}") from None
        for pod in todo:  # the bridge an ADD makes stays the plugins' whatever the ADD does next (failed, DELed)
            prec = records[pod.name]
            note_devices(state, prec["node_netns"],
                         [d for raw, _ in prec["networks"] for d in C.kept_devices(parse_conflist(conf_text(raw)))])
        state.save()  # write-ahead: every pod about to be ADDed has a record a rollback DELs
        testhooks.fault_point("cni-adding")  # the records say "adding", no plugin has run
        failures += add_tried(rt_, lab, state, todo, records, out, previous, running,
                              lambda pod: _record(lab, pod, state, records.get(pod.name)))  # a new sandbox
        state.save()
    elif marks_gone:
        state.save()
    if failures:
        detached = [p for p in previous if records[p].get("phase") == DELETED]
        # what up's rollback cannot bring back: the DEL before the re-ADD; and a new lab's rollback takes its
        # folder, and the CNI log in it (lab/up.py says both)
        # the up that attaches them: with --reconfigure when other pods keep the config they had (a plain up
        # refuses the lab then: cni/edited.py)
        again = edited.up_again(state, lab)
        not_back = (f", but for pod{'s' if len(detached) > 1 else ''} {', '.join(detached)}, left detached (no "
                    f"{C.POD_IF}: the DEL before its ADD cannot be undone; `{again}` attaches it again)") \
            if detached else ""
        return out, ApplyFailed(failures[0] + (f" (and {len(failures) - 1} more pods failed)" if len(failures) > 1
                                               else ""), not_back=not_back, if_fresh=log_words())
    return out, None


def roll_back(state: LabState) -> list[str]:
    """A running lab's rollback after a signal or an error in :func:`start`: DEL each pod whose ADD or re-attach it
    had begun (docs/reliability.md: "rollback and `down` DEL it"); what it cannot bring back, for up's line."""
    (cut, again), records, out = _cut.pop(state.lab, (set(), "")), pod_records(state), []
    if not cut:
        return []
    rt_ = runtime(state.lab, bin_dirs_of(state), cni_timeout(lenient=True))
    for pod, prec in [(p, r) for p, r in records.items() if p in cut and isinstance(r, dict)
                      and r.get("phase") in ("adding", DETACHING) and is_netns_mount(r.get("node_netns") or "")]:
        was = prec.get("phase") == DETACHING or isinstance(prec.get("attachment"), dict)  # attached before the run
        said = safe_detach(rt_, state.lab, prec, pod, None)
        if said:
            out.append(f"pod {pod}, whose ADD was cut short and whose DEL failed ({said[0]}; the next up or down runs "
                       "DEL again)")
            continue
        prec["phase"] = DELETED
        out += [f"pod {pod}, left detached (no {C.POD_IF}: the run had begun to re-attach it, and the DEL before its "
                f"ADD cannot be undone; `{again}` attaches it again)"] if was else []
    state.save(best_effort=True)
    return out


def _delete_removed(rt_: Runtime, lab: Lab, state: LabState, records: dict[str, Any], out: StartResult) -> None:
    """Pods taken out of the topology whose DEL failed when they went: DEL again (a warning while it fails)."""
    known = {p.name for p in lab.pods}
    now = {cid for name, cid in _failed_now if name == lab.name}
    _failed_now.difference_update({(lab.name, cid) for cid in now})  # the next run (of up --watch too) tries again
    changed = False
    for pod, prec in list(records.items()):
        if pod in known or not isinstance(prec, dict) or prec.get("containerId") in now:
            continue
        changed = True
        if prec.get("phase") == DELETED or (prec.get("node_netns") and not is_netns_mount(prec["node_netns"])):
            records.pop(pod, None)  # nothing to DEL, or its node took what the plugins made
            continue
        # its namespace went with it: one mounted at its name since is another's, never handed to a plugin
        failed = detach_said(rt_, prec, pod, gone=prec["netns"] not in state.netns and is_netns_mount(prec["netns"]))
        if failed:
            prec[DEL_FAILED] = True
            out.problems.append(failed[0] + kept_words(pod, prec, failed[1]))
            continue
        records.pop(pod, None)
        out.actions.append(f"ran the CNI DEL of removed pod {pod}{' again' if prec.get(DEL_FAILED) else ''}: "
                           "it succeeded")
    if changed:
        state.save()


def running(state: LabState, netns_names: list[str]) -> list[str]:
    """The pods of these namespaces its plugins had attached, before `up` stops them to make them anew."""
    rec = state.extra.get("cni")
    pods = rec.get("pods") if isinstance(rec, dict) else None  # read only: no record made for a builtin lab
    names = set(netns_names)
    return sorted(pod for pod, prec in (pods if isinstance(pods, dict) else {}).items()
                  if isinstance(prec, dict) and prec.get("netns") in names and prec.get("phase") == "added")


def start_again(lab: Lab, state: LabState, netns_names: list[str], was: list[str] | None) -> StartResult:
    """A rollback made these namespaces' pods again: ADD them (those attached before the run, ``was``: all of them
    without it), and no other pod: none is CHECKed nor attached again (a rollback is not a repair)."""
    names = {p.netns for p in lab.pods if p.netns in set(netns_names) and (was is None or p.name in was)}
    return start(lab, state, only=names) if names else StartResult()


def stop(state: LabState, netns_names: Iterable[str], everything: bool = False, taken: bool = False) -> list[str]:
    """DEL every pod of these namespaces (all, with ``everything``), while their node is still there. ``taken``:
    their names hold namespaces that are not the lab's now (another's, mounted since the lab's were deleted by
    hand): the DELs are handed no namespace (CNI_NETNS empty), not the path of theirs."""
    rec = state.extra.get("cni")
    names = set(netns_names)
    if isinstance(rec, dict) and isinstance(rec.get("devices"), dict) and not rec.get("pods"):
        _forget_nodes(state, names, everything)
        state.save(best_effort=True)
    if not isinstance(rec, dict) or not rec.get("pods"):
        return []
    records = pod_records(state)
    problems: list[str] = []
    deadline = cni_timeout(lenient=True)  # down and a rollback must finish: the default, and a word
    bad = timeout_problem(os.environ.get(TIMEOUT_VAR))
    if bad:
        problems.append(f"{bad} (the CNI DEL calls had {deadline:g} s each)")
    theirs = lab_writes.tree_problem(state.lab, ["cni"])
    scratch = None
    if theirs is not None:
        import tempfile  # here: for a lab whose cni folder is not its own only (every `up` loads this module)

        scratch = tempfile.mkdtemp(prefix="netlab-cni-del-")
    try:
        rt_ = (runtime(state.lab, bin_dirs_of(state), deadline) if scratch is None else
               Runtime(os.path.dirname(log_path(state.lab)), bin_dirs_of(state), CallLog(None), timeout=deadline,
                       leases_theirs=(os.path.dirname(log_path(state.lab)), scratch)))
        _stop(state, rt_, records, names, everything, problems, taken)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    if theirs is not None:  # a user's (a symlink, a bind mount): nothing written nor removed through it
        problems.insert(0, f"cni: {theirs.path}: {theirs.why}; down ran the plugins' DEL without host-local's "
                           "leases in it (the lab's pods' addresses are left leased there, yours to remove) and "
                           "wrote no CNI call log there")
    return problems


def _stop(state: LabState, rt_: Runtime, records: dict[str, Any], names: set[str], everything: bool,
          problems: list[str], taken: bool = False) -> None:
    detach: list[tuple[str, dict[str, Any]]] = []
    for pod, prec in list(records.items()):
        if not isinstance(prec, dict) or not (everything or prec.get("netns") in names):
            continue
        if prec.get("phase") == DELETED:  # DELed when its ADD failed
            records.pop(pod, None)
            continue
        if prec.get("node_netns") and not is_netns_mount(prec["node_netns"]):
            # The node (the plugins' "host") is gone: what they made went with it. Never run a
            # plugin in the machine's own namespace instead.
            records.pop(pod, None)
            continue
        if not is_netns_mount(prec.get("netns") or ""):  # deleted under it: DEL with an empty CNI_NETNS
            prec[SANDBOX_GONE] = True
        detach.append((pod, prec))
    # Pods are detached as many at once as they were attached: a plugin that hangs costs its deadline once, not
    # once per pod.
    if detach:
        from concurrent.futures import ThreadPoolExecutor  # here: every `up` loads this module, for its preflight

        with ThreadPoolExecutor(max_workers=min(WORKERS, len(detach))) as pool:
            said = list(pool.map(lambda item: detach_said(rt_, item[1], item[0], taken or T.closed(item[1])), detach))
        for (pod, prec), failed in zip(detach, said):
            if not failed:
                records.pop(pod, None)
            elif everything:  # the lab goes: the record with it, and the node takes the plugins' rules
                problems.append(failed[0] + gone_words(prec, lab_dir(state.lab, create=False), failed[1]))
                records.pop(pod, None)
            else:
                # As containerd keeps a sandbox whose network teardown failed (StopPodSandbox fails, the kubelet
                # tries again): the record stays, and the next up or down runs DEL again.
                problems.append(failed[0] + kept_words(pod, prec, failed[1]))
                prec[DEL_FAILED] = True
                _failed_now.add((state.lab, prec.get("containerId")))
    _forget_nodes(state, names, everything)
    state.save(best_effort=True)


def stop_taken(state: LabState, netns_names: Iterable[str]) -> list[str]:
    """:func:`stop` of pods whose namespace's name another's namespace holds now: their DELs are handed none."""
    return stop(state, netns_names, taken=True)


def _forget_nodes(state: LabState, names: set[str], everything: bool) -> None:
    """The plugins' devices of nodes that go (or are gone): they go with the node."""
    kept = node_devices(state)
    for node_ns in [ns for ns in kept if everything or ns in names or not is_netns_mount(ns)]:
        del kept[node_ns]


def drift(lab: Lab, state: LabState) -> list[str]:
    if lab.cni == "builtin":
        return []
    records = pod_records(state)
    if any(isinstance(prec, dict) and prec.get("phase") == "added" for prec in records.values()):
        from netlab.cni.check import gone_since_up

        if line := gone_since_up(lab):  # the plugins' CHECKs cannot run: the machine's, as up says it
            raise EnvironmentNotReady(line)
    rt_ = runtime(lab.name, C.bin_dirs(lab), cni_timeout(), make=False)  # status reads: it makes nothing
    out: list[str] = [f"cni: pod {pod} has {was} from its CNI plugins, but the topology gives it ip {now}: up does "
                      f"not re-address an attached pod (take it out of the file and up, then put it back and up)"
                      for pod, was, now in readdressed(lab, state)]
    known = {p.name for p in lab.pods}
    out += [f"cni: pod {pod} was taken out of the topology, but its CNI DEL failed: up runs DEL again"
            if prec.get(DEL_FAILED) else f"cni: pod {pod} is attached and not in the topology: up runs its CNI DEL"
            for pod, prec in records.items() if pod not in known and isinstance(prec, dict)
            and prec.get("phase") != DELETED]  # its DEL failed, or not run yet (status -t FILE of a file without it)
    out += edited.drift(lab, state)  # a conflist edited in place since the pods' ADD
    moving = {pod for pod, _, _ in recorded_moves(lab, state)}  # its address is its old node's: the move's line
    out += [Note(line) for pod, line in lab.outside_pod_cidrs().items() if pod not in moving]  # plugins': no drift
    checks: dict[str, Any] = {}
    from concurrent.futures import ThreadPoolExecutor  # here, as above

    with NodeReads() as reads, ThreadPoolExecutor(max_workers=WORKERS) as pool:  # each node read once
        for pod in lab.pods:
            prec = records.get(pod.name)
            if pod.name in lab.terminal:  # its sandbox stopped, or to stop (cni/terminated.py): neither CHECK nor ADD
                out += T.drift(pod.name, prec)
                continue
            if again := T.runs_again(pod.name, prec, state):  # its DEL ran: no "deleted under it", no second DEL
                out += again
                continue
            if prec is not None and prec.get("phase") != DELETED and (prec.get(SANDBOX_GONE)
                                                                       or not is_netns_mount(pod.netns)):
                out.append(f"cni: pod {pod.name}'s network namespace is gone (deleted under it): up runs the CNI DEL "
                           "of its old sandbox, then ADDs a new one")
                continue
            if prec is not None and prec.get("phase") == DETACHING:
                out.append(f"cni: pod {pod.name} is detached (a re-attach was cut short: its CNI DEL ran, its ADD "
                           f"did not; it has no {C.POD_IF}); up attaches it")
                continue
            if prec is None or prec.get("phase") != "added":
                out.append(f"cni: pod {pod.name} is not attached through CNI (up attaches it)")
                continue
            if pod.name in moving:  # attached on its record's node, not the file's: its move's line says it
                continue
            checks[pod.name] = pool.submit(changed, rt_, lab, pod, prec, reads)
        found_of = {name: fut.result() for name, fut in checks.items()}
    first_check.record(state, found_of)  # the pods' first CHECKs since their ADD: passed, or the plugin's own
    for name, found in found_of.items():
        if found and (found.first or found.marked(records[name].get("check_fails"))):
            out.append(Unmendable(found.drift_line(name) + FRESH_ADD_FAILS))
        elif found:
            out.append(found.drift_line(name))
    return out

