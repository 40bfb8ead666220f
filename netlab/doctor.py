"""Is this machine ready for a lab? One line per check, and the fix for each failure.

The facts come from :mod:`netlab.kernel.features` (kernel features tried in a
throwaway namespace, the host only read); this module judges them against
what a lab needs. Each check ends in one of:

``ok``
    present (a feature whose module is on disk counts: the kernel loads it
    when netlab first uses it);
``warn``
    missing or short, but the lab does not need it: tc qdiscs (``tbf`` for
    rate impairments, ``netem`` for delay and jitter: a machine without
    netem, like a kernel built without CONFIG_NET_SCH_NETEM, runs every lab
    without ``delay:``), ``nft``, ``tcpdump`` and the conntrack tool (tests and
    learners run them, netlab does not; tcpdump's libpcap compiles ``netlab
    capture``'s filters; netlab reads, deletes and inserts conntrack entries over
    ctnetlink, the kernel conntrack check), a neighbour
    table smaller than the lab's all-pairs traffic (``netlab probe`` keeps its
    own entries bounded), low free space;
``FAIL``
    missing and needed: ``netlab doctor`` exits 3, and ``netlab up`` refuses
    to start, before it changes anything, with exit 3 and this very line;
``info``
    a fact worth knowing that needs no fix: the links a new namespace is born
    with (``sit0``, ``tunl0``... when tunnel modules are loaded and
    ``net.core.fb_tunnels_only_for_init_net=0``), the IPv4 settings it copies
    from the host where they are not the kernel's, whether the kernel has
    IPv6; netlab works there.

The checks of the machine as a whole are netlab/doctor_host.py's; the words beside a verdict (why, which
module) netlab/doctor_words.py's; the names,
titles and levels of all checks, netlab/doctor_lines.py's.

What a lab needs is read from its plan: veth and bridge always, vxlan for a
``vxlan`` overlay, br_netfilter for the plan's ``net.bridge.*`` sysctl,
iptables-restore, conntrack (and nf_tables, for the nft backend) for its NAT
rules, dnsmasq for the cluster DNS pod,
the CNI plugins (each asked VERSION, netlab.cni.check) when ``network.cni``
is not ``builtin``, the kernel's SCTP rules (SCTP_RULES loaded by iptables-restore in the
throwaway namespace) when a NetworkPolicy has an SCTP port.
``netlab doctor -t FILE`` checks what that lab needs; plain ``netlab doctor``
requires everything any netlab feature uses, and sizes the neighbour check
with the built-in default lab.

Test hook: ``NETLAB_DOCTOR_MISSING=name[,name...]`` (check names as in
``netlab doctor -o json``) makes those checks see their feature or tool as
missing, so a test can prove that ``up`` stops before any change when, say,
dnsmasq is not installed. It can only make a check fail: it never makes a
missing thing look present, and it changes which binary runs nowhere.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import replace
from typing import Iterable, Iterator

from netlab.doctor_host import (check_capabilities, check_exit_status, check_fallback_tunnels, check_host_devconf,
                                check_ipv6, check_neighbours, check_open_files, check_state_dir, check_taskstats,
                                with_libpcap)
from netlab.doctor_lines import (ADVISORY, ALWAYS, CHECKS, CNI, EVERYTHING, FAIL, HOST, INFO, KERNEL, OK, TITLES,
                                 TOOLS, WARN, Check)
from netlab.doctor_nft import KUBE_PROXY_SHAPE, NETDEV_SHAPE
from netlab.doctor_words import (KERNEL_MODULE, KERNEL_NOTE, KERNEL_OTHERWISE, KERNEL_PACKAGE, NETNS_FIX,
                                 WHY)
from netlab.errors import EnvironmentNotReady
from netlab.kernel import features, packages
from netlab.kernel import netns as nsmod
from netlab.model import clusterdns as dns
from netlab.model.lab import Lab
from netlab.plan.build import build_plan
from netlab.realize import netfilter, state_dir

__all__ = ["ADVISORY", "ALWAYS", "CHECKS", "CNI", "EVERYTHING", "FAIL", "HOST", "INFO", "KERNEL", "OK", "TITLES",
           "TOOLS", "TRACE_TOOLS", "WARN", "Check", "needs", "diagnose", "report", "require_for", "require_tools",
           "required"]

MISSING_HOOK = "NETLAB_DOCTOR_MISSING"

# The program each tool check looks for; its package (the fix) is kernel/packages.py's, as every command says it.
PROGRAMS = {"iptables-restore": "iptables-restore", "conntrack-tool": "conntrack", "dnsmasq": "dnsmasq",
            "nft": "nft", "tcpdump": "tcpdump"}
# A policy's SCTP port as plan/policy.py writes it (a port, a range), loaded for real by the iptables-restore netlab
# runs, in the throwaway namespace (which the kernel frees with it): the kernel takes the rules SCTP ports need.
SCTP_RULES = "\n".join(("*filter", ":NETLAB-DOCTOR-SCTP - [0:0]",
                         "-A NETLAB-DOCTOR-SCTP -p sctp -m sctp --dport 9 -j RETURN",
                         "-A NETLAB-DOCTOR-SCTP -p sctp -m sctp --dport 20:22 -j RETURN", "COMMIT", ""))
BR_NETFILTER_DIR = "/proc/sys/net/bridge"


# --- what a lab needs ---------------------------------------------------------------------------

def needs(lab: Lab) -> set[str]:
    """The checks ``lab`` cannot do without, read from its plan."""
    plan = build_plan(lab)
    kinds = {r.kind for r in plan.resources}
    out = set(ALWAYS) | (kinds & {"veth", "bridge", "vxlan"})
    if any(r.name.startswith("net.bridge.") for r in plan.of_kind("sysctl")):
        out.add("br_netfilter")
    if "nat" in kinds:
        out |= {"iptables-restore", "conntrack", "nf_tables"}  # nf_tables only if iptables is nft: see _iptables
    if any(r.kind == "nft" and getattr(r, "family", "") != "netdev" for r in plan.resources):
        out |= {"nf_tables", "nft", "conntrack"}  # kube-proxy in nftables mode: its table, written with nft -f
    if any(r.kind == "nft" and getattr(r, "family", "") == "netdev" for r in plan.resources):
        out |= {"nf_netdev", "nft"}  # impairments' loss: netdev chains (plan/impair.py), written with nft -f
    if lab.services:
        out.add("conntrack")  # up deletes stale UDP entries over ctnetlink (kernel/conntrack.delete_matching)
    specs = [imp for n in lab.topo.nodes for imp in n.impair.values()]
    specs += [imp for p in lab.topo.pods for imp in p.impair.values()]
    if any(s.rate for s in specs):
        out.add("tbf")
    if any(s.delay or s.jitter for s in specs):
        out.add("netem")
    if dns.dns_service(lab.topo) is not None and any(p.name == dns.DNS_NAME for p in lab.pods):
        out.add("dnsmasq")
    if lab.cni != "builtin":
        out.add("cni-plugins")
    if sctp_policies(lab):
        out |= {"sctp", "iptables-restore"}
    return out


def sctp_policies(lab: Lab) -> list[str]:
    """The policies (namespace/name) with an SCTP port: their rules need the kernel's SCTP match."""
    out = []
    for pol in lab.topo.network_policies:
        rules = [*(pol.spec.ingress or []), *(pol.spec.egress or [])]
        if any(port.protocol == "SCTP" for rule in rules for port in rule.ports or []):
            out.append(f"{pol.namespace}/{pol.name}")
    return out


