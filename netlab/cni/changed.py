"""Whether an attached pod is still what its CNI plugins made of it, and what it was given.

A pod attached through CNI is held to its chain's cached ADD: its CHECK (cniVersion 0.4.0 on), or for a chain
without one netlab's comparison of the pod with the cached result (cni/verify.py). A pod whose spec changed what
its plugins are handed (host ports, bandwidth annotations: runtimeConfig) is a new sandbox in Kubernetes, so
``up`` DELs it with what it was given and ADDs it again. ``status`` says both (cni/lifecycle.drift), ``up``
re-attaches (cni/lifecycle.start).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netlab.cni import conf as C
from netlab.cni.node_reads import NodeReads
from netlab.cni.runtime import Runtime, RuntimeConf
from netlab.cni.portmap import uses_portmap
from netlab.cni.verify import verify
from netlab.cni.verify_node import NodeSide, bandwidth_rates, bridge_is_gateway
from netlab.feature import fresh_check_fix
from netlab.model.cniconf import Conflist, ConflistError, parse_conflist
from netlab.realize.attachments import SANDBOX_GONE, UNCHECKED, pod_records

if TYPE_CHECKING:
    from netlab.model.lab import Lab, PodInfo
    from netlab.realize.state import LabState

NO_CHECK = "it differs from its chain's cached ADD result"  # what netlab says when a chain without CHECK would not
# A fresh-ADD failure that an earlier up or status said (and marked): the first CHECK after the pod's ADD failed so,
# right after a re-attach's ADD (up), or, after a first ADD (no CHECK follows it, as none does in containerd), with
# the pod as that ADD made it (cni/first_check.py)
AGAIN = " (as found before, by its first CHECK after its ADD)"
# up's words of a CHECK failing the pod's first ADD, found by the first CHECK since (no ADD of this up's)
FIRST = " (its first CHECK since that ADD, the pod as the ADD made it: netlab compared it with the ADD's cached result)"


def runtime_conf(lab: Lab, pod: PodInfo, prec: dict[str, Any], ifname: str) -> RuntimeConf:
    """The runtime's view of pod ``pod`` on network interface ``ifname``, as its record (``prec``) and the
    topology give it now: the arguments and capability arguments an ADD, CHECK or DEL of it is handed."""
    node, planned = lab.node(pod.node), C.asked_ip(lab, pod, _main(prec))  # what its ADD asked, as _record does
    return RuntimeConf(pod=pod.name, container_id=prec["containerId"], netns=pod.netns, ifname=ifname,
                       node_netns=node.netns, args=C.cni_args(pod, prec["containerId"], planned),
                       capability_args=C.capability_args(lab, pod, planned))


def _main(prec: dict[str, Any]) -> Conflist | None:
    """The pod's own network as its record keeps it (the last of its networks, after loopback)."""
    nets = prec.get("networks")
    try:
        return parse_conflist(conf_text(nets[-1][0])) if isinstance(nets, list) and nets else None
    except (ConflistError, TypeError, IndexError):
        return None


def recorded_conf(prec: dict[str, Any], pod: str, ifname: str, gone: bool = False) -> RuntimeConf:
    """The runtime's view of pod ``pod`` on ``ifname`` as its record (``prec``) keeps it: the CNI_ARGS and capability
    arguments its ADD was handed (written before that ADD), as libcni caches them for DEL. An ADD, and the DEL
    after it, hand the plugins exactly these, so the record says what they got; a re-attach's failed ADD restores
    the pod with the record it had (its old hostPorts), never the file's now. ``gone``: the pod's namespace is no
    longer the lab's (another's at its name): no namespace is handed (RuntimeConf.netns_gone)."""
    caps = prec.get("capabilityArgs")
    # A sandbox whose namespace is gone (the kubelet's SandboxChanged) is DELed without one: the record's namespace
    # of that name, if any, is a new sandbox's
    netns = "" if prec.get(SANDBOX_GONE) else prec["netns"]
    return RuntimeConf(pod=pod, container_id=prec["containerId"], netns=netns, ifname=ifname,
                       node_netns=prec.get("node_netns"), args=[(str(a[0]), str(a[1])) for a in prec.get("args", [])],
                       capability_args=dict(caps) if isinstance(caps, dict) else {}, netns_gone=gone)


def conf_text(raw: Any) -> str:
    """A recorded network config (JSON) as the text a plugin reads on its standard input."""
    return json.dumps(raw)


