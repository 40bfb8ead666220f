"""One trace, start to end: capture everywhere, send the marked packet, walk, match, explain.

1. open a packet socket in every namespace the packet may cross, all before
   anything is sent (targets.capture_namespaces);
2. send one real, marked packet from a socket inside the source namespace, and
   wait (bounded) for the reply on that socket (send.py);
3. read the conntrack entries of the namespaces that NAT (nodes, gateway,
   load balancer) while the connection still exists: they say which endpoint a
   Service DNAT picked and how replies are translated back;
4. walk the path asking each namespace's kernel for its decisions (walk.py,
   kernel.py), the reply's path too;
5. match the captured frames to the rows: seen or not seen, and for a lost
   packet the hop where it disappeared and the kernel's reason (verdict.py);
6. optionally write every captured frame of the packet to a pcapng file, each
   with a comment naming its row.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from dataclasses import replace
from typing import Any, Callable, Iterator

from netlab.errors import NetnsGone, UsageError, repair_way, status_way
from netlab.kernel import conntrack, netns as nsmod, nsid
from netlab.kernel.rtnl_parse import dump_links
from netlab.model.echo_ports import pod_echo_ports
from netlab.model.lab import Lab
from netlab.model.naming import NETNS_DIR
from netlab.trace import arploss, capture as cap, decode, dns, extrarules, lossblame, policyverdict, send, unnatreply
from netlab.trace.crossed import crossed
from netlab.plan import impair as plan_impair
from netlab.probe import listeners, neighbours as nb
from netlab.workload.reconfigure import lab_netns_gone, netns_gone, repair_command
from netlab.cni.terminated import released_netns
from netlab.trace.arpstory import relevant as _arp_relevant, story as _arp_story
from netlab.trace import (hostport, inputdrop, kubeproxy_nft, policy as tpolicy, policyrules, refusal,
                          rejectanswer, targets)
from netlab.trace.facts import vxlan_on_port
from netlab.trace.flow import Flow, Packet
from netlab.trace.hops import Hop, Walk
from netlab.trace.kernel import LiveKernel
from netlab.trace.labmap import LabMap
from netlab.trace.later import Later
from netlab.trace.render import TraceResult, label, number
from netlab.trace.targets import Endpoint, capture_namespaces, lab_map, resolve_source, resolve_target
from netlab.trace.verdict import (Verdict, explain, mark_seen, matches, nat_between_pods, not_arrived,
                                  reply_waits_on_arp)
from netlab.trace.walk import walk
from netlab.workload import not_running

Progress = Callable[[str, int, int], None]
DEFAULT_TIMEOUT = 1.0


def packet_ends(lab: Lab, src_name: str, dst_spec: str, proto: str | None, port: int | None, size: int = 0,
                sport: int = 0) -> tuple[Endpoint, Endpoint, str, int | None]:
    """The packet a trace sends: its source and destination, protocol and port, from the lab's model alone (no
    kernel read): a name the lab does not have, a port its destination does not serve, is the user's mistake
    (UsageError), whatever the lab's namespaces hold now."""
    if proto not in (None, "icmp", "tcp", "udp"):  # "TCP" would send a packet no rule matches ("tcp" does)
        raise UsageError(f"proto {proto!r}: want one of icmp, tcp, udp")
    if proto == "icmp" and port is not None:
        raise UsageError("an ICMP echo has no port; give --proto tcp|udp with --port (a port alone means TCP)")
    src = resolve_source(lab, src_name)
    dst = resolve_target(lab, dst_spec, proto, port, src)
    # A port without a protocol is TCP (as reach takes it), or what the destination serves on it: a pod's
    # UDP-only port, a Service's or nodePort's protocol (resolve_target); no port and no protocol: a ping.
    proto = proto or dst.proto or ("tcp" if port is not None else "icmp")
    port = dst.port if proto != "icmp" else None
    if size and proto != "icmp":
        raise UsageError("--size makes an ICMP echo of that size; it takes no --proto tcp/udp")
    if sport and proto == "icmp":
        raise UsageError("--sport is for TCP and UDP; give --proto tcp|udp (or a Service)")
    if proto in ("tcp", "udp") and port is None:
        raise UsageError(f"{dst.name} serves no {proto.upper()} port netlab knows of; give one with --port N")
    return src, dst, proto, port


