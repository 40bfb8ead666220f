"""The text of `netlab inspect`: each section of a pod's or node's namespace, read from the kernel
(trace/inspect.py), with the command that shows the same."""

from __future__ import annotations

import json
import re
from typing import Any

from netlab.cli.style import plural
from netlab.errors import netlab_command
from netlab.kernel.iptables import command as ipt_command
from netlab.trace.sections import NFT_TABLES

SERVICE_CHAIN = re.compile(r"^service-[A-Z2-7]{8}-")  # kube-proxy's hashAndTruncate: base32, 8 characters


def render_inspect(d: dict[str, Any]) -> str:
    ns = d["netns"]
    out = [f"{d['name']}: {d['what']}, namespace {ns} (lab {d['lab']})", ""]

    def section(title: str, cmd: str, lines: list[str]) -> None:
        out.append(f"{title}   $ {cmd}")
        out.extend(f"  {line}" for line in lines) if lines else out.append("  (none)")
        out.append("")

    if "links" in d:
        links = []
        for link in d["links"]:
            extra = []
            if link["kind"]:
                extra.append(link["kind"])
            if link.get("vxlan"):
                v = link["vxlan"]
                extra.append(f"id {v['vni']} local {v['local']} dev {v['dev']} dstport {v['port']}"
                             f"{'' if v['learning'] else ' nolearning'}")
            if link["master"]:
                extra.append(f"master {link['master']}" + (" hairpin" if link.get("hairpin") else ""))
            if link["peer"]:
                extra.append(f"peer {link['peer']['name']} in {link['peer']['netns']}")
            extra.append(f"mtu {link['mtu']}")
            links.append(f"{link['name']:<16} {link['state']:<7} {link['mac'] or '':<18} {', '.join(extra)}")
        section("links", f"ip -n {ns} -br link  (and -d link for details)", links)
    if "addresses" in d:
        by_dev: dict[str, list[str]] = {}
        for a in d["addresses"]:
            by_dev.setdefault(a["dev"], []).append(a["address"])
        section("addresses", f"ip -n {ns} -br addr",
                [f"{dev:<16} {' '.join(addrs)}" for dev, addrs in by_dev.items()])
    if "routes" in d:
        section("routes", f"ip -n {ns} route", [r["text"] for r in d["routes"]])
    if "neighbours" in d:
        section("neighbours", f"ip -n {ns} neigh",
                [f"{n['dst']} dev {n['dev']}" + (f" lladdr {n['lladdr']}" if n["lladdr"] else "") + f" {n['state']}"
                 for n in d["neighbours"]])
    if "fdb" in d:
        section("fdb", f"bridge -n {ns} fdb show  (multicast entries left out)", [f["text"] for f in d["fdb"]])
    if "bridge_ports" in d:
        section("bridge ports", f"bridge -n {ns} -d link",
                [f"{p['port']} master {p['bridge']} state {p['state']}" + (" hairpin on" if p["hairpin"] else "")
                 for p in d["bridge_ports"]])
    if "sockets" in d:
        socks = [f"{s['protocol']}  {s['state']:<7} {s['text']}" for s in d["sockets"]]
        if "sockets" in (d.get("unreadable") or {}):
            socks = [f"(cannot read: {d['unreadable']['sockets']})"]
        section("sockets (TCP listening, UDP bound)", f"ip netns exec {ns} ss -ltun", socks)
    if "sysctls" in d:
        section("sysctls", f"ip netns exec {ns} sysctl net.ipv4.ip_forward ...",
                [f"{k} = {v}" for k, v in d["sysctls"].items() if v is not None])
    unreadable = d.get("unreadable") or {}
    if "iptables" in d:
        ipt = []
        for table, lines in d["iptables"].items():
            ipt.append(f"*{table}")
            ipt += lines
        if "iptables" in unreadable:
            ipt = [f"(cannot read: {unreadable['iptables']})"]
        section("iptables (the lab's chains, [packets:bytes])",
                f"ip netns exec {ns} {ipt_command('iptables-save')} -c", ipt)
    if "nftables" in d:
        keys = list(d["nftables"]) or [f"{family} {table}" for family, table in NFT_TABLES]
        nft_lines = ([f"(cannot read: {unreadable['nftables']})"] if "nftables" in unreadable
                     else nftables_lines(d["nftables"], ns, d["lab"]))
        section("nftables (the lab's tables, as nft lists them)",
                "; ".join(f"ip netns exec {ns} nft list table {key}" for key in keys), nft_lines)
    if "conntrack" in d:
        section("conntrack", f"ip netns exec {ns} conntrack -L", conntrack_lines(d["conntrack"], d["name"], d["lab"]))
    if "cni" in d:
        section("CNI result (the plugins' answer to ADD)", netlab_command(f"cni log --lab {d['lab']} {d['name']}"),
                json.dumps(d["cni"], indent=2).splitlines() if d["cni"] else ["(none: up writes it again)"])
    for path, f in (d.get("files") or {}).items():
        text = f["content"]
        # a pod's file netlab did not write (no /etc/netns/<netns>/ file): the pod sees the host's own
        host = f["kept"] == path
        lines = text.splitlines() if text is not None else [
            "(cannot read it)" if host else "(missing: up writes it again)"]
        section(f"file {path}" + (" (the host's own: netlab wrote none for this pod)" if host else ""),
                f"sudo cat {f['kept']}", lines)
    return "\n".join(out)


def nftables_lines(tables: dict[str, Any], ns: str, lab: str) -> list[str]:
    """Each table as nft lists it; one line when there is none, and how to count when no rule counts (and the
    `up` that repairs lab ``lab``, realize.state.repair_command, which takes the counter out)."""
    if not tables:
        names = " or ".join(f"table {family} {table}" for family, table in NFT_TABLES)
        return [f"(no {names} here: kube-proxy writes it on the nodes of a lab in nftables mode; "
                "in iptables mode its rules are in the iptables section)"]
    lines = [line for t in tables.values() for line in t["listing"]]
    if not any(r["packets"] is not None for t in tables.values() for c in t["chains"] for r in c["rules"]):
        key, t = next(iter(tables.items()))
        # a Service's own chain (service-<hash>-ns/svc/proto/port) counts the new connections to that Service
        chain = next((c["name"] for c in t["chains"] if SERVICE_CHAIN.match(c["name"])), "services")
        from netlab.workload.reconfigure import repair_command

        lines.append(f"(kube-proxy writes no counters in nftables mode; to count what enters a chain: "
                     f"ip netns exec {ns} nft insert rule {key} {chain} counter, and `{repair_command(lab)}` "
                     "takes it out)")
    return lines


def conntrack_lines(ct: dict[str, Any], name: str, lab: str) -> list[str]:
    """The summary (entries by protocol, TCP state, NAT), then the entries when they were asked for (else the
    command that lists them: of lab ``lab``, whatever other lab is up)."""
    if ct.get("error"):
        return [f"({ct['error']})"]
    if not ct["total"]:
        return []
    counts = lambda d: ", ".join(f"{k} {v}" for k, v in sorted(d.items(), key=lambda kv: -kv[1]))  # noqa: E731
    lines = [f"{plural(ct['total'], 'entry', 'entries')}: {counts(ct['by_protocol'])}"
             + (f"; {ct['translated']} NATed (Service DNAT, masquerade)" if ct["translated"] else "")]
    if ct["by_state"]:
        lines.append(f"tcp states: {counts(ct['by_state'])}")
    if ct.get("entries") is None:
        lines.append(f"(every entry: netlab inspect --lab {lab} {name} --section conntrack)")
    else:
        lines += ct["entries"]
    return lines
