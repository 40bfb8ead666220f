"""Services after the network is up: Flannel's files, pods' resolv.conf and hosts, and stale UDP conntrack entries.

The iptables rules themselves are plan resources (netlab.plan.services,
applied by netlab.realize.netfilter); the DNS server is the ``kube-dns`` pod's
container (netlab.model.clusterdns), run by the containers feature. What is left
is host-side work that has no plan resource:

- each node's ``/run/flannel/subnet.env`` and ``10-flannel.conflist``, kept in
  the lab's state directory (netlab.services.flannel_files);
- ``/etc/netns/<pod namespace>/resolv.conf`` for every pod (not the DNS pod
  itself, which like kube-dns uses ``dnsPolicy: Default``), pointing at the DNS
  Service's ClusterIP with the cluster search domains, and
  ``/etc/netns/<pod namespace>/hosts`` for every pod, the kubelet's managed
  hosts file (netlab.services.hosts). ``ip netns exec`` and netlab's
  containers and ``exec`` bind-mount them over ``/etc/resolv.conf`` and
  ``/etc/hosts``. Both are written, recorded, repaired and removed the same
  way (netlab.services.netns_files): recorded before they are made, rewritten
  in place, paths derived only from the lab's namespace names, and a file
  someone else wrote is never touched.
- conntrack: UDP has no connection to close, so a client that keeps sending
  from the same port keeps hitting the conntrack entry DNATed to an endpoint
  that is gone. Like kube-proxy, when an endpoint of a UDP Service port goes
  away its entries are deleted in every node (what ``conntrack -D -p udp
  --orig-dst <ClusterIP> --dst-nat <endpoint>`` deletes, and the same for the
  nodePort; over ctnetlink, kernel/conntrack.delete_counted), and when a
  UDP port gets its first endpoint, entries that were rejected before are
  deleted too; and every ``up`` deletes the entries of a served UDP port that
  were never DNATed (sent before the Service existed: services/stale.py).

Interface used by netlab.lab (a feature, netlab/feature.py)::

    start_early(lab, state) -> handle  a fresh lab: the pods' files, written while the network is made
    abort_early(handle)               the lab is rolled back: the thread is waited for
    start(lab, state, early) -> StartResult  what it did, and problems in words
    stop_early(state) -> handle        the whole lab goes: the pods' files, taken away while it is taken down
    stop(state, netns_names, early)   before those namespaces are deleted (with stop_early's handle: last)
    drift(lab, state) -> list[str]    for status
    running(state, netns_names)       the files of pods `up` makes anew, before they go
    start_again(lab, state, netns_names, running)  a rollback made those pods again: their files alone
    stop_made(state, netns_names)     a rollback deletes namespaces it made again: nothing of theirs goes
    put_back(lab, state, ran, None, skip)  a running lab's rollback: the files the run's topology changed, as before

Fault points (tests; the lead folds them into one hook with apply.py's):
``NETLAB_FAULT_POINT=resolv-written`` (``hosts-written``) stops ``up`` right
after the first resolv.conf (hosts file) of the run is written (by the thread
that writes a fresh lab's files while the network is made, or by ``start``) and
before the state records it as created: ``NETLAB_FAULT_MODE=kill`` SIGKILLs the process,
anything else (default ``fail``) raises ApplyFailed, so up rolls back. Read
only by :func:`netlab.kernel.testhooks.fault_point`.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Collection, Iterable

from netlab.feature import Note, StartResult
from netlab.kernel import conntrack
from netlab.kernel import netns as nsmod
# What only start and drift use (the plan's rule builders, cluster DNS, the Flannel files, stale conntrack
# entries) loads the topology's models, and is imported there: ``down`` of a lab (stop) needs none of it.
from netlab.services import hosts, netns_files, pod_files_gone
from netlab.model.naming import is_netns

if TYPE_CHECKING:
    from netlab.model.lab import Lab
    from netlab.realize.state import LabState

RECORD = "services"
RECORD_VERSION = 2


# --- environment ---------------------------------------------------------------

# The checks of netlab.doctor that Services need; `netlab up` runs them (and the rest) before apply.
PREFLIGHT = ("br_netfilter", "iptables-restore", "dnsmasq")


def preflight(lab: Lab) -> None:
    """What the Services design needs from the host, checked before anything changes (by the doctor).

    br_netfilter: the plan sets ``net.bridge.bridge-nf-call-iptables=1`` in each
    node (a per-namespace sysctl), which exists only when the module is loaded.
    netlab does not load it: loading creates the same sysctls in the host's
    namespace, defaulting to 1, so every bridge of the host (docker0, virbr0)
    would start sending bridged frames through iptables. The user decides.
    Also iptables-save/-restore, and dnsmasq for the cluster DNS pod.
    """
    from netlab import doctor  # the machine's checks: only up's preflight loads them
    doctor.require_for(lab, only=PREFLIGHT)


RESOLV_WITHOUT = "does not use the cluster DNS"  # a pod whose resolv.conf is someone else's file


# --- records ------------------------------------------------------------------

def _records(state: LabState) -> dict:
    """The feature's record (:func:`_normalized`), kept in the state to be saved with it."""
    out = _normalized(state.extra.get(RECORD))
    state.extra[RECORD] = out
    return out


