"""NetworkPolicies that match nothing in the lab, said before it is up (pure: the model only).

The API server takes a policy whatever its selectors and port names match,
and the CNI writes rules for what they match at the time; a typo is therefore
silent in a cluster, where the traffic it was meant to allow or stop just is
not. Three such mistakes are seen from the topology alone:

* a ``podSelector`` that selects no pod of the policy's namespace: the policy
  applies to no pod, so it isolates nothing and its rules allow nothing. A
  policy selects pods of its own namespace only (``spec.podSelector``), so
  pods of other namespaces with those labels do not count; the note names
  them, as the classic mistake is a policy written in the wrong namespace;
* an ingress rule's named port that no pod the policy selects declares with
  that protocol: the name is looked up in the containerPorts of the pod the
  traffic goes to, which for ingress is a selected pod;
* an egress rule's named port that no pod the rule's peers reach declares:
  for egress the name is looked up in the destination pod's containerPorts
  (a destination that is not a pod never matches a named port).

And one more, of egress (QA q57 #5):

* an egress ``ipBlock`` inside ``cluster.serviceCIDR`` (``10.96.0.10/32`` for the cluster DNS, the common
  mistake): egress is judged after kube-proxy's DNAT, against the endpoint pod's address, so it matches nothing
  (Kubernetes leaves ipBlock on cluster IPs to the implementation; with kube-proxy in iptables or nftables mode and
  an iptables policy implementation, netlab's among them, it is so).

All are legal, and all are usually a mistake, so ``validate`` and ``up``
say so, as notes, and go on (as :func:`netlab.model.netpol.policy_notes`
does for an IPv6 ipBlock). A policy in a namespace that does not exist is
no note: the API server refuses it, and so does the loader
(:mod:`netlab.model.include`).
"""

from __future__ import annotations

import difflib
from itertools import islice

from netlab.model.lab import Lab
from netlab.model.netpol import Peer, PodView, PolicySet, describe_selector, policy_set, selector_matches
from netlab.model.places import Key, Note, Places
from netlab.model.policy_spec import NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort

SHOWN = 3  # pods named in a note; the rest are "..."
PEERS_REACH = "no pod this rule's peers reach"


def match_notes(lab: Lab, places: Places | None = None) -> list[Note]:
    """One line per policy that selects no pod, and per named port that no pod it could apply to declares; at the
    field it is about when ``places`` knows where the policy was written."""
    places = places if places is not None else Places()
    ps = policy_set(lab)
    by_namespace: dict[str, list[PodView]] = {}
    for pod in ps.pods:
        by_namespace.setdefault(pod.namespace, []).append(pod)
    naming = [p for p in ps.pods if p.named_ports]  # the only pods a named port can be looked up in
    declared: dict[tuple[str, str], list[PodView]] = {}  # by (name, protocol)
    for pod in naming:
        for name, proto in dict.fromkeys((n, pr) for n, pr, _ in pod.named_ports):
            declared.setdefault((name, proto), []).append(pod)
    out = []
    for pol in ps.policies:
        selected = [p for p in by_namespace.get(pol.namespace, []) if ps.selects(pol, p)]
        key: Key = ("NetworkPolicy", pol.namespace, pol.name)
        if not selected:
            out.append(places.note(key, ("spec", "podSelector"), _selects_none(ps, pol)))
        where = f"network policy {pol.namespace}/{pol.name}"
        if "Ingress" in pol.spec.types and selected:  # no pod selected: said once, above
            for i, ingress in enumerate(pol.spec.ingress or [], 1):
                for j, port in _named(ingress.ports):
                    if not any(p.port_named(str(port.port), port.protocol) is not None for p in selected):
                        out.append(places.note(key, ("spec", "ingress", i - 1, "ports", j - 1, "port"),
                                               f"{where} ingress rule {i} port {j}: "
                                               f"{_unnamed(port, selected, selected, 'no pod it selects')}"))
        if "Egress" in pol.spec.types:  # rules of a type the policy does not have do nothing
            for i, egress in enumerate(pol.spec.egress or [], 1):
                for j, port in _named(egress.ports):
                    if any(_reaches(ps, pol, egress.to, p) for p in declared.get((str(port.port), port.protocol), [])):
                        continue
                    declaring = [p for p in naming if _reaches(ps, pol, egress.to, p)]
                    listed = list(islice((p for p in ps.pods if _reaches(ps, pol, egress.to, p)), SHOWN + 1))
                    out.append(places.note(key, ("spec", "egress", i - 1, "ports", j - 1, "port"),
                                           f"{where} egress rule {i} port {j}: "
                                           f"{_unnamed(port, listed, declaring, PEERS_REACH)}"))
            out += _service_blocks(lab, pol, key, places)
    return out


