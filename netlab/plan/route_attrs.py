"""A route's metrics (RTA_METRICS: ``ip route ... mtu lock 1300 advmss 1000``) as numbers and as ``ip route``
prints them.

The kernel keeps them as RTAX_* values, each a u32 but the congestion control's name; RTAX_LOCK is a mask of
the locked ones (``mtu lock 1300``: the kernel never lowers that path MTU from an ICMP "fragmentation
needed"). A route is held here as the kernel dumps them: ``((RTAX, value), ...)`` in RTAX order, so what was
read is what a replace sends back. No route netlab plans has any (Flannel's and the CNI plugins' have none).
"""

from __future__ import annotations

# include/uapi/linux/rtnetlink.h: enum RTAX_*
RTAX_LOCK, RTAX_MTU, RTAX_RTT, RTAX_RTTVAR, RTAX_FEATURES, RTAX_RTO_MIN, RTAX_CC_ALGO = 1, 2, 4, 5, 12, 13, 16
RTAX_FEATURE_ECN = 1
# iproute2's mx_names, by RTAX number
NAMES = {2: "mtu", 3: "window", 4: "rtt", 5: "rttvar", 6: "ssthresh", 7: "cwnd", 8: "advmss", 9: "reordering",
         10: "hoplimit", 11: "initcwnd", 12: "features", 13: "rto_min", 14: "initrwnd", 15: "quickack",
         16: "congctl", 17: "fastopen_no_cookie"}

Metrics = tuple[tuple[int, int | str], ...]


def _value(kind: int, value: int | str) -> str:
    if isinstance(value, str):  # RTAX_CC_ALGO
        return value
    if kind == RTAX_FEATURES:
        return "ecn" if value == RTAX_FEATURE_ECN else ("ecn " if value & RTAX_FEATURE_ECN else "") + f"{value:#x}"
    if kind in (RTAX_RTT, RTAX_RTTVAR, RTAX_RTO_MIN):  # the kernel's units: eighths and quarters of a ms, ms
        ms = value // 8 if kind == RTAX_RTT else value // 4 if kind == RTAX_RTTVAR else value
        return f"{ms / 1e3:g}s" if ms >= 1000 else f"{ms}ms"
    return str(value)


def metric_words(metrics: Metrics) -> list[str]:
    """Each metric as ``ip route`` prints it (iproute2's print_rta_metrics): ``mtu 1300``, ``mtu lock 1300``,
    ``rtt 3s``, ``congctl cubic``; in RTAX order."""
    lock = next((int(v) for k, v in metrics if k == RTAX_LOCK), 0)
    out = []
    for kind, value in sorted((m for m in metrics if m[0] != RTAX_LOCK), key=lambda m: m[0]):
        name = NAMES.get(kind, f"metric {kind}")
        out.append(f"{name}{' lock' if lock & (1 << kind) else ''} {_value(kind, value)}")
    return out
