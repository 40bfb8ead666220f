"""The doctor's checks of the machine as a whole ("host" lines): its shared neighbour table, what a new
namespace is born with (links, IPv4 settings) and whether the kernel has IPv6, how container exits can
be learnt, and the state directory. Facts are read, never changed: the host's namespace is not touched.
"""

from __future__ import annotations

import os
import resource
import stat
from dataclasses import replace

from netlab.doctor_lines import FAIL, INFO, OK, WARN, Check
from netlab.errors import FILES_NEEDED, FILES_PER_NAMESPACE, EnvironmentNotReady, display_path
from netlab.kernel import caps, features, nofile, pidfd, procsys, taskstats
from netlab.model.lab import Lab
from netlab.model.naming import ETC_NETNS
from netlab.plan.sysctls import devconf_keys, forwards, kernel_devconf, to_restore
from netlab.probe import neighbours, turns
from netlab.realize.lab_folder import ancestor_problem
from netlab.realize.state_room import too_long
from netlab.realize.state_dir import USE_ANOTHER, point_elsewhere, unreadable

# Below this the doctor's warning says a lab may not fit. Measured (a 2-pod CNI lab, a 3-pod one with a Service):
# its folder takes 100-200 KiB at up, its CNI call log grows ~3 KiB a status (cut at 2 MiB), container logs grow;
# with less than ~100 KiB its up fails where the disk runs out and is rolled back (nothing left), and a down always
# works: a warning, as `up` does not refuse it (the lab may well fit). Under a page (FULL) not even the lab's first
# state write fits: a FAIL, and `up` refuses with it before it changes anything.
MIN_FREE = 1 << 20
FULL = 4096
LOW_FREE = 16 << 20  # below this: warn
# Inodes, likewise (a tmpfs with nr_inodes=, a small ext4): a 2-pod lab takes 22 files and folders on its state
# filesystem, about 3 more a pod (more with a CNI: results, leases). Measured on a tmpfs (nr_inodes=) with the state
# folder there: with 3 free or fewer `up` fails at its first state write, before it makes anything (a FAIL, and up
# refuses); with 4-20 it fails later and is rolled back (a warning, as for bytes).
FULL_INODES = 4
MIN_INODES = 1024
INODES_FIX = "remove files there, or point NETLAB_STATE_DIR to a filesystem with free inodes"
FB_TUNNELS = "/proc/sys/net/core/fb_tunnels_only_for_init_net"


def check_neighbours(lab: Lab) -> Check:
    t = neighbours.read_thresholds()
    need = neighbours.full_mesh_entries(lab)
    detail = (f"gc_thresh1/2/3 = {t['gc_thresh1']}/{t['gc_thresh2']}/{t['gc_thresh3']} (the whole machine's "
              f"table); all-pairs traffic in lab {lab.name} needs up to {need} entries")
    now, crowded = _table_now(t)
    if neighbours.fits(need, t):
        return Check("neighbours", WARN if crowded else OK, detail + now)
    return Check("neighbours", WARN, detail + f" plus {neighbours.MARGIN} for the host; past gc_thresh3 the kernel "
                 "drops packets (netlab probe keeps its own entries bounded; netlab never changes these)" + now,
                 neighbours.raise_limit_command(need))


def _table_now(t: dict[str, int]) -> tuple[str, bool]:
    """What the table holds at this moment, and who is probing: words to add to the check, and whether
    the table is past gc_thresh2 now (the kernel's forced GC then evicts every namespace's entries)."""
    words = ""
    crowded = False
    stats = neighbours.table_stats()
    if stats is not None:
        crowded = stats.entries > t["gc_thresh2"]
        words += f"; {stats.entries} entries in it now" + (
            " (past gc_thresh2: the kernel is evicting entries to make room)" if crowded else "")
    holder = turns.holder()
    if holder is not None:
        words += f"; {holder} holds the probing turn now: other probes wait for it"
    return words, crowded


