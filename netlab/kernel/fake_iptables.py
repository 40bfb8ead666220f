"""iptables-restore and iptables-save in miniature, for the fake kernel (kernel/fake.py).

A payload is one transaction: its lines work on copies of the tables, which
replace them only at the end, so a refused line leaves the tables as they
were. Refused as the kernel refuses: a rule for a chain that does not exist,
``-D`` of a rule that is not there (ENOENT), ``-X`` of a chain that still has
rules or that a rule still jumps to (EBUSY, nf_tables' CHAIN_DEL).
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass, field

from netlab.kernel.base import TableText
from netlab.plan.iptables import target_of

BUILTIN = {"filter": ("INPUT", "FORWARD", "OUTPUT"), "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
           "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"), "raw": ("PREROUTING", "OUTPUT"),
           "security": ("INPUT", "FORWARD", "OUTPUT")}


class FakeError(Exception):
    """What the fake kernel refuses, with the kernel's errno."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


@dataclass
class FTable:
    chains: dict[str, str] = field(default_factory=dict)  # name -> policy ("-" for user chains)
    rules: dict[str, list[str]] = field(default_factory=dict)
    # The built-in chains that exist in nf_tables (iptables-nft makes one when a line names it, and deletes none;
    # iptables-save prints every built-in chain all the same)
    hooked: set[str] = field(default_factory=set)


def restore(tables: dict[str, dict[str, FTable]], res: TableText) -> None:
    """``iptables-restore`` of ``res`` into ``tables`` (backend -> table -> chains): one transaction."""
    tabs = {name: FTable(dict(t.chains), {c: list(r) for c, r in t.rules.items()}, set(t.hooked))
            for name, t in tables.get(res.backend, {}).items()}
    current = None
    for raw in res.text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            name = line[1:]
            if not (res.noflush and name in tabs):
                tabs[name] = empty_table(name)
            current = tabs[name]
            continue
        if current is None:
            raise FakeError(errno.EINVAL, f"iptables-restore: line outside a table: {line}")
        if line == "COMMIT":
            current = None
        elif line.startswith(":"):
            chain, policy = line[1:].split()[:2]
            if chain in BUILTIN.get(name, ()):
                current.hooked.add(chain)
            if policy == "-":
                current.rules[chain] = []
            current.chains[chain] = policy
            current.rules.setdefault(chain, [])
        else:
            _restore_line(current, line)
            if line.split()[1:2] and line.split()[1] in BUILTIN.get(name, ()):
                current.hooked.add(line.split()[1])
    tables[res.backend] = tabs


def delete_base_chains(tables: dict[str, FTable], chains: tuple[tuple[str, str], ...], gone: tuple[str, ...]) -> None:
    """``nft -f`` deleting iptables-nft's built-in chains (one holding a rule: EBUSY) and then tables (one with
    a chain left: EBUSY), all or none."""
    for t, c in chains:
        if t not in tables or c not in tables[t].hooked:
            raise FakeError(errno.ENOENT, f"Error: No such file or directory: delete chain ip {t} {c}")
        if tables[t].rules.get(c):
            raise FakeError(errno.EBUSY, f"Error: Device or resource busy: delete chain ip {t} {c}")
    for t in gone:
        left = set(tables[t].hooked) - {c for tt, c in chains if tt == t}
        if left or [c for c in tables[t].chains if c not in BUILTIN.get(t, ())]:
            raise FakeError(errno.EBUSY, f"Error: Device or resource busy: delete table ip {t}")
    for t, c in chains:
        tables[t].hooked.discard(c)
    for t in gone:
        tables.pop(t)


def _restore_line(current: FTable, line: str) -> None:
    if line == "-Z":
        return  # zero every counter of the table: this fake keeps none
    verb, chain = line.split()[:2]
    if chain not in current.chains:
        raise FakeError(errno.ENOENT, f"iptables-restore: no chain {chain}")
    rule = "-A" + line[2:]
    if verb == "-A":
        current.rules[chain].append(rule)
    elif verb == "-I":
        current.rules[chain].insert(0, rule)
    elif verb == "-D":
        if rule not in current.rules[chain]:
            raise FakeError(errno.ENOENT, f"iptables-restore: no such rule: {line}")
        current.rules[chain].remove(rule)
    elif verb == "-F":
        current.rules[chain] = []
    elif verb == "-X":
        # nf_tables deletes only an empty chain nothing jumps to (CHAIN_DEL: EBUSY), so a payload
        # must flush it and take the jumps to it away first.
        jumps = [r for rules in current.rules.values() for r in rules if target_of(r) == chain]
        if current.rules.get(chain) or jumps:
            raise FakeError(errno.EBUSY, f"iptables-restore: CHAIN_DEL failed (Device or resource busy): chain {chain}")
        current.chains.pop(chain)
        current.rules.pop(chain, None)
    else:
        raise FakeError(errno.EINVAL, f"iptables-restore: cannot {line}")


def empty_table(name: str) -> FTable:
    """A table as the kernel makes it: its built-in chains, empty, policy ACCEPT."""
    return FTable({c: "ACCEPT" for c in BUILTIN.get(name, ())}, {c: [] for c in BUILTIN.get(name, ())})


def save_table(name: str, t: FTable) -> str:
    out = [f"*{name}"]
    builtin = [c for c in BUILTIN.get(name, ()) if c in t.chains]
    user = sorted(c for c in t.chains if c not in builtin)
    out += [f":{c} {t.chains[c]} [0:0]" for c in builtin + user]
    for c in builtin + user:
        out += t.rules.get(c, [])
    out.append("COMMIT")
    return "\n".join(out) + "\n"


NFT_COMMENT_MAX = 128  # libnftnl's NFTNL_UDATA_COMMENT_MAXLEN: nft's parser refuses a longer comment
NFT_NAME_MAX = 255  # NFT_NAME_MAXLEN 256 with its NUL: nf_tables answers ERANGE for a longer chain or set name
_NFT_COMMENT = re.compile(r'comment "([^"]*)"')
_NFT_NAMED = re.compile(r"^(?:add|create) (?:chain|set|map) \S+ \S+ (\S+)", re.M)


def nft_refusal(text: str) -> FakeError | None:
    """What ``nft -f`` refuses in a transaction, whole, before the kernel holds any of it (None: nothing)."""
    if any(len(c.encode()) > NFT_COMMENT_MAX for c in _NFT_COMMENT.findall(text)):
        return FakeError(errno.EINVAL, f"Error: comment too long, {NFT_COMMENT_MAX} characters maximum allowed")
    if any(len(n.encode()) > NFT_NAME_MAX for n in _NFT_NAMED.findall(text)):
        return FakeError(errno.ERANGE, "Error: Could not process rule: Numerical result out of range")
    return None
