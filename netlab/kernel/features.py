"""What this machine's kernel offers a lab, found out for real and without changing the host.

Kernel features are tried, not guessed from config files. A short-lived thread
unshares into a new network namespace that nothing names (no /run/netns entry,
no process in it but the thread) and there creates a veth pair, a bridge and a
vxlan device, the internet gateway's multipath route and its hash sysctls
(kernel/mpathprobe.py; for a CNI conflist's plugins what kernel/cniprobe.py makes: a
macvlan, ipvlan or vlan on a veth, an ifb, a vrf, a VLAN-filtering bridge,
bandwidth's ingress qdisc, u32 filter and mirred redirect, a policy routing
rule), adds each tc qdisc to ``lo``, asks nf_tables and conntrack one
question each over netlink, lists the links the namespace was born with, and
runs the version commands it is given. Then the thread ends: nothing refers to
the namespace any more, and the kernel frees it with everything in it. The
host's own namespace is only read (``/proc/sys``, the state directory's
metadata).

Links, nf_tables, conntrack and qdiscs are asked through netlab's own netlink
codec (kernel/netlink.py, rtnl.py, nfnl.py, tc.py), as ``up`` will ask; qdiscs
only when they are wanted (an impairment, or the doctor's full report).

Modules: asking for a link kind, qdisc or netfilter subsystem the kernel does
not have makes it run modprobe (``request_module``). Probing loads nothing:
loading sit or gre puts tunnel devices into every new namespace, loading
br_netfilter makes every bridge of the host call iptables. So a feature whose
module is on disk but not loaded is not tried; it is reported as loadable (the
kernel loads it when ``netlab up`` first uses it). A kernel without loadable
modules, or with module loading disabled, cannot load anything, so everything
is tried there.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import subprocess
import threading
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Mapping, Sequence

from netlab.kernel import (cniprobe, libc, mpathprobe, netlink, nfnl, own_group, procsys, rtnl, rtnl_parse, rtnl_vxlan,
                           sockdiag, tc, testhooks)
from netlab.plan.sysctls import DEVCONF_SYSCTLS

CLONE_NEWNET = 0x40000000
PROBE_TIMEOUT = 10.0  # seconds for the whole probe; a netlink answer takes microseconds

# Link kinds netlab creates, each made as a minimal one (kernel/rtnl.py, the project's codec).
LINK_KINDS: dict[str, Callable[[], bytes]] = {
    "veth": lambda: rtnl.veth_add(0, "probe-veth", None, None, None, 0, "probe-peer", None, None, up=False),
    "bridge": lambda: rtnl.bridge_add(0, "probe-bridge", None, None, up=False),
    "vxlan": lambda: rtnl_vxlan.vxlan_add(0, "probe-vxlan", None, None, 1, None, 4789, None, up=False),
}
# tc qdiscs link impairments will use (rate: tbf/htb; delay, loss: netem), with minimal options.
LO_INDEX = 1  # lo is the first device of every network namespace
# Each qdisc as lo's root with what kernel/tc.py would give it; an htb as `tc qdisc add ... htb` makes one:
# TCA_HTB_INIT's struct tc_htb_glob (version 3, rate2quantum 10, default class 0, no debug, direct_pkts 0).
QDISCS: dict[str, Callable[[], bytes]] = {
    "tbf": lambda: tc.tbf_options(1_000_000),
    "htb": lambda: netlink.attr(tc.TCA_HTB_INIT, struct.pack("=IIIII", 3, 10, 0, 0, 0)),
    "netem": lambda: tc.netem_options(0),
}
NETFILTER = ("nf_tables", "conntrack")
# The kernel's socket dumps (ss's source): trace says what listens where a packet was refused, inspect lists it.
SOCK_DIAG = "sock_diag"
# What a CNI conflist's plugins use and netlab does not (kernel/cniprobe.py: link kinds, bridge VLAN filtering,
# bandwidth's egress redirect, policy rules).
# The internet gateway's multipath route for LoadBalancer IPs (kernel/mpathprobe.py).
FEATURES = ("netns",) + tuple(LINK_KINDS) + cniprobe.FEATURES + tuple(QDISCS) + NETFILTER + (SOCK_DIAG,
                                                                                          mpathprobe.FEATURE)
# The modules the kernel would load on demand for each feature (as modprobe names them).
MODULES: dict[str, tuple[str, ...]] = {
    "veth": ("veth",),
    "bridge": ("bridge",),
    "vxlan": ("vxlan",),
    **cniprobe.MODULES,
    **mpathprobe.MODULES,
    "tbf": ("sch_tbf",),
    "htb": ("sch_htb",),
    "netem": ("sch_netem",),
    "nf_tables": ("nfnetlink", "nf_tables"),
    "conntrack": ("nfnetlink", "nf_conntrack", "nf_conntrack_netlink"),
    SOCK_DIAG: ("inet_diag", "tcp_diag", "udp_diag"),
}


@dataclass(frozen=True)
class Feature:
    """What the kernel showed about one feature."""

    name: str
    available: bool | None  # None: not tried, because trying would load a module
    detail: str


@dataclass
class KernelProbe:
    """The result of one visit to a throwaway namespace."""

    features: dict[str, Feature] = field(default_factory=dict)
    # Links a new namespace already holds besides lo (sit0, tunl0... when tunnel modules are
    # loaded and net.core.fb_tunnels_only_for_init_net=0); None if no namespace could be made.
    fresh_links: tuple[str, ...] | None = None
    # The IPv4 all/default settings the namespace got from the host (plan/sysctls.py, DEVCONF_SYSCTLS: sysctl ->
    # value, None where this kernel has no such file); None if not asked or no namespace could be made.
    devconf: dict[str, str | None] | None = None
    # "net:[inode]" of the throwaway namespace, so a test can check that nothing holds it afterwards.
    scratch_netns: str | None = None
    # name -> (exit status, stdout + stderr) of each command run inside the throwaway namespace.
    outputs: dict[str, tuple[int, str]] = field(default_factory=dict)


_errno_text = cniprobe.errno_text


# --- modules (read-only) ------------------------------------------------------------------------

def _module_names(path: str, dep: bool = False) -> set[str]:
    """Module names in modules.builtin or modules.dep (``kernel/net/sched/sch_netem.ko.xz: ...``)."""
    try:
        with open(path) as fh:
            lines = fh.read().splitlines()
    except OSError:
        return set()
    names = set()
    for line in lines:
        entry = line.split(":", 1)[0] if dep else line
        base = os.path.basename(entry.strip())
        if ".ko" in base:
            names.add(base.split(".ko", 1)[0].replace("-", "_"))
    return names


PROC_MODULES = "/proc/modules"
MODULES_DISABLED = "/proc/sys/kernel/modules_disabled"
MODULES_DIR = f"/lib/modules/{os.uname().release}"


@dataclass(frozen=True)
class ModuleFiles:
    """Where the machine says what its kernel can load: the loaded modules (absent in a kernel built without
    module support), the switch that turns loading off, and the running kernel's module tree."""

    proc_modules: str
    disabled: str
    tree: str

    @property
    def dep(self) -> str:
        return f"{self.tree}/modules.dep"  # depmod's index of the tree, which modprobe finds a module through


