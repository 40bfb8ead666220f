"""``Lab.reach``: one real probe, sent and judged as ``netlab probe`` sends and judges each of its own.

The probe is the matrix's own (netlab.probe.matrix, .services): the same
echo-server check (who answered, which client address it saw, at which
address it was reached), the same bounded waits, the same agent, and the same
expectation: the NetworkPolicies' verdict (a flow they deny is expected
unreachable, and its ``reason`` names the policies), the topology's
``expect:`` entries, a Service without endpoints. It expected a reply whatever
the policies said, so a test of a policy that works got ``as_expected``
False and blamed "a rule on the way", not the policy. A flow the matrix does
not hold (a port no container declares, a node) is judged by the matrix's own
function (:func:`netlab.probe.matrix.judged`).
"""

from __future__ import annotations

from netlab.api.args import check_int, check_proto
from netlab.errors import UsageError
from netlab.model.lab import Lab
from netlab.model.echo_ports import missing_port, port_protocol
from netlab.probe import nodeport_pods, runner
from netlab.probe import services as svcs
from netlab.probe.matrix import (ECHO_PORT, Probe, SeenRule, build_matrix, echo_ports, egress_rule, endpoints, judged,
                                 terminated_note)
from netlab.probe.policy import policy_judge
from netlab.probe.judge import Result as ProbeOutcome

PORT_RANGE = (1, 65535)


def check_port(what: str, port: int | None, zero_ok: bool = False) -> None:
    """A UsageError for a port outside 1-65535 (0 too when ``zero_ok``: "any"), before anything is sent."""
    if port is None or (zero_ok and port == 0 and not isinstance(port, bool)):
        return
    low, high = PORT_RANGE
    check_int(what, port)
    if not low <= port <= high:
        extra = " (0: any)" if zero_ok else ""
        raise UsageError(f"{what} {port!r} is not in the range {low}-{high}{extra}")


def reach(lab: Lab, src: str, dst: str, proto: str | None = None, port: int | None = None,
          timeout: float = 1.0) -> ProbeOutcome:
    """Send one probe from ``src`` to ``dst`` (a pod, node, internet host or ``svc/NAME``) and judge it."""
    return send(lab, probe_of(lab, src, dst, proto, port), timeout)


def send(lab: Lab, probe: Probe, timeout: float = 1.0) -> ProbeOutcome:
    """Send ``probe`` (:func:`probe_of`) in the lab's namespaces and judge what came back."""
    (result,) = runner.run_probes(lab, [probe], timeout=timeout)
    return result


def probe_of(lab: Lab, src: str, dst: str, proto: str | None = None, port: int | None = None) -> Probe:
    """The probe from ``src`` to ``dst``, from the lab's model alone (no kernel read): a name the lab does not
    have, a port its destination does not serve, is the user's mistake (UsageError)."""
    check_proto(proto)
    check_port("port", port)
    if proto == "icmp" and port is not None:
        raise UsageError("an ICMP probe has no port")
    eps = endpoints(lab)
    if src not in eps:
        raise UsageError(f"lab {lab.name} has no pod, node or internet host {src!r} to probe from "
                         f"({', '.join(eps)})")
    gone = next((n for n in (src, dst) if n in lab.terminal), None)
    if gone is not None:  # its sandbox is torn down in Kubernetes: nothing there sends or answers
        raise UsageError(f"lab {lab.name}: {terminated_note(gone)}")
    if dst.startswith(("svc/", "service/")):
        return _service_probe(lab, src, dst.split("/", 1)[1], proto, port)
    return _probe(lab, src, dst, proto, port)


def _probe(lab: Lab, src: str, dst: str, proto: str | None, port: int | None) -> Probe:
    eps = endpoints(lab)
    if dst not in eps:
        raise UsageError(f"lab {lab.name} has no pod, node or internet host {dst!r} "
                         f"({', '.join(eps)}; Services as svc/NAME)")
    destination = eps[dst]
    pod = next((p for p in lab.pods if p.name == dst), None)
    if proto is None:  # what the destination serves: its first TCP port (the echo server's 8080), else ICMP
        served = [p for p, protocol in pod.ports if protocol == "TCP"] if pod else []
        if destination.kind == "host":
            proto, port = "tcp", port or ECHO_PORT
        elif port is not None:  # a port means TCP, or UDP where the pod serves it over UDP only (as trace)
            proto = port_protocol(pod, port) if pod else "tcp"
        elif served:
            proto, port = "tcp", port or served[0]
        else:
            proto = "icmp"
    if proto != "icmp" and port is None:
        if pod is None:
            port = ECHO_PORT if destination.kind == "host" else None
        else:
            port = next((p for p, protocol in pod.ports if protocol == proto.upper()), None)
        if port is None:
            raise UsageError(f"{dst} serves no {proto.upper()} port netlab knows of; give one with port=N")
    key = (src, dst, proto, None if proto == "icmp" else port)
    known = next((p for p in build_matrix(lab, (proto,)) if p.key == key), None)
    if destination.kind == "node" and port is not None and proto != "icmp":
        service = _nodeport_probe(lab, (src, dst, proto, port), known)
        if service is not None:
            return service
    if known is not None:
        return known
    echo = None
    rules: tuple[SeenRule, ...] = ()
    if pod is not None and port is not None:
        echo = (port, proto.upper()) in echo_ports(pod)
    elif destination.kind == "host" and port is not None:
        echo = port == ECHO_PORT  # the prober's temporary listener
        rule = egress_rule(lab)
        rules = (rule,) if rule is not None and eps[src].kind in ("pod", "node") else ()
    probe = Probe(eps[src], destination, proto, None if proto == "icmp" else port, True, rules=rules, echo=echo)
    return judged(policy_judge(lab), probe)


