"""The life of a packet: trace, capture, inspect."""

from __future__ import annotations

import contextlib
import shlex
import signal
import shutil
import sys
import time
from typing import Any

import click

from netlab import signals
from netlab.api.args import TRACE_SIZE, TRACE_TIMEOUT
from netlab.api.jsonio import to_json
from netlab.cli.base import attached, cli, require_packets, require_root
from netlab.cli.options import Seconds, comma_items, complete_comma_separated, lab_options
from netlab.cli.output import (check_distinct, check_output_file, check_pcap_file, dash_is_stdout, force_option,
                               format_data, output_option, pcap_written, print_json, said_first, write_output_file)
from netlab.cli.complete import complete_interfaces, complete_names, complete_sources, complete_targets
from netlab.cli.progress import progress_bar
from netlab.cli.style import plural
from netlab.errors import ChecksFailed, UsageError, command_path, netlab_command
from netlab.outkinds import PCAP, TRACE
from netlab.trace.sections import ALIASES, INSPECT_SECTIONS, section_names, sections_wanted

# What the commands use, imported when one runs (cli.base.load_for), not for --help; trace.capture
# imports scapy only inside its functions, after entering namespaces.
LOADS = ("netlab.api.lab", "netlab.cli.inspect_text", "netlab.kernel.netns", "netlab.realize.state",
         "netlab.trace.capture", "netlab.trace.kernel", "netlab.trace.render")

def _running_lab(lab_name: str | None, topology: str | None):
    from netlab.realize.lab_name import select_lab

    return select_lab(lab_name, topology).resolved()


def _netns_of(lab: Any, name: str) -> str:
    from netlab.kernel import netns as nsmod

    netns = lab.netns_of(name)
    if netns is None:
        names = [p.name for p in lab.pods] + [n.name for n in lab.nodes] + [h for h, _ in lab.internet_hosts]
        raise UsageError(f"lab {lab.name} has no pod, node or host {name!r} "
                         f"(it has: {', '.join(names[:15])}{', ...' if len(names) > 15 else ''}, underlay)")
    if not nsmod.is_netns_mount(netns):
        from netlab.workload.reconfigure import lab_netns_gone

        raise lab_netns_gone(netns, lab.name)
    return netns


# --- trace -------------------------------------------------------------------

@cli.command("trace")
@lab_options
@click.argument("src", shell_complete=complete_sources)
@click.argument("dst", shell_complete=complete_targets)
@click.option("--proto", type=click.Choice(["icmp", "tcp", "udp"]), default=None,
              help="Protocol of the marked packet. Default: the Service port's protocol for svc/NAME; with "
                   "--port, tcp (udp when DST serves that port over UDP only); else icmp.")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Destination port (tcp/udp; without --proto it means tcp, or udp when DST serves that port "
                   "over UDP only). Default: the Service's first port, or the pod's served port.")
@click.option("--timeout", type=Seconds(*TRACE_TIMEOUT), default=1.0, show_default=True,
              help="Seconds to wait for the reply.")
@click.option("--pcap", "pcap", metavar="FILE", type=click.Path(dir_okay=False, writable=True),
              help="Write every captured frame of the packet to FILE (pcapng, one interface per namespace/device).")
@click.option("--full-reply", is_flag=True, help="Show every row of the reply's path, not only its translations.")
@click.option("--size", type=click.IntRange(*TRACE_SIZE), default=None, metavar="BYTES",
              help="An ICMP echo with this many payload bytes and DF set, as ping -M do -s BYTES "
                   "(the pods' MTU - 28 is the biggest that fits): finds where a full-size packet is lost.")
@click.option("--sport", type=click.IntRange(1, 65535), default=None, metavar="PORT",
              help="TCP/UDP source port (default: a random one): follow the flow of a client that keeps its "
                   "port, which an old conntrack entry may still steer.")
@output_option("text", "json", "svg", "png", "dot")
@click.option("-w", "--write", "write", metavar="FILE", type=click.Path(dir_okay=False, writable=True),
              callback=dash_is_stdout,
              help="Write the output to FILE (for -o svg/png: the lab's picture with the packet's path on it); "
                   "- is standard output.")
