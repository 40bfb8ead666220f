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

The checks of the machine as a whole are netlab/doctor_host.py's; the netfilter ones (iptables-restore, SCTP
rules, hostPort rules, nf_tables, nf_netdev) netlab/doctor_netfilter.py's; one check's verdict and fix, a kernel
feature's and a tool's, netlab/doctor_verdict.py's; what a lab needs, netlab/doctor_needs.py's; the words beside
a verdict (why, which module) netlab/doctor_words.py's; the names, titles and levels of all checks,
netlab/doctor_lines.py's.

What a lab needs is read from its plan: veth and bridge always, vxlan for a
``vxlan`` overlay, br_netfilter for the plan's ``net.bridge.*`` sysctl,
iptables-restore, conntrack (and nf_tables, for the nft backend) for its NAT
rules, dnsmasq for the cluster DNS pod,
the CNI plugins (each asked VERSION, netlab.cni.check) when ``network.cni``
is not ``builtin``, the kernel's SCTP rules (SCTP_RULES loaded by iptables-restore in the
throwaway namespace) when a NetworkPolicy has an SCTP port, the matches and targets of portmap's
rules (HOSTPORT_RULES, each loaded on its own there) when a builtin lab writes them for hostPorts, multipath
routing (the gateway's hash sysctls and a route of two nexthops, kernel/mpathprobe.py) when the internet gateway
routes LoadBalancer IPs (written for one node too: up writes the sysctls whatever the hops), and what the
plugins of a ``network.cni: {conflist: FILE}`` make (doctor_needs.CNI_PLUGIN_NEEDS and
field_needs: a macvlan, ipvlan, vlan or vrf link, sbr's policy rules (an IPv6 one tried beside
the IPv4 one: missing, a warning on that line), bridge and ptp's
veths, a VLAN-filtering bridge for the bridge's vlan or vlanTrunk (a vlanTrunk the plugin found does not
read, Debian 12's 1.1.1, asks nothing: the CNI plugins line warns, cni/fields.py), portmap's and
firewall's iptables chains, bandwidth's tbf, and for an egress rate its ifb, ingress
qdisc, u32 filter and mirred redirect), each made in the throwaway namespace
(kernel/cniprobe.py); those are checked only for such a lab, and each line says
what in the conflist asks for it (its JSON's ``items``).
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

from netlab.doctor_host import (check_capabilities, check_container_logs, check_exit_status, check_fallback_tunnels,
                                check_host_devconf, check_ipv6, check_neighbours, check_open_files, check_pod_files,
                                check_state_dir,
                                check_taskstats, with_libpcap)
from netlab.doctor_install import check_install
from netlab.doctor_lines import (ADVISORY, ALWAYS, CHECKS, CNI, CNI_FEATURES, EVERYTHING, FAIL, HOST, INFO, KERNEL,
                                 OK, TITLES, TOOLS, WARN, Check)
from netlab.doctor_needs import asked_by, needs, with_askers
from netlab.doctor_netfilter import (HOSTPORT_RULES, SCTP_RULES, TABLES_RULES, find_nft, hostport_check, hostport_input,
                                     iptables_backend, iptables_check, kube_proxy_shape, legacy_tables, netdev_check,
                                     nft_in_library, nft_json, nft_setting, nft_shapes, sctp_check, without_program)
from netlab.doctor_verdict import (MISSING_HOOK, PROGRAMS, kernel_check, pretended_missing, ran_version, tool_check,
                                   verdict, with_ipv6_rules)
from netlab.errors import EnvironmentNotReady
from netlab.kernel import caps, features, packages
from netlab.model.lab import Lab
from netlab.plan.build import build_plan
from netlab.realize import netfilter, state_dir

__all__ = ["ADVISORY", "ALWAYS", "CHECKS", "CNI", "CNI_FEATURES", "EVERYTHING", "FAIL", "HOST", "INFO", "KERNEL", "OK",
           "TITLES", "TOOLS", "TRACE_TOOLS", "WARN", "Check", "needs", "diagnose", "report", "require_for",
           "require_tools", "required"]


def _cni_plugins(lab: Lab, needed: bool, pretend: set[str]) -> Check:
    """The plugins the lab runs (Debian's, for a builtin lab), each found and asked VERSION (netlab.cni.check,
    the same answers as netlab validate's)."""
    from netlab.cni import check as cni  # runs the plugins: loaded only for this check
    from netlab.cni.fields import TRUNK_AND_VLAN, lab_ignored_fields, unread_fields

    found = cni.verdict(lab, f"{MISSING_HOOK} (a test hook)" if "cni-plugins" in pretend else "")
    items = tuple(a.to_json() for a in found.answers)
    check = replace(verdict("cni-plugins", found.present, found.detail, needed, found.fix), items=items)
    unread = lab_ignored_fields(lab) if check.status == OK else []
    if not unread:
        return check
    # A field this plugin is too old to read: no refusal for what it would need (it never uses it), but said
    fields = " and ".join(sorted({i.field for i in unread}))
    newer = (f"put a {' and '.join(sorted({i.plugin for i in unread}))} plugin of containernetworking-plugins "
             f"{max(i.since for i in unread)} or newer in network.cni.binDir")
    if any(TRUNK_AND_VLAN in i.effect for i in unread):  # a newer bridge refuses the trunk beside the vlan
        newer = f"leave out vlan and {newer}"
    return replace(check, status=WARN, detail=f"{check.detail}; {'; '.join(unread_fields(lab, unread))}",
                   fix=f"leave out {fields}, or {newer}")


def _capabilities(needed: set[str]) -> Check:
    """The capabilities line: every command's (caps.NEEDED), CAP_SYS_PTRACE (caps.PROCESSES: `up` and `down` read
    other processes' namespaces), dnsmasq's for a lab with kube-dns, CAP_NET_RAW where
    everything netlab uses is asked for (plain `netlab doctor`); for a lab, CAP_NET_RAW is a warning (its `up` does
    without it; probe, trace and capture refuse without it)."""
    required = {**caps.NEEDED, **caps.PROCESSES, **(caps.DNS if "dnsmasq" in needed else {})}
    packets = EVERYTHING <= needed
    return check_capabilities({**required, **(caps.PACKETS if packets else {})}, {} if packets else caps.PACKETS)


def diagnose(lab: Lab, needed: set[str], only: Iterable[str] = CHECKS,
             probed: list[features.KernelProbe] | None = None) -> list[Check]:
    """Run the checks in ``only`` (all by default), judged against ``needed``; in report order. ``probed``: given the
    kernel probe, which then also reads what a new namespace copies from the host (up's, doctor.required)."""
    only = set(only)
    if "capabilities" in only:  # first of all: root without them fails every other check at its first setns
        allowed = replace(_capabilities(needed), needed="capabilities" in needed)  # ALWAYS: every command's
        if allowed.status == FAIL and (caps.missing() or caps.user_namespace()):
            return [replace(allowed, detail=allowed.detail + "; no other check was run (each enters a namespace)")]
    if "open-files" in only:  # first: too few descriptors and every other check fails, blaming the machine
        limit = replace(check_open_files(len(build_plan(lab).netns)), needed="open-files" in needed)
        if limit.status == FAIL:
            return [limit]
    pretend = pretended_missing()
    out: dict[str, Check] = {}
    commands: dict[str, list[str]] = {}
    if "iptables-restore" in only:
        check, argv = iptables_check("iptables-restore" in needed, pretend)
        if check:
            out["iptables-restore"] = check
        if argv:
            commands["iptables-restore"] = argv
            commands["iptables-tables"] = [argv[0], "--noflush"]  # its backend's tables made: judged for legacy
    if "sctp" in only and "sctp" not in pretend and "iptables-restore" not in pretend:
        with suppress(EnvironmentNotReady):  # no iptables-restore: the sctp check says it was not tried
            commands["sctp"] = [netfilter.tools()[1], "--noflush"]
    if "hostport" in only and "hostport" not in pretend and "iptables-restore" not in pretend:
        with suppress(EnvironmentNotReady):  # no iptables-restore: the hostport check says it was not tried
            commands.update({f"hostport:{part}": [netfilter.tools()[1], "--noflush"] for part in HOSTPORT_RULES})
    if "dnsmasq" in only and "dnsmasq" not in pretend:  # found: its --version run too (doctor_verdict.ran_version)
        dnsmasq = tool_check("dnsmasq", True)[1]
        if dnsmasq is not None:
            commands["dnsmasq-version"] = [dnsmasq, "--version"]
    nft_path = find_nft() if only & {"nf_tables", "nf_netdev", "nft"} else None
    shapes = nft_shapes(only, pretend)
    if nft_path:
        commands.update({name: [nft_path, "-j", *command.split()] if as_json else [nft_path, command]
                         for name, (command, as_json) in shapes.items()})
    wanted_kernel = {k for k in only if k in features.FEATURES}
    if "fib_rules" in wanted_kernel:  # sbr's IPv6 rules, tried beside its IPv4 ones: said on the same line
        wanted_kernel.add(features.cniprobe.FIB_RULES6)
    if only & {"fallback-tunnels", "host-devconf"}:
        wanted_kernel.add("netns")
    probe = (features.probe_kernel(wanted_kernel, commands, devconf="host-devconf" in only or probed is not None,
                                   inputs={"sctp": SCTP_RULES, "iptables-tables": TABLES_RULES,
                                           **{f"hostport:{part}": hostport_input(part) for part in HOSTPORT_RULES}})
             if wanted_kernel or commands else features.KernelProbe())
    if probed is not None:
        probed.append(probe)
    if shapes and not nft_path:  # no program: through the library, as netlab then writes and reads (QA hostenv57 5)
        probe.outputs.update(nft_in_library(shapes))
    for name in pretend & set(features.FEATURES):
        probe.features[name] = features.Feature(name, False, f"reported missing by {MISSING_HOOK} (a test hook)")
    if "iptables-restore" in commands:
        status, text = probe.outputs.get("iptables-restore", (-1, "did not run"))
        backend = iptables_backend(text)
        if status == 0:
            version = re.search(r"v(\d\S*)", text)
            out["iptables-restore"] = Check("iptables-restore", OK, f"{commands['iptables-restore'][0]}, "
                                            f"v{version.group(1) if version else '?'}, {backend or 'unknown'} backend",
                                            needed="iptables-restore" in needed)
        else:
            out["iptables-restore"] = verdict("iptables-restore", False, f"`{' '.join(commands['iptables-restore'])}` "
                                               f"failed: {text}", "iptables-restore" in needed,
                                               "reinstall iptables (or sudo ./scripts/setup.sh)")
        if backend == "legacy" and status == 0:  # a kernel without legacy iptables: its tables cannot be made
            out["iptables-restore"] = legacy_tables(out["iptables-restore"], probe, "iptables-restore" in needed)
        if backend == "legacy" and "nft" not in needed and out["iptables-restore"].status == OK:
            needed = needed - {"nf_tables"}  # the legacy backend uses x_tables, not nf_tables
    for name in KERNEL:
        if name in only:
            restore = out.get("iptables-restore")
            out[name] = (sctp_check(probe, name in needed, pretend, restore) if name == "sctp" else
                         hostport_check(probe, name in needed, pretend, restore) if name == "hostport" else
                         netdev_check(probe, name in needed, pretend) if name == "nf_netdev" else
                         kernel_check(name, probe, name in needed, pretend))
    if "fib_rules" in out:
        out["fib_rules"] = with_ipv6_rules(out["fib_rules"], probe)
    if "nf_tables" in out and "nft-kube-proxy" in probe.outputs:
        out["nf_tables"] = kube_proxy_shape(out["nf_tables"], probe, "nft" in needed)
    for name in TOOLS:
        if name in only and name != "iptables-restore":
            if name in pretend:
                out[name] = verdict(name, False, f"reported missing by {MISSING_HOOK} (a test hook)", name in needed,
                                     packages.install_fix(PROGRAMS[name]))
            else:
                out[name] = tool_check(name, name in needed)[0]
    if "dnsmasq" in out:
        out["dnsmasq"] = ran_version(out["dnsmasq"], probe, "dnsmasq-version")
    if "tcpdump" in out:  # and its libpcap, which capture filters are compiled with
        out["tcpdump"] = with_libpcap(out["tcpdump"], pretend="tcpdump" in pretend)
    if "cni-plugins" in only:
        out["cni-plugins"] = _cni_plugins(lab, "cni-plugins" in needed, pretend)
    if "nft" in out:
        out["nft"] = nft_json(nft_setting(without_program(out["nft"])), probe)
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
    if "container-logs" in only:
        out["container-logs"] = check_container_logs(state_dir.STATE_ROOT)
    if "pod-files" in only:
        out["pod-files"] = check_pod_files("pod-files" in needed)
    if "install" in only:  # who can change the code root runs (doctor_install.py)
        out["install"] = check_install()
    return [out[name] for name in CHECKS if name in out]


def report(lab: Lab, for_this_lab: bool) -> list[Check]:
    """``netlab doctor``: every check; needed = what ``lab`` needs, or everything netlab uses."""
    needed = needs(lab) if for_this_lab else set(EVERYTHING)
    checks = diagnose(lab, needed, [c for c in CHECKS if c not in CNI_FEATURES or c in needed])
    return with_askers(lab, checks) if for_this_lab else checks


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


def require_for(lab: Lab, only: Iterable[str] | None = None,
                probed: list[features.KernelProbe] | None = None) -> None:
    """Before ``up`` changes anything: raise EnvironmentNotReady with the doctor's line of each failed check.

    Runs only the checks ``lab`` needs (and, with ``only``, only those of them), never the advisory ones. A user who
    is not root (``Lab.up`` without sudo, a NETLAB_STATE_DIR of their own) is told so, as the CLI tells them: not
    the host-capabilities check's line for root in an unprivileged container.
    """
    if os.geteuid() != 0:
        raise EnvironmentNotReady("netlab needs root: a lab is made of network namespaces; run it with sudo")
    needed = needs(lab) - ADVISORY
    wanted = needed if only is None else needed & set(only)
    wanted -= _PASSED.get()
    if not wanted:
        return
    failed = with_askers(lab, [c for c in diagnose(lab, needed, wanted, probed) if c.status == FAIL])
    if failed:
        raise EnvironmentNotReady("\n".join(c.line() + asked_by(lab, c.name) for c in failed))


# The checks that passed at the start of the ``up`` running in this context:
# its features ask for some of them again (Services: br_netfilter, iptables,
# dnsmasq) a moment later; each check tries the kernel in a throwaway namespace
# or runs a tool, so they are not run twice for one ``up``.
_PASSED: ContextVar[frozenset[str]] = ContextVar("netlab_doctor_passed", default=frozenset())


@contextmanager
def required(lab: Lab, moot: Iterable[str] = ()) -> Iterator[None]:
    """``require_for(lab)``, then, inside the block, its checks count as passed (not run again), and what its kernel
    probe's throwaway namespace got from the host is what up's reading of it finds (features.inherited_devconf): one
    throwaway namespace for both (each ~3-18 ms of wall, and its destruction the kernel's work meanwhile).
    ``moot``: checks this up does not need (pod-files where it writes nothing in /etc/netns), counted as passed."""
    probed: list[features.KernelProbe] = []
    skipped = _PASSED.set(_PASSED.get() | frozenset(moot))
    try:
        require_for(lab, probed=probed)
    finally:
        _PASSED.reset(skipped)
    token = _PASSED.set(_PASSED.get() | (needs(lab) - ADVISORY))
    try:
        with features.devconf_seen(probed[0].devconf if probed else None):
            yield
    finally:
        _PASSED.reset(token)
