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

from typing import Any, Iterable

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


def missing_dnat(lines: Iterable[str], mapping: dict[str, Any], pod_ip: str) -> str | None:
    """What of portmap's rules for one ``portMappings`` entry the nat table lacks, in words (None: all there)."""
    chains = _chains(lines)
    port, proto = mapping.get("hostPort"), str(mapping.get("protocol") or "tcp").lower()
    to, host_ip = f"{pod_ip}:{mapping.get('containerPort')}", str(mapping.get("hostIP") or "")
    host_ip = "" if host_ip == "0.0.0.0" else host_ip
    said = f"portmap's DNAT of its hostPort {port}/{proto} to {to} is gone"
    for hook, whose in (("PREROUTING", ""), ("OUTPUT", " (the node's own connections to its hostPort)")):
        if not any(_flag(r, "-j") == DISPATCH for r in chains.get(hook, [])):
            return f"{said}: the node's nat {hook} has no jump to {DISPATCH}{whose}"
    for jump in chains.get(DISPATCH, []):
        target = _flag(jump, "-j") or ""
        ports = (_flag(jump, "--dports") or _flag(jump, "--dport") or "").split(",")
        if target.startswith(POD_CHAIN) and str(port) in ports and _flag(jump, "-p") in (None, proto) \
                and any(_dnats_to(r, proto, int(port or 0), to, host_ip) for r in chains.get(target, [])):
            return None
    return f"{said}: no rule of the node's nat {DISPATCH} leads to it"


def missing_dnats(lines: Iterable[str], mappings: Any, pod_ip: str) -> str | None:
    """The first of a pod's ``portMappings`` whose DNAT the nat table lacks, in words (None: each is there)."""
    lines = list(lines)
    for mapping in mappings if isinstance(mappings, list) else []:
        if isinstance(mapping, dict) and isinstance(mapping.get("hostPort"), int):
            if why := missing_dnat(lines, mapping, pod_ip):
                return why
    return None
