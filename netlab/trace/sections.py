"""The sections ``netlab inspect`` shows of a namespace (``--section NAME``), and the keys of the
data each fills. Apart from trace/inspect.py so that the API and the CLI name them without
loading the kernel readers."""

SECTIONS = {"links": "links", "addrs": "addresses", "routes": "routes", "neigh": "neighbours", "fdb": "fdb",
            "bridge": "bridge_ports", "iptables": "iptables", "conntrack": "conntrack"}