def check_capabilities(required: dict[str, int] | None = None, advised: dict[str, int] | None = None) -> Check:
    """The capabilities netlab needs in this process's effective set (kernel/caps.py): ``required`` (default: every
    command's, caps.NEEDED, and up's and down's, caps.PROCESSES) FAIL when missing, ``advised`` (what this lab's
    `up` does without: CAP_NET_RAW for probe, trace and capture) warn; root of a user namespace of its own FAILs
    whatever its set. Without caps.NEEDED every other check fails at its first setns or netlink request and blames
    the kernel (``KeyError: 'veth'`` once): the doctor runs none of them (doctor.diagnose), and every command
    refuses up front (cli/base.require_root)."""
    foreign = caps.user_namespace()  # its CapEff is full, over its own namespace only: nothing works there
    if foreign:
        return Check("capabilities", FAIL, foreign, caps.USERNS_FIX, needed=True)
    required = {**caps.NEEDED, **caps.PROCESSES} if required is None else required
    advised = advised or {}
    lacks, could = caps.missing(required), caps.missing(advised)
    if lacks:
        return Check("capabilities", FAIL, caps.detail(lacks), caps.fix(sorted({*lacks, *could})), needed=True)
    if could:
        return Check("capabilities", WARN, caps.detail(could) + "; this lab's `up` does not need them",
                     caps.fix(could))
    return Check("capabilities", OK, f"{' and '.join(sorted({*required, *advised}))} in effect")


def require_capabilities(more: dict[str, int]) -> None:
    """Refuse root without caps.NEEDED and ``more`` (caps.PROCESSES, caps.PACKETS) up front, in the doctor's one
    line (EnvironmentNotReady): the CLI's commands (cli/base) and the Python API's probe, reach and trace, whose
    probe agent failed with "PermissionError" without CAP_NET_RAW. Not root: nothing said here (the caller's own
    words, "run it with sudo")."""
    if os.geteuid() != 0:
        return
    if caps.refused(more):
        raise EnvironmentNotReady(check_capabilities({**caps.NEEDED, **more}).line())


def check_open_files(namespaces: int) -> Check:
    """This process's open-files limit (RLIMIT_NOFILE; its soft limit raised to the hard one first, as netlab runs)
    against what a lab of ``namespaces`` namespaces needs. Below it, every other check could fail for want of a
    descriptor and blame the kernel or a tool: the doctor runs none of them (doctor.diagnose)."""
    nofile.raise_soft()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = FILES_NEEDED + FILES_PER_NAMESPACE * namespaces
    given, _ = nofile.given()
    shown = {resource.RLIM_INFINITY: "unlimited"}
    detail = (f"`ulimit -n` {shown.get(given, given)}, hard limit {shown.get(hard, hard)} (netlab raises its own "
              f"soft limit to the hard one); a lab of {namespaces} namespaces needs about {need}")
    if soft == resource.RLIM_INFINITY or soft >= need:
        return Check("open-files", OK, detail)
    return Check("open-files", FAIL, detail + "; no other check was run (each opens files, and would blame the "
                 "kernel or a tool)", f"raise the limit: `ulimit -n {max(1024, need)}` in the shell that runs netlab "
                 f"(LimitNOFILE= for a service)", needed=True)


def check_taskstats() -> Check:
    """The kernel's exit records, which tell `up --watch` how containers it did not start exited."""
    present, detail = taskstats.available()
    if present:
        return Check("taskstats", OK, f"{detail}: up --watch reads how containers it did not start exited")
    return Check("taskstats", WARN, f"{detail}; up --watch cannot tell how containers it did not start exited, "
                 "and restartPolicy OnFailure restarts them whatever their exit status",
                 "a kernel built with CONFIG_TASKSTATS")