def _normalized(rec: object) -> dict:
    """The feature's record, version 2: files and directories by namespace name, state by state.

    ``resolv`` {netns: "intent" | "created"}: /etc/netns/<netns>/resolv.conf;
    ``hosts`` {netns: ...}: /etc/netns/<netns>/hosts (absent in a record of an
    older netlab: none written); ``dirs`` {netns: ...}: /etc/netns/<netns>/;
    ``etc_netns``: /etc/netns itself (None when netlab did not make it).
    Version 1 (paths) is converted; entries of the wrong shape are dropped.
    """
    if not isinstance(rec, dict) or rec.get("version") not in (1, RECORD_VERSION):
        rec = {}
    if rec.get("version") == 1:
        rec = _from_v1(rec)
    out = {"version": RECORD_VERSION,
           "resolv": _states(rec.get("resolv")), "hosts": _states(rec.get("hosts")),
           "dirs": _states(rec.get("dirs")),
           "etc_netns": rec.get("etc_netns") if rec.get("etc_netns") in ("intent", "created") else None,
           "udp": rec.get("udp") if isinstance(rec.get("udp"), list) else [],
           "udp_empty": rec.get("udp_empty") if isinstance(rec.get("udp_empty"), list) else [],
           "chains": rec.get("chains") if isinstance(rec.get("chains"), dict) else {}}
    return out


def _states(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and v in ("intent", "created")}


def _from_v1(rec: dict) -> dict:
    """Version 1 recorded paths; keep those that are the paths the names give."""
    out = dict(rec)
    resolv = rec.get("resolv") if isinstance(rec.get("resolv"), dict) else {}
    out["resolv"] = {n: "created" for n, path in resolv.items() if is_netns(n) and path == resolv_path(n)}
    dirs = rec.get("dirs") if isinstance(rec.get("dirs"), list) else []
    out["dirs"] = {n: "created" for n in out["resolv"] if netns_files.netns_dir(n) in dirs}
    out["etc_netns"] = "created" if netns_files.ETC_NETNS in dirs else None
    return out


# --- resolv.conf -------------------------------------------------------------------

def dns_ip(lab: Lab) -> IPv4Address | None:
    from netlab.model import clusterdns as dns

    svc = dns.dns_service(lab.topo)
    return lab.addressing.service_ip.get((svc.namespace, svc.name)) if svc else None


def resolv_path(netns: str) -> str:
    return netns_files.file_path(netns, "resolv")


def resolv_wanted(lab: Lab) -> netns_files.Wanted:
    """Every pod's resolv.conf (none when the lab has no DNS), but a stopped sandbox's (hosts.with_files)."""
    from netlab.model import clusterdns as dns

    ip = dns_ip(lab)
    # Each pod searches its own Kubernetes namespace first (<ns>.svc.cluster.local), as kubelet writes it.
    return {p.netns: (p.name, dns.resolv_conf(lab.name, ip, p.spec.namespace))
            for p in hosts.with_files(lab) if p.name != dns.DNS_NAME} if ip is not None else {}


def sync_resolv(lab: Lab, state: LabState, rec: dict) -> StartResult:
    """Write every pod's resolv.conf (or take them away when the lab has no DNS); what it did."""
    return netns_files.sync(lab.name, state, rec, "resolv", resolv_wanted(lab), without=RESOLV_WITHOUT)


# --- conntrack -------------------------------------------------------------------

def udp_endpoints(lab: Lab) -> tuple[set[tuple], set[tuple]]:
    """(clusterIP, port, nodePort, endpoint IP, endpoint port) of UDP Service ports, and UDP ports without endpoints."""
    from netlab.plan.services import service_ports

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