@force_option("the -w and --pcap FILEs")
def trace_cmd(lab_name: str | None, topology: str | None, src: str, dst: str, proto: str | None, port: int | None,
              timeout: float, pcap: str | None, full_reply: bool, size: int | None, sport: int | None, output: str,
              write: str | None, force: bool) -> None:
    """Follow one real packet from SRC to DST, hop by hop, with the kernel's decisions.

    SRC is a pod or node (or an internet host); DST a pod, a node, svc/NAME,
    an internet host, or one of the lab's addresses.

    \b
    Every row is one hop: the namespace, the device, the decision the kernel
    took there (asked over netlink: route lookup, ARP entry, FDB entry and
    remote VTEP, VXLAN encapsulation, Service DNAT from conntrack, masquerade,
    bridge port), and the command that shows you the same fact. Then one real
    marked packet is sent from SRC and captured on every interface of the
    path at once: each row says whether the packet was seen there ("-": a
    decision no capture can show, such as a NAT), and a lost packet is
    reported at the hop where it disappeared or was doomed, with the reason.
    Where it entered or left a VXLAN tunnel, or arrived, "saw:" is the frame
    as `netlab capture` prints it (tcpdump's words, without the MACs).
    To port 53 the packet is a real DNS query, and the answer is shown.
    On a terminal, lines wrap to its width; -o json keeps them whole.

    -o svg or png draws the lab's picture (as `netlab graph` does) with the
    packet's path on it: every hop numbered on the box where it happened,
    with the kernel's decision, and the hop where it was lost in red with the
    reason (-o dot: the Graphviz text of the same).

    \b
    Examples:
      sudo netlab trace fedora-1 fedora-2                   # across the VXLAN overlay
      sudo netlab trace client svc/web --proto tcp --port 80   # lab of topologies/services.yaml
      sudo netlab trace fedora-1 fedora-2 --pcap /tmp/p.pcapng
      tshark -r /tmp/p.pcapng -d udp.port==8472,vxlan      # inner and outer headers
      sudo netlab trace fedora-1 fedora-2 -o svg -w /tmp/path.svg

    Exit code 1 when the packet does not reach DST, or DST refuses it: a TCP
    reset or an ICMP port unreachable came back ("REFUSED", with the sockets
    DST has on that port, as `ss -ltun` lists them); also when the lab's
    NetworkPolicies deny the flow and it got through ("NOT STOPPED", and why),
    and when it arrived by a path the lab did not plan ("NOT by the planned
    path": the row marked !! that sent it astray, a route or an FDB entry that
    is not the plan's, and its fix).

    An existing -w FILE is replaced only when it is empty or holds a trace
    netlab wrote (text, JSON, YAML, a picture), an existing --pcap FILE only
    when it is empty or a pcap/pcapng; anything else is left as it is, exit 2,
    unless --force (never through a symlink).
    """
    from netlab.api.internals import killed_before_trace
    from netlab.api.lab import internal
    from netlab.trace.render import render_text

    check_distinct(pcap, "--pcap", write, "-w")
    check_output_file(pcap, "--pcap", PCAP, force)
    check_output_file(write, kind=TRACE, force=force)
    if output == "png" and write is None and sys.stdout.isatty():
        which = f" --lab {lab_name}" if lab_name else (f" -t {command_path(topology)}" if topology else "")
        raise UsageError("PNG is binary and would garble the terminal; write it with -w FILE.png or redirect it: "
                         f"netlab trace{which} {shlex.quote(src)} {shlex.quote(dst)} -o png > path.png")
    require_root()
    require_packets()
    lab = attached(lab_name, topology)
    said = killed_before_trace(lab, said_first)  # an up (or down) killed halfway: list's line, before the bar
    bar, progress = progress_bar(f"tracing {src} → {dst}")
    if bar:
        with bar:
            traced = lab.trace(src, dst, proto=proto, port=port, timeout=timeout, pcap=pcap, progress=progress,
                               size=size or 0, sport=sport or 0)
    else:
        traced = lab.trace(src, dst, proto=proto, port=port, timeout=timeout, pcap=pcap, size=size or 0,
                             sport=sport or 0)
    result = internal(traced)  # the walk and its verdicts, for the text and the picture
    if result.error is not None and said is None:  # not said first (a namespace missing): said now
        said_first(result.error)
    if output in ("svg", "png", "dot"):
        from netlab.trace import picture

        data = picture.render(lab.model, result, output)
        _emit(data, write)
        click.echo(f"netlab: {picture.title(result)}" + (f"; wrote {write}" if write else ""), err=True)
    elif output == "json":  # or -o yaml (cli.output: the command sees "json", format_data writes YAML)
        _emit(format_data(result.to_json()).encode(), write)
        if pcap:
            click.echo(f"netlab: wrote {pcap}; read it with: tshark -r {pcap} -d udp.port=={result.vxlan_port},vxlan",
                       err=True)
    else:
        # On a terminal, lines wrap to its width (-o json keeps every line whole).
        width = shutil.get_terminal_size().columns if sys.stdout.isatty() and not write else None
        _emit(render_text(result, full_reply=full_reply, width=width).encode(), write)
    if not result.ok:
        raise SystemExit(ChecksFailed.exit_code)


