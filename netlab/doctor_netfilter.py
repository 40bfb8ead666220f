"""The doctor's netfilter checks: the iptables-restore netlab runs and its backend, the kernel's SCTP match for a
policy's SCTP ports, the matches and targets of portmap's rules for a builtin lab's hostPorts, kube-proxy's
nftables objects (nf_tables) and how nft gets its transactions, and the netdev chains of loss impairments
(nf_netdev). Each is tried in the throwaway namespace (:mod:`netlab.kernel.features`), never in the host's.
"""

from __future__ import annotations

import re
from dataclasses import replace

from netlab.doctor_lines import FAIL, OK, Check
from netlab.doctor_nft import KUBE_PROXY_SHAPE, NETDEV_SHAPE
from netlab.doctor_verdict import MISSING_HOOK, PROGRAMS, fix_words, kernel_fix, verdict
from netlab.doctor_words import WHY
from netlab.errors import EnvironmentNotReady
from netlab.kernel import features, packages
from netlab.kernel import netns as nsmod
from netlab.realize import netfilter

# A policy's SCTP port as plan/policy.py writes it (a port, a range), loaded for real by the iptables-restore netlab
# runs, in the throwaway namespace (which the kernel frees with it): the kernel takes the rules SCTP ports need.
SCTP_RULES = "\n".join(("*filter", ":NETLAB-DOCTOR-SCTP - [0:0]",
                         "-A NETLAB-DOCTOR-SCTP -p sctp -m sctp --dport 9 -j RETURN",
                         "-A NETLAB-DOCTOR-SCTP -p sctp -m sctp --dport 20:22 -j RETURN", "COMMIT", ""))


# The tables netlab's rules go in, made by the iptables-restore netlab runs, in the throwaway namespace: with the
# legacy backend on a kernel built without legacy iptables (CONFIG_IP_NF_IPTABLES_LEGACY off: "can't initialize
# iptables table `filter': Table does not exist"), every rule write fails, though `--version` answers.
TABLES_RULES = "\n".join(("*filter", ":NETLAB-DOCTOR-T - [0:0]", "COMMIT", "*nat", ":NETLAB-DOCTOR-T - [0:0]", "COMMIT",
                          ""))
NFT_BACKEND = ("use the nft backend: NETLAB_IPTABLES=nft, or make it the machine's (update-alternatives --set "
               "iptables /usr/sbin/iptables-nft)")


# portmap's rules for a builtin lab's hostPorts (plan/portmap_rules.py), by what of the kernel each needs: its
# dispatch's multiport match, its PREROUTING/OUTPUT jumps' addrtype match, the mark match and MARK target of its
# hairpin and localhost marks, its MASQUERADE of them and the pod's DNAT. Each loaded on its own into the nat table
# (a chain of its own) by the iptables-restore netlab runs, in the throwaway namespace, so that the line names every
# one the kernel refuses: (its rule, what it is in the line).
HOSTPORT_RULES = {
    "multiport": ("-p tcp -m multiport --destination-ports 18080,18081 -j RETURN", "the multiport match"),
    "addrtype": ("-m addrtype --dst-type LOCAL -j RETURN", "the addrtype match"),
    "mark": ("-m mark --mark 0x2000/0x2000 -j MARK --set-xmark 0x2000/0x2000", "the mark match and MARK target"),
    "MASQUERADE": ("-m mark --mark 0x2000/0x2000 -j MASQUERADE", "the MASQUERADE target"),
    "DNAT": ("-p tcp --dport 18080 -j DNAT --to-destination 10.244.0.2:8080", "the DNAT target"),
}


def hostport_input(part: str) -> str:
    """The iptables-restore input of one part of portmap's rules (HOSTPORT_RULES)."""
    chain = f"NETLAB-DOCTOR-HP-{part.upper()}"
    return "\n".join(("*nat", f":{chain} - [0:0]", f"-A {chain} {HOSTPORT_RULES[part][0]}", "COMMIT", ""))


def nft_shapes(only: set[str], pretend: set[str]) -> dict[str, tuple[str, bool]]:
    """What the doctor has nft run in its throwaway namespace, by probe: (command, as JSON). ``nft-json``: as status
    and up read a lab's tables; ``nft-kube-proxy`` and ``nf_netdev``: kube-proxy's objects and loss's chains."""
    shapes: dict[str, tuple[str, bool]] = {}
    if "nft" in only and "nft" not in pretend:
        shapes["nft-json"] = ("list tables", True)
    if "nf_tables" in only:
        shapes["nft-kube-proxy"] = (KUBE_PROXY_SHAPE, False)
    if "nf_netdev" in only and "nf_netdev" not in pretend:
        shapes["nf_netdev"] = (NETDEV_SHAPE, False)
    return shapes


