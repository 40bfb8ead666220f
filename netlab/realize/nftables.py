"""nftables tables of a namespace: the kernel's ``nft -j`` JSON in the plan's words, and drift.

The plan (:class:`~netlab.plan.resources.NftRules`) holds kube-proxy's table
as the ``nft -f`` transaction kube-proxy writes, and its ``listing``: one line
per set, map, chain, rule and element, sorted. :func:`listing` prints the
kernel's ``nft -j list table`` in the same words (``ip daddr . meta l4proto .
th dport vmap @service-ips``, ``mark set mark or 0x00004000``, ``numgen random
mod 2 vmap { 0 : goto a, 1 : goto b }``), so status compares like with like
and shows a difference in kube-proxy's own words. An expression netlab does
not write is printed as its JSON: it can only differ from the plan, as it
should. Elements of dynamic sets (session affinity: the clients seen) are the
kernel's to keep and are not compared.

The transactions that make a node's table so are realize/nft_sync.py's.

A chain that leaves the plan (a Service or an endpoint gone) is emptied by
a sync and deleted by a later one (see nft_sync.py). Meanwhile the empty
chain is not drift (:func:`stale_chains`), and :func:`after_sync` says what
the kernel lists after a partial sync.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Iterable, Sequence

from netlab.kernel.nft import NAME
from netlab.plan.resources import NftRules

# JSON operators as kube-proxy writes them
_BINOP = {"|": "or", "^": "xor", "&": "and"}


def _value(v: Any) -> str:
    """A right-hand side: an address, a port, a set reference, a prefix, an anonymous set."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (int, str)):
        return str(v)
    if isinstance(v, list):
        return ", ".join(_value(x) for x in v)
    if isinstance(v, dict):
        if "prefix" in v:
            return f"{v['prefix']['addr']}/{v['prefix']['len']}"
        if "set" in v:
            items = v["set"]
            return "{ " + ", ".join(_value(x) for x in (items if isinstance(items, list) else [items])) + " }"
        if "concat" in v:
            return " . ".join(_value(x) for x in v["concat"])
        if "range" in v:
            return "-".join(_value(x) for x in v["range"])
        if "elem" in v:
            e = v["elem"]
            return _value(e.get("val")) + (f' comment "{e["comment"]}"' if e.get("comment") else "")
        return _expr(v)
    return json.dumps(v, sort_keys=True)


def _mark(v: Any) -> str:
    return f"{v:#010x}" if isinstance(v, int) else _value(v)


def _expr(e: Any) -> str:
    """A left-hand side or a statement's argument."""
    if not isinstance(e, dict) or len(e) != 1:
        return _value(e)
    (k, v), = e.items()
    if k == "payload":
        return f"{v['protocol']} {v['field']}"
    if k == "meta":
        return "mark" if v["key"] == "mark" else f"meta {v['key']}"
    if k == "ct":
        return f"ct {v['key']}"
    if k == "fib":
        flags = v.get("flags", [])
        return f"fib {' '.join(flags if isinstance(flags, list) else [flags])} {v['result']}"
    if k == "concat":
        return " . ".join(_expr(x) for x in v)
    if k == "numgen":
        return f"numgen {v['mode']} mod {v['mod']}" + (f" offset {v['offset']}" if v.get("offset") else "")
    if k in _BINOP:
        left, right = v
        return f"{_expr(left)} {_BINOP[k]} {_mark(right) if _expr(left) == 'mark' else _value(right)}"
    return json.dumps(e, sort_keys=True)


def _verdict(v: Any) -> str | None:
    if not isinstance(v, dict) or len(v) != 1:
        return None
    (k, arg), = v.items()
    if k in ("jump", "goto"):
        return f"{k} {arg['target']}"
    if k in ("accept", "drop", "return", "continue"):
        return k
    return None


