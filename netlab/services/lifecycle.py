"""Services after the network is up: pods' resolv.conf, and stale UDP conntrack entries.

The iptables rules themselves are plan resources (netlab.plan.services,
applied by netlab.realize.netfilter); the DNS server is the ``kube-dns`` pod's
container (netlab.model.clusterdns), run by the containers feature. What is left
is host-side work that has no plan resource:

- ``/etc/netns/<pod namespace>/resolv.conf`` for every pod (not the DNS pod
  itself, which like kube-dns uses ``dnsPolicy: Default``), pointing at the DNS
  Service's ClusterIP with the cluster search domains. ``ip netns exec`` and
  netlab's containers and ``exec`` bind-mount it over ``/etc/resolv.conf``.
  The file is rewritten in place, never replaced, so a container that already
  has it mounted sees the new content. Files and directories are only removed
  when the state records that netlab made them, and a resolv.conf that does
  not start with netlab's line for this lab is never overwritten.
- conntrack: UDP has no connection to close, so a client that keeps sending
  from the same port keeps hitting the conntrack entry DNATed to an endpoint
  that is gone. Like kube-proxy, when an endpoint of a UDP Service port goes
  away its entries are deleted in every node (``conntrack -D -p udp
  --orig-dst <ClusterIP> --dst-nat <endpoint>``, and the same for the
  nodePort), and when a UDP port gets its first endpoint, entries that were
  rejected before are deleted too.

Interface used by netlab.realize.apply (FEATURES)::

    start(lab, state) -> list[str]   problems in words
    stop(state, netns_names)         before those namespaces are deleted
    drift(lab, state) -> list[str]   for status
"""

from __future__ import annotations

import errno
import os
import stat
from ipaddress import IPv4Address
from typing import Iterable

from netlab.errors import EnvironmentNotReady
from netlab.model.lab import Lab
from netlab.plan.services import service_ports
from netlab.realize import netns as nsmod
from netlab.realize.state import LabState
from netlab.model import clusterdns as dns

RECORD = "services"
RECORD_VERSION = 1
ETC_NETNS = "/etc/netns"
BRIDGE_NF = "/proc/sys/net/bridge/bridge-nf-call-iptables"


# --- environment ---------------------------------------------------------------

def preflight(lab: Lab) -> None:
    """What the Services design needs from the host, checked before anything changes.

    br_netfilter: the plan sets ``net.bridge.bridge-nf-call-iptables=1`` in each
    node (a per-namespace sysctl), which exists only when the module is loaded.
    netlab does not load it: loading creates the same sysctls in the host's
    namespace, defaulting to 1, so every bridge of the host (docker0, virbr0)
    would start sending bridged frames through iptables. The user decides.
    """
    if not os.path.exists(BRIDGE_NF):
        raise EnvironmentNotReady(
            "br_netfilter is not loaded, so same-node Service traffic cannot pass iptables; "
            "load it with `modprobe br_netfilter` (note: this also makes the host's own bridges call "
            "iptables, net.bridge.bridge-nf-call-iptables=1 in the host) and run netlab up again")
    for tool in ("iptables-save", "iptables-restore"):
        nsmod.binary(tool)
    if dns.dns_service(lab.topo) is not None and any(p.name == dns.DNS_NAME for p in lab.pods):
        nsmod.binary("dnsmasq")


# --- records ------------------------------------------------------------------

def _records(state: LabState) -> dict:
    rec = state.extra.get(RECORD)
    if not isinstance(rec, dict) or rec.get("version") != RECORD_VERSION:
        rec = {"version": RECORD_VERSION, "resolv": {}, "dirs": [], "udp": [], "udp_empty": [], "chains": {}}
        state.extra[RECORD] = rec
    for key, empty in (("resolv", {}), ("dirs", []), ("udp", []), ("udp_empty", []), ("chains", {})):
        rec.setdefault(key, empty)
    return rec


# --- resolv.conf -------------------------------------------------------------------

def dns_ip(lab: Lab) -> IPv4Address | None:
    svc = dns.dns_service(lab.topo)
    return lab.addressing.service_ip.get(svc.name) if svc else None


def resolv_path(netns: str) -> str:
    return os.path.join(ETC_NETNS, nsmod.check_netns(netns), "resolv.conf")