# --- judging the facts --------------------------------------------------------------------------

def _pretended_missing() -> set[str]:
    return {n.strip() for n in os.environ.get(MISSING_HOOK, "").split(",") if n.strip()}


def _verdict(name: str, present: bool, detail: str, needed: bool, fix: str) -> Check:
    if present:
        return Check(name, OK, detail, needed=needed)
    if needed:
        return Check(name, FAIL, detail, fix, needed)
    why = WHY.get(name, "this lab does not need it")
    return Check(name, WARN, f"{detail}; {why}", fix, needed)


def _kernel(name: str, probe: features.KernelProbe, needed: bool, pretend: set[str]) -> Check:
    if name == "br_netfilter":  # read from the host, not tried: the test hook reaches it here
        present = os.path.isdir(BR_NETFILTER_DIR) and name not in pretend
        missing = f"reported missing by {MISSING_HOOK} (a test hook)" if name in pretend else \
            f"not loaded ({BR_NETFILTER_DIR} is missing)"
        detail = f"{BR_NETFILTER_DIR} exists" if present else missing + (f"; {WHY[name]}" if needed else "")
    else:
        fact = probe.features[name]
        present = fact.available is not False
        detail = fact.detail
    return _verdict(name, present, detail, needed, kernel_fix(name))


def kernel_fix(name: str, files: features.ModuleFiles | None = None) -> str:
    """How to get a kernel feature: ``modprobe`` where that can load it; where it cannot (a kernel without
    module support, loading switched off, no module on disk for it), a kernel built with it. ``files``: where
    the kernel's modules are said (features.module_files(), this machine's, by default)."""
    if name == "netns":
        return NETNS_FIX
    module, config = KERNEL_MODULE[name]
    otherwise = KERNEL_OTHERWISE.get(name)
    why = features.module_unavailable(module, files)
    if why is None:
        said = [s for s in (KERNEL_PACKAGE.get(name), KERNEL_NOTE.get(name)) if s]
        fix = f"modprobe {module} ({'; '.join([config, *said])})"
    else:
        # The package that has the module helps only a kernel that loads modules and whose module tree is
        # here, without it. A kernel built without module support (this VM's: no /proc/modules), with loading
        # switched off, or whose modules are not on this machine (booted from outside the disk) needs
        # another kernel, whatever is installed.
        package = KERNEL_PACKAGE.get(name) if features.module_tree_lacks(module, files) else None
        fix = f"boot a kernel with {config} (modprobe cannot help: {why}{f'; {package}' if package else ''})"
    return f"{fix}, {otherwise}" if otherwise else fix