def _service_blocks(lab: Lab, pol: NetworkPolicy, key: Key, places: Places) -> list[Note]:
    """One note per egress ipBlock inside the Service CIDR: egress is judged after the DNAT, so it matches nothing."""
    scidr = lab.topo.cluster.service_cidr
    out = []
    for i, egress in enumerate(pol.spec.egress or [], 1):
        for j, peer in enumerate(egress.to or [], 1):
            block = peer.ip_block
            if block is None or block.ipv6 or not block.cidr.subnet_of(scidr):  # type: ignore[arg-type]
                continue
            covered = [f"{s.namespace}/{s.name}" for s in lab.services
                       if (ip := lab.cluster_ip(s)) is not None and ip in block.cidr
                       and not any(ip in e for e in block.except_)]
            named = (f", the ClusterIP of {', '.join(covered[:SHOWN])}{', ...' if len(covered) > SHOWN else ''}"
                     if covered else "")
            out.append(places.note(key, ("spec", "egress", i - 1, "to", j - 1, "ipBlock", "cidr"),
                                   f"network policy {pol.namespace}/{pol.name} egress rule {i} peer {j}: ipBlock "
                                   f"{block.cidr} is inside cluster.serviceCIDR {scidr}{named}: egress is judged "
                                   "after kube-proxy's DNAT, against the address of the endpoint pod it picked, so it "
                                   "matches nothing, as with kube-proxy and an iptables policy implementation "
                                   "(Kubernetes leaves ipBlock on cluster IPs to the implementation): allow the "
                                   "Service's pods instead (a podSelector, with a namespaceSelector for another "
                                   "namespace's)"))
    return out


def _reaches(ps: PolicySet, pol: NetworkPolicy, peers: list[NetworkPolicyPeer] | None, pod: PodView) -> bool:
    """Whether an egress rule's peers match the pod (every pod, without peers)."""
    return not peers or any(ps.peer_matches(pol, peer, Peer(pod.ip, pod)) for peer in peers)


def _named(ports: list[NetworkPolicyPort] | None) -> list[tuple[int, NetworkPolicyPort]]:
    """A rule's ports given by name, with their 1-based places."""
    return [(j, port) for j, port in enumerate(ports or [], 1) if isinstance(port.port, str)]


def _names(pods: list[PodView]) -> str:
    return ", ".join(f"{p.namespace}/{p.name}" for p in pods[:SHOWN]) + (", ..." if len(pods) > SHOWN else "")


def _selects_none(ps: PolicySet, pol: NetworkPolicy) -> str:
    sel = pol.spec.pod_selector
    head = f"network policy {pol.namespace}/{pol.name}: podSelector {describe_selector(sel)} selects no pod"
    tail = "the policy applies to no pod, so it isolates nothing and its rules allow nothing"
    if not any(p.namespace == pol.namespace for p in ps.pods):
        return f"{head}: namespace {pol.namespace} has no pods; {tail}"
    elsewhere = [p for p in ps.pods if p.namespace != pol.namespace and selector_matches(sel, dict(p.labels))]
    where = ""
    if elsewhere:
        many = len({p.namespace for p in elsewhere}) > 1
        verb = "match" if len(elsewhere) > 1 else "matches"
        where = (f" ({_names(elsewhere)} {verb}, in {'other namespaces' if many else 'another namespace'}: a policy "
                 "selects pods of its own namespace only)")
    return f"{head} of namespace {pol.namespace}{where}: {tail}"


def _unnamed(port: NetworkPolicyPort, listed: list[PodView], declaring: list[PodView], who: str) -> str:
    """Why a named port matches nothing (``listed``: the pods it was looked up in, a few of them), with what
    those pods declare that comes close (``declaring``: the ones of them that declare any named port): the name
    for another protocol, or a name spelt alike."""
    name, proto = str(port.port), port.protocol
    said = f"named port {name!r}/{proto}: {who}"
    if listed:
        said += f" ({_names(listed)})"
    article = "an" if proto == "SCTP" else "a"  # said letter by letter: an "ess"; a TCP, a UDP ("you")
    said += f" declares {article} {proto} port of that name, so it matches no traffic"
    other = sorted({pr for p in declaring for n, pr, _ in p.named_ports if n == name})
    names = sorted({n for p in declaring for n, pr, _ in p.named_ports if pr == proto})
    close = difflib.get_close_matches(name, names, n=1)
    hints = [f"it is declared for {' and '.join(other)}: write protocol: {other[0]}"] if other else []
    hints += [f"did you mean {close[0]!r}?"] if close else []
    return said + (f"; {', or '.join(hints)}" if hints else "")