def nft_in_library(shapes: dict[str, tuple[str, bool]]) -> dict[str, tuple[int, str]]:
    """The probes of ``shapes`` through libnftables, in a throwaway namespace of their own, where netlab uses the
    library alone (no nft program: kernel/nft.library_alone); {} elsewhere (the lines say they were not tried)."""
    from netlab.kernel import nft

    try:
        if not nft.library_alone():
            return {}
        return features.in_throwaway_netns(lambda: nft.in_library(shapes))  # type: ignore[return-value]
    except EnvironmentNotReady:
        return {}  # a NETLAB_NFT that names no way: nft_setting fails the line for it
    except Exception as exc:  # noqa: BLE001 - a namespace that could not be made, a timeout: each line says it
        return {name: (-1, str(exc) or type(exc).__name__) for name in shapes}


def without_program(check: Check) -> Check:
    """The nft line where the program is missing and netlab does not need it: it writes and reads nftables through
    libnftables alone (kernel/nft.py), so an ok line, not the FAIL that refused `up` (QA hostenv57 5)."""
    from netlab.kernel import nft

    from netlab.kernel import libnftables

    try:
        if check.status == OK:
            return check
        if not nft.library_alone():
            if nft.mode() == "process" and libnftables.load() is not None and check.fix:  # the library would do
                return replace(check, fix=f"{check.fix}, or unset {nft.ENV} (netlab then writes and reads nftables "
                               f"through {libnftables.SONAME}, which loads here)")
            return check
    except EnvironmentNotReady:
        return check  # NETLAB_NFT names no way: nft_setting says it
    return Check("nft", OK, f"the nft program is not installed ({nsmod.looked_in()}): netlab "
                 "does not need it (you would, to run nft yourself: apt-get install nftables)", needed=check.needed)


def nft_way() -> str:
    """How netlab gives nft its transactions here (kernel/nft.py): in its own process through libnftables, or
    by running the program."""
    from netlab.kernel import libnftables, nft

    if nft.mode() == "process":
        return f"; transactions run the program ({nft.ENV}=process)"
    if libnftables.load() is None:
        return f"; {libnftables.SONAME} does not load ({libnftables.load_error()}): transactions run the program"
    return f"; transactions in netlab's process through {libnftables.SONAME}"


def nft_setting(check: Check) -> Check:
    """The nft line: an OK one says how transactions reach nft; a NETLAB_NFT that names no way fails it, found
    or not, as every command on a lab refuses it up front (realize/backend.settings), like NETLAB_IPTABLES."""
    from netlab.kernel import nft

    try:
        nft.mode()
    except EnvironmentNotReady as exc:
        fix = f"unset {nft.ENV} (the library when it loads, else the nft program), or set it to library or process"
        return replace(check, status=FAIL, detail=f"{check.detail}; {exc}",
                       fix=f"{check.fix}; {fix}" if check.status != OK and check.fix else fix)
    return replace(check, detail=check.detail + nft_way()) if check.status == OK else check


def library_json() -> str | None:
    """Why libnftables cannot list as JSON, tried in a throwaway namespace; None when it can, or when netlab does
    not use the library here (kernel/nft.library_json_error)."""
    from netlab.kernel import nft

    try:
        found: str | None = features.in_throwaway_netns(nft.library_json_error)  # type: ignore[assignment]
    except EnvironmentNotReady:
        return None  # a NETLAB_NFT that names no way: nft_setting fails the line for it
    except Exception as exc:  # noqa: BLE001 - a namespace that could not be made, a timeout: said as the reason
        return str(exc) or type(exc).__name__
    return found


def nft_json(check: Check, probe: features.KernelProbe) -> Check:
    """The nft line, told whether nft answers as JSON: ``nft -j list tables`` in the throwaway namespace and, when
    netlab uses it, the library's JSON. status, trace and an ``up`` of a running lab read the lab's tables so
    (an nft built without JSON prints "Error: JSON support not compiled-in")."""
    from netlab.kernel import libnftables, nft

    if check.status != OK or "nft-json" not in probe.outputs:
        return check
    problems: list[tuple[str, str]] = []
    status, text = probe.outputs["nft-json"]
    first = text.splitlines()[0] if text else "no output"
    if nft.did_not_start(status, text):
        problems.append((f"the nft program does not start ({first})", nft.LIBRARY_FIX))
    elif status != 0:
        problems.append((f"`nft -j list tables` fails ({first})", nft.fix_for(text) or nft.JSON_FIX))
    library = library_json()
    if library is not None:
        problems.append((f"{libnftables.SONAME} cannot list as JSON ({library})", nft.fix_for(library) or
                         nft.JSON_FIX))
    if not problems:
        return check
    detail = "; ".join([check.detail, *(d for d, _ in problems)])
    if any(f == nft.JSON_FIX for _, f in problems):
        detail += "; netlab reads a lab's nftables as JSON (status, trace, up of a running lab)"
    return verdict("nft", False, detail, check.needed, "; ".join(dict.fromkeys(f for _, f in problems)))