def _tool(name: str, needed: bool) -> tuple[Check, str | None]:
    """The check of one tool and its absolute path (None when missing)."""
    command = PROGRAMS[name]
    fix = packages.install_fix(command)
    try:
        path = nsmod.binary(command)
    except EnvironmentNotReady:
        return _verdict(name, False, f"{command} is not installed", needed, fix), None
    return _verdict(name, True, path, needed, fix), path


def _cni_plugins(lab: Lab, needed: bool, pretend: set[str]) -> Check:
    """The plugins the lab runs (Debian's, for a builtin lab), each found and asked VERSION (netlab.cni.check,
    the same answers as netlab validate's)."""
    from netlab.cni import check as cni  # runs the plugins: loaded only for this check

    found = cni.verdict(lab, f"{MISSING_HOOK} (a test hook)" if "cni-plugins" in pretend else "")
    items = tuple(a.to_json() for a in found.answers)
    return replace(_verdict("cni-plugins", found.present, found.detail, needed, found.fix), items=items)


def _nft_way() -> str:
    """How netlab gives nft its transactions here (kernel/nft.py): in its own process through libnftables, or
    by running the program."""
    from netlab.kernel import libnftables, nft

    try:
        if nft.mode() == "process":
            return f"; transactions run the program ({nft.ENV}=process)"
    except EnvironmentNotReady as exc:
        return f"; {exc}"
    if libnftables.load() is None:
        return f"; {libnftables.SONAME} does not load ({libnftables.load_error()}): transactions run the program"
    return f"; transactions in netlab's process through {libnftables.SONAME}"


def _iptables(needed: bool, pretend: set[str]) -> tuple[Check | None, list[str] | None]:
    """The iptables-restore netlab will run (NETLAB_IPTABLES picks nft or legacy) and its --version argv."""
    fix = packages.install_fix("iptables-restore")
    if "iptables-restore" in pretend:
        return _verdict("iptables-restore", False, f"iptables-restore is missing ({MISSING_HOOK}, a test hook)",
                        needed, fix), None
    try:
        _, restore = netfilter.tools()
    except EnvironmentNotReady as exc:
        if "NETLAB_IPTABLES" in str(exc):
            fix = "unset NETLAB_IPTABLES (the system's default backend), or set it to nft or legacy"
        return _verdict("iptables-restore", False, str(exc).split(";")[0], needed, fix), None
    return None, [restore, "--version"]


