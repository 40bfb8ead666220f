"""One doctor check judged from its facts: present, or missing and needed (FAIL) or not (warn, with why the lab
can do without it), with the fix; a kernel feature's fix is modprobe, or a kernel built with it. The test hook
``NETLAB_DOCTOR_MISSING`` (netlab/doctor.py) makes a check see its feature or tool as missing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from netlab.doctor_lines import FAIL, OK, WARN, Check
from netlab.doctor_words import (KERNEL_BUILT_IN, KERNEL_MODULE, KERNEL_NOTE, KERNEL_OTHERWISE, KERNEL_PACKAGE,
                                 KERNEL_RELEASE, NETNS_FIX, WHY)
from netlab.errors import EnvironmentNotReady
from netlab.kernel import features, packages
from netlab.kernel import netns as nsmod

MISSING_HOOK = "NETLAB_DOCTOR_MISSING"

# The program each tool check looks for; its package (the fix) is kernel/packages.py's, as every command says it.
PROGRAMS = {"iptables-restore": "iptables-restore", "conntrack-tool": "conntrack", "dnsmasq": "dnsmasq",
            "nft": "nft", "tcpdump": "tcpdump"}
BR_NETFILTER_DIR = "/proc/sys/net/bridge"


def pretended_missing() -> set[str]:
    return {n.strip() for n in os.environ.get(MISSING_HOOK, "").split(",") if n.strip()}


def verdict(name: str, present: bool, detail: str, needed: bool, fix: str) -> Check:
    if present:
        return Check(name, OK, detail, needed=needed)
    if needed:
        return Check(name, FAIL, detail, fix, needed)
    why = WHY.get(name, "this lab does not need it")
    return Check(name, WARN, f"{detail}; {why}", fix, needed)


def kernel_check(name: str, probe: features.KernelProbe, needed: bool, pretend: set[str]) -> Check:
    if name == "br_netfilter":  # read from the host, not tried: the test hook reaches it here
        present = os.path.isdir(BR_NETFILTER_DIR) and name not in pretend
        missing = f"reported missing by {MISSING_HOOK} (a test hook)" if name in pretend else \
            f"not loaded ({BR_NETFILTER_DIR} is missing)"
        detail = f"{BR_NETFILTER_DIR} exists" if present else missing + (f"; {WHY[name]}" if needed else "")
    else:
        fact = probe.features[name]
        present = fact.available is not False
        detail = fact.detail
    return verdict(name, present, detail, needed, fix_words(name))


IPV6_RULES_FIX = ("boot a kernel with CONFIG_IPV6_MULTIPLE_TABLES and IPv6 (no ipv6.disable=1) (modprobe cannot help: "
                  "IPv6 policy routing is part of the kernel's IPv6 routing, not a module)")


def with_ipv6_rules(check: Check, probe: features.KernelProbe) -> Check:
    """The policy-rules line with what an IPv6 rule, tried beside the IPv4 one, showed: the sbr plugin adds one for
    each address of a pod, an IPv6 one too. A kernel without them (CONFIG_IPV6_MULTIPLE_TABLES, or booted without
    IPv6) is a warning, not a failure: a lab's pods have IPv4 addresses, whose rules it has; a conflist whose IPAM
    also gives an IPv6 address fails at sbr's ADD there."""
    fact = probe.features.get(features.cniprobe.FIB_RULES6)
    if fact is None or check.status != OK:
        return check
    if fact.available is not False:
        return replace(check, detail=f"{check.detail}; {fact.detail}")
    return replace(check, status=WARN, fix=IPV6_RULES_FIX,
                   detail=f"{check.detail}; IPv6 rules missing: an IPv6 rule (from fd00::1 lookup 100): {fact.detail}, "
                          "so the sbr plugin's ADD fails for a pod given an IPv6 address (an IPv4 one works)")