def module_files() -> ModuleFiles:
    """This machine's (PROC_MODULES, MODULES_DISABLED, MODULES_DIR, read when called)."""
    return ModuleFiles(PROC_MODULES, MODULES_DISABLED, MODULES_DIR)


def loaded_modules(files: ModuleFiles | None = None) -> set[str] | None:
    """Names in /proc/modules; None when the kernel has no loadable-module support at all."""
    try:
        with open((files or module_files()).proc_modules) as fh:
            return {line.split(" ", 1)[0] for line in fh if line.strip()}
    except FileNotFoundError:
        return None


def _loadable(files: ModuleFiles) -> tuple[set[str], set[str], set[str]] | None:
    """(loaded, built in, on disk) module names when this kernel can load modules at all; None when it cannot
    (built without module support, or loading switched off). Read-only: /proc/modules,
    kernel.modules_disabled, /lib/modules/RELEASE."""
    loaded = loaded_modules(files)
    if loaded is None or read_host_file(files.disabled) == "1":
        return None
    return (loaded, _module_names(f"{files.tree}/modules.builtin"), _module_names(files.dep, dep=True))


def would_load_module(feature: str) -> str | None:
    """The module the kernel would load if ``feature`` were tried now, or None if nothing would be loaded."""
    facts = _loadable(module_files())
    if facts is None:
        return None  # nothing can be loaded
    loaded, builtin, on_disk = facts
    for module in MODULES.get(feature, ()):
        if module not in loaded and module not in builtin and module in on_disk:
            return module
    return None