def check_exit_status() -> Check:
    """Whether a pidfd keeps its process's exit status (Linux 6.15): how command containers exited."""
    if pidfd.exit_info_supported():
        return Check("exit-status", OK, "a pidfd keeps its process's exit status: get pods, status and up --watch "
                     "say how command containers exited (Completed, Error, the code)")
    return Check("exit-status", INFO, "a pidfd keeps no exit status here (Linux 6.15 and later do): how a command "
                 "container exited is known only to an up --watch that saw it")


def check_fallback_tunnels(probe: features.KernelProbe) -> Check:
    if probe.fresh_links is None:
        return Check("fallback-tunnels", INFO, "unknown: no new namespace could be made")
    if not probe.fresh_links:
        return Check("fallback-tunnels", INFO, "a new namespace holds only lo")
    setting = features.read_host_file(FB_TUNNELS)
    return Check("fallback-tunnels", INFO,
                 f"a new namespace already holds {', '.join(probe.fresh_links)} besides lo (tunnel modules are "
                 f"loaded and net.core.fb_tunnels_only_for_init_net={setting}); netlab leaves them alone")


def check_ipv6() -> Check:
    """Whether the kernel has IPv6 (the host's /proc/sys is only read): the lab's namespaces have none either way."""
    if procsys.kernel_has_ipv6():
        return Check("ipv6", INFO, "in this kernel; netlab turns it off in every lab namespace (disable_ipv6 = 1)")
    return Check("ipv6", INFO, "not in this kernel (booted with ipv6.disable=1, or built without it): lab namespaces "
                 "have none, as netlab wants them")


def check_host_devconf(probe: features.KernelProbe) -> Check:
    """The IPv4 all/default settings a new namespace copies from this host, beside the kernel's own values
    (plan/sysctls.py, KERNEL_DEVCONF): those that differ, every lab namespace sets back."""
    if probe.devconf is None:
        return Check("host-devconf", INFO, "unknown: no new namespace could be made")
    differ = to_restore(probe.devconf)
    if not differ:
        return Check("host-devconf", INFO, "a new namespace gets the kernel's IPv4 all/default settings")
    found = ", ".join(f"{key} {'/'.join(str(probe.devconf[name]) for name in devconf_keys(key))} "
                      f"(the kernel's: {'/'.join(kernel_devconf(key, forwards(probe.devconf)))})" for key in differ)
    return Check("host-devconf", INFO, f"a new namespace gets this host's all/default {found}; every lab "
                 "namespace sets them back to the kernel's")


def check_state_dir(path: str, needed: bool) -> tuple[Check, Check]:
    """Permissions (root-only, not a symlink, writable, every folder above it root's and writable by root alone)
    and free space of the state directory; one that cannot even be looked at (a name too long, a symlink loop above
    it: ENAMETOOLONG, ELOOP) as every command refuses it (state_dir.unreadable), where it was a traceback."""
    unusable = unreadable(path)
    if unusable:
        return (Check("state-dir", FAIL if needed else WARN, f"{unusable}; netlab cannot use it", USE_ANOTHER, needed),
                Check("state-space", WARN, f"free space on {display_path(path)} is unknown"))
    d = features.directory(path)
    parent = os.path.dirname(os.path.abspath(path))
    fix = ""
    if not d.exists and not os.path.isdir(parent):
        problem = f"{path} does not exist and neither does its parent {parent}"
        fix = f"create {parent} or point NETLAB_STATE_DIR elsewhere"
    elif (long := too_long(path)) is not None:  # as `up` refuses it (state_dir.ensure_dir), before making anything
        problem, fix = f"{display_path(path)}: {long}", USE_ANOTHER
    elif ancestor_problem(path):  # as `up` refuses it (realize/lab_folder.py): its owner could swap what is below
        problem = f"{path}: {ancestor_problem(path)}"
        fix = "point NETLAB_STATE_DIR at a folder whose every parent is root's and writable by root alone"
    elif d.symlink:
        problem = f"{path} is a symlink; netlab refuses to use it"
        fix = point_elsewhere(path, f"remove it (rm {path})")
    elif d.exists and not d.is_dir:
        problem, fix = f"{path} is not a directory", point_elsewhere(path, f"remove it (rm {path})")
    elif d.exists and d.uid != os.geteuid():
        problem = f"{path} is owned by uid {d.uid}, not by root"
        fix = point_elsewhere(path, f"remove it (rm -r {path}) and let netlab make it")
    elif d.exists and d.mode is not None and d.mode & (stat.S_IWGRP | stat.S_IWOTH):
        problem, fix = f"{path} is group- or world-writable (mode {d.mode:04o})", f"chmod 700 {path}"
    elif d.read_only:
        problem, fix = f"{d.measured} is on a read-only filesystem", "point NETLAB_STATE_DIR to a writable directory"
    else:
        problem = ""
    if problem:
        perm = Check("state-dir", FAIL if needed else WARN, problem, fix, needed)
    elif d.exists:
        who = "root-only" if d.mode is not None and not d.mode & 0o077 else "writable only by root"
        perm = Check("state-dir", OK, f"{path}, {who} (mode {d.mode:04o})", needed=needed)
    else:
        perm = Check("state-dir", OK, f"{path} will be made (mode 0700) on {d.measured}", needed=needed)
    return perm, check_space(d, path)


