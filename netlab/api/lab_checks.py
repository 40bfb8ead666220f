"""What a :class:`netlab.Lab` checks: the kernel against the plan, and real packets between its pods.

``status`` compares the live kernel with the lab's plan (or another
topology's); ``probe`` sends the connectivity matrix, ``reach`` one probe,
and ``trace`` follows one packet hop by hop, each from the source pod's own
namespace. :class:`~netlab.api.lab.Lab` inherits them from :class:`LabChecks`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable, Sequence, cast

from netlab.api import results as R
from netlab.api.words import InCallersWords, containers_read
from netlab.api.args import (PROBE_TIMEOUT, TRACE_TIMEOUT, check_bool, check_callable, check_path, check_proto,
                             check_seconds, check_size, check_str, check_topology, method)
from netlab.api.internals import internal_probe, internal_status, keep
from netlab.api.jsonio import from_json
from netlab.errors import UsageError

if TYPE_CHECKING:
    import collections

    from netlab.api.lab import Lab
    from netlab.api.topology import TopologyInput
    from netlab.model.lab import Lab as ModelLab
    from netlab.realize.state import LabState

Progress = Callable[[str, int, int], None]


class LabChecks(InCallersWords):
    """The checks of a :class:`~netlab.api.lab.Lab` (a base class of Lab): status, probe, reach, trace."""

    if TYPE_CHECKING:  # what Lab gives
        name: str
        traces: collections.deque[R.Trace]
        reaches: collections.deque[R.ProbeResult]

        def state(self) -> LabState: ...

        @property
        def model(self) -> ModelLab: ...

        def _model_of(self, state: LabState) -> ModelLab: ...

        def _served(self, state: LabState | None = None) -> ModelLab: ...

    def status(self, topology: TopologyInput = None) -> R.Status:
        """The live kernel against the plan: every missing, extra or different object, and containers
        that do not run. ``topology``: compare with this file or dict instead of the lab's own. ``repair``:
        the call that makes the kernel as planned (``Lab('NAME').repair()``), in Python as the CLI's in its words.
        Differences read while another command held or changed the lab (an ``up`` making it) are not drift:
        LabBusy names that command (a ``down`` that took it away: UsageError)."""
        with method("lab.status"):
            check_topology(topology)
        with containers_read():  # one root may not read (no CAP_SYS_PTRACE): the CLI's line
            return internal_status(cast("Lab", self), topology, api=True)  # self is a Lab: its base class

    def probe(self, topology: TopologyInput = None, *, protos: Sequence[str] = ("icmp", "tcp", "udp"),
              timeout: float = 1.0, arp: str = "auto", services: bool = True, mtu: bool = False) -> R.ProbeReport:
        """The connectivity matrix and the three rules, as ``netlab probe``; ``topology``: probe what this
        file or dict expects (its pods and ``expect:`` entries) instead of the lab's own topology.
        ``mtu``: also a full-size echo (DF, the pods' MTU) between every pair (``probe --mtu``). Arguments as
        the CLI's options: ``protos`` some of icmp, tcp, udp ("tcp" is one), ``timeout`` 0.05-30 s. Failures
        met while another command held or changed the lab (an ``up`` making it): LabBusy names it, as status."""
        from netlab.probe import report as probe_report

        _require_packets()  # before any work: the probe agent failed with "PermissionError" without CAP_NET_RAW
        report = internal_probe(cast("Lab", self), topology, protos=protos, timeout=timeout, arp=arp, services=services,
                                mtu=mtu)
        out = from_json(R.ProbeReport, probe_report.to_json(report))
        keep(out, report)
        return out

    def reach(self, src: str, dst: str, proto: str | None = None, port: int | None = None, *,
              timeout: float = 1.0) -> R.ProbeResult:
        """Send one real probe from ``src`` to ``dst`` (a pod, node, internet host or ``svc/NAME``).

        ``proto``: tcp, udp or icmp; by default TCP to the destination's first
        served port (a Service's first port), ICMP when it serves none.
        ``.reachable``: it answered; ``.seen_source``: the client address the
        destination's echo server saw (pod to pod: the source's own; a Service's masqueraded paths, a node's
        connection to a ClusterIP (which ``svc/NAME`` from a node dials) or its nodePort: the address the rules
        made it);
        ``.answered_by``: which pod answered (a Service's endpoint). Kept in
        :attr:`reaches` (the last few), which the pytest plugin saves when a test fails.
        A probe not as expected while another command held or changed the lab (an ``up`` making it) met that
        command's work half done: LabBusy names it, as :meth:`probe` does. A namespace of the path deleted
        behind netlab's back (``ip netns del``) is NetnsGone, as :meth:`trace` raises it.
        """
        from netlab.api import reach as reach_mod
        from netlab.realize.interrupted import seen

        with method("lab.reach"):
            check_str("src", src)
            check_str("dst", dst)
            check_proto(proto)  # before the lab's state is read: a usage error, whatever the lab
            reach_mod.check_port("port", port)
            timeout = check_seconds("timeout", timeout, PROBE_TIMEOUT)
        _require_packets()
        before = seen(self.name)  # who holds the lab as the probe begins: an up's work half done is no verdict
        model = self._served()  # Completed/Error pods: no endpoints
        probe = reach_mod.probe_of(model, src, dst, proto, port)  # a name or port the lab has not: the user's
        with before.reading("reach"):
            # a namespace deleted (`ip netns del`): NetnsGone, as trace says it, not a probe's error nor a reach to a
            # namespace its echo server holds on, of a pod whose flows probe() leaves out
            _check_namespaces(model, src, dst, proto, port)
            result = reach_mod.send(model, probe, timeout)
        meanwhile = None if result.ok else before.meanwhile("reach")  # an up at work on it: as probe says it
        if meanwhile is not None:
            raise meanwhile
        out = from_json(R.ProbeResult, result.to_json())
        self.reaches.append(out)
        return out

    def trace(self, src: str, dst: str, proto: str | None = None, port: int | None = None, *,
              timeout: float = 1.0, pcap: str | None = None, progress: Progress | None = None,
              size: int = 0, sport: int = 0, force: bool = False) -> R.Trace:
        """Follow one real packet from ``src`` to ``dst`` hop by hop, as ``netlab trace``.

        ``.delivered``; ``.refused``: why the destination refused it (nothing listens on the port), else
        None; ``.endpoint.pod``: the endpoint a Service's DNAT picked;
        ``.lost``: where and why it disappeared. Kept in :attr:`traces` (the
        last few), which the pytest plugin saves when a test fails. ``size``:
        the packet's size with DF set (as ``ping -M do -s``); ``sport``: the
        source port of a TCP/UDP packet (0: any). A ``port`` without ``proto`` is
        TCP (UDP when ``dst`` serves that port over UDP only). As the CLI's options:
        ``proto`` icmp, tcp or udp, ``timeout`` 0.1-30 s, ``size`` 1-65000 (0: a plain echo).
        A packet not as it should be while another command held or changed the lab (an ``up`` making it) met
        that command's work half done: LabBusy names it, as :meth:`status` does. ``pcap``: a file to write
        every captured frame to (pcapng); an existing one is replaced only when it is empty or a pcap/pcapng,
        else UsageError before anything runs, unless ``force=True`` (never through a symlink).
        """
        from netlab.api.reach import check_port
        from netlab import outfile
        from netlab.outkinds import PCAP, for_api
        from netlab.realize.own_files import check_output_path  # the trace stack (capture, decode): when used

        with method("lab.trace"):
            check_str("src", src)
            check_str("dst", dst)
            check_proto(proto)  # "TCP" is no protocol the rules match: refused, as reach and probe refuse it
            check_port("port", port)
            check_port("sport", sport, zero_ok=True)
            timeout = check_seconds("timeout", timeout, TRACE_TIMEOUT)
            check_size(size)
            check_path("pcap", pcap)
            check_output_path(pcap)  # never over the lab's own files, as the CLI's --pcap
            check_callable("progress", progress)
            check_bool("force", force)
            named = None if pcap is None else os.fspath(pcap)
            undo = outfile.force(named) if force and named is not None else (lambda: None)
            try:  # an existing file of another kind: refused before any work, in the API's words (force=True)
                if named is not None:
                    outfile.check(named, for_api(PCAP))
            except BaseException:
                undo()
                raise
        try:
            return self._trace(src, dst, proto, port, timeout, named, progress, size, sport)
        finally:
            undo()

    def _trace(self, src: str, dst: str, proto: str | None, port: int | None, timeout: float, pcap: str | None,
               progress: Progress | None, size: int, sport: int) -> R.Trace:
        from netlab.workload.reconfigure import repair_up
        from netlab.realize.interrupted import seen, stalled
        from netlab.trace.run import packet_ends, run

        _require_packets()  # before any work: a bare PermissionError without CAP_NET_RAW

        before = seen(self.name)  # who holds the lab as the trace begins: an up's work half done is no verdict
        state = self.state()  # read once: the lab (as up serves it: Completed/Error pods no endpoints), its repair
        model = self._served(state)
        ends = packet_ends(model, src, dst, proto, port, size, sport)  # a name or port the lab has not: the user's
        with before.reading("trace"):  # a namespace an up deleted (and makes again), a packet it cut short
            _check_namespaces(model, src, dst, proto, port)
            result = run(model, src, dst, proto=proto, port=port, timeout=timeout, pcap=pcap,
                         progress=progress, size=size, sport=sport, repair=lambda: repair_up(state), ends=ends)
        result.error = stalled(state)  # an up killed halfway: the network the packet met is its work half done
        meanwhile = None if result.ok else before.meanwhile("trace")  # an up at work on it: as status says it
        if meanwhile is not None:
            raise meanwhile
        # in Python words: the lab's `up` is worked out only when the CLI prints a line naming it (trace/later.py)
        out = from_json(R.Trace, result.to_json(repair=f"Lab({self.name!r}).repair()"))
        keep(out, result)
        self.traces.append(out)
        return out


def _check_namespaces(model: ModelLab, src: str, dst: str, proto: str | None, port: int | None) -> None:
    """NetnsGone, as :meth:`Lab.exec` and :meth:`Lab.inspect` raise it, for a namespace the trace would capture
    in that is gone (``ip netns del``); a source or destination the lab does not have is left to the trace."""
    from netlab.kernel.netns import is_netns_mount
    from netlab.workload.reconfigure import lab_netns_gone
    from netlab.cni.terminated import released_netns
    from netlab.trace.targets import capture_namespaces, resolve_source, resolve_target

    try:
        source = resolve_source(model, src)
        namespaces = capture_namespaces(model, source, resolve_target(model, dst, proto, port, source),
                                        released_netns(model))
    except (UsageError, ValueError):
        return
    for ns in namespaces:
        if not is_netns_mount(ns):
            raise lab_netns_gone(ns, model.name)


def _require_packets() -> None:
    """probe, reach and trace send real packets from raw sockets: root without CAP_NET_RAW is refused up front with
    the CLI's line (EnvironmentNotReady naming it: kernel/caps.PACKETS), before any work."""
    from netlab.doctor_host import require_capabilities
    from netlab.kernel import caps

    require_capabilities(caps.PACKETS)