def run(lab: Lab, src_name: str, dst_spec: str, proto: str | None = None, port: int | None = None,
        timeout: float = DEFAULT_TIMEOUT, pcap: str | None = None, progress: Progress | None = None,
        size: int = 0, sport: int = 0, repair: str | Callable[[], str] | None = None,
        ends: tuple[Endpoint, Endpoint, str, int | None] | None = None) -> TraceResult:
    """Trace one packet from ``src_name`` to ``dst_spec`` through a running lab.

    ``size``: an ICMP echo with that many payload bytes and DF (``ping -M do -s SIZE``);
    ``sport``: TCP or UDP from that source port; ``repair``: the `up` that repairs the lab, for the text's
    fixes, or what works it out when a line names it (a caller holding the lab's state says it; else it is read
    then: trace/later.py); ``ends``: :func:`packet_ends` of these
    arguments, when the caller has it already."""
    step = (lambda i: progress("trace", i, 5)) if progress else (lambda i: None)
    src, dst, proto, port = ends or packet_ends(lab, src_name, dst_spec, proto, port, size, sport)
    lm = lab_map(lab)
    # as `status` says it, worked out when a line names it (it may read and validate the lab's file)
    lm.repair_later = Later(repair if repair is not None else lambda: repair_command(lab.name))
    namespaces = capture_namespaces(lab, src, dst, released_netns(lab))
    missing = [ns for ns in namespaces if not nsmod.is_netns_mount(ns)]
    if missing:
        raise lab_netns_gone(missing[0], lab.name)

    step(0)
    try:
        return _run(lab, lm, src, dst, proto, port, timeout, pcap, namespaces, step, size, sport)
    except NetnsGone as exc:  # a namespace deleted (ip netns del, netlab down) since it was looked at: said as always
        raise netns_gone(exc, lab.name) from None
    except FileNotFoundError as exc:  # the same, met elsewhere than in entering it: which one is gone
        path = str(exc.filename or "")
        gone = [os.path.basename(path)] if os.path.dirname(path) == NETNS_DIR else \
            [ns for ns in namespaces if not nsmod.is_netns_mount(ns)]
        if gone:
            raise lab_netns_gone(gone[0], lab.name) from None
        raise UsageError(f"{exc.filename or 'a file'} vanished during the trace: is lab {lab.name} being "
                         f"taken down? (`{status_way(lab.name, api=False)}`)") from None