def _statement(s: dict) -> str:
    (k, v), = s.items()
    verdict = _verdict(s)
    if verdict:
        return verdict
    if k == "match":
        left = _expr(v["left"])
        op = {"==": "", "in": "", "!=": "!= "}.get(v["op"], v["op"] + " ")
        right = _mark(v["right"]) if left == "mark" else _value(v["right"])
        if left.startswith("mark and") and v["op"] == "==":  # kube-proxy spells this comparison out
            return f"{left} == {right}"
        return f"{left} {op}{right}"
    if k == "vmap":
        data = v["data"]
        if isinstance(data, dict) and "set" in data:
            items = ", ".join(f"{_value(key)} : {_verdict(val)}" for key, val in data["set"])
            data = f"{{ {items} }}"
        return f"{_expr(v['key'])} vmap {data}"
    if k == "mangle":
        value = v["value"]
        if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _BINOP:
            op = next(iter(value))
            left, right = value[op]
            return f"{_expr(v['key'])} set {_expr(left)} {_BINOP[op]} {_mark(right)}"
        return f"{_expr(v['key'])} set {_mark(value)}"
    if k == "masquerade":
        flags = (v or {}).get("flags", [])
        flags = flags if isinstance(flags, list) else [flags]
        return " ".join(["masquerade"] + flags)
    if k == "dnat":
        port = f":{v['port']}" if "port" in v else ""
        return f"dnat to {_value(v['addr'])}{port}"
    if k == "reject":
        if v is None or (v.get("type") == "icmp" and v.get("expr") == "port-unreachable"):
            return "reject"
        return f"reject with {v.get('type')} {v.get('expr')}"
    if k == "set" and v.get("op") in ("update", "add"):
        return f"{v['op']} {v['set']} {{ {_expr(v['elem'])} }}"
    if k == "counter":
        return "counter"
    return json.dumps(s, sort_keys=True)


def rule_text(expr: Sequence[dict], comment: str | None = None) -> str:
    """One rule's statements, as kube-proxy writes them (a ``counter``, which kube-proxy never writes, as a bare
    word)."""
    words = [_statement(s) for s in expr]
    return " ".join(words) + (f' comment "{comment}"' if comment else "")


def counters(expr: Sequence[dict]) -> int | None:
    """The packets a rule's ``counter`` counted, or None when it has none."""
    both = counted(expr)
    return None if both is None else both[0]


def counted(expr: Sequence[dict]) -> tuple[int, int] | None:
    """The packets and bytes a rule's ``counter`` counted, or None when it has none (kube-proxy writes none)."""
    for s in expr:
        if "counter" in s and isinstance(s["counter"], dict):
            return int(s["counter"].get("packets", 0)), int(s["counter"].get("bytes", 0))
    return None


def objects(data: dict | None) -> list[dict]:
    """The ``nftables`` array of ``nft -j``'s answer, without its metainfo."""
    return [o for o in (data or {}).get("nftables", []) if "metainfo" not in o]


def chain_rules(data: dict | None) -> dict[str, list[tuple[str, int | None]]]:
    """chain -> [(rule text, counted packets)], in the kernel's order (for trace)."""
    out: dict[str, list[tuple[str, int | None]]] = {}
    for o in objects(data):
        if "chain" in o:
            out.setdefault(o["chain"]["name"], [])
        elif "rule" in o:
            r = o["rule"]
            out.setdefault(r["chain"], []).append((rule_text(r.get("expr", []), r.get("comment")),
                                                   counters(r.get("expr", []))))
    return out


def set_or_map(o: dict) -> tuple[str, dict] | None:
    """("set", the set) or ("map", the map) when one object of ``nft -j``'s answer is one, else None."""
    for kind in ("set", "map"):
        if kind in o:
            return kind, o[kind]
    return None


def sets_of(data: dict | None) -> list[dict]:
    """The set and map objects of ``nft -j``'s answer, in the kernel's order."""
    return [found[1] for found in map(set_or_map, objects(data)) if found]


def set_elements(data: dict | None, name: str) -> list[str]:
    """The elements of a set or map, printed (a dynamic set's too: trace reads session affinity there)."""
    return next((elements_of(s) for s in sets_of(data) if s.get("name") == name), [])


def elements_of(s: dict) -> list[str]:
    """The elements of one set or map object of ``nft -j``'s answer, printed as :func:`set_elements` does."""
    return [_element(e) for e in s.get("elem", [])]


def set_type(kind: str, s: dict) -> str:
    """A set's or map's type as nft prints it: ``ipv4_addr . inet_proto . inet_service : verdict``
    (nft -j gives one type, or a list for a concatenation, and a map's value type apart)."""
    types = s["type"] if isinstance(s["type"], list) else [s["type"]]
    return " . ".join(types) + (f" : {s['map']}" if kind == "map" else "")