def _emit(data: bytes, path: str | None) -> None:
    """To FILE (-w), or standard output."""
    if path:
        write_output_file(path, data, TRACE)
        return
    stream = sys.stdout.buffer  # click.get_binary_stream is deprecated (Click 8.5), and returns this
    stream.write(data)
    stream.flush()


# --- capture -----------------------------------------------------------------

@cli.command("capture")
@lab_options
@click.argument("target", metavar="NAME:IFACE", shell_complete=complete_interfaces)
@click.argument("expression", nargs=-1)
@click.option("-c", "--count", type=click.IntRange(1, 100000), default=20, show_default=True,
              help="Stop after this many frames.")
@click.option("--timeout", type=Seconds(0.1, 3600), default=10.0, show_default=True,
              help="Stop after this many seconds.")
@click.option("-w", "--write", "write", metavar="FILE", type=click.Path(dir_okay=False, writable=True),
              help="Write a pcap file instead of printing the frames (-: to standard output, as tcpdump -w -).")
@force_option("-w's FILE")
@click.option("-v", "--verbose", is_flag=True, help="Print every layer of every frame (scapy's show()).")
@output_option("text", "json")
def capture_cmd(lab_name: str | None, topology: str | None, target: str, expression: tuple[str, ...], count: int,
                timeout: float, write: str | None, force: bool, verbose: bool, output: str) -> None:
    """Capture on one interface of the lab and print the frames as tcpdump does, VXLAN and DNS decoded.

    NAME is a node, pod or other lab host (underlay, gateway, ...), IFACE one
    of its interfaces (eth0, cni0, flannel.1, a veth...). EXPRESSION, as
    tcpdump's (pcap-filter(7): `icmp`, `udp port 53`, `host 10.244.1.2 and
    tcp`), keeps only the frames it matches: libpcap compiles it and the
    kernel runs it before a frame counts (quote it if the shell would read
    it). Each frame is one line in tcpdump's words, with the MACs as `-e`
    shows them, the TTL where `-v` has it, each DNS message as `-vvv` has it
    (question, records, an NXDOMAIN's SOA). Stops after COUNT
    frames or TIMEOUT seconds, whichever comes first, or at Ctrl-C or SIGTERM
    (`timeout`, kill): what came is still printed or written (-w) and it
    exits 0, as tcpdump does (not 130 or 143 as other commands stopped so).
    -w writes the pcap as the frames come, each flushed (tcpdump -w -U): a
    reader of `-w -` that goes away ends it at the next frame, exit 141.
    An existing -w FILE is replaced only when it is empty or a pcap/pcapng;
    anything else is left as it is, exit 2, unless --force (never through
    a symlink).
    An interface that goes down is said in one line and the capture goes
    on (frames again once it is up), as tcpdump's; one deleted, or its
    namespace (its pod or the lab taken down), ends it: what came is still
    printed or written, one line says so, exit 1 (tcpdump's "The interface
    disappeared"; -o json: stopped: gone).
    No frame at all is said in one line on stderr; -o json says why it
    stopped (stopped: count, timeout, interrupted by Ctrl-C or terminated by
    SIGTERM) and after how long (elapsed_s), each frame's line
    as the text prints it (summary) and its DNS message's words (dns).

    \b
    Examples:
      sudo netlab capture minikube:eth0 -c 4        # VXLAN on the underlay: outer and inner headers
      sudo netlab capture fedora-2:eth0 --timeout 5 -w /tmp/f2.pcap
      sudo netlab capture kube-dns:eth0 -c 2        # a DNS question and answer: lab of topologies/services.yaml
      sudo netlab capture minikube:cni0 -c 4 icmp   # only ICMP: no ARP, no DNS of other pods
      tshark -r /tmp/f2.pcap -d udp.port==8472,vxlan
    """
    from netlab.trace import capture as cap
    from netlab.trace.kernel import LiveKernel
    from netlab.trace.pcap_stream import PcapStream

    name, sep, iface = target.rpartition(":")
    if not sep or not name or not iface:
        raise UsageError(f"{target!r}: give NAME:IFACE, e.g. minikube:eth0 or fedora-1:eth0")
    check_pcap_file(write, output, force)  # -w -: standard output, as tcpdump's
    # An expression libpcap cannot compile is refused before anything else (nothing opened, nothing captured).
    bpf = cap.compile_filter(" ".join(expression)) if expression else None
    require_root()
    require_packets()
    lab = _running_lab(lab_name, topology)
    netns = _netns_of(lab, name)
    with LiveKernel() as k:
        links = k.links(netns)
    if iface not in links:
        raise UsageError(f"{name} has no interface {iface!r} (it has: {', '.join(sorted(links))})")
    vx_port = lab.topo.network.vxlan.port if lab.mode == "vxlan" else 8472
    frames: list[cap.Frame] = []  # -o json's rows (the text and the pcap are written as the frames come)
    seen: list[None] = []  # one a frame
    # Ctrl-C or SIGTERM ends a capture as it ends tcpdump's, whenever it comes: the frames that came are kept,
    # written or printed, exit 0 (tcpdump's cleanup() exits 0 on either). Like tcpdump's "listening on", a line
    # on stderr says when frames are being read (a terminal writing a pcap shows a progress bar instead).
    matching = f"frames matching {bpf.expression!r}, " if bpf else ""
    listening = (f"netlab: capturing on {netns} {iface} ({matching}up to {plural(count, 'frame')} or {timeout:g} s; "
                 "Ctrl-C stops it)")
    signalled = ""  # the stop signal's word for `stopped`: interrupted (Ctrl-C), terminated (SIGTERM), hangup

    def note(line: str) -> None:  # the link went down: said on stderr, the capture goes on (as tcpdump's)
        click.echo(f"netlab: {line}", err=True)

    # -w: the pcap's header now and each frame as it comes, flushed (tcpdump -w -U): `-w - | tshark -r -` shows
    # them live; a reader gone is the next frame's BrokenPipeError, exit 141 (cli/base.py), as under SIGPIPE
    with PcapStream(write) if write else contextlib.nullcontext() as pcap, \
            cap.Capture([netns], iface=iface, bpf=bpf) as capture:
        started = time.monotonic()
        try:
            # Every namespace was entered and left: scapy may be imported now.
            cap.scapy_layers(vx_port)
            if write or output == "json":
                bar, progress = progress_bar(f"capturing on {name}:{iface}") if write else (None, None)
                if bar is None:
                    click.echo(listening, err=True)

                def keep(frame: cap.Frame) -> None:
                    seen.append(None)
                    if pcap is not None:
                        pcap.write(frame.data, frame.ts)
                    if output == "json":
                        frames.append(frame)
                    if progress:
                        progress("capture", len(seen), count)

                if bar:
                    with bar:
                        cap.live(capture, count, timeout, keep, note)
                else:
                    cap.live(capture, count, timeout, keep, note)
            else:
                click.echo(listening, err=True)

                def show(frame: cap.Frame) -> None:
                    seen.append(None)
                    click.echo(cap.describe(frame, vx_port, verbose=verbose))

                cap.live(capture, count, timeout, show, note)
        except KeyboardInterrupt as exc:
            signalled = STOPPED_WORDS.get(signals.exit_code(exc) - 128, "interrupted")
        elapsed = time.monotonic() - started
        ended = capture.ended
    signals.taken()  # its end (exit 0), not the program's 130/143; one a finalizer swallowed ends it as well
    stopped = signalled or ("count" if len(seen) >= count else "gone" if ended else "timeout")
    if write:
        click.echo(pcap_written(write, plural(len(seen), "frame"), f"{netns} {iface}", vx_port),
                   err=output == "json" or write == "-")
    if output == "json":
        rows = [cap.frame_json(frame, d, vx_port) for frame, d in cap.frames_in(frames, [vx_port])]
        print_json({"lab": lab.name, "netns": netns, "interface": iface, "filter": bpf.expression if bpf else None,
                    "frames": rows, "pcap": write,
                    "stopped": stopped, "elapsed_s": round(elapsed, 3)})
    if stopped == "gone":  # its device or namespace went away: the frames it caught are kept, exit 1 (tcpdump's)
        click.echo(f"netlab: capture on {netns} {iface} ended after {plural(len(seen), 'frame')} in {elapsed:.1f} s: "
                   f"{ended}", err=True)
        raise SystemExit(1)
    if not seen:  # said whatever stderr is: a script that reads nothing on stdout is told why
        click.echo(no_frames_line(netns, iface, stopped, elapsed, lab.name, bpf.expression if bpf else None),
                   err=True)