def check_pod_files(needed: bool) -> Check:
    """Whether netlab can write the pods' files in /etc/netns (their /etc/hosts and resolv.conf: services/hosts.py,
    netns_files.py) on the file system that holds it, or /etc where it is still to be made. On a read-only one
    (`docker run --read-only`) `up` could only warn and leave every pod without them, drift no `up` repairs (QA
    hostenv57 7): a FAIL for a lab with pods, which `up` then refuses before it makes anything."""
    d = features.directory(ETC_NETNS)
    if d.read_only:
        return Check("pod-files", FAIL if needed else WARN, f"{d.measured} is on a read-only file system: netlab "
                     f"cannot write {ETC_NETNS}/<pod>/hosts and resolv.conf, every pod's /etc/hosts and the cluster "
                     "DNS in its /etc/resolv.conf", f"make {ETC_NETNS} writable (a tmpfs: `mount -t tmpfs -o "
                     f"mode=0755 tmpfs {ETC_NETNS}`; in a `docker run --read-only`, `--tmpfs {ETC_NETNS}`)", needed)
    where = ETC_NETNS if d.exists else f"{d.measured} (where netlab makes {ETC_NETNS})"
    return Check("pod-files", OK, f"{where} is writable: each pod gets its /etc/hosts and resolv.conf there",
                 needed=needed)


def check_container_logs(path: str) -> Check:
    """Whether a command container's log can start over on the state folder's file system (the nearest folder above
    it that exists, where it is still to be made: features.directory's): tried for real (echo_log.log_cut: a file of
    no data made there, cut, and gone at once). Where it cannot (NFSv3, 9p, some FUSE, ramfs) a command container's
    log grows without bound: a warning, as `up` says it once when it starts one (workload/containers.logs_uncut)."""
    from netlab.kernel import fstype
    from netlab.workload import echo_log

    d = None if unreadable(path) else features.directory(path)
    if d is None or d.symlink or (d.exists and not d.is_dir) or not d.measured:
        return Check("container-logs", INFO, f"not tried: {display_path(path)} is not a folder (the state directory "
                     "line says why)")
    try:
        how, fs = echo_log.log_cut(d.measured), fstype.fs_type(d.measured)
    except OSError as exc:
        return Check("container-logs", INFO, f"not tried: no file can be made in {d.measured}: {exc.strerror}")
    if how is None:
        return Check("container-logs", WARN, f"{fs} ({d.measured}) cannot cut a log's oldest part (no "
                     "FALLOC_FL_COLLAPSE_RANGE nor PUNCH_HOLE): a command container's log grows without bound",
                     "point NETLAB_STATE_DIR to a folder on tmpfs, ext4 or XFS")
    way = ("collapsed away (FALLOC_FL_COLLAPSE_RANGE)" if how == echo_log.FALLOC_FL_COLLAPSE_RANGE else
           "punched into a hole (FALLOC_FL_PUNCH_HOLE)")
    return Check("container-logs", OK, f"{fs} ({d.measured}): a log past {echo_log.LOG_MAX // 2**20} MiB starts "
                 f"over, its oldest part {way}")


