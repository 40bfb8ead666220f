"""The sections ``netlab inspect`` shows of a namespace (``--section NAME``), and the keys of the
data each fills. Apart from trace/inspect.py so that the API and the CLI name them without
loading the kernel readers."""

SECTIONS = {"links": "links", "addrs": "addresses", "routes": "routes", "neigh": "neighbours", "fdb": "fdb",
            "bridge": "bridge_ports", "iptables": "iptables", "nftables": "nftables", "conntrack": "conntrack"}

# netlab inspect's sections: the kernel's tables, and a node's files (kept in the lab's state directory)
INSPECT_SECTIONS = (*SECTIONS, "files")

# The nf_tables tables a lab writes, (family, name): kube-proxy's, on every node in its nftables mode
# (plan/nftables.py). iptables-nft's tables (ip nat, ip filter) are the iptables section's.
NFT_TABLES = (("ip", "kube-proxy"),)