@dataclass(frozen=True)
class Changed:
    """A pod its chain no longer matches, and who found it: the chain's CHECK, or for a chain without one
    (cniVersion before 0.4.0) netlab's comparison of the pod with the chain's cached result (cni/verify.py)."""

    by_check: bool
    why: str
    spec: bool = False  # neither: the topology changed what the pod's plugins are given (respecified)
    plugin: str | None = None  # the plugin whose CHECK failed
    # found by the pod's first CHECK since its first ADD (its record's ``unchecked``), with the pod as that ADD made
    # it (netlab's comparison with the ADD's cached result, cni/verify.py, finds no difference): the plugin's own
    # CHECK failing its ADD, which no new ADD mends (cni/first_check.py)
    first: bool = False

    def fresh_mark(self) -> str | None:
        """What a pod's record keeps when this was found right after the pod's own fresh ADD (``check_fails``): the
        failure itself, the plugin whose CHECK failed and what it said (its exit, error code and msg), or the
        difference netlab's comparison found; None for what a new ADD may mend. Only that failure again is one no
        ADD mends: another (a route deleted since, an address gone) is drift, re-attached as any."""
        if self.spec or (self.by_check and self.plugin is None):
            return None
        return f"{self.plugin}: {self.why}" if self.by_check else f"{NO_CHECK}: {self.why}"

    def marked(self, mark: Any) -> bool:
        """Whether this is the failure a pod's record marks (``check_fails``: found right after its own fresh ADD),
        its numbers aside (:func:`failure_key`): a CHECK whose msg carries a counter or a time never matched its
        mark, and every up re-attached the pod again."""
        now = self.fresh_mark()
        return now is not None and isinstance(mark, str) and failure_key(now) == failure_key(mark)

    def fresh_words(self, pod: str, again: bool = False) -> str:
        """This, found right after the pod's own ADD (``again``: as it was then; :attr:`first`: by the pod's first
        CHECK since its first ADD, the pod as that ADD made it), as up's line (StartResult.failed:
        up exits 1, the lab stays up): a new ADD cannot mend a CHECK that fails its own ADD, so up does not
        re-attach the pod for it again (a kubelet never re-ADDs a sandbox for a CHECK); a CHECK's line ends with
        what does (feature.fresh_check_fix, status's words), which the watcher's line says once (api/watch_converge)."""
        since = AGAIN if again else FIRST if self.first else ""
        keeps = (f"pod {pod} keeps that attachment, and up (or a watcher) does not re-attach it again while it "
                 f"fails so: a new ADD cannot mend it")
        if not self.by_check:
            return f"pod {pod}: right after its own fresh ADD{since}, {NO_CHECK}: {self.why}; {keeps}"
        detail = self.why.removeprefix(f"pod {pod}: ").removeprefix(f"CNI plugin {self.plugin} CHECK: ")
        # and what does mend it, as status says it (a chain without CHECK, above, has no CHECK to turn off)
        return (f"pod {pod}: CNI plugin {self.plugin}'s CHECK fails on its own fresh ADD{since}: {detail}; {keeps}; "
                f"{fresh_check_fix(self.plugin)}")

    def reattach_reason(self) -> str:
        if self.spec:
            return self.why
        return f"CHECK said: {self.why}" if self.by_check else f"{NO_CHECK}: {self.why}"

    def drift_line(self, pod: str) -> str:
        """status's line (its pod read back by :func:`drift_pod`)."""
        if self.spec:
            return f"cni: pod {pod}: {self.why}; up re-attaches it"
        if self.by_check:
            return f"cni: CHECK of pod {pod} failed: {self.why}"
        return f"cni: pod {pod}: {NO_CHECK}: {self.why}"


# What a failure's words keep when its numbers are dropped: how the plugin ended and its CNI error code (the kind of
# failure, libcni's types.Error code), IPv4 addresses and prefixes (a route to 10.96.0.0/12 missing is another
# failure than one to 10.97.0.0/12), and the value of a named setting of the network (MTU 1400 is another failure
# than MTU 1450: the interface drifted again; so are a VLAN, a VNI, a port, a routing table, a metric, a queue
# length); every other run of digits (a counter, a time, a process id), long hex word (a request id) or 0x number
# (a Go panic's pointers and offsets: main.cmdCheck(0xc00009e7e0) +0x1d4) is one '#'.
_SETTING = r"\b(?:mtu|vlan|vni|port|table|metric|qlen|txqueuelen)\b(?:\s*[:=]\s*|\s+(?:is\s+|of\s+)?)\d+\b"
_KEPT = rf"\(exit -?\d+\)|\[code [^\]]*\]|(?<![\d.])\d{{1,3}}(?:\.\d{{1,3}}){{3}}(?:/\d{{1,2}})?(?![\d.])|{_SETTING}"
_NUMBERS = re.compile(rf"({_KEPT})|\b0x[0-9a-f]+\b|\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{{8,}}\b|\d+", re.IGNORECASE)


def failure_key(text: str) -> str:
    """A CHECK failure's line (a ``check_fails`` mark) without the numbers that change from one call to the next:
    ``check #3 failed at 08:10:53`` and ``check #4 failed at 08:10:54`` are one failure; other words, another exit or
    CNI error code, another plugin, another address or another value of a named setting (``MTU 1400``) are
    another."""
    return _NUMBERS.sub(lambda m: m.group(1) or "#", text)


def drift_pod(line: str) -> str | None:
    """The pod of a :meth:`Changed.drift_line` (a chain that no longer matches it: up re-attaches it), else None."""
    m = re.match(r"cni: (?:CHECK of pod (\S+) failed|pod (\S+?)): ", line)
    return (m.group(1) or m.group(2)) if m else None