def _netdev(probe: features.KernelProbe, needed: bool, pretend: set[str]) -> Check:
    """Does the kernel take loss impairments' chains (netdev ingress and egress hooks, numgen)?"""
    if "nf_netdev" in pretend:
        return _verdict("nf_netdev", False, f"reported missing by {MISSING_HOOK} (a test hook)", needed,
                        kernel_fix("nf_netdev"))
    if "nf_netdev" not in probe.outputs:
        return _verdict("nf_netdev", False, "not tried: no nft to load the chains with", needed,
                        packages.install_fix(PROGRAMS["nft"]))
    status, text = probe.outputs["nf_netdev"]
    if status == 0:
        return Check("nf_netdev", OK, "netdev chains on a device's ingress and egress hooks with a numgen random "
                     "drop load (loss impairments)", needed=needed)
    first = text.splitlines()[0] if text else "no output"
    detail = f"nft refuses netdev ingress/egress chains with numgen ({first})"
    return _verdict("nf_netdev", False, detail + (f"; {WHY['nf_netdev']}" if needed else ""), needed,
                    kernel_fix("nf_netdev"))


def _nft_path() -> str | None:
    try:
        return nsmod.binary("nft")
    except EnvironmentNotReady:
        return None


def _kube_proxy_shape(check: Check, probe: features.KernelProbe, needed: bool) -> Check:
    """The nf_tables check, told whether kube-proxy's nftables objects load (``nft`` in the throwaway netns)."""
    status, text = probe.outputs.get("nft-kube-proxy", (-1, "did not run"))
    if status == 0:
        if check.status != OK:
            return check
        return Check("nf_tables", OK, f"{check.detail}; kube-proxy's nftables objects (verdict maps, numgen, "
                     "dynamic sets with timeouts, dnat, masquerade fully-random) load", needed=check.needed)
    first = text.splitlines()[0] if text else "no output"
    detail = f"{check.detail}; kube-proxy's nftables objects do not load (`nft`: {first})"
    return _verdict("nf_tables", False, detail, needed, kernel_fix("nf_tables"))


def _sctp(probe: features.KernelProbe, needed: bool, pretend: set[str]) -> Check:
    """Does the kernel take a policy's SCTP rules (``-p sctp -m sctp --dport``)?"""
    if "sctp" in pretend:
        return _verdict("sctp", False, f"reported missing by {MISSING_HOOK} (a test hook)", needed, kernel_fix("sctp"))
    if "sctp" not in probe.outputs:  # no iptables-restore, or NETLAB_IPTABLES names none: _iptables says which
        why = _iptables(True, set())[0]
        return _verdict("sctp", False, "not tried: no iptables-restore to load the rules with" + (
            f" ({why.detail})" if why else ""), needed, why.fix if why else packages.install_fix("iptables-restore"))
    status, text = probe.outputs["sctp"]
    if status == 0:
        return Check("sctp", OK, "iptables-restore takes -p sctp -m sctp --dport (a port, a range)", needed=needed)
    first = text.splitlines()[0] if text else "no output"
    return _verdict("sctp", False, f"iptables-restore refuses -p sctp -m sctp --dport ({first})", needed,
                    kernel_fix("sctp"))


def _backend(version: str) -> str:
    """'nft' or 'legacy' from ``iptables-restore v1.8.9 (nf_tables)`` / ``(legacy)``; '' if unknown."""
    match = re.search(r"\((nf_tables|legacy)\)", version)
    return {"nf_tables": "nft", "legacy": "legacy"}.get(match.group(1), "") if match else ""