# `capture -o json`'s "stopped" for the stop signal that ended it (128 + its number is the exception's exit code)
STOPPED_WORDS = {signal.SIGTERM: "terminated", signal.SIGHUP: "hangup"}


def no_frames_line(netns: str, iface: str, stopped: str, elapsed: float, lab: str,
                   expression: str | None = None) -> str:
    """What capture says when no frame crossed the interface (none its filter matches): where, for how long, and
    why it stopped."""
    why = {"interrupted": "stopped by Ctrl-C", "terminated": "stopped by SIGTERM",
           "hangup": "stopped by SIGHUP"}.get(stopped, "the timeout ran out")
    what = f"nothing that matches {expression!r} crossed the interface" if expression else \
        "nothing crossed the interface"
    return (f"netlab: 0 frames captured on {netns} {iface} in {elapsed:.1f} s ({why}): {what}; send something, "
            f"e.g. `{netlab_command(f'trace --lab {lab} SRC DST')}`")


# --- inspect -----------------------------------------------------------------

def _inspect_sections(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    """-s: sections repeated or comma-separated, each by its name or its key in -o json; in order, once each."""
    names = comma_items(value, sections_wanted())
    unknown = [n for n in names if n not in INSPECT_SECTIONS and n not in ALIASES]
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}: want some of {sections_wanted()}")
    return section_names(names)