def set_flags(s: dict) -> list[str]:
    """A set's flags (nft -j gives one flag as a string, several as a list)."""
    flags = s.get("flags", [])
    return flags if isinstance(flags, list) else [flags]


def _element(e: Any) -> str:
    if isinstance(e, list) and len(e) == 2:
        key, val = e
        return f"{_value(key)} : {_verdict(val) or _value(val)}"  # a comment is in the key's "elem"
    return _value(e)


TABLE_FLAGS = ("dormant", "owner", "persist")


def table_flags(flags: Any) -> str:
    """A table's flags as nft names them. nft 1.0.6's JSON gives one flag as freed memory (its
    table_flags_json unpacks the string, then frees the array that held it): a lone flag it does not
    name is ``dormant``, the only one ``nft`` can leave on a table (an owner table goes with its socket)."""
    names = flags if isinstance(flags, list) else [flags]
    if len(names) == 1 and names[0] not in TABLE_FLAGS:
        return "dormant"
    return ",".join(str(f) for f in names)


def listing(data: dict | None) -> tuple[str, ...]:
    """The table in the plan's words (:meth:`netlab.plan.nftables.Table.listing`), sorted."""
    if data and "netlab-listing" in data:  # the fake kernel's answer (kernel/fake.py): already listed
        return tuple(sorted(data["netlab-listing"]))
    out: list[str] = []
    seen: dict[str, int] = {}
    for o in objects(data):
        if "table" in o and o["table"].get("flags"):  # kube-proxy's has none: a dormant table hooks nothing
            out.append(f"table flags {table_flags(o['table']['flags'])}")
        elif found := set_or_map(o):
            kind, s = found
            line = f"{kind} {s['name']} type {set_type(kind, s)}"
            if "timeout" in s:
                line += f" timeout {s['timeout']}s"
            out.append(line)
            if not ("timeout" in s or "dynamic" in set_flags(s)):
                out += [f"element {s['name']} {_element(e)}" for e in s.get("elem", [])]
        elif "chain" in o:
            c = o["chain"]
            base = f" type {c['type']} hook {c['hook']}{_devices(c)} priority {c['prio']}" if "hook" in c else ""
            if c.get("policy", "accept") != "accept":  # kube-proxy's base chains have none: accept, unsaid
                base += f" policy {c['policy']}"
            out.append(f"chain {c['name']}{base}")
        elif "rule" in o:
            r = o["rule"]
            i = seen[r["chain"]] = seen.get(r["chain"], -1) + 1
            out.append(f"rule {r['chain']} {i:04d} {rule_text(r.get('expr', []), r.get('comment'))}")
    return tuple(sorted(out))


def _devices(chain: dict) -> str:
    """A netdev chain's device(s), as nft -f takes them: ``device "veth1"`` (netlab's impairments' loss)."""
    dev = chain.get("dev")
    if not dev:
        return ""
    if isinstance(dev, list):
        return " devices = { " + ", ".join(f'"{d}"' for d in dev) + " }"
    return f' device "{dev}"'


def drift(planned: NftRules, data: dict | None) -> list[str]:
    """How the kernel's table differs from the plan's, in lines (missing first). An empty chain the plan no
    longer has is not drift: a sync emptied it and a later one deletes it (:func:`stale_chains`)."""
    if data is None:
        return [f"table {planned.family} {planned.table} is missing"]
    seen = listing(data)
    have = set(seen) - {f"chain {name}" for name in _empty_unplanned(seen, planned.listing)}
    want = set(planned.listing)
    # Rules are compared chain by chain as sequences, not by their numbered lines: one rule put at the
    # head of a chain (a counter, as inspect suggests) is one extra rule, not every rule of it moved.
    have_rules, want_rules = _numbered(have), _numbered(want)
    missing = [line for line in planned.listing if line not in have and not line.startswith("rule ")]
    extra = [line for line in sorted(have - want) if not line.startswith("rule ")]
    policies = _policies(missing, extra)  # a base chain whose policy alone differs: said as iptables mode says it
    missing = [line for line in missing if line not in policies.values()]
    extra = [line for line in extra if line not in policies]
    for chain in sorted(set(have_rules) | set(want_rules)):
        h, w = have_rules.get(chain, []), want_rules.get(chain, [])
        if [t for _, t in h] == [t for _, t in w]:
            continue
        gone, more = _surplus(w, h), _surplus(h, w)
        missing += [f"rule {int(i) + 1} of chain {chain}: {t}" for i, t in gone]  # as nft counts them, from 1
        extra += [f"rule {int(i) + 1} of chain {chain}: {t}" for i, t in more]
        if not gone and not more:
            extra.append(f"rules of chain {chain} in another order")
    said = [f"table {planned.family} {planned.table} has flags {line.split(' ', 2)[2]}, want none"
            for line in extra if line.startswith("table ")]
    extra = [line for line in extra if not line.startswith("table ")]
    said += [f"policy of chain {line.split(' ', 2)[1]} is {policy_of(line)}, want {policy_of(planned_line)}"
            for line, planned_line in policies.items()]
    return said + [f"missing {line}" for line in missing] + [f"extra {line}" for line in extra]


