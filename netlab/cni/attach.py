"""One pod's CNI ADD and DEL through every network of its chain, from its record (cni/lifecycle.py writes it before
the ADD: no lab file needed to DEL), and the ADD of many pods at once: a failed ADD is followed by the DEL of the
pod's chains, as the spec asks of a runtime, and a re-attached pod whose ADD failed is ADDed again as it was."""

from __future__ import annotations

import os
from functools import partial
from typing import TYPE_CHECKING, Any

from netlab.cni import conf as C
from netlab.cni.announce import Announce, announce
from netlab.cni.changed import check_pod, conf_text, recorded_conf
from netlab.cni.invoke import PluginFailed
from netlab.cni.runtime import Runtime
from netlab.cni.verify import address_missing
from netlab.feature import StartResult
from netlab.kernel.netns import is_netns_mount
from netlab.model.cniconf import ConflistError, parse_conflist
from netlab.realize.attachments import DELETED, UNCHECKED, attachment_json, note_devices

if TYPE_CHECKING:
    from netlab.model.lab import Lab, PodInfo
    from netlab.realize.state import LabState

WORKERS = max(1, os.cpu_count() or 1)
DEL_RAN = "; its DEL ran: pod {pod} is not attached"  # after a failed ADD's line


def attach(rt_: Runtime, prec: dict[str, Any], pod: str) -> dict[str, Any]:
    """ADD the pod to every network, with what its record says (changed.recorded_conf); the main network's result."""
    result: dict[str, Any] = {}
    for raw, ifname in prec["networks"]:
        confirm = partial(address_missing, prec["netns"], ifname=ifname) if ifname == C.POD_IF else None
        result = rt_.add(parse_conflist(conf_text(raw)), recorded_conf(prec, pod, ifname), confirm)
    return result


def detach(rt_: Runtime, prec: dict[str, Any], pod: str, gone: bool = False) -> None:
    """DEL the pod from every network, the last attached first (from the record: no lab file needed). The record
    gives the ADD's capability arguments: a cached result brings its own, but the DEL after a failed ADD has none
    (host-local's DEL without the ipRanges it allocated from fails: "no IP ranges specified"). ``gone``: the pod's
    namespace is no longer the lab's, the DEL is handed none (changed.recorded_conf). Nor is it handed a path where
    no namespace is mounted now (deleted by hand, or by the up that removed the pod before its failed DEL runs
    again): CNI_NETNS is empty then, as containerd hands it for a closed sandbox (the spec: a DEL must tolerate a
    missing namespace); the plugins still release what they hold outside it (host-local's lease)."""
    nets = [(parse_conflist(conf_text(raw)), ifname) for raw, ifname in prec["networks"]]
    gone = gone or not is_netns_mount(prec.get("netns") or "")
    for k in range(len(nets) - 1, -1, -1):
        try:
            rt_.delete(nets[k][0], recorded_conf(prec, pod, nets[k][1], gone))
        except PluginFailed as exc:  # the networks attached before it are not DELed either
            exc.undone = (exc.undone or []) + [(n.name, i) for n, _ in nets[:k] for i in range(len(n.plugins))]
            raise


def add_all(rt_: Runtime, lab: Lab, state: LabState, todo: list[PodInfo], records: dict[str, Any],
            out: StartResult, previous: dict[str, dict[str, Any]], running: bool = False,
            retry: bool = False) -> dict[str, tuple[str, bool]]:
    """ADD the pods, as many at once as there are cores; what failed, by pod: (its line, whether it is to be ADDed
    again as a new sandbox: with ``retry``, a plugin failed it of itself and the DEL after it ran; cni/retry.py).
    A re-attached pod (its ``previous`` record) whose ADD failed, and is not to be tried again, is ADDed again as
    it was: the chain's DEL before that ADD cannot be undone, its ADD with the config it had can. In a ``running``
    lab each pod attached is announced (a gratuitous ARP from its interface: cni/announce.py)."""
    failures: dict[str, tuple[str, bool]] = {}
    announced: list[Announce] = []
    from concurrent.futures import ThreadPoolExecutor  # here: every `up` loads this module (cni.lifecycle's preflight)

    # One pod of each node first, the nodes side by side, then the rest: the bridge plugin makes a node's bridge
    # at the first ADD there, and the bridge's MAC settles during that ADD (a port joins it, the plugin sets it);
    # a second ADD meanwhile could read another MAC into its result, which failed every later CHECK ("Bridge
    # interface cni0 Mac doesn't match", seen in CI). A kubelet's concurrent sandboxes race the same way, but
    # nothing CHECKs them.
    firsts = list({pod.node: pod for pod in reversed(todo)}.values())
    first_names = {pod.name for pod in firsts}
    waves = [firsts, [pod for pod in todo if pod.name not in first_names]]
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(todo))) as pool:
        futures = {}
        for wave in waves:
            futures.update({pod.name: pool.submit(attach_or_restore, rt_, lab, pod, records, previous.get(pod.name),
                                                  running, retry) for pod in wave})
            for pod in wave:
                futures[pod.name].exception()  # this wave done before the next begins
        for name in [pod.name for pod in todo]:
            fut = futures[name]
            result, failed, unchecked, again = fut.result()
            if failed is not None:
                failures[name] = (failed, again)
            if unchecked is not None:  # attached, and not as its own CHECK wants it: up exits 1, nothing rolled back
                out.failed.append(unchecked)
            if result is None:
                continue
            att = C.attachment(result)
            if att is None:
                failures[name] = (f"pod {name}: the CNI result gives no IPv4 address on {C.POD_IF}", False)
                continue
            records[name].update({"phase": "added", "attachment": attachment_json(att, C.host_interfaces(result))})
            announced.append((records[name]["netns"], C.POD_IF, att.ip, records[name].get("node_netns"),
                              att.host_veth))
            kept = [d for d in C.host_interfaces(result) if d != att.host_veth]  # a bridge (the veth goes with DEL)
            note_devices(state, records[name]["node_netns"], kept)
            planned = lab.addressing.pod_ip[name]
            # Another address than the topology's (the conflist's own IPAM range): up makes the plan follow it.
            other = f"; the topology gives {planned}: what names the pod follows" if att.ip != planned else ""
            if not any(a.startswith(f"re-attached pod {name} ") for a in out.actions):
                out.actions.append(f"attached pod {name} through CNI ({att.ip}{other})")
    if running:
        out.problems += announce(announced)
    return failures