def _ours(path: str, lab_name: str) -> bool | None:
    """True: netlab's file for this lab; False: someone else's; None: absent."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return False
        raise
    with os.fdopen(fd, "r", errors="replace") as fh:
        return fh.readline().startswith(f"# netlab {lab_name}:")


def _ensure_dir(path: str, made: list[str]) -> None:
    try:
        os.mkdir(path, 0o755)
        made.append(path)
    except FileExistsError:
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode):
            raise NotADirectoryError(errno.ENOTDIR, "not a directory (or a symlink); left alone", path)


def _write_in_place(path: str, text: str) -> None:
    """Same inode (a bind mount of the old file keeps showing the content), no symlink followed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        data = text.encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)


def _remove_resolv(rec: dict, netns: str) -> None:
    if rec["resolv"].pop(netns, None) is None:
        return
    path = resolv_path(netns)  # derived from the namespace name, never the recorded text
    lab_dir = os.path.dirname(path)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    if lab_dir in rec["dirs"]:
        try:
            os.rmdir(lab_dir)  # only when empty: someone's hosts file there stays, and so does the dir
            rec["dirs"].remove(lab_dir)
        except OSError:
            pass


def _tidy_etc_netns(rec: dict) -> None:
    if ETC_NETNS in rec["dirs"] and not rec["resolv"]:
        try:
            os.rmdir(ETC_NETNS)
            rec["dirs"].remove(ETC_NETNS)
        except OSError:
            pass


def sync_resolv(lab: Lab, rec: dict) -> list[str]:
    """Write every pod's resolv.conf (or take them away when the lab has no DNS)."""
    problems: list[str] = []
    ip = dns_ip(lab)
    want = {p.netns: p.name for p in lab.pods if p.name != dns.DNS_NAME} if ip is not None else {}
    for netns in [n for n in rec["resolv"] if n not in want]:
        _remove_resolv(rec, netns)
    if want:
        text = dns.resolv_conf(lab.name, ip)
        _ensure_dir(ETC_NETNS, rec["dirs"])
        for netns, pod in want.items():
            path = resolv_path(netns)
            try:
                _ensure_dir(os.path.dirname(path), rec["dirs"])
                owner = _ours(path, lab.name)
                if owner is False:
                    problems.append(f"pod {pod}: {path} exists and is not netlab's; left alone, so this pod "
                                    "does not use the cluster DNS")
                    continue
                _write_in_place(path, text)
                rec["resolv"][netns] = path
            except OSError as exc:
                problems.append(f"pod {pod}: cannot write {path}: {exc.strerror or exc}")
    _tidy_etc_netns(rec)
    return problems


# --- conntrack -------------------------------------------------------------------

def udp_endpoints(lab: Lab) -> tuple[set[tuple], set[tuple]]:
    """(clusterIP, port, nodePort, endpoint IP, endpoint port) of UDP Service ports, and UDP ports without endpoints."""
    eps: set[tuple] = set()
    empty: set[tuple] = set()
    for sp in service_ports(lab):
        if sp.protocol != "udp":
            continue
        if not sp.endpoints:
            empty.add((str(sp.cluster_ip), sp.port.port, sp.node_port))
        for ip, port in sp.endpoints:
            eps.add((str(sp.cluster_ip), sp.port.port, sp.node_port, str(ip), port))
    return eps, empty


def conntrack_deletions(before: set[tuple], after: set[tuple], empty_before: set[tuple]) -> list[list[str]]:
    """conntrack(8) filters for the entries that went stale between two renders (kube-proxy's rules)."""
    out: list[list[str]] = []
    for cip, port, node_port, ep_ip, _ in sorted(before - after, key=str):
        out.append(["-p", "udp", "--orig-dst", cip, "--orig-port-dst", str(port), "--dst-nat", ep_ip])
        if node_port is not None:
            out.append(["-p", "udp", "--orig-port-dst", str(node_port), "--dst-nat", ep_ip])
    now_served = {(cip, port, np) for cip, port, np, _, _ in after}
    for cip, port, node_port in sorted(empty_before & now_served, key=str):
        out.append(["-p", "udp", "--orig-dst", cip, "--orig-port-dst", str(port)])
        if node_port is not None:
            out.append(["-p", "udp", "--orig-port-dst", str(node_port)])
    return out