@cli.command("inspect")
@lab_options
@click.argument("name", shell_complete=complete_names)
@click.option("-s", "--section", "sections", multiple=True, callback=_inspect_sections,
              shell_complete=complete_comma_separated(INSPECT_SECTIONS),
              metavar="SECTION[,SECTION]",
              help="Only these sections (links, addrs, routes, neigh, fdb, bridge, sockets, iptables, nftables, "
                   "conntrack, files: a node's Flannel files, a pod's /etc/resolv.conf and /etc/hosts), and sysctls, "
                   "cni (a CNI pod's result); addresses, neighbours and "
                   "bridge_ports, the keys of -o json, are addrs, neigh and bridge. Repeatable or comma-separated. "
                   "Default: all, with conntrack counted; `--section conntrack` lists its entries.")
@output_option("text", "json")
def inspect_cmd(lab_name: str | None, topology: str | None, name: str, sections: tuple[str, ...],
                output: str) -> None:
    """Show what the tutorials show for a node or pod, read from the kernel.

    Links in the `ip -br` style with their veth peers, addresses, routes,
    neighbours (ARP), FDB entries (VXLAN remote VTEPs, learned bridge MACs),
    bridge ports, the sockets that listen (TCP) or are bound (UDP), as
    `ss -ltun` lists them, the lab's iptables chains with their packet counters, the
    lab's nftables tables as nft lists them (kube-proxy's `table ip kube-proxy`
    on a node of a lab in nftables mode: service-ips map, service and
    endpoint chains, counters where a rule has one), and conntrack: counted
    by protocol, TCP state and NAT (a node behind a busy Service holds
    hundreds of entries); `--section conntrack` lists them. Each section
    names the command that shows the same.

    \b
      sudo netlab inspect minikube                       # everything, conntrack counted
      sudo netlab inspect minikube --section routes,neigh,fdb
      sudo netlab inspect minikube -s conntrack          # every conntrack entry
      sudo netlab inspect node-1 -s nftables             # kube-proxy's table: topologies/services.yaml
                                                         # with cluster: {kubeProxyMode: nftables}
    """
    from netlab.cli.inspect_text import render_inspect

    require_root()
    lab = attached(lab_name, topology)
    data = to_json(lab.inspect(name, sections or None))  # none named: every section; None ones left out
    if output == "json":
        print_json(data)
        return
    click.echo(render_inspect(data), nl=False)