@dataclass(frozen=True)
class KernelFix:
    """How to get a kernel feature, as kernel_fix finds it: ``module``, the module modprobe loads, or None where
    modprobe cannot help (``why`` says why not), and ``config``, the options a kernel is built with it by (``release``:
    the kernel release it came with). ``said``: what the words add beside them (a package of more modules, what
    loading it does besides); ``otherwise``: how the lab can do without it. fix_words says one feature's fix,
    doctor_netfilter.hostport_fix several modules' in one."""

    config: str
    module: str | None = None
    why: str = ""
    said: tuple[str, ...] = ()
    release: str | None = None
    otherwise: str | None = None


def kernel_fix(name: str, files: features.ModuleFiles | None = None) -> KernelFix:
    """How to get a kernel feature (one of KERNEL_MODULE's or KERNEL_BUILT_IN's): ``modprobe`` where that can load
    it; where it cannot (a kernel without module support, loading switched off, no module on disk for it), a kernel
    built with it. ``files``: where the kernel's modules are said (features.module_files(), this machine's, by
    default)."""
    if name in KERNEL_BUILT_IN:
        config, why = KERNEL_BUILT_IN[name]
        return KernelFix(config, why=why, release=KERNEL_RELEASE.get(name))
    module, config = KERNEL_MODULE[name]
    otherwise = KERNEL_OTHERWISE.get(name)
    unavailable = features.module_unavailable(module, files)
    if unavailable is None:
        said = tuple(s for s in (KERNEL_PACKAGE.get(name), KERNEL_NOTE.get(name)) if s)
        return KernelFix(config, module, said=said, otherwise=otherwise)
    # The package that has the module helps only a kernel that loads modules and whose module tree is
    # here, without it. A kernel built without module support (this VM's: no /proc/modules), with loading
    # switched off, or whose modules are not on this machine (booted from outside the disk) needs
    # another kernel, whatever is installed.
    package = KERNEL_PACKAGE.get(name) if features.module_tree_lacks(module, files) else None
    return KernelFix(config, why=unavailable, said=(package,) if package else (), otherwise=otherwise)


def fix_words(name: str, files: features.ModuleFiles | None = None) -> str:
    """A kernel feature's fix, in the doctor's words: ``modprobe MODULE (CONFIG...)``, or ``boot a kernel with
    CONFIG... (modprobe cannot help: why)`` (kernel_fix's), or the network namespaces' own."""
    if name == "netns":
        return NETNS_FIX
    fix = kernel_fix(name, files)
    if fix.module is not None:
        words = f"modprobe {fix.module} ({'; '.join([fix.config, *fix.said])})"
    else:
        release = f" >= {fix.release}" if fix.release else ""
        words = f"boot a kernel{release} with {fix.config} (modprobe cannot help: {'; '.join([fix.why, *fix.said])})"
    return f"{words}, {fix.otherwise}" if fix.otherwise else words


def tool_check(name: str, needed: bool) -> tuple[Check, str | None]:
    """The check of one tool and its absolute path (None when missing)."""
    command = PROGRAMS[name]
    fix = packages.install_fix(command)
    try:
        path = nsmod.binary(command)
    except EnvironmentNotReady:
        return verdict(name, False, nsmod.not_found(command), needed, fix), None
    return verdict(name, True, path, needed, fix), path


def ran_version(check: Check, probe: features.KernelProbe, key: str) -> Check:
    """A found tool's line, told whether ``TOOL --version`` (``key`` in the probe, run in its throwaway namespace)
    runs: a dnsmasq that is there but does not start (a missing library, a wrong architecture) made `up` of a lab
    with kube-dns say its containers started while kube-dns was in Error (QA mf63 defect 5)."""
    if check.status != OK or key not in probe.outputs:
        return check
    status, text = probe.outputs[key]
    first = text.strip().splitlines()[0] if text.strip() else "no output"
    if status == 0:
        return replace(check, detail=f"{check.detail}, {first}")
    fix = packages.install_fix(PROGRAMS[check.name]).replace("apt-get install ", "apt-get install --reinstall ", 1)
    return verdict(check.name, False, f"{check.detail} does not run: `{PROGRAMS[check.name]} --version` failed "
                   f"({first})", check.needed, fix)