def readdressed(lab: Lab, state: LabState) -> list[tuple[str, str, str]]:
    """Pods attached through CNI whose ``ip:`` in the topology is not the address their plugins were asked for:
    (pod, asked, planned). A pod without ``ip:`` keeps the address it was attached with, as host-local keeps a
    sandbox's lease."""
    records = pod_records(state)
    out = []
    for pod in lab.topo.pods:
        prec = records.get(pod.name)
        if pod.ip is None or not isinstance(prec, dict) or prec.get("phase") != "added":
            continue
        asked = next((str(a[1]) for a in prec.get("args") or [] if isinstance(a, list) and len(a) == 2
                      and a[0] == "IP"), None)
        if asked is not None and asked != str(pod.ip):
            out.append((pod.name, asked, str(pod.ip)))
    return out


# What a pod's spec hands its plugins beside its address (which readdressed says): a pod whose spec changed is a new
# pod in Kubernetes (ports and annotations make a new sandbox), so up DELs it with what it was given and ADDs it again.
RESPEC = (("portMappings", "hostPorts", []), ("bandwidth", "bandwidth annotations", None))


def respecified(lab: Lab, pod: PodInfo, prec: dict[str, Any]) -> Changed | None:
    was = prec.get("capabilityArgs")
    if not isinstance(was, dict):
        return None
    now = C.capability_args(lab, pod, lab.addressing.pod_ip[pod.name])
    names = [(key, name) for key, name, none in RESPEC if was.get(key, none) != now.get(key, none)]
    if not names:
        return None
    return Changed(False, f"the topology changed its {' and '.join(n for _, n in names)} (runtimeConfig."
                          f"{', '.join(k for k, _ in names)}) since its plugins were given them", spec=True)


def changed(rt_: Runtime, lab: Lab, pod: PodInfo, prec: dict[str, Any],
            reads: NodeReads | None = None) -> Changed | None:
    """Why the attached pod must be re-attached (its spec changed what its plugins are given, or its chain no
    longer matches it); None: it is as attached. ``reads``: a status's kernel reads, each node read once. A pod
    whose record says no CHECK ran since its ADD (``unchecked``) whose CHECK fails is compared with that ADD's
    cached result too: as that ADD made it, the failure is the plugin's own (:attr:`Changed.first`)."""
    first = prec.get(UNCHECKED) is True
    return respecified(lab, pod, prec) or check_pod(rt_, lab, pod, prec, reads, first=first)


def check_pod(rt_: Runtime, lab: Lab, pod: PodInfo, prec: dict[str, Any],
              reads: NodeReads | None = None, first: bool = False) -> Changed | None:
    """The first of the pod's networks its chain no longer matches, and why (None: all match). ``first``: no CHECK
    ran since the pod's ADD: a CHECK that fails while the pod is as that ADD made it is the plugin's own."""
    for raw, ifname in prec.get("networks", []):
        try:
            net = parse_conflist(conf_text(raw))
        except ConflistError:
            return Changed(True, "its cached network config is damaged")
        rt = runtime_conf(lab, pod, prec, ifname)
        by_check = C.supports_check(net) and not net.disable_check
        no_check = ("its conflist sets disableCheck" if net.disable_check
                    else f"cniVersion {net.cni_version} has no CHECK")
        if by_check:
            failed = rt_.check_failure(net, rt)
            if failed:
                own = first and failed[0] is not None and as_added(pod.netns, rt_.cached_result(net.name, rt),
                                                                   ifname, node_side(net, rt, prec), reads)
                return Changed(True, failed[1], plugin=failed[0], first=own)
            continue
        why = verify(pod.netns, rt_.cached_result(net.name, rt), no_check, ifname, node_side(net, rt, prec), reads)
        if why:
            return Changed(False, why)
    return None


def as_added(netns: str, result: dict[str, Any] | None, ifname: str, node: NodeSide | None,
             reads: NodeReads | None) -> bool:
    """Whether the pod is as its ADD made it, as far as netlab's comparison with the ADD's cached result tells
    (cni/verify.py: its interfaces, MACs, addresses and routes; the node's side: the devices, the bridge, portmap's
    DNATs): what a chain without CHECK is held to."""
    return result is not None and verify(netns, result, "", ifname, node, reads) is None


def node_side(net: Conflist, rt: RuntimeConf, prec: dict[str, Any]) -> NodeSide | None:
    """What of the pod's node a chain without CHECK is held to (cni/verify_node.py): the devices its result lists
    there, and the hostPorts its ADD gave portmap (the record's, which the plugins got)."""
    if not rt.node_netns:
        return None
    caps = prec.get("capabilityArgs")
    given = caps.get("portMappings") if isinstance(caps, dict) and uses_portmap(net.plugins) else None
    mappings = tuple(m for m in given if isinstance(m, dict)) if isinstance(given, list) else ()
    return NodeSide(rt.node_netns, bridge_is_gateway(net.plugins), mappings, bandwidth_rates(net.plugins, caps))