def policy_of(chain_line: str) -> str:
    """A listed base chain's policy (``... priority 0 policy drop``): accept when the line does not say one."""
    words = chain_line.split(" ")
    return words[-1] if len(words) > 2 and words[-2] == "policy" else "accept"


def without_policy(chain_line: str) -> str:
    """A listed chain without its policy."""
    return chain_line.rsplit(" policy ", 1)[0] if " policy " in chain_line else chain_line


def _policies(missing: list[str], extra: list[str]) -> dict[str, str]:
    """The kernel's chain lines (``extra``) that differ from the plan's (``missing``) in their policy alone:
    kernel line -> planned line."""
    planned = {without_policy(line): line for line in missing if line.startswith("chain ")}
    return {line: planned[without_policy(line)] for line in extra
            if line.startswith("chain ") and without_policy(line) in planned}


def _surplus(these: list[tuple[str, str]], than: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The rules of ``these`` that ``than`` does not have as often (each copy beyond its count)."""
    left = Counter(t for _, t in these)
    left.subtract(t for _, t in than)
    out = []
    for i, t in these:
        if left[t] > 0:
            out.append((i, t))
            left[t] -= 1
    return out


def _numbered(lines: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
    """``rule CHAIN NNNN TEXT`` lines -> chain: [(NNNN, TEXT)] in their order."""
    out: dict[str, list[tuple[str, str]]] = {}
    for line in sorted(lines):
        if line.startswith("rule "):
            _, chain, i, text = line.split(" ", 3)
            out.setdefault(chain, []).append((i, text))
    return out


def stale_chains(planned: NftRules, data: dict | None) -> list[str]:
    """The chains of the kernel's table that an earlier sync emptied and the plan no longer has: kube-proxy
    deletes them a sync later, in a transaction of their own."""
    return [] if data is None else _empty_unplanned(listing(data), planned.listing)


def _empty_unplanned(have: Sequence[str], want: Sequence[str]) -> list[str]:
    """Chains of ``have`` with no rules (and no base-chain hook) that ``want`` does not name; only names nft
    reads unquoted (kube-proxy's all are): a name that is not is drift, never a line of a payload."""
    return sorted(name for name, rules in _unplanned_chains(have, want).items() if not rules and NAME.fullmatch(name))


def after_sync(have: Sequence[str], want: Sequence[str]) -> tuple[str, ...]:
    """The listing a partial sync from ``have`` to ``want`` leaves: ``want``, and every chain of ``have`` that
    ``want`` does not name, as ``have`` lists it (the sync empties one with rules and leaves an empty one: a base
    chain keeps its hook), but the empty regular chains an earlier sync left, deleted before it (lab/up.py)."""
    planned = {line.split(" ", 2)[1] for line in want if line.startswith("chain ")}
    deleted = {f"chain {name}" for name in _empty_unplanned(have, want)}
    kept = {line for line in have if line.startswith("chain ") and line.split(" ", 2)[1] not in planned}
    return tuple(sorted(set(want) | (kept - deleted)))


def _unplanned_chains(have: Sequence[str], want: Sequence[str]) -> dict[str, bool]:
    """The regular chains (no base-chain hook) of listing ``have`` that ``want`` does not name: whether each
    holds rules."""
    planned = {line.split(" ", 2)[1] for line in want if line.startswith("chain ")}
    with_rules = {line.split(" ", 2)[1] for line in have if line.startswith("rule ")}
    return {name: name in with_rules for line in have if line.startswith("chain ")
            for name, _, spec in [line[len("chain "):].partition(" ")] if not spec and name not in planned}