def _run(lab: Lab, lm: LabMap, src: Endpoint, dst: Endpoint, proto: str, port: int | None, timeout: float,
         pcap: str | None, namespaces: list[str], step: Callable[[int], None], size: int = 0,
         sport: int = 0) -> TraceResult:
    vx_port = lab.topo.network.vxlan.port if lab.mode == "vxlan" else 8472
    nonce = secrets.token_hex(4)
    question: str | None = None
    payload: bytes | None = None
    query_id = 0
    if proto == "udp" and port == dns.PORT:  # a real query: a DNS server drops a bare marker
        question = dns.question_name(lab, dst.service)
        query_id, payload = dns.query(question, send.marker_of(nonce))
    kernel = LiveKernel()
    lm.plugins_live(lambda ns: dump_links(kernel.conn(ns), ns) if nsmod.is_netns_mount(ns) else None,
                    lambda ns, pods: nsid.nsids(kernel.conn(ns), pods, ns))
    # kube-proxy's counters before and after the packet: which rule chose a Service's endpoint
    counted = [ns for ns in namespaces if ns in lm.kube_proxy_netns] if dst.service else []
    nat_netns = [ns for ns in namespaces if ns in lm.nat_netns]
    loss_netns = sorted({h.netns for h in plan_impair.loss_hooks(lab)})
    ip_proto = socket.IPPROTO_TCP if proto == "tcp" else socket.IPPROTO_UDP
    # A random source port must be new to conntrack: from a port an earlier flow to this destination left an
    # entry for (an unanswered SYN stays 120 s), the packet would follow that entry past the nat table.
    held = conntrack.ports_towards(nat_netns, ip_proto, dst.ip, port) \
        if proto in ("tcp", "udp") and port is not None and not sport else set()
    heard = contextlib.ExitStack()
    listening = _listen(heard, dst, proto, port, timeout)
    try:
        for ns in namespaces:  # a resolution a repaired fault left half done would fail this packet: start afresh
            entries = nb.dump(kernel.conn(ns))
            kernel.neighbours_before(ns, entries)  # the neighbour rows say what the packet found
            kernel.fdb_before_packet(ns)  # and the bridge rows: a MAC no bridge had learned is flooded
            nb.forget_unresolved(kernel.conn(ns), entries)
        with cap.Capture(namespaces) as capture:
            capture.settle()
            step(1)
            # each node's filter table read once a moment: kube-proxy's REJECTs and the policies' (which drops it)
            nodes = tpolicy.node_namespaces(lab)
            # and those of the nodes captured on its way: a rule there the lab does not plan (extrarules.py)
            on_way = [ns for ns in namespaces if ns in lm.planned_filter]
            filters = policyrules.read_tables(dict.fromkeys(counted + nodes + on_way))
            kernel.count_nat_before(counted, filters, lm.nft_netns)
            kernel.count_masquerades_before(nat_netns)
            policy_before = policyrules.reject_counts({ns: t for ns, t in filters.items() if ns in nodes})
            # the pods it may be delivered to (a rule of their own filter table may drop it there), and what sends
            # it and its reply (a pod, node or internet host): its own OUTPUT chain may drop it as it leaves
            ends = [ns for ns in namespaces if lm.where(ns).startswith("pod ") or ns in (src.netns, dst.netns)]
            input_before = _tables(ends, filters)
            kernel.filters_before = {**filters, **input_before}
            loss_before = arploss.read_counts(loss_netns)  # the impairments' loss chains: which dropped ARP
            with _confirmed_entries(nat_netns if proto in ("tcp", "udp") else []) as confirmed:
                sent = send.send_marked(src.netns, proto, dst.ip, port, nonce, payload, size=size, sport=sport,
                                        avoid=held)
                kernel.sent_too_big = sent.too_big
                try:
                    send.wait_reply(sent, timeout)
                    kernel.snapshot_conntrack(nat_netns, proto, {ns: c.tuples(ip_proto) for ns, c in confirmed.items()})
                    filters = policyrules.read_tables(dict.fromkeys(counted + nodes + on_way))
                    kernel.snapshot_nat(counted, filters, lm.nft_netns)
                    policy_tables = {ns: t for ns, t in filters.items() if ns in nodes}
                    policy_after = policyrules.reject_counts(policy_tables)
                    arp = arploss.ArpLoss(arploss.answerers(lab),
                                          arploss.rose(loss_before, arploss.read_counts(loss_netns)))
                    kernel.policy_rejects = tpolicy.rejected(policy_before, policy_after)
                    input_after = _tables(ends, filters)
                    kernel.filters_after = {**filters, **input_after}  # a FORWARD policy of DROP is read there
                    step(2)
                finally:
                    sent.close()
            capture.settle()
            frames = capture.drain()
        step(3)
        if proto == "icmp":
            flow = Flow.icmp(None, dst.ip, sent.sport)  # the kernel picks the source address
        else:
            flow = Flow(proto, sent.src, dst.ip, sent.sport, port)
        fwd = walk(kernel, lm, src.netns, flow, size=size + 28 if size else 0)  # + IP and ICMP headers
        back: Walk | None = rejectanswer.walk_answer(kernel, lm, lab, fwd, sent.refused)  # a REJECT's on the way
        arrived = fwd.end_netns if fwd.outcome == "delivered" and fwd.final is not None else None  # where, if it was
        if arrived and fwd.final is not None:  # an echo reply is as big as its request: the same MTUs on the way back
            back = walk(kernel, lm, arrived, fwd.final.reversed(), role="reply", direction="reply",
                        size=size + 28 if size else 0)
        # a policy's REJECT on the way answered (a port unreachable from its node) a request the walk delivered
        answers = rejectanswer.policy_answers(kernel, lm, fwd) if sent.refused and arrived else {}
        # The kernel it arrived at refused it (a reset, a port unreachable): the sockets it has. A datagram to a
        # VXLAN device's port there: the device's socket took it, and drops what is no VXLAN packet (no reply, no
        # ICMP error).
        bound = kernel.sockets(arrived, proto) if sent.refused and arrived else None
        vtep = vxlan_on_port(kernel.links(arrived), fwd.final.dport) \
            if proto == "udp" and arrived and fwd.final is not None else None
        # the nodes whose bridge switches frames past iptables, and so past the policies' rules
        unfiltered = {ns for ns in tpolicy.node_namespaces(lab) if not kernel.bridge_nf(ns)}
    finally:
        kernel.close()
        heard.close()
    step(4)
    # Refused, or unanswered, where it arrived: a container there that does not run, as the lab's records say
    down = not_running.line(lab, arrived, proto, fwd.final.dport, lambda: repair_way(lab.name, lm.repair)) \
        if arrived and fwd.final is not None and (sent.refused or not sent.reply) else None

    # Every flow a row may see, its alternative included (the packet before or after a NAT on that device), and
    # the request an ICMP error a row expects quotes (a node's own request its REJECT refused: no row saw it)
    more = [h for w in answers.values() for h in w.hops]
    flows = {f for h in fwd.hops + (back.hops if back else []) + more if h.observe
             for f in (h.observe.flow, h.observe.alt, h.observe.flow.quoted) if f is not None}
    # an FDB entry's own UDP port (`bridge fdb ... port 4789`): the packets the kernel sent to it are VXLAN too
    ports = [vx_port] + sorted({h.facts["port"] for h in fwd.hops + (back.hops if back else [])
                                if h.kind == "fdb" and h.facts.get("port")} - {vx_port})
    ours = kept(frames, vx_port, sent.marker, flows, ports)
    packets = [p for _, p in ours]
    captured = set(namespaces)
    ip_packets = [p for p in packets if p.flow is not None]
    mark_seen(fwd.hops, ip_packets, captured)
    losses = lossblame.losses(lab)
    fverdict = lossblame.impaired(losses, lossblame.firewall(kernel, explain(fwd, lab=lab.name), fwd.hops, lm),
                                  fwd.hops, lab.name, arp)
    bverdict: Verdict | None = None
    expected = reply_expected(lab, proto, question is not None, arrived, fwd.final)
    if back is not None and not sent.reply and not sent.refused and not_arrived(fwd):
        back = None  # the request never reached the destination and nothing answered it: no path to show
    if back is not None:
        mark_seen(back.hops, ip_packets, captured)
        unnatreply.note_answers(back.hops, ip_packets, src.netns, back.final)  # a stray reply's RST, if captured
        bverdict = lossblame.impaired(losses, lossblame.firewall(kernel, explain(back, lab=lab.name), back.hops, lm),
                                      back.hops, lab.name, arp)
        replier = lm.names.get(back.hops[0].netns, dst.name) if back.hops else dst.name  # "pod b"
        waits = reply_waits_on_arp(back, replier) if not bverdict.delivered and not sent.error else None
        if waits is not None and not any(h.seen for h in back.hops):  # made, and held by its next hop's ARP
            bverdict = waits
        elif not bverdict.delivered and not any(h.seen for h in back.hops) and bverdict.fix is None:
            why = f"{dst.name} sent no reply"
            if sent.error:
                why += f" ({sent.error})"
            elif question is not None:
                why += f" (nothing answered the DNS query for {question}: " \
                       f"{down.text if down else 'is the DNS server running?'})"
            elif vtep is not None:
                why += (f" (UDP {port} there is the VXLAN device {vtep.name}'s port: it takes only VXLAN packets, and "
                        "dropped this datagram)")
            elif proto == "udp" and expected:
                why += " (nothing answered the datagram, though netlab's echo server serves that port there)"
            elif proto == "udp":
                why += (" (nothing answered the datagram: is a server listening on that port? No reply is no failure "
                        "here: nothing netlab runs answers that port, and a UDP program may take a datagram and say "
                        "nothing)")
            bverdict = Verdict(False, bverdict.lost_at, why, never_sent=True)
    planned_filter = {ns: table.rules for ns, table in lm.planned_filter.items()}
    fverdict, back, bverdict = inputdrop.judge(kernel, fwd, back, fverdict, bverdict, input_before, input_after,
                                               planned_filter, sent.reply, arrived, lm.planned_nft)
    # The source address is the one the kernel picked for this destination: a node sends to a pod from flannel.1's
    # or cni0's address, not its underlay one; to a Service, from the route to the ClusterIP's (before the DNAT and
    # a masquerade: the walk's source, not the address a capture sees leaving).
    picked = fwd.source or next((h.observe.flow.src for h in fwd.hops if h.observe is not None and h.observe.flow.src),
                                src.ip)
    result = TraceResult(
        lab=lab.name, src={**src.to_json(), "ip": picked}, dst=dst.flow_json(proto), proto=proto, port=port,
        marker=sent.marker.decode(),
        forward=fwd, reply=back, verdict=fverdict, reply_verdict=bverdict, reply_received=sent.reply,
        reply_text=sent.reply_text, captured_netns=namespaces, vxlan_port=vx_port, reply_expected=expected,
        packets=sum(1 for p in packets if p.flow is not None and p.role in ("request", "reply", "error")))
    if question is not None:
        result.dns = {"question": question, "id": query_id}
        if sent.reply_data is not None:
            result.dns["answer"] = dns.answer(sent.reply_data, query_id)
            result.reply_text = dns.text(result.dns["answer"])
    number(result)
    result.repair_later, result.listener = lm.repair_later, listening
    result.notes = targets.terminated_notes(lab, src, dst)  # a Completed/Error pod: nothing of it runs there (probe)
    result.notes += hostport.stale_note(lab, result.endpoint)  # portmap's DNAT to such a pod: up takes it out
    result.notes += kubeproxy_nft.unread_notes(lm, kernel.nft_unreadable)  # nft failed: said, not taken for none
    for w in answers.values():
        mark_seen(w.hops, ip_packets, captured)
    policyverdict.policy_verdict(lab, result, src, dst, policy_before, policy_after, unfiltered,
                                 tpolicy.Tables(policy_tables, result.repair_later, planned_filter),
                                 {ns: (w, explain(w, lab=lab.name)) for ns, w in answers.items()})
    result.nat = nat_between_pods(fwd, src.ip, src.netns, lm.names, dst.ip) if result.verdict.delivered else None
    if sent.refused and arrived and result.verdict.delivered and fwd.final is not None and fwd.final.dport is not None:
        result.refused = refusal.reason(proto, arrived, fwd.final.dst, fwd.final.dport, bound)
        ended = hostport.terminal_port(lab, arrived, proto, fwd.final.dport)  # its pod's sandbox stopped: planned
        gone = None if ended else hostport.unmapped(lab, lm.ip_names, kernel.nat_table, arrived, proto, fwd.final.dport)
        if ended:
            result.refused += f"; {ended}"
        elif gone:  # the row where it arrived says which of portmap's rules is gone, and the fix
            result.refused += f"; {gone[0]}"
            hop = next((h for h in reversed(fwd.hops) if h.kind == "deliver" and h.netns == arrived), None)
            if hop is not None and hop.problem is None:
                hop.problem, hop.fix = gone[0], gone[1] or result.repair
    elif (sent.refused or sent.rejected) and not result.verdict.delivered:  # on the way: kube-proxy's REJECT
        result.refused = refusal.rejected(result.verdict, fwd.hops)
    rejectanswer.start_rows(result)
    result.impairments = lossblame.on_path(lab, result)  # once the REJECT's rows are in
    extrarules.note([(fwd, crossed(fwd, result.verdict)), (back, crossed(back, result.reply_verdict,
                                                                         result.verdict.delivered))],
                    kernel.filters_before, kernel.filters_after, lm.planned_filter, lm.names, unfiltered,
                    lm.repair_later)
    if down is not None:
        _says_down(result, arrived, down, repair_way(lab.name, lm.repair))
    result.icmp_errors = [dict(p.icmp_error, netns=p.netns, ifname=p.ifname) for p in packets if p.icmp_error]
    result.icmp_errors = _unique(result.icmp_errors, ("from", "text", "about"))
    result.arp = _arp_story(fwd, packets, lm.name_ip) + (_arp_story(back, packets, lm.name_ip) if back else [])
    if pcap:
        keep = [(frame, _comment(frame, p, fwd.hops + (back.hops if back else []))) for frame, p in ours
                if p.flow is not None or _arp_relevant(p, fwd) or (back is not None and _arp_relevant(p, back))]
        cap.write_pcapng(pcap, keep, vx_port)
        result.pcap = pcap
    step(5)
    return result


