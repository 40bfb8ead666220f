"""Network namespaces, entered explicitly and briefly, in this process.

netlab switches the calling thread into a namespace with ``setns(2)`` just
long enough to open a netlink socket or a ``/proc/sys`` file, then switches
back: a socket keeps the namespace it was opened in. (pyroute2's
``IPRoute(netns=...)`` instead forks a helper process per socket, and its
default flags *create* a missing namespace.)

Namespaces are made the way ``ip netns add`` makes them (a bind mount of the
namespace onto ``/run/netns/<name>``), with one difference that makes
ownership provable and crashes harmless: the new namespace is fully tagged
*before* its name becomes visible. A process killed halfway leaves either
nothing, or an empty placeholder file that the lab's state lists, never an
untagged namespace.

The tag lives where ``ip link`` and ``ip addr`` do not print it, so a lab
looks like a real node: the kernel's per-interface ``tag`` sysctl, which the
kernel keeps for exactly this ("a number, which can be used as required").
``net.ipv4.conf.all.tag`` holds a 31-bit hash of the lab's name and
``net.ipv4.conf.lo.tag`` one of the lab's random run id; both are 0 in any
namespace netlab did not make. ``net.ipv4.conf.default.tag`` holds one of the
state folder whose state lists the namespace (``NETLAB_STATE_DIR``): a lab up
with another folder is another netlab's, never a lost one (realize/tags.py); 0
in the namespaces of an older netlab. :func:`make_tag` and :func:`read_tag`
write and read them as one string, ``netlab:<lab hash>:<run hash>[:<folder hash>]``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from netlab.errors import EnvironmentNotReady, NetnsGone
from netlab.kernel import libc, packages, procsys, testhooks
# Sysctls are files of /proc/sys (procsys); tests/integration import these two from here
from netlab.kernel.procsys import read_sysctl_here as read_sysctl_here, write_sysctl_here as write_sysctl_here
from netlab.model.naming import NETNS_DIR, check_netns
from netlab.model.naming import netns_path as netns_path  # made there (pure): validate reads it too
# The ownership tag is made and read in nstag (pure); what it is written as is done here
from netlab.kernel.nstag import (TAG_PREFIX as TAG_PREFIX, TAG_SYSCTLS as TAG_SYSCTLS, folder_hash as folder_hash,
                                 lab_hash as lab_hash, make_tag as make_tag, tag_of as tag_of,
                                 tag_values as tag_values)

if TYPE_CHECKING:
    import subprocess

CLONE_NEWNS = 0x00020000  # a mount namespace
CLONE_NEWNET = 0x40000000
CLONE_NEWUTS = 0x04000000
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
MS_BIND = 4096
MS_REC = 16384
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MNT_DETACH = 2


def _check(ret: int, what: str, path: str = "") -> None:
    if ret != 0:
        raise libc.os_error(what, path)


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    _check(libc.handle().setns(fd, nstype), "setns")


def ensure_netns_dir() -> None:
    """Make /run/netns a shared mount point, as iproute2 does, so mounts propagate. One thread at a time:
    two threads that both found no mount point would stack two bind mounts (namespaces are made side by
    side, kernel/threads.CREATE_WORKERS)."""
    with _netns_dir_lock:
        os.makedirs(NETNS_DIR, mode=0o755, exist_ok=True)
        if libc.handle().mount(b"", NETNS_DIR.encode(), b"none", MS_SHARED | MS_REC, None) == 0:
            return
        # Not a mount point yet: bind it onto itself, then make it shared.
        _check(libc.handle().mount(NETNS_DIR.encode(), NETNS_DIR.encode(), b"none", MS_BIND | MS_REC, None), "mount",
               NETNS_DIR)
        _check(libc.handle().mount(b"", NETNS_DIR.encode(), b"none", MS_SHARED | MS_REC, None), "mount", NETNS_DIR)


_netns_dir_lock = threading.Lock()


def is_netns_mount(name: str) -> bool:
    """True when /run/netns/<name> is a mounted namespace (not an empty placeholder, nor nothing)."""
    return _is_nsfs(netns_path(name))


def _is_nsfs(path: str) -> bool:
    # A bind-mounted namespace lives on nsfs: a different device than /run/netns.
    try:
        return os.stat(path).st_dev != os.stat(NETNS_DIR).st_dev
    except FileNotFoundError:
        return False


def exists(name: str) -> bool:
    return os.path.lexists(netns_path(name))


def list_netns() -> list[str]:
    """Names under /run/netns (what ``ip netns list`` shows), sorted."""
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


@contextmanager
def entered(name: str) -> Iterator[None]:
    """Run the body with this thread in namespace ``name``, then come back (netlab.errors.NetnsGone when it was
    deleted since the caller looked). Once entered, the namespace lives on until the thread leaves it. The thread is
    named VISITOR while in it: ``down`` leaves a netlab command passing through (kernel/processes.namespace_of)."""
    path = netns_path(name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NetnsGone(name, path) from None
    try:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except BaseException:
        os.close(fd)
        raise
    was = thread_name()
    try:
        name_thread(was if _joined else VISITOR)  # a process that lives in a lab's namespace is the lab's
        try:
            setns(fd)
        except OSError as exc:
            # EINVAL: the file is no namespace (any more): unmounted, not yet removed
            if exc.errno == errno.EINVAL and not is_nsfs(path):
                raise NetnsGone(name, path) from None
            raise
        try:
            yield
        finally:
            setns(home)
    finally:
        name_thread(was)
        os.close(fd)
        os.close(home)


VISITOR = b"netlab-visitor"  # a thread's name while it is in a namespace through entered() (kernel/processes.py)
_joined = False  # this process joined a namespace for good (join)


def thread_name() -> bytes:
    libc.handle().prctl(16, buf := ctypes.create_string_buffer(16), 0, 0, 0)  # PR_GET_NAME
    return buf.value


def name_thread(name: bytes) -> None:
    libc.handle().prctl(15, name[:15], 0, 0, 0)  # PR_SET_NAME


def is_nsfs(path: str) -> bool:
    """``path`` is a bind-mounted namespace (nsfs: another device than its folder), not a plain file."""
    try:
        return os.stat(path).st_dev != os.stat(os.path.dirname(path)).st_dev
    except OSError:
        return False


def fd_is_netns(fd: int) -> bool:
    """The open file ``fd`` is a namespace (a file of nsfs), not the empty file an unmounted one leaves in
    /run/netns, nor any other file: nsfs is a device of its own, not the one /run/netns is on."""
    try:
        return os.fstat(fd).st_dev != os.stat(NETNS_DIR).st_dev
    except OSError:
        return False


def current_fd(kind: str = "net") -> int:
    """A descriptor of the calling thread's own namespace of that kind ("net", "uts"), to come back to."""
    return os.open(f"/proc/thread-self/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)


def open_fd(name: str) -> int:
    """A descriptor of network namespace ``name``, for ``setns``."""
    return os.open(netns_path(name), os.O_RDONLY | os.O_CLOEXEC)


def join(name: str) -> None:
    """Move the calling thread into namespace ``name`` for good (a forked child that lives there: no VISITOR)."""
    global _joined
    _joined = True
    fd = open_fd(name)
    try:
        setns(fd)
    finally:
        os.close(fd)


class Held:
    """Namespace ``name`` held open by a descriptor: entered and left many times, no path lookup.

    ``with held:`` switches the calling thread in, and back to ``home`` (a
    :func:`current_fd` descriptor the caller owns). The prober enters a source
    namespace for every socket it opens there: thousands of times a run.
    """

    __slots__ = ("name", "fd", "home")

    def __init__(self, name: str, home: int):
        self.name, self.home = name, home
        self.fd = open_fd(name)

    def __enter__(self) -> None:
        setns(self.fd)

    def __exit__(self, *exc: object) -> None:
        setns(self.home)

    def close(self) -> None:
        os.close(self.fd)


def unshare(flags: int) -> None:
    """unshare(2) for the calling thread: CLONE_NEWNET, CLONE_NEWUTS, CLONE_NEWNS."""
    _check(libc.handle().unshare(flags), "unshare")


def sethostname(name: str) -> None:
    """The hostname of the calling thread's UTS namespace."""
    data = name.encode()
    _check(libc.handle().sethostname(data, len(data)), "sethostname")


def mount(source: str, target: str, fstype: str | None = None, flags: int = 0, data: str | None = None) -> None:
    """mount(2): a bind mount (``flags=MS_BIND``), a sysfs or tmpfs (``data``: its options), or a propagation
    change (source "none")."""
    _check(libc.handle().mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                       data.encode() if data is not None else None), "mount", target)