def diagnose(lab: Lab, needed: set[str], only: Iterable[str] = CHECKS) -> list[Check]:
    """Run the checks in ``only`` (all by default), judged against ``needed``; in report order."""
    only = set(only)
    if "capabilities" in only:  # first of all: root without them fails every other check at its first setns
        allowed = replace(check_capabilities(), needed="capabilities" in needed)  # ALWAYS: every command's
        if allowed.status == FAIL:
            return [replace(allowed, detail=allowed.detail + "; no other check was run (each enters a namespace)")]
    if "open-files" in only:  # first: too few descriptors and every other check fails, blaming the machine
        limit = replace(check_open_files(len(build_plan(lab).netns)), needed="open-files" in needed)
        if limit.status == FAIL:
            return [limit]
    pretend = _pretended_missing()
    out: dict[str, Check] = {}
    commands: dict[str, list[str]] = {}
    if "iptables-restore" in only:
        check, argv = _iptables("iptables-restore" in needed, pretend)
        if check:
            out["iptables-restore"] = check
        if argv:
            commands["iptables-restore"] = argv
    if "sctp" in only and "sctp" not in pretend and "iptables-restore" not in pretend:
        with suppress(EnvironmentNotReady):  # no iptables-restore: the sctp check says it was not tried
            commands["sctp"] = [netfilter.tools()[1], "--noflush"]
    nft_path = _nft_path() if only & {"nf_tables", "nf_netdev"} else None
    if nft_path and "nf_tables" in only:
        commands["nft-kube-proxy"] = [nft_path, KUBE_PROXY_SHAPE]
    if nft_path and "nf_netdev" in only and "nf_netdev" not in pretend:
        commands["nf_netdev"] = [nft_path, NETDEV_SHAPE]
    wanted_kernel = {k for k in only if k in features.FEATURES}
    if only & {"fallback-tunnels", "host-devconf"}:
        wanted_kernel.add("netns")
    probe = (features.probe_kernel(wanted_kernel, commands, devconf="host-devconf" in only,
                                   inputs={"sctp": SCTP_RULES})
             if wanted_kernel or commands else features.KernelProbe())
    for name in pretend & set(features.FEATURES):
        probe.features[name] = features.Feature(name, False, f"reported missing by {MISSING_HOOK} (a test hook)")
    if "iptables-restore" in commands:
        status, text = probe.outputs.get("iptables-restore", (-1, "did not run"))
        backend = _backend(text)
        if status == 0:
            version = re.search(r"v(\d\S*)", text)
            out["iptables-restore"] = Check("iptables-restore", OK, f"{commands['iptables-restore'][0]}, "
                                            f"v{version.group(1) if version else '?'}, {backend or 'unknown'} backend",
                                            needed="iptables-restore" in needed)
        else:
            out["iptables-restore"] = _verdict("iptables-restore", False, f"`{' '.join(commands['iptables-restore'])}` "
                                               f"failed: {text}", "iptables-restore" in needed,
                                               "reinstall iptables (or sudo ./scripts/setup.sh)")
        if backend == "legacy" and "nft" not in needed:
            needed = needed - {"nf_tables"}  # the legacy backend uses x_tables, not nf_tables
    for name in KERNEL:
        if name in only:
            out[name] = (_sctp(probe, name in needed, pretend) if name == "sctp" else
                         _netdev(probe, name in needed, pretend) if name == "nf_netdev" else
                         _kernel(name, probe, name in needed, pretend))
    if "nf_tables" in out and "nft-kube-proxy" in commands:
        out["nf_tables"] = _kube_proxy_shape(out["nf_tables"], probe, "nft" in needed)
    for name in TOOLS:
        if name in only and name != "iptables-restore":
            if name in pretend:
                out[name] = _verdict(name, False, f"reported missing by {MISSING_HOOK} (a test hook)", name in needed,
                                     packages.install_fix(PROGRAMS[name]))
            else:
                out[name] = _tool(name, name in needed)[0]
    if "tcpdump" in out:  # and its libpcap, which capture filters are compiled with
        out["tcpdump"] = with_libpcap(out["tcpdump"], pretend="tcpdump" in pretend)
    if "cni-plugins" in only:
        out["cni-plugins"] = _cni_plugins(lab, "cni-plugins" in needed, pretend)
    if "nft" in out and out["nft"].status == OK:
        out["nft"] = replace(out["nft"], detail=out["nft"].detail + _nft_way())
    if "neighbours" in only:
        out["neighbours"] = check_neighbours(lab)
    if "fallback-tunnels" in only:
        out["fallback-tunnels"] = check_fallback_tunnels(probe)
    if "ipv6" in only:
        out["ipv6"] = check_ipv6()
    if "host-devconf" in only:
        out["host-devconf"] = check_host_devconf(probe)
    if "capabilities" in only:
        out["capabilities"] = allowed
    if "open-files" in only:
        out["open-files"] = limit
    if "taskstats" in only:
        out["taskstats"] = check_taskstats()
    if "exit-status" in only:
        out["exit-status"] = check_exit_status()
    if only & {"state-dir", "state-space"}:
        perm, space = check_state_dir(state_dir.STATE_ROOT, "state-dir" in needed)
        out.update((c.name, c) for c in (perm, space) if c.name in only)
    return [out[name] for name in CHECKS if name in out]


