"""The sections ``netlab inspect`` shows of a namespace (``--section NAME``), and the keys of the
data each fills. Apart from trace/inspect.py so that the API and the CLI name them without
loading the kernel readers."""

from collections.abc import Iterable

# What is read from the kernel: name -> the key of the data it fills (and of inspect -o json), in the order shown.
SECTIONS = {"links": "links", "addrs": "addresses", "routes": "routes", "neigh": "neighbours", "fdb": "fdb",
            "bridge": "bridge_ports", "sockets": "sockets", "sysctls": "sysctls", "iptables": "iptables",
            "nftables": "nftables", "conntrack": "conntrack"}

# netlab inspect's sections: the kernel's, a CNI pod's result, and a node's files (kept in the lab's state directory)
INSPECT_SECTIONS = (*SECTIONS, "cni", "files")

# A section is also named by its key in the data, where the two differ: addresses is addrs.
ALIASES = {key: name for name, key in SECTIONS.items() if key != name}


def sections_wanted() -> str:
    """The names a section is asked for by, as an error says them."""
    return f"{', '.join(INSPECT_SECTIONS)} (or by their keys in -o json: {', '.join(ALIASES)})"


def section_names(names: Iterable[str]) -> tuple[str, ...]:
    """The sections named (a key as its section's name), in the order given, once each; ValueError for others."""
    names = list(names)
    unknown = [n for n in names if n not in INSPECT_SECTIONS and n not in ALIASES]
    if unknown:
        raise ValueError(f"unknown section{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: "
                         f"want some of {sections_wanted()}")
    return tuple(dict.fromkeys(ALIASES.get(n, n) for n in names))


# The nf_tables tables a lab writes, (family, name): kube-proxy's, on every node in its nftables mode
# (plan/nftables.py). iptables-nft's tables (ip nat, ip filter) are the iptables section's.
NFT_TABLES = (("ip", "kube-proxy"),)