def udp_frontends(lab: Lab) -> dict[tuple[str, int], list[str]]:
    """(ClusterIP, port) of each UDP Service port -> its other addresses kube-proxy DNATs: the balancer's IP and
    the externalIPs (their entries are cleaned as the ClusterIP's are: pkg/proxy/conntrack/cleanup.go)."""
    from netlab.plan.services import service_ports

    return {(str(sp.cluster_ip), sp.port.port): [str(ip) for ip in [*([sp.lb_ip] if sp.lb_ip else []),
                                                                     *sp.external_ips]]
            for sp in service_ports(lab) if sp.protocol == "udp"}


def conntrack_deletions(before: set[tuple], after: set[tuple], empty_before: set[tuple],
                        frontends: dict[tuple[str, int], list[str]] | None = None) -> list[list[str]]:
    """conntrack(8) filters for the entries that went stale between two renders (kube-proxy's rules): to the
    ClusterIP's port, and with ``frontends`` (:func:`udp_frontends`) the Service's balancer IP and externalIPs."""
    out: list[list[str]] = []
    more = frontends or {}
    for cip, port, node_port, ep_ip, _ in sorted(before - after, key=str):
        for addr in [cip, *more.get((cip, port), [])]:
            out.append(["-p", "udp", "--orig-dst", addr, "--orig-port-dst", str(port), "--dst-nat", ep_ip])
        if node_port is not None:
            out.append(["-p", "udp", "--orig-port-dst", str(node_port), "--dst-nat", ep_ip])
    now_served = {(cip, port, np) for cip, port, np, _, _ in after}
    for cip, port, node_port in sorted(empty_before & now_served, key=str):
        for addr in [cip, *more.get((cip, port), [])]:
            out.append(["-p", "udp", "--orig-dst", addr, "--orig-port-dst", str(port)])
        if node_port is not None:
            out.append(["-p", "udp", "--orig-port-dst", str(node_port)])
    return out


def sync_conntrack(lab: Lab, rec: dict) -> StartResult:
    done = StartResult()
    after, empty = udp_endpoints(lab)
    before = {tuple(x) for x in rec["udp"]}
    empty_before = {tuple(x) for x in rec["udp_empty"]}
    filters = conntrack_deletions(before, after, empty_before, udp_frontends(lab))
    nodes = [node.netns for node in lab.nodes if nsmod.is_netns_mount(node.netns)]
    deleted = 0  # what the kernel deleted: a filter that found nothing (no client since) deleted nothing
    for netns in nodes:
        counts, trouble = conntrack.delete_counted(netns, filters)
        done.problems += trouble
        deleted += sum(counts)
    if deleted:
        n, m = len(filters), len(nodes)
        done.actions.append(f"deleted {deleted} stale UDP conntrack entr{'y' if deleted == 1 else 'ies'} ({n} "
                            f"filter{'s' * (n != 1)} in {m} node{'s' * (m != 1)})")
    rec["udp"] = sorted([list(x) for x in after], key=str)
    rec["udp_empty"] = sorted([list(x) for x in empty], key=str)
    return done


# --- chains the plan no longer has --------------------------------------------------

def sync_chains(lab: Lab, rec: dict) -> StartResult:
    """Delete the lab's iptables chains that the plan dropped (a removed Service or endpoint).

    apply writes and rewrites the planned chains; a chain that leaves the plan
    is only unreferenced there. The record of the chains seen applied last
    time is what proves such a chain is the lab's (a look-alike chain someone
    made by hand in a node is never in it), so only those are deleted.
    """
    from netlab.plan.build import EXTENSIONS
    from netlab.realize import netfilter

    done = StartResult()
    now: dict[str, list[str]] = {}
    # Only the rule builders make chains; no need to build the whole plan again.
    for r in (r for module in EXTENSIONS for r in module.resources(lab) if r.kind == "nat"):
        now[f"{r.netns}/{r.table}"] = list(r.chains)  # type: ignore[attr-defined]
    for key, before in list(rec["chains"].items()):
        netns, table = key.split("/", 1)
        stale = sorted(set(before) - set(now.get(key, [])))
        if stale and key in now and nsmod.is_netns_mount(netns):
            try:
                # Chains already gone are skipped: netlab's own (NETLAB-*) went with the rules' restore.
                deleted = netfilter.delete_chains(netns, table, stale).deleted
                if deleted:
                    done.deleted_chains[(netns, table)] = list(deleted)
            except Exception as exc:  # noqa: BLE001 - reported, and kept in the record for next time
                done.problems.append(f"{netns}: could not delete stale {table} chains: {exc}")
                now[key] = sorted(set(now[key]) | set(stale))
    rec["chains"] = now
    return done


# --- the three entry points --------------------------------------------------------