def report(lab: Lab, for_this_lab: bool) -> list[Check]:
    """``netlab doctor``: every check; needed = what ``lab`` needs, or everything netlab uses."""
    return diagnose(lab, needs(lab) if for_this_lab else set(EVERYTHING))


# What `netlab trace` uses on every lab (the kernel's ctnetlink for the conntrack entries, no conntrack program;
# iptables-save of each hop's tables), and so `quiz`, whose answer is a trace: a quiz refuses before it breaks
# anything when one is missing (:func:`require_tools`).
TRACE_TOOLS = ("conntrack", "iptables-restore")


def require_tools(lab: Lab, names: Iterable[str], why: str) -> None:
    """Raise EnvironmentNotReady, ``why`` then the doctor's line of each missing tool in ``names``."""
    names = set(names)
    failed = [c for c in diagnose(lab, names, names) if c.status == FAIL]
    if failed:
        raise EnvironmentNotReady(why + ": " + "; ".join(c.line() for c in failed))


def require_for(lab: Lab, only: Iterable[str] | None = None) -> None:
    """Before ``up`` changes anything: raise EnvironmentNotReady with the doctor's line of each failed check.

    Runs only the checks ``lab`` needs (and, with ``only``, only those of them), never the advisory ones.
    """
    needed = needs(lab) - ADVISORY
    wanted = needed if only is None else needed & set(only)
    wanted -= _PASSED.get()
    if not wanted:
        return
    failed = [c for c in diagnose(lab, needed, wanted) if c.status == FAIL]
    if failed:
        raise EnvironmentNotReady("\n".join(c.line() + asked_by(lab, c.name) for c in failed))


# The impairment options each qdisc serves, and what works without it.
QDISC_OPTIONS = {"netem": (("delay", "jitter"), "rate and loss need no netem"),
                 "tbf": (("rate",), "delay, jitter and loss need no tbf")}


def asked_by(lab: Lab, check: str) -> str:
    """For a missing qdisc (netem, tbf): which interfaces' impairments ask for it, and what to leave out to go
    without it; for the SCTP rules, the policies with SCTP ports; nothing for any other check."""
    from netlab.model.impair import describe

    if check == "sctp" and (pols := sctp_policies(lab)):
        return (f"; asked for by the SCTP ports of network policies {', '.join(pols)}: without it their rules cannot "
                "be written (leave out those ports, or run on a kernel that has it)")
    if check not in QDISC_OPTIONS:
        return ""
    options, rest = QDISC_OPTIONS[check]
    users = [f"{name}:{iface} {describe(imp.spec())}"
             for name, impairs in [(n.name, n.impair) for n in lab.topo.nodes] + [(p.name, p.impair)
                                                                                   for p in lab.topo.pods]
             for iface, imp in impairs.items() if any(getattr(imp, o) for o in options)]
    if not users:
        return ""
    return f"; asked for by {', '.join(users)}: without {check}, leave out {' and '.join(options)} ({rest})"


# The checks that passed at the start of the ``up`` running in this context:
# its features ask for some of them again (Services: br_netfilter, iptables,
# dnsmasq) a moment later; each check tries the kernel in a throwaway namespace
# or runs a tool, so they are not run twice for one ``up``.
_PASSED: ContextVar[frozenset[str]] = ContextVar("netlab_doctor_passed", default=frozenset())


@contextmanager
def required(lab: Lab) -> Iterator[None]:
    """``require_for(lab)``, then, inside the block, its checks count as passed (not run again)."""
    require_for(lab)
    token = _PASSED.set(_PASSED.get() | (needs(lab) - ADVISORY))
    try:
        yield
    finally:
        _PASSED.reset(token)