def attach_or_restore(rt_: Runtime, lab: Lab, pod: PodInfo, records: dict[str, Any],
                      was: dict[str, Any] | None, running: bool = True,
                      retry: bool = False) -> tuple[dict[str, Any] | None, str | None, str | None, bool]:
    """(the result, or None; what failed, or None; the line of a CHECK that fails the pod's fresh ADD, or None;
    whether it is to be ADDed again as a new sandbox: with ``retry``, when a plugin failed it of itself and the
    DEL after it ran): the ADD (attach_or_delete), and when it fails for a pod attached before, and no new sandbox
    follows, its ADD with the record it had (then in ``records``, phase "added" once that ADD passed). A pod
    attached before (re-attached) is CHECKed once after its ADD passed: a chain that fails its own fresh ADD is
    said (the pod stays attached: up exits 1, as status does), and its record says so (``check_fails``): up does
    not re-attach it again for that, as a kubelet never re-ADDs a sandbox for a CHECK (a watcher did, every few
    seconds)."""
    try:
        result = attach_or_delete(rt_, lab, pod, records[pod.name], running)
    except PluginFailed as exc:
        deleted = records[pod.name].get("phase") == DELETED  # its DEL failed: no ADD before one passes
        again = retry and deleted and exc.plugin_said
        if again or was is None or not deleted:
            return None, str(exc), None, again
        failed = str(exc)
    else:
        found = check_pod(rt_, lab, pod, records[pod.name]) if was is not None else None
        if was is not None:  # CHECKed now, right after its ADD (cni/first_check.py)
            records[pod.name].pop(UNCHECKED, None)
        if found is None or found.fresh_mark() is None:
            return result, None, None, False
        records[pod.name]["check_fails"] = found.fresh_mark()
        return result, None, found.fresh_words(pod.name), False
    back = dict(was, phase="adding")
    try:
        result = attach(rt_, back, pod.name)
    except PluginFailed as exc:
        said = safe_detach(rt_, lab.name, back, pod.name, None)
        if said:  # the record of that ADD stays "adding": the next up or down runs DEL again
            records[pod.name] = back
        why = str(exc).removeprefix(f"pod {pod.name}: ")
        return None, f"{failed}; then its ADD with the config it had before failed too: {why}" + (
            f"; then its DEL failed too: {said[0].removeprefix(f'CNI DEL of pod {pod.name}: ')}" if said else ""), \
            None, False
    records[pod.name] = back
    return result, f"{failed}; then pod {pod.name} was attached again with the config it had before", None, False


def attach_or_delete(rt_: Runtime, lab: Lab, pod: PodInfo, prec: dict[str, Any],
                     running: bool = True) -> dict[str, Any]:
    """ADD the pod (attach); when that fails, DEL it from every network at once, as the spec asks ("the runtime
    should execute the DEL action ... for all plugins"): the record then says DEL ran (nothing left to DEL), or,
    when the DEL failed too, stays "adding" for the rollback, or the next up or down, to DEL again. A new lab
    (not ``running``) has no next down: its rollback takes its nodes, where alone its plugins run, so that DEL is
    its rollback's, which says what it leaves (lab/up.py)."""
    try:
        return attach(rt_, prec, pod.name)
    except PluginFailed as exc:
        said = safe_detach(rt_, lab.name, prec, pod.name, None)
        if said:
            why = said[0].removeprefix(f"CNI DEL of pod {pod.name}: ")
            again = "the next up or down runs DEL again" if running else "the rollback runs DEL again"
            raise PluginFailed(f"{exc}; then its DEL failed too: {why} ({again})") from None
        prec["phase"] = DELETED
        gone = PluginFailed(f"{exc}{DEL_RAN.format(pod=pod.name)}")
        gone.plugin_said = exc.plugin_said  # the sandbox is gone: a new one may pass (cni/retry.py)
        raise gone from None


def safe_detach(rt_: Runtime, lab_name: str, prec: dict[str, Any], pod: str, out: StartResult | None) -> list[str]:
    said = detach_said(rt_, prec, pod)
    return [said[0]] if said else []


def detach_said(rt_: Runtime, prec: dict[str, Any], pod: str,
                gone: bool = False) -> tuple[str, list[tuple[str, int]] | None] | None:
    """None when the pod's DEL passed, else (the line that says what failed, the plugins whose DEL did not pass)."""
    try:
        detach(rt_, prec, pod, gone)
    except (PluginFailed, ConflistError, KeyError, TypeError) as exc:  # a plugin's failure names the pod
        return f"CNI DEL of pod {pod}: {str(exc).removeprefix(f'pod {pod}: ')}", getattr(exc, "undone", None)
    return None