def start_early(lab: Lab, state: LabState) -> netns_files.EarlyWrite | None:
    """A fresh lab: its pods' resolv.conf and hosts files are written by a thread while ``up`` makes the
    network (netns_files.EarlyWrite), every path recorded and saved first; :func:`start` records what it made.
    A lab with files already recorded is left to start's sync, which compares them."""
    rec = _records(state)
    if rec["dirs"] or any(rec[kind] for kind in netns_files.FILES):
        return None
    wants = {"resolv": netns_files.lab_wanted(lab.name, resolv_wanted(lab)),
             hosts.KIND: netns_files.lab_wanted(lab.name, hosts.wanted(lab))}
    if not any(wants.values()):
        return None
    named = [netns_files.write_ahead(rec, kind, want) for kind, want in wants.items()]
    if any(named):
        state.save()
    return netns_files.EarlyWrite(wants)


def abort_early(early: netns_files.EarlyWrite | None) -> None:
    """The lab is rolled back: wait for the thread (the rollback's stop removes what it made: recorded)."""
    if early is not None:
        try:
            early.join()
        except BaseException:  # noqa: BLE001 - a fault point's failure: the lab is being rolled back anyway
            pass


def start(lab: Lab, state: LabState, early: netns_files.EarlyWrite | None = None) -> StartResult:
    """After the network is up, before containers start (they mount resolv.conf and hosts at start)."""
    from netlab.services import flannel_files, stale

    rec = _records(state)
    done = StartResult()
    try:
        if early is not None:  # the pods' files written while the network was made: what it made is ours
            made_etc_netns, dirs = early.join()
            if made_etc_netns:
                rec["etc_netns"] = "created"
            rec["dirs"].update((netns, "created") for netns in dirs)
        done += sync_chains(lab, rec)
        done += flannel_files.sync(lab, state)  # each node's subnet.env and CNI conflist, in the state directory
        done += sync_resolv(lab, state, rec)
        done += hosts.sync(lab, state, rec)  # the kubelet's managed /etc/hosts of every pod
        done += sync_conntrack(lab, rec)
        # entries an endpoint change left (netlab break), and those a client made before its Service had endpoints
        actions, problems = stale.delete(stale.find(lab), lab.name)
        done.actions += actions
        done.problems += problems
    finally:
        state.save()
    return done


def stop_early(state: LabState) -> pod_files_gone.EarlyRemove | None:
    """The whole lab goes: every file the records name is taken away by a thread while its processes stop and
    its namespaces go (pod_files_gone.EarlyRemove); :func:`stop`, called last, waits for it and changes the
    records. None when no file or directory is recorded."""
    rec = _records(state)
    if not (rec["dirs"] or any(rec[kind] for kind in netns_files.FILES)):
        return None
    return pod_files_gone.EarlyRemove(state.lab, rec)


def stop(state: LabState, netns_names: Iterable[str], everything: bool = False,
         early: pod_files_gone.EarlyRemove | None = None) -> list[str]:
    """Namespaces about to be deleted: take away the files netlab wrote for them
    (``everything``: the whole lab goes, so every file the records name; ``early``: what stop_early began,
    waited for)."""
    rec, names = _records(state), set(netns_names)
    # a pod's folder netlab made and forgot while it was a symlink, put back since: netlab's again (QA q53 4)
    netns_files.take_back(state.lab, rec, sorted(state.netns) if everything else sorted(names))
    state.removed_files += pod_files_gone.stop(state.lab, rec, names, everything, early)
    if not everything:  # the whole lab's go with its state directory (down loads no model: imported here)
        from netlab.services import flannel_files

        for name in netns_names:  # a node's namespace is <lab>-<node>; a pod's has no such files
            node = name.removeprefix(f"{state.lab}-")
            if node != name:
                try:
                    flannel_files.remove(state.lab, node)
                except ValueError:  # no node's name
                    pass
    try:
        state.save()
    except OSError:
        pass
    return []


def release_stopped(state: LabState, netns_names: list[str]) -> None:
    """The namespaces of terminal pods' stopped sandboxes go (lab/up_converge._release_stopped): the files netlab
    wrote for those pods go with them (``ip netns exec`` mounted them over /etc there), exactly those its records
    name (pod_files_gone.stop: netlab's own, then the folder it made when nothing else is in it); up writes them no
    more while the pods stay terminal (hosts.with_files)."""
    rec = _records(state)
    state.removed_files += pod_files_gone.stop(state.lab, rec, set(netns_names), everything=False)


def stop_made(state: LabState, netns_names: Iterable[str]) -> list[str]:
    """A rollback deletes namespaces its run made again for pods or nodes the lab had (deleted by hand): their files
    were theirs before the run and stay, as those of the pods and nodes whose namespace it did not make again."""
    return []


