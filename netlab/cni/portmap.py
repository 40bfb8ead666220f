"""Whether portmap's DNAT of a pod's hostPort is in its node's nat table, read from ``iptables-save -t nat``.

portmap (its iptables backend, Debian's 1.1.1) gives each pod's host ports::

    -A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
    -A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
    -A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: ..." -m multiport --dports 18080 -j CNI-DN-<hash>
    -A CNI-DN-<hash> -p tcp -m tcp --dport 18080 -j DNAT --to-destination 10.244.0.2:8080

A packet from another host to the node's hostPort takes the first, then the
third, then the DNAT (the node's own connection: the second, not the first).
Without any of them it stays addressed to the node, where nothing listens: the
connection is refused. A chain without CHECK never
looks (QA cnihost 2): status and trace read the rules here.
"""

from __future__ import annotations

import shlex
from typing import Any, Iterable, NamedTuple

from netlab.plan.portmap_rules import DISPATCH as DISPATCH, POD_CHAIN as POD_CHAIN  # the rules a builtin lab writes


def uses_portmap(plugins: Iterable[Any]) -> bool:
    """Whether the chain has portmap, with its iptables rules (not its nftables backend), given host ports."""
    return any(isinstance(p, dict) and p.get("type") == "portmap" and p.get("backend", "iptables") == "iptables"
               and isinstance(p.get("capabilities"), dict) and p["capabilities"].get("portMappings") is True
               for p in plugins)


def _flag(words: list[str], flag: str) -> str | None:
    """The value after ``flag`` in a rule's words."""
    return next((words[i + 1] for i, w in enumerate(words[:-1]) if w == flag), None)


def _chains(lines: Iterable[str]) -> dict[str, list[list[str]]]:
    """Each chain's rules (``-A CHAIN ...``, counters dropped), as words."""
    out: dict[str, list[list[str]]] = {}
    for line in lines:
        if line.startswith("["):
            line = line.partition("] ")[2]
        if line.startswith("-A "):
            words = line.split()
            out.setdefault(words[1], []).append(words)
    return out


def _dnats_to(rule: list[str], proto: str, port: int, to: str, host_ip: str) -> bool:
    d = _flag(rule, "-d")
    return (_flag(rule, "-j") == "DNAT" and _flag(rule, "-p") == proto and _flag(rule, "--dport") == str(port)
            and _flag(rule, "--to-destination") == to and (not host_ip or (d or "").split("/")[0] == host_ip))


class Missing(NamedTuple):
    """What of portmap's rules for a hostPort the nat table lacks: in words, and the rule that puts it back (``-A
    CHAIN ...``; None when more than one is gone, or which of the node's CNI-DN chains is the pod's is not known)."""

    text: str
    rule: str | None


def dnat_rule(chain: str, proto: str, port: Any, to: str, host_ip: str = "") -> str:
    """The pod's DNAT in its chain, as ``iptables-save`` prints portmap's."""
    d = f"-d {host_ip}/32 " if host_ip else ""
    return f"-A {chain} {d}-p {proto} -m {proto} --dport {port} -j DNAT --to-destination {to}"


def missing_rule(lines: Iterable[str], mapping: dict[str, Any], pod_ip: str, chain: str | None = None,
                 comment: str | None = None) -> Missing | None:
    """What of portmap's rules for one ``portMappings`` entry the nat table lacks (None: all there): a hook's jump to
    the dispatch chain, the DNAT in the pod's chain (the dispatch still jumps there), or the dispatch's jump to the
    pod's chain (whose DNAT is there). ``chain``: the pod's CNI-DN chain when known (a builtin lab's: plan/
    portmap_rules.pod_chain), named when nothing of the pod's is left; ``comment``: the dispatch rule's (a builtin
    lab's: ``dnat name: "cbr0" id: "<id>"``), which the rule that puts a dispatch's jump back carries, shell-quoted
    (status compares it)."""
    chains = _chains(lines)
    port, proto = mapping.get("hostPort"), str(mapping.get("protocol") or "tcp").lower()
    to, host_ip = f"{pod_ip}:{mapping.get('containerPort')}", str(mapping.get("hostIP") or "")
    host_ip = "" if host_ip == "0.0.0.0" else host_ip
    said = f"portmap's DNAT of its hostPort {port}/{proto} to {to} is gone"
    for hook, whose in (("PREROUTING", ""), ("OUTPUT", " (the node's own connections to its hostPort)")):
        if not any(_flag(r, "-j") == DISPATCH for r in chains.get(hook, [])):
            return Missing(f"{said}: the node's nat {hook} has no jump to {DISPATCH}{whose}",
                           f"-A {hook} -m addrtype --dst-type LOCAL -j {DISPATCH}")
    jumped = []  # the pod chains the dispatch sends this port to
    for jump in chains.get(DISPATCH, []):
        target = _flag(jump, "-j") or ""
        ports = (_flag(jump, "--dports") or _flag(jump, "--dport") or "").split(",")
        if target.startswith(POD_CHAIN) and str(port) in ports and _flag(jump, "-p") in (None, proto):
            if any(_dnats_to(r, proto, int(port or 0), to, host_ip) for r in chains.get(target, [])):
                return None
            jumped.append(target)
    rule = dnat_rule(jumped[0] if jumped else "", proto, port, to, host_ip)
    if jumped:
        return Missing(f"{said}: the pod's chain {jumped[0]}, where {DISPATCH} sends {port}/{proto}, has no "
                       f"`{rule}`", rule)
    holding = [c for c, rules in chains.items() if c.startswith(POD_CHAIN)
               and any(_dnats_to(r, proto, int(port or 0), to, host_ip) for r in rules)]
    noted = f" -m comment --comment {shlex.quote(comment)}" if comment else ""
    if holding:
        return Missing(f"{said}: no rule of the node's nat {DISPATCH} jumps to the pod's chain {holding[0]} for "
                       f"{port}/{proto} (its DNAT there is intact)",
                       f"-A {DISPATCH} -p {proto}{noted} -m multiport --dports {port} -j {holding[0]}")
    named = f", and the pod's chain {chain} has no DNAT to it either" if chain else ""
    return Missing(f"{said}: no rule of the node's nat {DISPATCH} leads to it{named}", None)


def missing_dnat(lines: Iterable[str], mapping: dict[str, Any], pod_ip: str) -> str | None:
    """What of portmap's rules for one ``portMappings`` entry the nat table lacks, in words (None: all there)."""
    found = missing_rule(lines, mapping, pod_ip)
    return found.text if found else None


def missing_dnats(lines: Iterable[str], mappings: Any, pod_ip: str) -> str | None:
    """The first of a pod's ``portMappings`` whose DNAT the nat table lacks, in words (None: each is there)."""
    found = missing_rules(lines, mappings, pod_ip)
    return found.text if found else None


def missing_rules(lines: Iterable[str], mappings: Any, pod_ip: str, chain: str | None = None,
                  comment: str | None = None) -> Missing | None:
    """What the nat table lacks of the first of a pod's ``portMappings`` that lacks anything (None: nothing);
    ``chain`` and ``comment`` as for :func:`missing_rule`."""
    lines = list(lines)
    for mapping in mappings if isinstance(mappings, list) else []:
        if isinstance(mapping, dict) and isinstance(mapping.get("hostPort"), int):
            if found := missing_rule(lines, mapping, pod_ip, chain, comment):
                return found
    return None
