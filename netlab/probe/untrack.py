"""A probe run's conntrack clean-up (agent.py): the entries of its flows, deleted in the nodes' namespaces and the
balancer's by exact tuples only (kernel/conntrack.py), so that every run probes new flows.

- A Service flow that got no answer leaves a conntrack entry holding its NAT decision (SYN_SENT, 2 minutes), which
  a later flow reusing the tuple would inherit.
- A UDP flow that got an answer leaves an entry that has seen its reply (30 s, 120 s once assured). Each run's UDP
  sockets get random source ports: a later run's socket that gets the same one (1 in ~28,000 per pod for the
  matrix, 1 in ~4,500 per Service probe, but a suite probes hundreds of times) would be ESTABLISHED at once, keep
  the old endpoint and pass a NetworkPolicy that now denies it (policies judge new flows only, plan/policy.py).
  Those entries are deleted too. (A direct TCP flow needs nothing: the prober closes with RST, and a new SYN
  reopens a closed entry as a new connection.)
- A TCP Service flow that got its answer leaves its DNAT for 10 s in the client's node, with the endpoint in its
  reply tuple: the next run's flow from that port to another address of the endpoint (ClusterIP, NodePort) would
  clash with it, and conntrack would move it to another port.
- A stopped run's flows (Ctrl-C, its time limit): those judged, as after a whole run, and those of every
  connection still open (SIGTERM makes each worker close its sockets and send back what it had sent, worker.py).
  A SYN the stop caught unanswered left its entry in SYN_SENT for two minutes in the nodes (a Service's DNAT
  decision with it), and the next run's connection from the same port met it.
"""

from __future__ import annotations

import socket

from netlab.kernel import conntrack
from netlab.probe.tasks import Job, Observation


def untrack(job: Job, obs: dict[int, Observation], self_ip: dict[str, str | None],
            route_src: dict[tuple[str, str], str | None], unfinished: dict[int, str] | None = None) -> tuple[int, int]:
    """Delete, by exact tuple, the conntrack entries of the Service flows that got no answer, of every
    UDP flow that got one, and of the TCP Service flows that got one, and those of a stopped run's flows
    still open (``unfinished``: task id -> "ip:port", as unanswered); how many of the first two (the
    unfinished Service flows among the first).

    A TCP Service flow that got its answer, closed with RST, stays in the client's node for 10 s holding its
    DNAT, with the endpoint in its reply tuple: the next run's Service flow from the same port to another
    Service address with that endpoint would share the reply tuple, and conntrack would move it to a port
    of its own choosing, where a direct flow later meets it (probe/sockets.py). So it goes too.

    A Service flow DNATed on the client's node reaches the endpoint's node as a flow of its own, client
    to endpoint, which that node tracks too. One that got no answer (a SYN lost at a port set down) stays
    there in SYN_SENT for two minutes; the next run's flow from the same port to that endpoint (Service
    probes draw their ports from a range of 4,536) would meet it, and the node would drop its ACKs as
    out of the old connection's window (kube-proxy's KUBE-FORWARD drops ctstate INVALID): "connected;
    the server sent no echo reply". So each endpoint's tuple of the flow goes too, and so does what a
    masquerade made of it (a NodePort's node or the load balancer sends it on from its own address and a
    port of its choosing, at random: ``--random-fully``): read from the namespaces' entries before they
    go (:func:`conntrack.onward`)."""
    unanswered: list[conntrack.Flow] = []
    answered: list[conntrack.Flow] = []  # UDP flows and TCP Service flows that got an answer
    flows = udp = 0  # unanswered Service flows (each has a tuple per endpoint besides its own); answered UDP
    for t in job.tasks:
        o = obs.get(t.id)
        if o is None or not o.local or not (t.service or t.proto == "udp" and o.reached):
            continue
        proto = socket.IPPROTO_TCP if t.proto == "tcp" else socket.IPPROTO_UDP
        ip, _, port = o.local.rpartition(":")
        if not t.service:
            # The namespace's one UDP socket: the observation knows its port; the source address is
            # the one the route picks from a node or host, else the pod's own.
            ip = route_src.get((t.src, t.dst)) or self_ip.get(t.src) or ""
        if not ip or ip == "0.0.0.0":
            continue
        (answered if o.reached else unanswered).append(conntrack.Flow(proto, ip, int(port), t.dst, t.port))
        udp += t.proto == "udp" and o.reached
        if t.service and not o.reached:
            flows += 1
            unanswered += [conntrack.Flow(proto, ip, int(port), ep, ep_port) for ep, ep_port in t.behind]
    if unfinished:
        tasks = {t.id: t for t in job.tasks}
        for tid, local in unfinished.items():
            t = tasks.get(tid)
            ip, _, port = local.rpartition(":")
            if t is None or tid in obs or not ip or ip == "0.0.0.0" or not port.isdigit():
                continue
            proto = socket.IPPROTO_TCP if t.proto == "tcp" else socket.IPPROTO_UDP
            unanswered.append(conntrack.Flow(proto, ip, int(port), t.dst, t.port))
            if t.service:
                flows += 1
                unanswered += [conntrack.Flow(proto, ip, int(port), ep, ep_port) for ep, ep_port in t.behind]
    if flows:
        unanswered += onward(job, unanswered)
    if unanswered or answered:
        for name in job.untrack:
            try:
                conntrack.delete_flows(name, unanswered + answered)
            except OSError:
                continue  # the namespace is gone: so are its entries
    return flows, udp


def onward(job: Job, flows: list[conntrack.Flow]) -> list[conntrack.Flow]:
    """The tuples these flows went on as after a NAT, as the lab's nodes and balancer track them."""
    out: list[conntrack.Flow] = []
    for proto in {f.proto for f in flows}:
        entries = []
        for name in job.untrack:
            try:
                entries += conntrack.tuples(name, proto)
            except OSError:
                continue  # the namespace is gone: so are its entries
        out += conntrack.onward([f for f in flows if f.proto == proto], entries)
    return out
