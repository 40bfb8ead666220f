"""The gratuitous ARP of a pod ``up`` ADDs to a running lab through a user's CNI plugins (QA q38 #5).

A pod re-attached (its namespace deleted by hand and made anew, its conflist edited) keeps its address, since
netlab asks its IPAM for the planned one (``IP=``, ``runtimeConfig.ips``), but gets a new MAC; a pod added
to a running lab may get the address a removed pod left. Its node's ``cni0`` kept the old MAC REACHABLE: the
node could not reach the pod for tens of seconds (until the entry went STALE and its probes failed), while
``status`` said all as planned.

The bridge plugin means to announce the pod: up to v1.0.x it sent a gratuitous ARP itself once the host veth's
port ran (``arping.GratuitousArpOverIface``, after its "check bridge port state" loop); from v1.1.0 (Debian's
1.1.1 here) it only sets ``arp_notify=1`` on the pod's interface before setting it up (containernetworking/
plugins#687). The kernel then sends that ARP when the interface comes up, before the link watch has enabled
the host veth's bridge port: it is seen on the host veth and dropped there, never reaching ``cni0`` (tcpdump
in the node, QA q38 #5). A real node with those releases has the same window when an address is reused at once
(containernetworking/plugins#756); netlab, which hands the same address again at once where a kubelet's
host-local would give the next free one, sends the announcement the plugin meant, as it does for its own pods
(lab/announce.py): once the pod's interface and the host veth the result names run, from a packet socket in
the pod's namespace (kernel/garp.py); one of them that does not exist is not waited for, and the warning names
it. Not in a lab made now: no neighbour table holds an entry yet.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from netlab.errors import NetnsGone
from netlab.kernel.base import Kernel, KernelError
from netlab.kernel.running import wait_running

WAIT = 3.0  # seconds, at most, for the links to run (lab/carrier.py's CARRIER_WAIT)

Announce = tuple[str, str, IPv4Address, str | None, str | None]  # pod netns, CNI_IFNAME, address, node netns, veth


def announce(todo: list[Announce]) -> list[str]:
    """Send each pod's gratuitous ARP; what could not be sent, as warnings (a stale entry only delays the first
    packets to the pod). A pod whose namespace went meanwhile has nothing to announce."""
    from netlab.kernel.live import LiveKernel

    if not todo:
        return []
    kernel = LiveKernel()
    try:
        links = [link for ns, dev, _, node, veth in todo
                 for link in [(ns, dev)] + ([(node, veth)] if node and veth else [])]
        missing = _missing(kernel, links)  # never runs: not waited for
        late = set(wait_running(kernel, [link for link in links if link not in missing], WAIT))
        warnings = []
        for ns, dev, ip, node, veth in todo:
            why = _why([(ns, dev)] + ([(node, veth)] if node and veth else []), late, missing)
            if why is not None:  # sent now, it would be dropped (or there is no link to send it through)
                warnings.append(f"{ns}: {ip} on {dev} not announced (gratuitous ARP): {why}")
                continue
            try:
                kernel.announce(ns, dev, ip)
            except NetnsGone:
                continue
            except (KernelError, OSError) as exc:
                warnings.append(f"{ns}: could not announce {ip} on {dev} (gratuitous ARP: {exc}); its node reaches "
                                "it only once its entry for the address, at the MAC it had, expires")
        return warnings
    finally:
        kernel.close()


def _why(links: list[tuple[str, str]], late: set[tuple[str, str]], missing: set[tuple[str, str]]) -> str | None:
    """Why a pod's announcement is not sent, naming the link at fault: the pod's interface (``links[0]``) or the
    node's host interface the CNI result names (``links[1]``), not there or not running; None when both run."""
    for i, (ns, name) in enumerate(links):
        named = ", which the CNI result names," if i else ""
        if (ns, name) in missing:
            return f"{name} in {ns}{named} does not exist"
        if (ns, name) in late:
            return f"{name} in {ns}{named} does not run after {WAIT:g}s"
    return None


def _missing(kernel: Kernel, links: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Those of ``links`` that do not exist (a result naming another host interface): asked of each namespace with
    a link that does not run yet; one that cannot be read is left to wait_running."""
    out: set[tuple[str, str]] = set()
    for ns in dict.fromkeys(ns for ns, _ in links):
        try:
            running = kernel.running_links(ns)
            if all(name in running for n, name in links if n == ns):
                continue
            there = kernel.snapshot(ns, tables=False).links
        except (KernelError, OSError):
            continue
        out |= {(n, name) for n, name in links if n == ns and name not in there}
    return out