def running(state: LabState, netns_names: list[str]) -> dict[str, list[str]]:
    """The files netlab kept for these namespaces' pods (resolv.conf, hosts), before `up` stops them to make them
    anew: by namespace, the kinds recorded."""
    rec = _records(state)
    return {netns: [kind for kind in netns_files.FILES if netns in rec[kind]] for netns in netns_names}


def start_again(lab: Lab, state: LabState, netns_names: list[str], was: dict[str, list[str]] | None) -> StartResult:
    """A rollback made these namespaces' pods again: write their resolv.conf and hosts files, those they had before
    the run (``was``: :func:`running`'s; all of them without it), and nothing else: no other pod's file is
    rewritten (one edited by hand stays edited), no node's Flannel file, chain or conntrack entry is looked at (a
    rollback is not a repair; the next ``up`` is)."""
    rec = _records(state)
    names = set(netns_names)

    def only(kind: str, want: netns_files.Wanted) -> netns_files.Wanted:
        return {ns: v for ns, v in want.items() if ns in names and (was is None or kind in was.get(ns, ()))}

    done = StartResult()
    try:
        done += netns_files.sync(lab.name, state, rec, "resolv", only("resolv", resolv_wanted(lab)),
                                 without=RESOLV_WITHOUT, others=False)
        done += netns_files.sync(lab.name, state, rec, hosts.KIND, only(hosts.KIND, hosts.wanted(lab)),
                                 without=hosts.WITHOUT, others=False)
    finally:
        state.save(best_effort=True)
    return done


def put_back(lab: Lab, state: LabState, ran: Lab, was: None, skip: Collection[str]) -> list[str]:
    """A running lab's rollback (``lab``: as the state put back gives it; ``ran``: the run's): the pods' files and
    the nodes' Flannel files the run's topology asked otherwise, as ``lab`` asks them (services/put_back.py)."""
    from netlab.services import put_back as back

    rec = _records(state)
    return back.put_back(lab, state, rec, ran, skip, back.kinds(resolv_wanted, RESOLV_WITHOUT))


def drift(lab: Lab, state: LabState) -> list[str]:
    """Nodes whose Flannel files, and pods whose resolv.conf or hosts, are missing or not as planned."""
    from netlab.model import clusterdns as dns
    from netlab.services import flannel_files, stale

    out = flannel_files.drift(lab, state)
    out += [f"conntrack: {s.describe()}; up deletes it" for s in stale.find(lab) if s.dnat]  # un-DNATed: up's alone
    ip = dns_ip(lab)
    rec = _normalized(state.extra.get(RECORD))  # read only: status saves nothing
    for pod in hosts.with_files(lab):
        if ip is None or pod.name == dns.DNS_NAME:
            continue
        if netns_files.left_alone(lab.name, rec, "resolv", pod.netns):  # someone's: up leaves it too
            out.append(Note(netns_files.left_alone_line(pod.name, pod.netns, "resolv", RESOLV_WITHOUT)))
            continue
        how = netns_files.differs(pod.netns, "resolv", dns.resolv_conf(lab.name, ip, pod.spec.namespace))
        if how is not None:
            out.append(f"dns: {resolv_path(pod.netns)} is {how} (pod {pod.name} would not resolve Service names); "
                       "up writes it again")
    return out + hosts.drift(lab, rec)


def nothing_to_write(lab: Lab, state: LabState | None) -> bool:
    """An ``up`` of ``lab`` over its running ``state`` writes nothing in /etc/netns: every pod's resolv.conf and
    hosts file there is netlab's for this lab as planned (its text and mode), or someone else's it leaves alone,
    and none is recorded for a namespace the lab no longer has (which it would take away). Then a read-only /etc
    (the doctor's pod-files FAIL) need not refuse it: a repair of its network writes nowhere there (QA caps58 5)."""
    if state is None or state.phase != "up":
        return False
    rec = _normalized(state.extra.get(RECORD))
    wants = {"resolv": resolv_wanted(lab), hosts.KIND: hosts.wanted(lab)}
    wanted = {n for want in wants.values() for n in netns_files.lab_wanted(lab.name, want)}
    if any(n not in wanted for n in rec["dirs"]):
        return False
    for kind, want in wants.items():
        want = netns_files.lab_wanted(lab.name, want)
        if any(n not in want for n in rec[kind]):
            return False
        for netns, (_pod, text) in want.items():
            if netns_files.left_alone(lab.name, rec, kind, netns):
                continue
            if netns_files.owner(netns_files.file_path(netns, kind), lab.name) != "ours" or \
                    netns_files.differs(netns, kind, text) is not None:
                return False
    return True