def delete_conntrack(netns: str, filters: list[list[str]]) -> list[str]:
    """Run ``conntrack -D`` in a node's namespace; "nothing matched" is success."""
    if not filters:
        return []
    tool = nsmod.binary("conntrack")
    problems = []
    for f in filters:
        proc = nsmod.run_in_netns(netns, [tool, "-D", *f], check=False)
        if proc.returncode not in (0, 1):
            msg = proc.stderr.decode(errors="replace").strip().splitlines()
            problems.append(f"{netns}: conntrack -D {' '.join(f)}: {msg[-1] if msg else proc.returncode}")
    return problems


def sync_conntrack(lab: Lab, rec: dict) -> list[str]:
    after, empty = udp_endpoints(lab)
    before = {tuple(x) for x in rec["udp"]}
    empty_before = {tuple(x) for x in rec["udp_empty"]}
    filters = conntrack_deletions(before, after, empty_before)
    problems: list[str] = []
    for node in lab.nodes:
        if nsmod.is_netns_mount(node.netns):
            problems += delete_conntrack(node.netns, filters)
    rec["udp"] = sorted([list(x) for x in after], key=str)
    rec["udp_empty"] = sorted([list(x) for x in empty], key=str)
    return problems


# --- chains the plan no longer has --------------------------------------------------

def sync_chains(lab: Lab, rec: dict) -> list[str]:
    """Delete the lab's iptables chains that the plan dropped (a removed Service or endpoint).

    apply writes and rewrites the planned chains; a chain that leaves the plan
    is only unreferenced there. The record of the chains seen applied last
    time is what proves such a chain is the lab's (a look-alike chain someone
    made by hand in a node is never in it), so only those are deleted.
    """
    from netlab.plan.build import EXTENSIONS
    from netlab.realize import netfilter

    problems: list[str] = []
    now: dict[str, list[str]] = {}
    # Only the rule builders make chains; no need to build the whole plan again.
    for r in (r for module in EXTENSIONS for r in module.resources(lab) if r.kind == "nat"):
        now[f"{r.netns}/{r.table}"] = list(r.chains)  # type: ignore[attr-defined]
    for key, before in list(rec["chains"].items()):
        netns, table = key.split("/", 1)
        stale = sorted(set(before) - set(now.get(key, [])))
        if stale and key in now and nsmod.is_netns_mount(netns):
            try:
                netfilter.delete_chains(netns, table, stale)
            except Exception as exc:  # noqa: BLE001 - reported, and kept in the record for next time
                problems.append(f"{netns}: could not delete stale {table} chains: {exc}")
                now[key] = sorted(set(now[key]) | set(stale))
    rec["chains"] = now
    return problems


# --- the three entry points --------------------------------------------------------

def start(lab: Lab, state: LabState) -> list[str]:
    """After the network is up, before containers start (they mount resolv.conf at start)."""
    rec = _records(state)
    problems: list[str] = []
    try:
        problems += sync_chains(lab, rec)
        problems += sync_resolv(lab, rec)
        problems += sync_conntrack(lab, rec)
    finally:
        state.save()
    return problems


def stop(state: LabState, netns_names: Iterable[str], everything: bool = False) -> list[str]:
    """Namespaces about to be deleted: take away the resolv.conf netlab wrote for them
    (``everything``: the whole lab goes, so every file the records list)."""
    rec = _records(state)
    names = set(netns_names)
    for netns in [n for n in rec["resolv"] if everything or n in names]:
        _remove_resolv(rec, netns)
    _tidy_etc_netns(rec)
    try:
        state.save()
    except OSError:
        pass
    return []


def drift(lab: Lab, state: LabState) -> list[str]:
    """Pods whose resolv.conf is missing or not the cluster DNS's."""
    ip = dns_ip(lab)
    if ip is None:
        return []
    text = dns.resolv_conf(lab.name, ip)
    out = []
    for pod in lab.pods:
        if pod.name == dns.DNS_NAME:
            continue
        path = resolv_path(pod.netns)
        try:
            with open(path, errors="replace") as fh:
                have = fh.read()
        except OSError:
            have = None
        if have != text:
            state_word = "missing" if have is None else "different"
            out.append(f"dns: {path} is {state_word} (pod {pod.name} would not resolve Service names); "
                       "run `sudo netlab up` again")
    return out
