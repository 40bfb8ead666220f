"""``netlab status`` of a big lab reads its namespaces while Python loads the rest of netlab.

The command spends ~0.2 s loading (pydantic, the state's strict schema, the
topology's models, the plan's modules) before it knows what to ask the
kernel. Which namespaces it will read is known much sooner: the lab's state
file lists them. So when the lab is big enough to be read by forked readers
anyway (kernel/readmany.py), those are forked first, and read with every
sysctl file a lab's status can ask of them (:data:`SYSCTLS`; those of
kube-proxy, :data:`NODE_SYSCTLS`, only of the nodes the state's topology
names: a pod's are a quarter fewer files, and a file of /proc/sys costs as
much to open as a whole dump) while this process loads; status then takes
what they read, and reads again itself a namespace that is asked anything
else (kernel/live.py's ``read_ahead``).

Reading ahead only reads. The lab name is checked like any ``--lab``, the
state directory and file like ``load_state`` checks them, a namespace is
entered only if its name is a safe one, and nothing is judged before the
state has been validated: should it turn out corrupt, the command fails as
it would have, and the readers are stopped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netlab.errors import NetlabError, loads_json
from netlab.kernel.netns import TAG_SYSCTLS
from netlab.model.naming import is_netns
from netlab.plan.sysctls import (BRIDGE_NF_SYSCTL, COMMON_SYSCTLS, CONNTRACK_SYSCTLS, GATEWAY_SYSCTLS, KERNEL_DEVCONF,
                                 KERNEL_KEPT, RESTORED, ROUTE_LOCALNET_SYSCTL, ROUTER_SYSCTLS, devconf_keys)
from netlab.realize.interrupted import Seen, seen
from netlab.realize.lab_name import selected_name
from netlab.realize.state_dir import read_state_file

if TYPE_CHECKING:
    from netlab.kernel.live import LiveKernel

# Every sysctl a lab's status asks of a namespace but an interface's (those come with its link), once each: the
# plan's by role (plan/sysctls.py, the all/default ARP ones among them), kube-proxy's route_localnet (a node's,
# and its pods' copy of it), the kernel's TTL and ping answer (realize/expect.py) and the tag; and kube-proxy's
# others, asked of the nodes alone (the conntrack timeouts, bridge-nf-call-iptables). tests/unit/test_readahead.py
# checks them against the plans of several labs.
SYSCTLS = tuple(dict.fromkeys((*(key for key, _ in (*COMMON_SYSCTLS, *ROUTER_SYSCTLS, *KERNEL_KEPT)),
                               ROUTE_LOCALNET_SYSCTL[0], *TAG_SYSCTLS)))
NODE_SYSCTLS = (BRIDGE_NF_SYSCTL[0], *(key for key, _ in CONNTRACK_SYSCTLS))
GATEWAY_ONLY = tuple(key for key, _ in GATEWAY_SYSCTLS)  # the internet gateway's multipath hash


def start(lab_name: str | None, topology: str | None) -> LiveKernel:
    """The kernel door for ``status`` (``--lab NAME`` / ``-t FILE``), already reading the lab's namespaces
    when that can be known now: not with ``-t FILE`` (the lab is the one a file still to be parsed names),
    nor without ``--lab`` when more than one lab is up."""
    from netlab.kernel.live import LiveKernel  # here: `probe` asks seen_first only, and reads no namespace itself

    kernel = LiveKernel()
    if topology is None:
        asks = saved_netns(lab_name)
        if asks:
            kernel.read_ahead(asks)
    return kernel


def seen_first(lab_name: str | None, topology: str | None) -> Seen | None:
    """The lab ``status`` reads ahead as seen before it reads (realize.interrupted.seen: who holds it, its state's
    version); None when it cannot be known yet (``-t FILE``, several labs up: taken once the lab is chosen)."""
    if topology is not None:
        return None
    try:
        lab_name = selected_name(lab_name, None, required=False)
    except NetlabError:
        return None
    if lab_name is None:
        return None
    return seen(lab_name)


def saved_netns(lab_name: str | None) -> dict[str, tuple[str, ...]]:
    """The namespaces the lab's state file lists (with a safe name), unvalidated, each with the sysctl
    files to read of it: :data:`SYSCTLS`, those of the settings the state records as set back (of
    plan/sysctls.py's KERNEL_DEVCONF, and only those), and :data:`NODE_SYSCTLS` for a node of the saved
    topology; nothing when anything is amiss (the command then finds it, and says so). Guessing a role
    wrong costs time, not truth: status reads again a namespace asked a file not read ahead."""
    try:
        lab_name = selected_name(lab_name, None, required=False)  # --lab, $NETLAB_LAB, or the only lab up
        if lab_name is None:
            return {}
        raw = read_state_file(lab_name)  # the lab name and its directory checked as load_state's are
        saved = loads_json(raw) if raw is not None else None
    except (NetlabError, OSError, ValueError):  # NotRegularFile and bad JSON are ValueErrors
        return {}
    return ahead_sysctls(lab_name, saved)


def ahead_sysctls(lab_name: str, saved: object) -> dict[str, tuple[str, ...]]:
    """:func:`saved_netns` of the state file's unvalidated contents, ``saved``."""
    if not isinstance(saved, dict) or not isinstance(saved.get("netns"), dict):  # netns: name -> what came of it
        return {}
    extra = saved.get("extra")
    keys = extra.get(RESTORED) if isinstance(extra, dict) else None
    restored = tuple(name for key in KERNEL_DEVCONF if isinstance(keys, list) and key in keys
                     for name in devconf_keys(key))
    common = tuple(dict.fromkeys(SYSCTLS + restored))
    node = tuple(dict.fromkeys(common + NODE_SYSCTLS))
    nodes = _node_netns(lab_name, saved.get("topology"))
    gateway = (f"{lab_name}-gateway", tuple(dict.fromkeys(common + GATEWAY_ONLY)))
    return {name: node if name in nodes else gateway[1] if name == gateway[0] else common
            for name in saved["netns"] if is_netns(name)}


def _node_netns(lab_name: str, topology: object) -> set[str]:
    """The namespaces of the nodes a saved topology names (kube-proxy's sysctls are theirs), as
    model/naming.netns_name names them; only compared with the state's names, never entered."""
    nodes = topology.get("nodes") if isinstance(topology, dict) else None
    names = (node.get("name") for node in (nodes if isinstance(nodes, list) else []) if isinstance(node, dict))
    return {f"{lab_name}-{name}" for name in names if isinstance(name, str)}