def iptables_check(needed: bool, pretend: set[str]) -> tuple[Check | None, list[str] | None]:
    """The iptables-restore netlab will run (NETLAB_IPTABLES picks nft or legacy) and its --version argv."""
    fix = packages.install_fix("iptables-restore")
    if "iptables-restore" in pretend:
        return verdict("iptables-restore", False, f"iptables-restore is missing ({MISSING_HOOK}, a test hook)",
                        needed, fix), None
    try:
        _, restore = netfilter.tools()
    except EnvironmentNotReady as exc:
        if "NETLAB_IPTABLES" in str(exc):
            fix = "unset NETLAB_IPTABLES (the system's default backend), or set it to nft or legacy"
        return verdict("iptables-restore", False, str(exc).split(";")[0], needed, fix), None
    return None, [restore, "--version"]


def legacy_tables(check: Check, probe: features.KernelProbe, needed: bool) -> Check:
    """The iptables-restore line of the legacy backend, told whether that backend's tables can be made (TABLES_RULES,
    loaded in the throwaway namespace): a FAIL naming the nft backend when the kernel has no legacy iptables."""
    status, text = probe.outputs.get("iptables-tables", (0, ""))
    if status == 0:
        return check
    first = text.splitlines()[0] if text else "no output"
    return verdict("iptables-restore", False, f"{check.detail}, whose tables cannot be made here (`iptables-restore` "
                   f"of an empty filter and nat table: {first}): this kernel has no legacy iptables "
                   "(CONFIG_IP_NF_IPTABLES_LEGACY, iptable_filter, iptable_nat)", needed, NFT_BACKEND)


def not_tried(name: str, restore: Check | None, needed: bool) -> Check | None:
    """The sctp or hostport line when the iptables-restore that would load its rules fails itself (does not run, or
    cannot make its tables): not tried, with that line's fix, not a kernel config's; None otherwise."""
    if restore is None or restore.status == OK:
        return None
    return verdict(name, False, f"not tried: the iptables-restore to load the rules with fails ({restore.detail})",
                   needed, restore.fix or packages.install_fix("iptables-restore"))


def netdev_check(probe: features.KernelProbe, needed: bool, pretend: set[str]) -> Check:
    """Does the kernel take loss impairments' chains (netdev ingress and egress hooks, numgen)?"""
    if "nf_netdev" in pretend:
        return verdict("nf_netdev", False, f"reported missing by {MISSING_HOOK} (a test hook)", needed,
                        fix_words("nf_netdev"))
    if "nf_netdev" not in probe.outputs:
        return verdict("nf_netdev", False, "not tried: no nft to load the chains with", needed,
                        packages.install_fix(PROGRAMS["nft"]))
    status, text = probe.outputs["nf_netdev"]
    if nft_did_not_start(status, text):
        return verdict("nf_netdev", False, f"not tried: the nft program does not start ({text.splitlines()[0]})",
                        needed, nft_library_fix())
    if status == 0:
        return Check("nf_netdev", OK, "netdev chains on a device's ingress and egress hooks with a numgen random "
                     "drop load (loss impairments)", needed=needed)
    first = text.splitlines()[0] if text else "no output"
    detail = f"nft refuses netdev ingress/egress chains with numgen ({first})"
    return verdict("nf_netdev", False, detail + (f"; {WHY['nf_netdev']}" if needed else ""), needed,
                    fix_words("nf_netdev"))


def nft_did_not_start(status: int, text: str) -> bool:
    from netlab.kernel import nft

    return nft.did_not_start(status, text)


def nft_library_fix() -> str:
    from netlab.kernel import nft

    return nft.LIBRARY_FIX


def find_nft() -> str | None:
    try:
        return nsmod.binary("nft")
    except EnvironmentNotReady:
        return None


def kube_proxy_shape(check: Check, probe: features.KernelProbe, needed: bool) -> Check:
    """The nf_tables check, told whether kube-proxy's nftables objects load (``nft`` in the throwaway netns)."""
    status, text = probe.outputs.get("nft-kube-proxy", (-1, "did not run"))
    if status == 0:
        if check.status != OK:
            return check
        return Check("nf_tables", OK, f"{check.detail}; kube-proxy's nftables objects (verdict maps, numgen, "
                     "dynamic sets with timeouts, dnat, masquerade fully-random) load", needed=check.needed)
    first = text.splitlines()[0] if text else "no output"
    if nft_did_not_start(status, text):  # nft's library, not the kernel: the kernel was not asked
        return verdict("nf_tables", False, f"{check.detail}; kube-proxy's nftables objects not tried: the nft program "
                        f"does not start ({first})", needed, nft_library_fix())
    detail = f"{check.detail}; kube-proxy's nftables objects do not load (`nft`: {first})"
    return verdict("nf_tables", False, detail, needed, fix_words("nf_tables"))