def detach(path: str) -> None:
    """``umount -l PATH``: the mount goes now, its users keep what they hold."""
    _check(libc.handle().umount2(path.encode(), MNT_DETACH), "umount", path)


def netlink_socket(proto: int = 0) -> socket.socket:
    """A NETLINK_ROUTE (or other proto) socket in the current thread's namespace."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    return sock


def create_netns(name: str, tag: str, sysctls: Sequence[tuple[str, str]] = (), dir_ready: bool = False,
                 placeholders: Placeholders | None = None, keep: Callable[[Any], None] | None = None,
                 timeout: float | None = None) -> dict[str, int]:
    """Create namespace ``name``: tagged, ``lo`` up and sysctls set before it is visible.

    Returns the links the kernel put in the new namespace (name -> ifindex):
    ``lo``, and, on a host with the sit, ipip or gre modules loaded (and
    ``net.core.fb_tunnels_only_for_init_net=0``), fallback tunnel devices such
    as ``sit0`` and ``tunl0``, which every new namespace then starts with.
    They are the kernel's, like ``lo``; the lab records them and leaves them
    alone, and numbers its own links after them.

    Raises FileExistsError if the name is taken (by anyone). ``dir_ready``: the caller made /run/netns a shared
    mount point already in this run (ensure_netns_dir; with a lab's 500 mounts below it, each call walks them).
    ``placeholders``: the run's :class:`Placeholders`, which claims the name. ``keep``: handed the netlink socket
    (a netlink.Conn, ``timeout``) the namespace was set up with, for the caller's own messages there, instead of
    closed: a socket opened later would cost a namespace switch there and back.
    """
    from netlab.kernel import netlink, rtnl, rtnl_parse

    path = netns_path(name)
    if not dir_ready:
        ensure_netns_dir()
    if placeholders is None:  # the placeholder is made with O_EXCL: claiming the name is atomic
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    else:
        placeholders.claim(name)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        # From unshare to the setns back home, a stop signal waits (held): Python raises a handler's exception in
        # the main thread between any two steps, and one raised right after unshare returned, or as the finally
        # began, left the thread in the new namespace for the rollback. Raised once the thread is home.
        from netlab.kernel import own_group  # subprocess's: not loaded by a run that makes no namespace

        with own_group.stops_wait():
            _check(libc.handle().unshare(CLONE_NEWNET), "unshare")
            try:
                procsys.write_sysctls_here([*testhooks.INHERITED_DEVCONF, *sysctls,
                                            *((key, str(value)) for key, value in zip(TAG_SYSCTLS, tag_values(tag)))])
                conn = netlink.Conn() if timeout is None else netlink.Conn(timeout=timeout)
                try:
                    testhooks.add_fallback_links(conn)
                    links = rtnl_parse.dump_links(conn, name)
                    lo = next(link.index for link in links if link.name == "lo")
                    conn.request(f"lo in {name}", rtnl.link_up(lo))
                    _check(libc.handle().mount(b"/proc/thread-self/ns/net", path.encode(), b"none", MS_BIND, None),
                           "mount", path)
                except BaseException:
                    conn.close()
                    raise
            finally:
                setns(home)
    except BaseException:
        _unlink_placeholder(path)
        raise
    finally:
        os.close(home)
    if keep is None:
        conn.close()
    else:
        keep(conn)
    return {link.name: link.index for link in links}


class Placeholders:
    """The placeholders a run claims names with, as hard links of one empty file with no name in /run/netns
    (O_TMPFILE). A link only adds a name where a new file costs an inode too: on a /run that is an ext4 without a
    journal, as on the benchmarks' machine, each new inode is looked for past every inode freed there in the
    last 30 s (the last ``down``'s), and a link's removal frees no inode for the next run to walk past. ``ip
    netns list`` never sees the file, which has no name until its first link. Where the file system makes no
    such file, or a link cannot be made (too many links, EMLINK), a placeholder is a new empty file."""

    def __init__(self) -> None:
        self.dir = os.open(NETNS_DIR, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            self.file: int | None = os.open(NETNS_DIR, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0)
        except OSError:  # O_TMPFILE unknown to this file system (EOPNOTSUPP) or kernel (EISDIR)
            self.file = None
        self.linkable = True

    def claim(self, name: str) -> None:
        """The placeholder of namespace ``name``, made atomically: a name taken raises FileExistsError. Linked by
        the file's /proc/self/fd name, followed (open(2)'s way for O_TMPFILE: no capability needed)."""
        if self.file is not None and self.linkable:
            try:
                os.link(f"/proc/self/fd/{self.file}", check_netns(name), dst_dir_fd=self.dir, follow_symlinks=True)
                return
            except FileExistsError:
                raise
            except OSError as exc:  # EMLINK; ENOENT once every link went (a rollback): never linkable again
                if exc.errno == errno.ENOENT:
                    self.linkable = False  # (the fd stays open: another thread's claim may be using its number)
        os.close(os.open(check_netns(name), os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0, dir_fd=self.dir))

    def close(self) -> None:
        if self.file is not None:
            os.close(self.file)
        os.close(self.dir)


def _unlink_placeholder(path: str) -> None:
    try:
        if not _is_nsfs(path):
            os.unlink(path)
    except FileNotFoundError:
        pass


def read_tag(name: str) -> str | None:
    """The ownership tag of a namespace: None if it has none or is not a namespace (gone meanwhile, or its tag's
    files hold no number). Any other failure to read it (EMFILE at the open-files limit, EPERM) is raised: it
    says nothing of whose the namespace is, and a caller that took it for "untagged" left a lab's namespaces
    behind as not its own (``down`` under ``ulimit -n 12``)."""
    if not is_netns_mount(name):
        return None
    try:
        with entered(name):
            values = procsys.read_sysctls_here(TAG_SYSCTLS)
    except NetnsGone:
        return None
    except ValueError:  # not text: no number netlab wrote
        return None
    return tag_of(values.get(key) for key in TAG_SYSCTLS)


def remove_netns(name: str) -> None:
    """Unmount and unlink /run/netns/<name>; the kernel frees the namespace when unused."""
    path = netns_path(name)
    if _is_nsfs(path):
        if libc.handle().umount2(path.encode(), MNT_DETACH) != 0:
            exc = libc.os_error("umount", path)
            if exc.errno not in (errno.EINVAL, errno.ENOENT):
                raise exc
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def is_placeholder(name: str) -> bool:
    """/run/netns/<name> is an empty file and no namespace: a claim never mounted (a crash between claim and
    mount), or a namespace unmounted (``umount``, the first half of ``ip netns del``)."""
    path = netns_path(name)
    return os.path.lexists(path) and not _is_nsfs(path) and os.path.isfile(path) and os.path.getsize(path) == 0


def remove_placeholder(name: str) -> bool:
    """Remove an empty placeholder (:func:`is_placeholder`)."""
    if is_placeholder(name):
        os.unlink(netns_path(name))
        return True
    return False


# Where netlab finds the programs it runs as root (iptables-restore, nft, conntrack, dnsmasq, tcpdump): these
# folders, in this order, never $PATH, which under sudo is the caller's own and could name a program anyone may
# write (README, Requirements). A program elsewhere (/opt/bin) is not found; a link to it in /usr/local/sbin is.
TOOL_DIRS = ("/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin")


def looked_in() -> str:
    """Where netlab looks for a program, in words."""
    return f"netlab looks in {', '.join(TOOL_DIRS[:-1])} and {TOOL_DIRS[-1]}, not $PATH"


def not_found(name: str) -> str:
    """``NAME is not installed``, with the folders netlab looked in."""
    return f"{name} is not installed ({looked_in()})"


def find_tool(name: str) -> str | None:
    """Absolute path of a program in :data:`TOOL_DIRS`, or None."""
    import shutil  # here: it loads bz2, lzma and fnmatch, which a probe's early start does not need

    return shutil.which(name, path=":".join(TOOL_DIRS))


def binary(name: str) -> str:
    """Absolute path of a system binary, or a clear EnvironmentNotReady."""
    path = find_tool(name)
    if not path:
        raise EnvironmentNotReady(f"{not_found(name)}; fix: {packages.install_fix(name)}")
    return path


def run_in_netns(name: str, argv: Sequence[str], input: bytes | None = None, timeout: float = 30.0,
                 check: bool = True) -> subprocess.CompletedProcess:
    """Run argv (absolute binary path, no shell) inside namespace ``name``.

    This thread enters the namespace, starts the program (a child is born in its parent thread's
    namespace) and comes back. With no function to run between fork and exec, Python starts the
    child by vfork instead of copying this process's page tables: ~1.5 ms instead of ~10 ms for a
    process holding 200 MB, as a 1,000-Service lab's does.

    The program runs in a process group of its own (the same session), deaf to SIGINT and SIGTERM from its
    birth (own_group.py): a terminal's Ctrl-C goes to the foreground group, netlab's, and it reached an
    ``iptables-restore`` that ``up --watch``'s repair or a node's rule thread was waiting for, killed it
    halfway, and that repair failed. netlab decides what a signal stops (lab/up.py, signals.py); the program
    still ends at ``timeout`` (SIGKILL), and when the caller's wait is cut short by an exception. It reads
    nothing but ``input``: not the terminal, from a group that is not the terminal's."""
    from netlab.kernel import own_group  # subprocess: loaded by the commands that run a program

    with entered(name):  # input written with SIGPIPE held: a program that stops reading kills no caller
        return own_group.run(argv, input, timeout, check)
