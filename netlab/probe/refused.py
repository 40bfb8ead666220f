"""Why a pod, node or internet host refused a probe: the sockets bound there, as ``trace`` says it.

A TCP probe answered with a reset, or a UDP probe with an ICMP port
unreachable from the destination itself, met a kernel with nothing on that
port, as a rule: ``connection refused`` alone leaves the learner to run ``ss``
there. For each such failure the runner asks the destination's kernel which
sockets it has (kernel/sockdiag.py, what ``ss -ltun`` lists; one dump per
namespace and protocol, only for failures) and the probe's detail says it::

    client -> kube-dns tcp/53: expected reachable, connection refused: nothing listens on tcp port 53 in
      lab-kube-dns (ip netns exec lab-kube-dns ss -ltn)

A probe does not know where a reset came from (a REJECT on the way sends it in
the destination's name): with a socket listening there it says so, and points
at ``trace``, which follows the packet and knows. Service probes are left as
they are: which endpoint the DNAT picked is not known here.
"""

from __future__ import annotations

from netlab.errors import netlab_command
from netlab.kernel.sockdiag import Bound, bound_in, on_port
from netlab.probe.probes import Probe
from netlab.probe.tasks import Observation


class Refusals:
    """The sockets of each refusing namespace, read once a run (of the lab ``lab``)."""

    def __init__(self, lab: str) -> None:
        self.lab = lab
        self.read: dict[tuple[str, str], list[Bound] | None] = {}

    def explain(self, p: Probe, obs: Observation) -> None:
        """Add to a refused probe's detail what its destination's sockets say of the port (when it was expected
        to reach, and the refusal came from the destination)."""
        dst = p.destination
        if (obs.outcome != "refused" or not p.expected or p.svc is not None or p.port is None
                or p.proto not in ("tcp", "udp") or dst.kind not in ("pod", "node", "host")):
            return
        if p.proto == "udp" and obs.reply_from != dst.addr:
            return  # a router's port unreachable (a REJECT on the way): the destination never saw it
        key = (dst.netns, p.proto)
        if key not in self.read:
            try:
                self.read[key] = bound_in(dst.netns, p.proto)
            except OSError:  # the namespace went meanwhile (NetnsGone), or the dump failed: nothing to say
                self.read[key] = None
        sockets = self.read[key]
        if sockets is not None:
            obs.detail = f"{obs.detail or 'connection refused'}: {words(p, sockets, self.lab)}"


def ss_command(netns: str, proto: str) -> str:
    """The ``ss`` that lists what listens (TCP) or is bound (UDP) in ``netns``."""
    return f"ip netns exec {netns} ss -{'lt' if proto == 'tcp' else 'lu'}n"


def on_the_port(sockets: list[Bound], port: int, address: str) -> tuple[str, str]:
    """What ``sockets`` hold on ``port`` for a packet to ``address``: ``none``, ``elsewhere`` (bound to other
    addresses only) or ``takes``; and those sockets as ss prints them (trace/refusal.py says it too)."""
    there = on_port(sockets, port)
    bound = ", ".join(s.text() for s in there)
    if not there:
        return "none", bound
    return ("takes" if any(s.takes(address) for s in there) else "elsewhere"), bound


def words(p: Probe, sockets: list[Bound], lab: str) -> str:
    """What the destination's ``sockets`` say of the probe's port (and the trace of lab ``lab`` that shows where a
    refusal came from)."""
    dst, proto, port = p.destination, p.proto, p.port or 0
    show = ss_command(dst.netns, proto)
    kind, bound = on_the_port(sockets, port, dst.addr)
    if kind == "none":
        verb = "listens on" if proto == "tcp" else "is bound to"
        return f"nothing {verb} {proto} port {port} in {dst.netns} ({show})"
    if kind == "elsewhere":
        return f"{proto} port {port} in {dst.netns} is bound to {bound} only, not to {dst.addr} ({show})"
    trace = netlab_command(f"trace --lab {lab} {p.source.name} {dst.name} --proto {proto} --port {port}")
    return (f"{proto} port {port} has a socket in {dst.netns} ({bound}): a rule on the way or in its own firewall "
            f"refused the probe ({trace} shows where)")