def sctp_check(probe: features.KernelProbe, needed: bool, pretend: set[str], restore: Check | None = None) -> Check:
    """Does the kernel take a policy's SCTP rules (``-p sctp -m sctp --dport``)? ``restore``: the iptables-restore
    line (its failure is said, not blamed on the kernel)."""
    if "sctp" in pretend:
        return verdict("sctp", False, f"reported missing by {MISSING_HOOK} (a test hook)", needed, fix_words("sctp"))
    if "sctp" not in probe.outputs:  # no iptables-restore, or NETLAB_IPTABLES names none: iptables_check says which
        why = iptables_check(True, set())[0]
        return verdict("sctp", False, "not tried: no iptables-restore to load the rules with" + (
            f" ({why.detail})" if why else ""), needed, why.fix if why else packages.install_fix("iptables-restore"))
    if (failed := not_tried("sctp", restore, needed)) is not None:
        return failed
    status, text = probe.outputs["sctp"]
    if status == 0:
        return Check("sctp", OK, "iptables-restore takes -p sctp -m sctp --dport (a port, a range)", needed=needed)
    first = text.splitlines()[0] if text else "no output"
    return verdict("sctp", False, f"iptables-restore refuses -p sctp -m sctp --dport ({first})", needed,
                    fix_words("sctp"))


def hostport_check(probe: features.KernelProbe, needed: bool, pretend: set[str], restore: Check | None = None
                   ) -> Check:
    """Does the kernel take portmap's rules for a builtin lab's hostPorts (HOSTPORT_RULES)? The line names each part
    it refuses, and the fix its module; ``restore``: as sctp_check's."""
    if "hostport" in pretend:
        return verdict("hostport", False, f"reported missing by {MISSING_HOOK} (a test hook)", needed,
                        hostport_fix(list(HOSTPORT_RULES)))
    tried = {part: probe.outputs[f"hostport:{part}"] for part in HOSTPORT_RULES if f"hostport:{part}" in probe.outputs}
    if not tried:  # no iptables-restore, or NETLAB_IPTABLES names none: iptables_check says which
        why = iptables_check(True, set())[0]
        return verdict("hostport", False, "not tried: no iptables-restore to load the rules with" + (
            f" ({why.detail})" if why else ""), needed, why.fix if why else packages.install_fix("iptables-restore"))
    if (failed := not_tried("hostport", restore, needed)) is not None:
        return failed
    refused = {part: text for part, (status, text) in tried.items() if status != 0}
    if not refused:
        return Check("hostport", OK, "iptables-restore takes portmap's nat rules (multiport, addrtype, mark and MARK, "
                     "MASQUERADE, DNAT)", needed=needed)
    said = [f"{HOSTPORT_RULES[part][1]} ({text.splitlines()[0] if text else 'no output'})"
            for part, text in refused.items()]
    detail = f"iptables-restore refuses portmap's nat rules: {', '.join(said)}"
    return verdict("hostport", False, detail + (f"; {WHY['hostport']}" if needed else ""), needed,
                    hostport_fix(list(refused)))


def hostport_fix(parts: list[str]) -> str:
    """How to get those parts of portmap's rules: one ``modprobe -a`` of the modules that can be loaded, and a kernel
    built with the others (doctor_verdict.kernel_fix's, each reason said once)."""
    fixes = [kernel_fix(f"hostport:{part}") for part in parts]
    loadable = [(fix.module, fix.config) for fix in fixes if fix.module is not None]
    others = [fix for fix in fixes if fix.module is None]
    out = []
    if loadable:
        out.append(f"modprobe -a {' '.join(m for m, _ in loadable)} ({', '.join(c for _, c in loadable)})")
    if others:
        whys = dict.fromkeys("; ".join([fix.why, *fix.said]) for fix in others)
        out.append(f"boot a kernel with {', '.join(fix.config for fix in others)} (modprobe cannot help: "
                   + "; ".join(whys) + ")")
    return "; ".join(out)


def iptables_backend(version: str) -> str:
    """'nft' or 'legacy' from ``iptables-restore v1.8.9 (nf_tables)`` / ``(legacy)``; '' if unknown."""
    match = re.search(r"\((nf_tables|legacy)\)", version)
    return {"nf_tables": "nft", "legacy": "legacy"}.get(match.group(1), "") if match else ""