def module_unavailable(module: str, files: ModuleFiles | None = None) -> str | None:
    """Why ``modprobe MODULE`` cannot help on this machine, or None when it could (the module is on disk, or
    loaded or built in already)."""
    files = files or module_files()
    facts = _loadable(files)
    if facts is None:
        if loaded_modules(files) is None:
            return "this kernel was built without loadable module support (no /proc/modules)"
        return "module loading is off until the next boot (kernel.modules_disabled = 1)"
    loaded, builtin, on_disk = facts
    if module in loaded or module in builtin:
        return None
    if not os.path.isdir(files.tree):
        return f"this kernel's modules are not on this machine ({files.tree} is missing)"
    if not os.path.isfile(files.dep):  # a tree of only linux-headers' build link, or never indexed by depmod
        return f"this kernel's modules are not on this machine ({files.dep} is missing)"
    if module not in on_disk:
        return f"this kernel has no module {module} ({files.dep} does not list it)"
    return None


def module_tree_lacks(module: str, files: ModuleFiles | None = None) -> bool:
    """True when this kernel loads modules and its module tree is on this machine (modules.dep, which
    modprobe reads), and the tree has no ``module``: the one case a package of more modules for this kernel
    (Ubuntu's linux-modules-extra-RELEASE) can add it. Not a kernel built without module support, nor one with
    loading switched off, nor one whose modules are not here (a VM's kernel booted from outside the disk, a
    container's host's): a package cannot help those."""
    files = files or module_files()
    facts = _loadable(files)
    if facts is None or not os.path.isfile(files.dep):
        return False
    loaded, builtin, on_disk = facts
    return module not in loaded | builtin | on_disk


# --- the throwaway namespace --------------------------------------------------------------------

class NoNetns(OSError):
    """unshare(CLONE_NEWNET) failed: this kernel or this process cannot make network namespaces."""


def _unshare_net() -> None:
    if libc.handle().unshare(CLONE_NEWNET) != 0:
        raise libc.os_error(kind=NoNetns)


def _setns_net(fd: int) -> None:
    if libc.handle().setns(fd, CLONE_NEWNET) != 0:
        raise libc.os_error("setns")