def _nodeport_probe(lab: Lab, key: tuple[str, str, str, int], known: Probe | None) -> Probe | None:
    """A connection to a node's nodePort, judged as the Service connection it is, as probe judges it (a user's
    ``expect:`` entry keeps its expectation); None when no Service has that nodePort."""
    src, node, proto, port = key
    plan = svcs.build(lab, (proto,))
    if (node, proto, port) not in plan.nodeports:
        return None
    if known is not None and known.reason.startswith("expect["):
        return runner.as_nodeport(known, plan, lab)
    mine = nodeport_pods.probe(lab, plan, *key)
    if isinstance(mine, str):
        raise UsageError(f"{src} -> {node}'s nodePort {port}/{proto} cannot be probed: {mine}")
    if mine is not None:
        return mine
    probe = next((p for p in plan.probes if p.key == key and p.svc is not None), None)
    if probe is not None:
        return probe
    head = f"{src} -> svc/"
    why = next((n for n in plan.notes if n.startswith(head) and f"(NodePort {port} on {node})" in n), None)
    raise UsageError(f"{src} -> {node}'s nodePort {port}/{proto} cannot be probed: "
                     f"{why.split(': not probed: ', 1)[-1] if why else 'probe does not dial it from there'}")


def _service_probe(lab: Lab, src: str, name: str, proto: str | None, port: int | None) -> Probe:
    client_ns = next((p.spec.namespace for p in lab.pods if p.name == src), None)
    svc = lab.find_service(name, client_ns)
    if svc is None:
        raise UsageError(lab.service_problem(name, client_ns))
    if svc.headless:
        raise UsageError(lab.headless_problem(svc))
    name = lab.service_ref(svc)
    if proto == "icmp":
        raise UsageError(f"svc/{name}: a Service is reached over TCP or UDP (kube-proxy does not answer pings)")
    ports = [p for p in svc.ports if (proto is None or p.protocol == proto.upper()) and port in (None, p.port)]
    if not ports:
        listed = ", ".join(f"{p.port}/{p.protocol}" for p in svc.ports)
        raise UsageError(f"svc/{name} has no {missing_port(port, proto)} (ports: {listed})")
    chosen = ports[0]
    plan = svcs.build(lab, (chosen.protocol.lower(),), node_clusterips=any(n.name == src for n in lab.nodes))
    # A node dials the ClusterIP, as `trace node-1 svc/web` does (probe/service_node_clusterip.py)
    node_own = plan.node_clusterips.get((src, name, chosen.protocol.lower(), chosen.port))
    if node_own is not None:
        return node_own
    candidates = [p for p in plan.probes
                  if p.svc is not None and p.svc.service == name and p.source.name == src
                  and p.svc.service_port == chosen.port]
    order = {"ClusterIP": 0, "LoadBalancer": 1, "NodePort": 2}  # pods dial the ClusterIP, hosts the balancer
    candidates.sort(key=lambda p: order.get(p.svc.kind if p.svc else "", 3))
    # Not probed, and why (the policies allow some endpoints only, nothing listens on a targetPort, ...)
    # ... from this source, or from anywhere: the Service as a whole (probe's note, its reason word for word)
    head = f"{src} -> svc/{name} {chosen.protocol.lower()}/{chosen.port}: not probed: "
    whole = f"svc/{name} {chosen.protocol.lower()}/{chosen.port}: not probed: "
    why = next((n[len(head):] for n in plan.notes if n.startswith(head)), None) or \
        next((n[len(whole):] for n in plan.notes if n.startswith(whole)), None)
    if not candidates and why is not None:
        raise UsageError(f"svc/{name} {chosen.port}/{chosen.protocol} cannot be probed from {src}: {why}")
    if not candidates:
        raise UsageError(f"svc/{name} {chosen.port}/{chosen.protocol} cannot be probed from {src}: pods and "
                         "nodes reach a ClusterIP, internet hosts a NodePort or LoadBalancer (and UDP only where "
                         "every endpoint runs netlab's echo server)")
    return candidates[0]
