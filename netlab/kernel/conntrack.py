"""conntrack in a namespace, read: the entries as ``conntrack -L`` prints them.

Each entry holds a connection's original tuple and the reply tuple the
kernel expects, so it shows what NAT did to the connection: which endpoint a
Service's DNAT picked, which source a masquerade chose. The text is the one a
learner compares with (``ip netns exec NS conntrack -L``), so it is read with
the tool itself, run inside the namespace.
"""

from __future__ import annotations

from netlab.kernel.netns import binary, run_in_netns

TIMEOUT = 10.0


def list_entries(netns: str, proto: str | None = None) -> list[str]:
    """``conntrack -L [-p PROTO]`` inside the namespace: one line per entry (the summary goes to stderr)."""
    argv = [binary("conntrack"), "-L"] + (["-p", proto] if proto else [])
    proc = run_in_netns(netns, argv, timeout=TIMEOUT, check=False)
    return [line for line in proc.stdout.decode(errors="replace").splitlines() if line.strip()]