def in_throwaway_netns(body: Callable[[], object], timeout: float = PROBE_TIMEOUT) -> object:
    """Run ``body`` in a new thread inside a new, unnamed network namespace; return its result.

    Only that thread moves (``unshare(2)`` of CLONE_NEWNET acts on the calling
    thread). Sockets ``body`` opens must be closed before it returns. Then the
    thread goes back to where it came from, so when this returns the namespace
    has no user left and the kernel frees it (the thread itself ending a
    moment later would do the same, just not by the time this returns).
    """
    box: dict[str, object] = {}

    def run() -> None:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _unshare_net()
            try:
                box["result"] = body()
            finally:
                _setns_net(home)
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc
        finally:
            os.close(home)

    thread = threading.Thread(target=run, name="netlab-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"the kernel probe did not finish within {timeout:.0f} s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("result")


def _devconf_here(keys: Sequence[str]) -> dict[str, str | None]:
    """In a namespace just made: these sysctls as it got them from the host (under the test hook of a tuned
    host, NETLAB_TEST_HOST_DEVCONF, or one that forwards, NETLAB_TEST_HOST_FORWARD, that host's values first, as
    every namespace netlab makes gets them)."""
    procsys.write_sysctls_here(testhooks.INHERITED_DEVCONF)
    return procsys.read_sysctls_here(keys)


# What the doctor's throwaway namespace got from the host at the start of the up running in this context
# (doctor.required): that up reads it here instead of making a second throwaway namespace a moment later.
_SEEN_DEVCONF: ContextVar[dict[str, str | None] | None] = ContextVar("netlab_seen_devconf", default=None)


@contextmanager
def devconf_seen(found: dict[str, str | None] | None) -> Iterator[None]:
    """Inside the block, :func:`inherited_devconf` answers from ``found`` (a namespace made a moment ago: the
    doctor's probe of this up); None: as before the block."""
    token = _SEEN_DEVCONF.set(found) if found is not None else None
    try:
        yield
    finally:
        if token is not None:
            _SEEN_DEVCONF.reset(token)


def inherited_devconf(keys: Sequence[str], timeout: float = PROBE_TIMEOUT) -> dict[str, str | None]:
    """These sysctls as a namespace made now starts with them: Linux copies the host's IPv4 ``all`` and
    ``default`` into each new namespace (unless net.core.devconf_inherit_init_net=2), so only a new one tells
    (netlab may itself run in a namespace of its own, whose settings are not what new ones copy). Inside
    :func:`devconf_seen` (an up's doctor.required), what its probe's namespace got, if it read every key."""
    seen = _SEEN_DEVCONF.get()
    if seen is not None and all(key in seen for key in keys):
        return {key: seen[key] for key in keys}
    found: dict[str, str | None] = in_throwaway_netns(lambda: _devconf_here(keys), timeout)  # type: ignore[assignment]
    return found


def probe_kernel(wanted: Iterable[str] = FEATURES, commands: Mapping[str, Sequence[str]] | None = None,
                 timeout: float = PROBE_TIMEOUT, devconf: bool = False,
                 inputs: Mapping[str, str] | None = None) -> KernelProbe:
    """Try each wanted feature in a throwaway namespace; run ``commands`` (argv lists) there too, each fed its
    text of ``inputs`` on stdin if it has one; with ``devconf``, read the IPv4 settings it got from the host (the
    doctor's line: not `up`'s preflight)."""
    wanted = [f for f in FEATURES if f in set(wanted) | {"netns"}]
    probe = KernelProbe()
    skipped = {f: m for f in wanted if (m := would_load_module(f))}
    for name, module in skipped.items():
        probe.features[name] = Feature(name, None, f"module {module} is on disk but not loaded; the kernel "
                                                   "loads it when netlab first uses it (not tried: that would load it)")

    def body() -> None:
        probe.scratch_netns = os.readlink("/proc/thread-self/ns/net")
        probe.features["netns"] = Feature("netns", True, "a new network namespace was created")
        if devconf:
            probe.devconf = _devconf_here(DEVCONF_SYSCTLS)
        tried = [f for f in wanted if f not in skipped]
        _probe_links(probe, tried, skipped)
        if any(f in QDISCS for f in tried):
            _probe_qdiscs(probe, tried)
        for name in NETFILTER:
            if name in tried:
                probe.features[name] = _probe_netfilter(name)
        if SOCK_DIAG in tried:
            probe.features[SOCK_DIAG] = _probe_sock_diag()
        for name, argv in (commands or {}).items():
            try:
                # A group of its own, as netns.run_in_netns's programs: a terminal's Ctrl-C is netlab's. In the
                # watcher's apply of an edited file (doctor.required), `iptables-restore --version` heard it, died,
                # and the apply failed "`iptables-restore --version` failed" although Ctrl-C waits for it
                proc = own_group.run(argv, (inputs or {}).get(name), timeout, text=True)
                probe.outputs[name] = (proc.returncode, (proc.stdout + proc.stderr).strip())
            except (OSError, subprocess.TimeoutExpired) as exc:
                probe.outputs[name] = (-1, str(exc))

    try:
        in_throwaway_netns(body, timeout)
    except NoNetns as exc:
        probe.features["netns"] = Feature("netns", False, f"unshare(CLONE_NEWNET) failed ({_errno_text(exc.errno)})")
    except Exception as exc:  # a timeout, or a netlink socket that could not even be opened
        for name in wanted:
            probe.features.setdefault(name, Feature(name, False, f"the probe failed: {exc}"))
    return probe


def _probe_links(probe: KernelProbe, names: list[str], skipped: Iterable[str]) -> None:
    """The links the namespace was born with, one link of each wanted kind, and what a conflist's plugins use
    (kernel/cniprobe.py), through netlab's codec."""
    with netlink.Conn() as conn:
        probe.fresh_links = tuple(sorted(link.name for link in rtnl_parse.dump_links(conn, "a throwaway namespace")
                                         if link.name != "lo"))
        for kind, request in LINK_KINDS.items():
            if kind not in names:
                continue
            probe.features[kind] = Feature(kind, *cniprobe.request_made(conn, kind, request(),
                                                                        "created one in a throwaway namespace"))
        found = cniprobe.probe_cni_features(conn, [f for f in names if f in cniprobe.FEATURES], skipped)
        probe.features.update((name, Feature(name, *fact)) for name, fact in found.items())
        if mpathprobe.FEATURE in names:
            probe.features[mpathprobe.FEATURE] = Feature(mpathprobe.FEATURE, *mpathprobe.probe_multipath(conn))


def _probe_qdiscs(probe: KernelProbe, names: list[str]) -> None:
    """Each wanted qdisc as lo's root, encoded as kernel/tc.py sets them (netlab's codec)."""
    with netlink.Conn() as conn:
        for kind, options in QDISCS.items():
            if kind not in names:
                continue
            try:
                conn.request(f"a {kind} qdisc in a throwaway namespace",
                             tc.qdisc_replace(LO_INDEX, tc.TC_H_ROOT, tc.ROOT_HANDLE, kind, options()))
                probe.features[kind] = Feature(kind, True, "added one as lo's root qdisc in a throwaway namespace")
                conn.request(f"delete the {kind} qdisc", tc.qdisc_del(LO_INDEX))
            except netlink.NetlinkError as exc:
                what = "not in this kernel" if exc.errno == errno.ENOENT else "adding one failed"
                probe.features[kind] = Feature(kind, False, f"{what} ({_errno_text(exc.errno)})")


def _probe_netfilter(name: str) -> Feature:
    """Ask nf_tables for its tables, or conntrack for its entries, over NETLINK_NETFILTER (netlab's codec)."""
    try:
        with netlink.Conn(netlink.NETLINK_NETFILTER) as conn:
            if name == "nf_tables":
                conn.dump("nf_tables in a throwaway namespace", nfnl.table_dump())
                return Feature(name, True, "nf_tables answered a table dump in a throwaway namespace")
            conn.dump("conntrack in a throwaway namespace", nfnl.ct_dump())
            return Feature(name, True, "conntrack answered a table dump over ctnetlink in a throwaway namespace")
    except netlink.NetlinkError as exc:
        return Feature(name, False, f"the kernel refused the netlink request ({_errno_text(exc.errno)})")
    except OSError as exc:
        return Feature(name, False, f"no netfilter netlink socket ({_errno_text(exc.errno or 0)})")


def _probe_sock_diag() -> Feature:
    """Ask for the TCP and UDP sockets over NETLINK_SOCK_DIAG (netlab's codec), as ss does."""
    try:
        with netlink.Conn(sockdiag.NETLINK_SOCK_DIAG) as conn:
            missing = [proto for proto in ("tcp", "udp") if sockdiag.bound(conn, proto) is None]
    except OSError as exc:
        return Feature(SOCK_DIAG, False, f"no sock_diag netlink socket ({_errno_text(exc.errno or 0)})")
    if missing:
        return Feature(SOCK_DIAG, False, f"the kernel lists no {' and no '.join(p.upper() for p in missing)} "
                                         "sockets over sock_diag")
    return Feature(SOCK_DIAG, True, "TCP and UDP sockets listed over sock_diag in a throwaway namespace")


# --- the host, read-only ------------------------------------------------------------------------

def read_host_file(path: str) -> str | None:
    """A /proc or /sys file of the host, stripped; None if it does not exist."""
    try:
        with open(path) as fh:
            return fh.read().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None


@dataclass(frozen=True)
class DirFacts:
    """A directory as lstat and statvfs see it (or its nearest existing parent, if it is not there yet)."""

    path: str
    exists: bool
    symlink: bool = False
    is_dir: bool = False
    uid: int | None = None
    mode: int | None = None
    measured: str = ""  # the path statvfs looked at
    free_bytes: int | None = None  # what this process may write: root (netlab) may use the blocks kept for root
    read_only: bool | None = None
    user_free_bytes: int | None = None  # what others may write (df's Avail): less when blocks are kept for root
    free_inodes: int | None = None  # None: the filesystem has no fixed number of inodes (f_files 0: btrfs)


def directory(path: str) -> DirFacts:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        parent = os.path.dirname(os.path.abspath(path))
        while parent != "/" and not os.path.isdir(parent):
            parent = os.path.dirname(parent)
        return DirFacts(path, False, **_space(parent))
    except NotADirectoryError:
        return DirFacts(path, False)
    facts = dict(symlink=stat.S_ISLNK(st.st_mode), is_dir=stat.S_ISDIR(st.st_mode), uid=st.st_uid,
                 mode=stat.S_IMODE(st.st_mode))
    return DirFacts(path, True, **facts, **(_space(path) if facts["is_dir"] else {}))


def _space(path: str) -> dict:
    try:
        vfs = os.statvfs(path)
    except OSError:
        return {"measured": path}
    root = os.geteuid() == 0  # netlab as root may write the blocks and inodes kept for root (ext4's -m, 5%)
    return {"measured": path, "free_bytes": (vfs.f_bfree if root else vfs.f_bavail) * vfs.f_frsize,
            "user_free_bytes": vfs.f_bavail * vfs.f_frsize, "read_only": bool(vfs.f_flag & os.ST_RDONLY),
            "free_inodes": (vfs.f_ffree if root else vfs.f_favail) if vfs.f_files else None}
