"""What a running lab holds, as ``netlab get`` shows it: pods, nodes and Services (the labs that are up:
api/running.py).

Read from the lab's saved state (its topology and the containers' records)
and ``/proc`` (whether each container's process still runs in the pod);
nothing here changes anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NamedTuple

from netlab.api.results_views import waiting_of
from netlab.api.results import (ContainerInfo, ContainerPortInfo, EndpointInfo, NodeInfo, PodInfo, ServiceInfo,
                                ServicePortInfo)
from netlab.api.frozen import FrozenDict
from netlab.api.origins import BUILT_IN, DICT_SOURCE
from netlab.api.running import origin_of, source_label
from netlab.errors import UsageError
from netlab.kernel.netns import netns_path
from netlab.kernel.processes import ns_birth, task_state
from netlab.model.clusterdns import fqdn, is_addon_pod, is_dns_service
from netlab.model.lab import Lab
from netlab.model.lab import PodInfo as ModelPod
from netlab.model.topology import Service
from netlab.plan.service_port_info import service_ports  # not plan.services: its rules, which `get` never makes
from netlab.realize.attachments import detached, terminated_ips
from netlab.cni.terminated import released
from netlab.realize.state import LabState, up_command
from netlab.workload.lifecycle import container_argv, uts_path
from netlab.model.echo_ports import echo_ports
from netlab.workload import crashloop, unrecorded
from netlab.workload.containers import log_path
from netlab.workload.exits import exit_codes
from netlab.workload.tasks import in_old_sandbox, proc_of, task_of

if TYPE_CHECKING:
    from netlab.api.topology import Loaded

WORKLOAD_RECORD = "workload"  # state.extra key of the containers' records (netlab.workload.lifecycle.RECORD)


def replaces_running(loaded: Loaded, state: LabState) -> bool:
    """Whether bringing ``loaded`` up would replace the running lab ``state`` with a topology of another origin.

    Files: another file (realize.state.replaces). The state keeps no file for the built-in default nor for a
    dict, so those two are told apart by the saved topology (source_label): the default lab over a dict lab of
    its name, or a dict over the default lab, replaces it; the same dict over its dict lab converges it, as the same
    file does (whatever `netlab impair` set since), and another dict replaces it: a second program's dict of the
    name reshaped the lab the first uses (its pods gone). A dict that is the default topology is the default lab.
    The pytest plugin's labs have names of their own: none meets another's."""
    from netlab.realize.state import replaces

    if state.source is not None or loaded.source is not None:
        return replaces(state, loaded.source)
    if loaded.origin == BUILT_IN:
        new = BUILT_IN
    elif loaded.origin == DICT_SOURCE:
        topology = loaded.lab.topo.model_dump(mode="json", by_alias=True, exclude_none=True)
        new = origin_of(topology)
        if new == DICT_SOURCE and source_label(state) == DICT_SOURCE:
            return _unimpaired(state.topology) != _unimpaired(topology)
    else:  # a running lab's own saved topology (load_running): itself
        return False
    return source_label(state) != new


def _unimpaired(topology: Mapping[str, Any]) -> dict[str, Any]:
    """A saved topology without its name and the impairments `netlab impair` writes into it."""
    out = {k: v for k, v in topology.items() if k != "name"}
    for key in ("nodes", "pods"):
        if isinstance(out.get(key), list):
            out[key] = [{k: v for k, v in e.items() if k != "impair"} if isinstance(e, Mapping) else e
                        for e in out[key]]
    return out


def refuse_replacing(loaded: Loaded, state: LabState | None, cli: bool = False) -> None:
    """Another topology with a running lab's name (``state``) would replace that lab: refused, saying where each
    came from (a file, the built-in default, a dict) and ``reconfigure=True`` where the CLI says ``--reconfigure``
    (``cli``: the CLI's words)."""
    from netlab.errors import display_path

    if state is None or not replaces_running(loaded, state):
        return

    def words(origin: str) -> str:
        return {BUILT_IN: "the built-in default", DICT_SOURCE: "a dict"}.get(origin) or display_path(origin)

    was = source_label(state)
    given = "another dict" if was == loaded.origin == DICT_SOURCE else words(loaded.origin)
    clash = f"lab {state.lab} is up from {words(was)}, and {given} has the same name"
    if cli:
        raise UsageError(f"{clash}: it would replace that lab; rename it, or replace the running lab with "
                         f"`{up_command(None, reconfigure=True)}`")  # the CLI's only way in here: no -t FILE
    raise UsageError(f"{clash}: it would replace that lab; give it another name (name=...), or pass "
                     "reconfigure=True to replace the running lab")


# --- pods ------------------------------------------------------------------------------


class Seen(NamedTuple):
    """A container as the kernel shows it now (:func:`container_states`)."""

    state: str  # running | stopped | exited | not started | failed
    pid: int | None
    exit_code: int | None
    restarts: int
    old_netns: bool = False  # it runs on in its pod's old network namespace, deleted under it
    last_exit_code: int | None = None  # how the run before this one exited (the kubelet's lastState)
    start_error: str | None = None  # failed: why its command could not be started, as up said it


def container_states(state: LabState, lab: Lab) -> dict[tuple[str, str], Seen]:
    """(pod, container) -> how it is, from the records ``up`` keeps, /proc, and the lab's echo server.

    running: the recorded process lives in the pod's network namespace, or in
    the pod's old one that was deleted under it (``ip netns del``: the task runs
    on there, in the pod's UTS namespace, as ``status`` says); stopped: it is
    stopped by SIGSTOP/SIGTSTP; exited: it is gone (with its exit code when the
    lab's echo server held a pidfd of it, or stopped serving it, an echo container:
    workload/exits.py); failed: it could not start; not started: there is no
    record of it.
    """
    rec = state.extra.get(WORKLOAD_RECORD)
    pods: Mapping[str, Any] = rec.get("pods", {}) if isinstance(rec, dict) else {}
    out: dict[tuple[str, str], Seen] = {}
    gone: dict[str, dict[str, Any]] = {}  # containers that exited: their records, to ask the lab's server how
    for pod in lab.pods:
        prec = pods.get(pod.name)
        records = prec.get("containers", {}) if isinstance(prec, dict) else {}
        for c in pod.containers:
            crec = records.get(c.name)
            st, pid, old = _container_state(crec, pod.netns, uts_path(lab.name, pod.name),
                                            log_path(lab.name, pod.name, c.name))
            restarts = crec.get("restarts") if isinstance(crec, dict) else 0
            last = crec.get("last_exit_code") if isinstance(crec, dict) else None
            error = crec.get("error") if st == "failed" and isinstance(crec, dict) else None
            out[(pod.name, c.name)] = Seen(st, pid, None, restarts if isinstance(restarts, int) else 0, old,
                                           last if isinstance(last, int) else None,
                                           str(error) if error is not None else None)
            if st == "exited" and isinstance(crec, dict):  # an echo container too: its server stopped it
                gone[f"{pod.name}/{c.name}"] = crec
    for cid, code in exit_codes(state.lab, gone).items():
        pod_name, cname = cid.split("/", 1)
        out[(pod_name, cname)] = out[(pod_name, cname)]._replace(exit_code=code)
    return out


def _container_state(crec: Any, netns: str, uts: str, log: str) -> tuple[str, int | None, bool]:
    """(state, pid, whether it runs on in the pod's old network namespace). A container an `up` ended as it
    started it (no pid recorded): running as the process its id names, exited when its log shows it ran
    (workload/unrecorded.py), else not started, as status says it."""
    if not isinstance(crec, dict):
        return "not started", None, False
    if "error" in crec:
        return "failed", None, False
    p = proc_of(crec)
    if p is None and unrecorded.pending(crec):
        p = unrecorded.find(crec, netns, uts)
        if p is not None:
            return "running", p.pid, False
    if p is None:
        return ("exited" if unrecorded.ran(crec, log) else "not started"), None, False
    letter = task_of(crec, netns)  # in the pod's network namespace, or in one it made itself
    old = letter is None and in_old_sandbox(crec, uts, netns)
    if old:  # the pod's namespace was deleted (and maybe made again) under it: it runs on in the old one
        letter = task_state(p)
    if letter is None:
        return "exited", p.pid, False
    return ("stopped" if letter == "T" else "running"), p.pid, old


def pods(state: LabState, lab: Lab, selector: str | None = None) -> tuple[PodInfo, ...]:
    """The lab's pods (those whose labels match ``selector``), in topology order."""
    match = parse_selector(selector)
    states = container_states(state, lab)
    waiting = crashloop.read(state.lab)  # the containers `up --watch` holds back now: CrashLoopBackOff
    cut = detached(state, lab)  # no network from their CNI plugins (not attached yet, a re-attach cut short, or
    # failed): no eth0, no address
    kept = terminated_ips(state)  # a terminal pod's sandbox DELed: its status keeps the IP it had, as the API does
    removed = released(state)  # and its network namespace removed with it: it has none (cni/terminated.py)
    out = []
    for pod in lab.pods:
        if not match(pod.labels):
            continue
        containers = []
        old_netns = False
        for c in pod.containers:
            st, pid, code, restarts, old, last, start_error = states[(pod.name, c.name)]
            old_netns |= old
            # What listens: an echo container's ports with each TCP port's UDP twin (as `ss -ltun` in the pod
            # lists them), declared or the default 8080; a command container's declared ports.
            served = echo_ports(pod.containers, c) if not c.command else \
                [(p.container_port, p.protocol) for p in c.ports]
            named: dict[tuple[int, str], str | None] = {(p.container_port, p.protocol): p.name for p in c.ports}
            # Exited (or could not start) and held back by the watcher: the kubelet's waiting state
            held = waiting.get(f"{pod.name}/{c.name}") if st in ("exited", "failed") else None
            wait_reason, wait_message = waiting_of(pod.spec.restart_policy, start_error)
            containers.append(ContainerInfo(name=c.name, state=st, pid=pid,
                                            command=tuple(container_argv(pod, c)) if c.command else None,
                                            ports=tuple(ContainerPortInfo(named.get((port, protocol)), port,
                                                                          protocol) for port, protocol in served),
                                            exit_code=code, restarts=restarts, last_exit_code=last,
                                            waiting_reason=crashloop.REASON if held else wait_reason,
                                            waiting_message=held.message(pod.name, pod.spec.namespace, c.name)
                                            if held else wait_message, start_error=start_error,
                                            back_off_until=_rfc3339(held.until, ms=True) if held else None))
        sandbox = _created(pod.netns)
        # The pod's sandbox is gone: its network namespace, which up made, was deleted behind netlab's back
        # (its containers, if any still run, run on in the old, nameless one), or deleted and made again.
        netns_gone = old_netns or (sandbox is None and state.netns.get(pod.netns) == "created")
        out.append(PodInfo(name=pod.name, node=pod.node, ip="" if pod.name in cut else kept.get(pod.name, str(pod.ip)),
                           netns=None if pod.name in removed else pod.netns, mac=pod.mac,
                           network_detached=pod.name in cut,
                           labels=FrozenDict(pod.labels), containers=tuple(containers),
                           added=is_added_pod(pod), namespace=pod.spec.namespace,
                           created=_pod_created(state, pod.name) or sandbox,
                           netns_gone=netns_gone, hostname=pod.spec.hostname, subdomain=pod.spec.subdomain))
    # (their UTS namespaces: asked of a lab a down is at work on, or left halfway, alone)
    missing = _missing(lab.name, [(p.name, f"pod {p.name}", p.netns or "", p.netns_gone) for p in out],
                       uts=state.phase == "deleting")
    if missing is not None:  # SandboxChanged, or its UTS namespace gone: a `netlab down` deleting them?
        from netlab.realize.interrupted import taken_down

        # a `down` killed halfway: list's line (`down` finishes it), as exec says it, not SandboxChanged, nor
        # ContainerStatusUnknown (killed once it stopped the containers and unpinned their UTS namespaces)
        gone = taken_down(state.lab, "its pods' containers and namespaces go with it", killed=missing)
        if gone is not None:  # said as status and probe say it, not a pod status to repair (SandboxChanged)
            raise gone
    return tuple(out)


def _missing(lab: str, parts: list[tuple[str, str, str, bool]], uts: bool = True) -> str | None:
    """What of these pods or nodes ((name, how exec calls it, network namespace, whether that is gone)) a `down`
    (or `up`) killed halfway may have taken, in exec's words: the first one's network namespace, else the first
    one's UTS namespace (down unpins those once it has stopped the containers); None when all are there."""
    netns = next((ns for _, _, ns, gone in parts if gone), None)
    if netns is not None or not uts:
        return None if netns is None else f"namespace {netns} is not there"
    from netlab.workload.lifecycle import is_uts_mount
    from netlab.workload.uts import uts_missing

    words = next((words for name, words, _, _ in parts if not is_uts_mount(uts_path(lab, name))), None)
    return None if words is None else uts_missing(words)


def _pod_created(state: LabState, pod: str) -> str | None:
    """When ``up`` first made the pod (its record, workload/lifecycle.py), as RFC 3339 UTC: the pod's
    creationTimestamp, which a sandbox made again keeps, as the kubelet's pod object does; None without one
    (a lab made before netlab kept it: the sandbox's time then)."""
    rec = state.extra.get(WORKLOAD_RECORD)
    prec = rec.get("pods", {}).get(pod) if isinstance(rec, dict) and isinstance(rec.get("pods"), dict) else None
    when = prec.get("created") if isinstance(prec, dict) else None
    if isinstance(when, bool) or not isinstance(when, (int, float)) or not 0 < when < 2**40:
        return None
    return _rfc3339(when)


def _created(netns: str) -> str | None:
    """When a pod's (or node's) network namespace was made: the change time of its pin, whose inode the kernel made
    then (kernel/processes.ns_birth), as RFC 3339 UTC; None when it is not there."""
    birth = ns_birth(netns_path(netns))
    if birth is None:
        return None
    return _rfc3339(birth[2] / 1e9)


def _rfc3339(seconds: float, ms: bool = False) -> str:
    """A time (seconds since the epoch) as RFC 3339 UTC, as the API server writes one; ``ms``: to the
    millisecond (a back-off of half a second ends within a second)."""
    t = datetime.fromtimestamp(seconds, timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{t.microsecond // 1000:03d}Z" if ms else "Z")


def nodes(lab: Lab) -> tuple[NodeInfo, ...]:
    bridged = lab.bridge_nodes(pod_side=True)  # a user's conflist's: the nodes with a pod
    out = tuple(NodeInfo(name=n.name, ip=str(n.ip), pod_cidr=str(n.pod_cidr), netns=n.netns,
                         cni0=str(n.gateway) if n.name in bridged else None,
                         vtep=f"{n.vtep_ip}/32" if lab.mode == "vxlan" else None,
                         pods=tuple(p.name for p in lab.pods_on(n.name)), created=_created(n.netns))
                for n in lab.nodes)
    missing = _missing(lab.name, [(n.name, f"node {n.name}", n.netns, n.created is None) for n in out])
    if missing is not None:  # a node's namespace not there: a `netlab down` deleting them?
        from netlab.realize.interrupted import taken_down

        gone = taken_down(lab.name, "its nodes' namespaces go with it", read_up=False,
                          killed=missing)  # a `down` killed halfway: list's line
        if gone is not None:  # said as get pods, status and probe say it, not a table of nodes
            raise gone
    return out


def services(lab: Lab) -> tuple[ServiceInfo, ...]:
    pod_by_ip = {p.ip: p for p in lab.pods}  # an endpoint is a pod the selector matched (plan.services)
    by_service: dict[tuple[str, str], list[ServicePortInfo]] = {}
    for sp in service_ports(lab):
        by_service.setdefault((sp.svc.namespace, sp.svc.name), []).append(ServicePortInfo(
            name=sp.port.name, port=sp.port.port, target_port=sp.port.target_port or sp.port.port,
            protocol=sp.port.protocol, node_port=sp.node_port,
            endpoints=tuple(EndpointInfo(pod=pod_by_ip[ip].name, node=pod_by_ip[ip].node, ip=str(ip), port=port)
                            for ip, port in sp.endpoints)))
    for svc in lab.services:  # headless: no kube-proxy rules, the same endpoints (its DNS name answers them)
        if svc.headless:
            by_service[(svc.namespace, svc.name)] = [ServicePortInfo(
                name=p.name, port=p.port, target_port=p.target_port or p.port, protocol=p.protocol, node_port=None,
                endpoints=tuple(EndpointInfo(pod=pod.name, node=pod.node, ip=str(pod.ip), port=port)
                                for pod, port in lab.endpoints(svc, p))) for p in svc.ports]
    checks = lab.addressing.health_check_port
    out = []
    for svc in lab.services:
        lb = lab.addressing.lb_ip.get((svc.namespace, svc.name))
        cip = lab.cluster_ip(svc)
        out.append(ServiceInfo(
            name=svc.name, namespace=svc.namespace, type=svc.type,
            cluster_ip=str(cip) if cip is not None else "None",  # headless: kubectl's CLUSTER-IP None
            # kubectl's EXTERNAL-IP: the balancer's address, then spec.externalIPs, joined by commas
            external_ip=",".join([str(lb)] * (lb is not None) + [str(ip) for ip in svc.external_ips]) or None,
            session_affinity=svc.session_affinity,
            selector=FrozenDict(svc.selector), ports=tuple(by_service.get((svc.namespace, svc.name), [])),
            dns=fqdn(svc), added=is_added_service(svc),
            external_traffic_policy=svc.external_traffic_policy if svc.type != "ClusterIP" else None,
            health_check_node_port=checks.get((svc.namespace, svc.name)),
            internal_traffic_policy=svc.internal_traffic_policy,
            addresses=tuple(str(p.ip) for p in sorted(lab.serving(svc), key=lambda p: p.ip))
            if not svc.ports else ()))
    return tuple(out)


def is_added_pod(pod: ModelPod) -> bool:
    """The cluster DNS add-on's pod (model/clusterdns.py), which the topology does not declare."""
    return is_addon_pod(pod.spec)


def is_added_service(svc: Service) -> bool:
    """The cluster DNS add-on's Service kube-system/kube-dns."""
    return is_dns_service(svc) and [p.name for p in svc.ports] == ["dns", "dns-tcp"]


# --- label selectors ---------------------------------------------------------------------

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_VALUE = r"[A-Za-z0-9]?[-A-Za-z0-9_.]*"
_REQUIREMENT = re.compile(
    rf"^\s*(?:(?P<not>!)\s*(?P<absent>{_KEY})"
    rf"|(?P<key>{_KEY})\s*(?:(?P<op>==|!=|=)\s*(?P<value>{_VALUE})"
    rf"|\s+(?P<setop>in|notin)\s*\((?P<values>[^()]*)\))?)\s*$")


def parse_selector(selector: str | None) -> Any:
    """kubectl's label selector (``app=web``, ``tier!=db``, ``env in (a,b)``, ``env notin (c)``,
    ``app``, ``!app``; requirements joined by commas, all must hold) as a predicate on labels."""
    if not selector or not selector.strip():
        return lambda labels: True
    checks = []
    for part in _split(selector):
        m = _REQUIREMENT.match(part)
        if not m:
            raise UsageError(f"label selector {selector!r}: cannot read {part.strip()!r}; write e.g. app=web, "
                             "tier!=db, 'env in (a,b)', app or !app, joined by commas")
        checks.append(_requirement(m))
    return lambda labels: all(check(labels) for check in checks)


def _split(selector: str) -> list[str]:
    """Split on the commas that are not inside ``( )``."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(selector):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(selector[start:i])
            start = i + 1
    parts.append(selector[start:])
    return parts


def _requirement(m: re.Match[str]) -> Any:
    if m.group("absent"):
        key = m.group("absent")
        return lambda labels: key not in labels
    key, op, value, setop = m.group("key"), m.group("op"), m.group("value"), m.group("setop")
    if op in ("=", "=="):
        return lambda labels: labels.get(key) == value
    if op == "!=":
        return lambda labels: labels.get(key) != value
    if setop:
        values = {v.strip() for v in m.group("values").split(",") if v.strip()}
        if setop == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    return lambda labels: key in labels
