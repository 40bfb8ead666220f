"""``netlab status`` of a big lab reads its namespaces while Python loads the rest of netlab.

The command spends ~0.2 s loading (pydantic, the state's strict schema, the
topology's models, the plan's modules) before it knows what to ask the
kernel. Which namespaces it will read is known much sooner: the lab's state
file lists them. So when the lab is big enough to be read by forked readers
anyway (kernel/readmany.py), those are forked first, and read with every
sysctl file a lab's status can ask (:data:`SYSCTLS`) while this process
loads; status then takes what they read, and reads again itself a namespace
that is asked anything else (kernel/live.py's ``read_ahead``).

Reading ahead only reads. The lab name is checked like any ``--lab``, the
state directory and file like ``load_state`` checks them, a namespace is
entered only if its name is a safe one, and nothing is judged before the
state has been validated: should it turn out corrupt, the command fails as
it would have, and the readers are stopped.
"""

from __future__ import annotations

import json

from netlab.errors import NetlabError
from netlab.kernel.live import LiveKernel
from netlab.kernel.netns import TAG_SYSCTLS
from netlab.model.naming import is_netns
from netlab.plan.sysctls import (BRIDGE_NF_SYSCTL, COMMON_SYSCTLS, CONNTRACK_SYSCTLS, KERNEL_DEVCONF, RESTORED,
                                 ROUTE_LOCALNET_SYSCTL, ROUTER_SYSCTLS, devconf_keys)
from netlab.realize.state_dir import known_labs, read_state_file

# Every sysctl a lab's status asks of a namespace but an interface's (those come with its link), once each: the
# plan's by role (plan/sysctls.py, the all/default ARP ones among them, kube-proxy's on nodes: route_localnet and
# the conntrack timeouts) and the tag. tests/unit/test_readahead.py checks them against the plans of several labs.
SYSCTLS = tuple(dict.fromkeys((*(key for key, _ in (*COMMON_SYSCTLS, *ROUTER_SYSCTLS)), BRIDGE_NF_SYSCTL[0],
                               ROUTE_LOCALNET_SYSCTL[0], *(key for key, _ in CONNTRACK_SYSCTLS), *TAG_SYSCTLS)))


def start(lab_name: str | None, topology: str | None) -> LiveKernel:
    """The kernel door for ``status`` (``--lab NAME`` / ``-t FILE``), already reading the lab's namespaces
    when that can be known now: not with ``-t FILE`` (the lab is the one a file still to be parsed names),
    nor without ``--lab`` when more than one lab is up."""
    kernel = LiveKernel()
    if topology is None:
        names, restored = saved_netns(lab_name)
        if names:
            kernel.read_ahead(names, tuple(dict.fromkeys(SYSCTLS + restored)))
    return kernel


def saved_netns(lab_name: str | None) -> tuple[list[str], tuple[str, ...]]:
    """The namespaces the lab's state file lists (with a safe name), unvalidated, and the sysctls of the
    settings it records as set back (those of plan/sysctls.py's KERNEL_DEVCONF, and only those); nothing
    when anything is amiss (the command then finds it, and says so)."""
    try:
        if lab_name is None:
            labs = known_labs()
            if len(labs) != 1:
                return [], ()
            lab_name = labs[0]
        raw = read_state_file(lab_name)  # the lab name and its directory checked as load_state's are
        saved = json.loads(raw) if raw is not None else None
    except (NetlabError, OSError, ValueError):  # NotRegularFile and bad JSON are ValueErrors
        return [], ()
    if not isinstance(saved, dict):
        return [], ()
    names = saved.get("netns")  # name -> what came of it
    extra = saved.get("extra")
    keys = extra.get(RESTORED) if isinstance(extra, dict) else None
    restored = tuple(key for key in KERNEL_DEVCONF if isinstance(keys, list) and key in keys)
    return ([name for name in names if is_netns(name)] if isinstance(names, dict) else [],
            tuple(name for key in restored for name in devconf_keys(key)))