def _says_down(result: TraceResult, arrived: str | None, down: not_running.Down, repair: str) -> None:
    """The row where the packet arrived says which container there does not run, and its fix (the `up` that
    restarts it, unless its pod's restartPolicy keeps it down); the refusal points at that row."""
    hop = next((h for h in reversed(result.forward.hops) if h.kind == "deliver" and h.netns == arrived), None)
    if hop is None:
        return
    hop.problem, hop.fix = down.text, repair if down.restarts else None
    if result.refused:
        result.refused += f"; {down.who} {'do' if ',' in down.who else 'does'} not run (hop {label(hop)})"


def _tables(netns: list[str], read: dict[str, str]) -> dict[str, str]:
    """The filter tables of ``netns``: those ``read`` (the nodes' read this moment) holds, the others read now."""
    return {**{ns: read[ns] for ns in netns if ns in read}, **policyrules.read_tables(ns for ns in netns
                                                                                      if ns not in read)}


def _listen(stack: contextlib.ExitStack, dst: Endpoint, proto: str, port: int | None, timeout: float) -> str | None:
    """An internet host runs nothing of its own: for a TCP or UDP packet to it, netlab's echo server listens on the
    port for this trace only, as ``probe`` runs one for its egress probes (listeners.py). What to say of it; None:
    no listener (not an internet host, an ICMP echo, or something of the user's listens there already)."""
    if dst.kind != "internet" or dst.netns is None or proto == "icmp" or port is None:
        return None
    heard = stack.enter_context(listeners.start([(dst.name, dst.netns)], port, lifetime=timeout + 30))
    if dst.name in heard.already:
        return None
    if dst.name in heard.errors:
        return f"no temporary echo listener on {dst.name}: {heard.errors[dst.name]}"
    return (f"{dst.name} is an internet host, which runs nothing of its own: netlab's echo server listened on "
            f"{port} (TCP and UDP) there for this trace only, as it does for probe's egress probes")


