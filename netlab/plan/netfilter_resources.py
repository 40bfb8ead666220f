"""The lab's netfilter rules as plan resources: whole tables of a namespace, each applied in one transaction.

:class:`NatRules` is one iptables table's chains of the lab (one
``iptables-restore --noflush`` payload), :class:`BaseChains` the iptables-nft
built-in chains found though no rule is planned in them (one ``nft -f`` that
deletes them), :class:`NftRules` one nf_tables table (kube-proxy's
``ip kube-proxy``, one ``nft -f`` that replaces it). They stay importable from
:mod:`netlab.plan.resources`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from netlab.plan.resource_base import Resource


@dataclass(frozen=True)
class NatRules(Resource):
    """The lab's chains of one table in one namespace, as one iptables-restore payload.

    ``payload`` is complete input for ``iptables-restore --noflush``: it declares
    and flushes only the chains in ``chains`` (the lab's own), then appends the
    rules, so chains the lab does not own are never touched. ``rules`` is the
    canonical ``iptables-save`` form of the same rules (``-A CHAIN ...`` lines,
    sorted as iptables-save prints them) that status compares with the kernel.
    ``plugin_jumps``: the namespace is a node where a user's CNI plugins run;
    their jumps from the built-in chains to their own ``CNI-*`` chains are theirs.
    """

    kind: ClassVar[str] = "nat"
    table: str
    chains: tuple[str, ...]
    payload: str
    rules: tuple[str, ...] = ()
    plugin_jumps: bool = False

    @property
    def key(self) -> tuple:
        return ("nat", self.netns, self.table)

    def command(self) -> str:
        return f"ip netns exec {self.netns} iptables-restore --noflush <<'EOF'\n{self.payload.rstrip()}\nEOF"

    def describe(self) -> str:
        return f"iptables {self.table} rules in {self.netns}"

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        out["chains"] = list(self.chains)
        out["rules"] = list(self.rules)
        return out


@dataclass(frozen=True)
class BaseChains(Resource):
    """iptables-nft's built-in chains of a namespace that exist, hooked into netfilter, though the plan has no
    rule in them (a fresh lab's restores never made them): empty, policy ACCEPT, each still sees every packet of
    its hook. Never planned, only found: status says them extra; up deletes them, and each of their tables left
    with no chain, in one ``nft -f`` transaction (iptables-restore cannot delete a built-in chain)."""

    kind: ClassVar[str] = "iptables-nft"
    chains: tuple[tuple[str, str], ...] = ()  # (table, chain)
    tables: tuple[str, ...] = ()  # their tables that hold no other chain: deleted with them

    @property
    def key(self) -> tuple:
        return ("iptables-nft", self.netns)

    def payload(self) -> str:
        """The ``nft -f`` transaction that deletes them."""
        return "".join([f"delete chain ip {t} {c}\n" for t, c in self.chains]
                       + [f"delete table ip {t}\n" for t in self.tables])

    def restore_payload(self) -> str:
        """The ``iptables-restore --noflush`` that makes them again as iptables-nft made them (a rollback's)."""
        tables = dict.fromkeys([t for t, _ in self.chains] + list(self.tables))
        return "".join(f"*{t}\n" + "".join(f":{c} ACCEPT [0:0]\n" for tt, c in self.chains if tt == t) + "COMMIT\n"
                       for t in tables)

    def command(self) -> str:
        return f"ip netns exec {self.netns} nft -f - <<'EOF'\n{self.payload().rstrip()}\nEOF"

    def describe(self) -> str:
        if not self.chains:
            return f"iptables-nft tables {', '.join(self.tables)} in {self.netns}"
        return f"iptables-nft base chains {', '.join(f'{t} {c}' for t, c in self.chains)} in {self.netns}"


@dataclass(frozen=True)
class NftRules(Resource):
    """One nf_tables table of a namespace (kube-proxy's ``ip kube-proxy``), as one ``nft -f`` transaction.

    ``payload`` replaces the whole table atomically (``add table``, ``delete
    table``, then every object); ``listing`` is the table in the words
    :mod:`netlab.kernel.nft` prints ``nft -j list table`` in, sorted, which
    status compares with the kernel (see plan/nftables.py).
    """

    kind: ClassVar[str] = "nft"
    family: str
    table: str
    payload: str
    listing: tuple[str, ...] = ()

    @property
    def key(self) -> tuple:
        return ("nft", self.netns, self.family, self.table)

    def command(self) -> str:
        return f"ip netns exec {self.netns} nft -f - <<'EOF'\n{self.payload.rstrip()}\nEOF"

    def describe(self) -> str:
        return f"nftables table {self.family} {self.table} in {self.netns}"

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        out["listing"] = list(self.listing)
        return out