def check_space(d: features.DirFacts, path: str) -> Check:
    """Free space and free inodes where the state folder is (or will be), as netlab (root) may use them: root may
    write the blocks ext4 keeps for root, so a disk df shows 100% full may still take a lab (QA q53 1); a filesystem
    with bytes free but no inode left fails every file `up` makes (QA q53 5). The worse of the two decides."""
    free, inodes = d.free_bytes, d.free_inodes
    if free is None:
        return Check("state-space", WARN, f"free space on {d.measured or path} is unknown")
    detail = f"{size(free)} free on {d.measured}"
    if d.user_free_bytes is not None and d.user_free_bytes != free:
        detail += f" ({size(d.user_free_bytes)} for users other than root: the rest is kept for root, which netlab is)"
    fix = "free space there, or point NETLAB_STATE_DIR to a larger filesystem"
    if free < FULL:
        return Check("state-space", FAIL, detail + " (full: not even a lab's first state write fits)", fix, True)
    if inodes is not None and inodes < FULL_INODES:
        return Check("state-space", FAIL, detail + f", but {inodes} inodes free (no file left: not even a lab's "
                     f"folder and its first state files, {FULL_INODES}, fit)", INODES_FIX, True)
    if free < MIN_FREE:
        return Check("state-space", WARN, detail + f" (under {size(MIN_FREE)}: a lab's state takes 100-200 KiB "
                     "and its logs grow; an up that runs out of space fails and is rolled back)", fix)
    if inodes is not None and inodes < MIN_INODES:
        return Check("state-space", WARN, detail + f", but {inodes} inodes free (under {MIN_INODES}: a lab takes "
                     "about 20 files and 3 more a pod; an up that runs out of them fails and is rolled back)",
                     INODES_FIX)
    if free < LOW_FREE:
        return Check("state-space", WARN, detail + f" (under {size(LOW_FREE)}: container logs may fill it)", fix)
    return Check("state-space", OK, detail)


def size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


LIBPCAP_FIX = "apt-get install --reinstall libpcap0.8 (libpcap0.8t64 on Ubuntu 24.04)"


def libpcap() -> tuple[str | None, str]:
    """libpcap as ``netlab capture`` loads it to compile a filter (scapy's libs/winpcapy: ``find_library("pcap")``,
    then dlopen): (its name, "") when it loads, (None, why not) when it does not."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("pcap")
    if not name:
        return None, "no libpcap.so among the system's libraries (ldconfig -p)"
    try:
        ctypes.CDLL(name)
    except OSError as exc:
        return None, f"{name} does not load: {exc}"
    return name, ""


def with_libpcap(tool: Check, pretend: bool = False) -> Check:
    """The tcpdump check, told whether capture filters compile: libpcap, which tcpdump brings, is what
    ``netlab capture IF EXPR`` compiles EXPR with (trace/capture.py). ``pretend``: the test hook says it is missing."""
    name, why = (None, "reported missing by the test hook") if pretend else libpcap()
    if name is not None:
        return replace(tool, detail=f"{tool.detail}; {name} loads: netlab capture's filter expressions compile")
    detail = (f"{tool.detail}; libpcap does not load ({why}): netlab capture refuses a filter expression "
              "(without one it captures)")
    fix = tool.fix if tool.status != OK else LIBPCAP_FIX  # no tcpdump: installing it brings libpcap
    return replace(tool, status=WARN, detail=detail, fix=fix)