def reply_expected(lab: Lab, proto: str, dns_query: bool, arrived: str | None, final: Flow | None) -> bool:
    """Something at the destination answers this packet: the kernel answers a TCP SYN (a SYN-ACK, or a reset)
    and an ICMP echo; a DNS server a query; netlab's echo server a datagram to a pod's echo port, and to an
    internet host's, whose temporary listener runs during the trace (listeners.py). Else a UDP datagram to a
    port no program of netlab's serves: a program there may take it and answer nothing, so no reply is no
    failure."""
    if proto != "udp" or dns_query:
        return True
    if arrived is None or final is None or final.dport is None:
        return False
    if any(netns == arrived for _host, netns in lab.internet_hosts):
        return True
    pod = next((p for p in lab.pods if p.netns == arrived), None)
    return pod is not None and (final.dport, "UDP") in pod_echo_ports(pod)


@contextlib.contextmanager
def _confirmed_entries(namespaces: list[str]) -> Iterator[dict[str, conntrack.NewEntries]]:
    """The conntrack entries these namespaces confirm while the packet runs, heard as they are made: a node's
    entry for a SYN a policy refuses down the road is gone once its RST passes back (conntrack.NewEntries)."""
    opened: dict[str, conntrack.NewEntries] = {}
    try:
        for ns in namespaces:
            try:
                opened[ns] = conntrack.NewEntries(ns)
            except OSError:  # no ctnetlink there: the entries listed after the packet are all it has
                continue
        yield opened
    finally:
        for listener in opened.values():
            listener.close()


def kept(frames: list[cap.Frame], vx_port: int, marker: bytes, flows: set[Flow],
         ports: list[int] | None = None) -> list[tuple[cap.Frame, Packet]]:
    """The frames of the traced packet (decode.classify), each with its line in tcpdump's words as ``netlab
    capture`` prints it, without the MACs (the row names the device): a row's ``saw:``, an ARP request, a pcapng
    comment. Every namespace was entered and left: scapy, which words them, may be imported now. ``ports``: the
    UDP ports whose datagrams are VXLAN (the lab's, and any an FDB entry names)."""
    out = []
    for frame, d in cap.frames_in(frames, ports or [vx_port]):
        p = decode.classify(d, frame.netns, frame.ifname, frame.direction, frame.ts, marker, flows)
        if p is not None:
            out.append((frame, replace(p, summary=cap.words(frame, vx_port, link=False)[0])))
    return out


def _unique(items: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    seen, out = set(), []
    for item in items:
        k = tuple(item.get(x) for x in keys)
        if k not in seen:
            seen.add(k)
            out.append(item)
    return out


def _comment(frame: cap.Frame, p: Packet, hops: list[Hop]) -> str:
    """The pcapng comment of a frame: the row it proves, or what it is."""
    rows = [h for h in hops if h.observe is not None and matches(p, h.observe)]
    where = f"{frame.netns} {frame.ifname} {frame.direction}"
    if rows:
        return f"hop {label(rows[0])}: {where}: {rows[0].kind}: {rows[0].decision}"[:400]
    return f"{where}: {p.summary}"
