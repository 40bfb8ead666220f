"""The cluster DNS's A and PTR records: a hosts file in the lab's state directory, which dnsmasq re-reads.

CoreDNS's kubernetes plugin watches the API server and answers a new Service,
a new endpoint or a changed ClusterIP at once, without a restart (its pod's
RESTARTS stays 0). The lab's kube-dns pod runs dnsmasq, which reads its
``--addn-hosts`` file again when it gets SIGHUP (``man dnsmasq``, NOTES), so
the records that change with the lab's pods and Services live there::

    <state dir>/<lab>/dns/hosts     10.96.0.20 web.default.svc.cluster.local
                                    10.244.0.2 10-244-0-2.web.default.svc.cluster.local

``up`` writes it (atomically: dnsmasq reads the old file or the new one, never
half) before any container starts. The container's record keeps the digest of
the file its dnsmasq last read (``records``): a container started now reads the
file as it is; one that runs as specified and read an older file gets SIGHUP, and
so does one whose file ``up`` had to write again (missing, or edited: what dnsmasq
read of it since, netlab cannot know, so the record forgets the digest),
and ``up`` waits (at most :data:`WAIT` seconds) until its log says it read the
file again (dnsmasq logs ``read <path> - N names`` once it holds the new
records, or ``failed to load names from <path>``), so the changed names answer
as soon as ``up`` returns.

What dnsmasq takes only on its command line (``--srv-host``, ``--synth-domain``,
``--auth-zone``: SIGHUP does not re-read them, and ``--servers-file`` refuses
them) stays there (model/clusterdns.py), so a change of those (a Service added
or removed, a port, a headless Service's endpoints, a namespace) restarts it,
and the restart is counted as the kubelet counts one. Two dnsmasq cannot hold port 53 at once (it sets no
SO_REUSEPORT): the new container stops the old one as its last step before its exec (lifecycle.start,
kernel/spawning.py ``replace``), so the port is closed only for the old one's exit and the new one's exec and
start. Questions are lost there all the same (README says how): one the old dnsmasq took as it stopped goes
unanswered, one that meets the closed port gets "port unreachable" (glibc: EAI_AGAIN at once), or nothing once the
kernel's rate limit of ICMP errors to that client (6, then one a second) is spent; a lookup left unanswered asks
again after glibc's timeout, 5 s. SIGHUP loses none. ``down`` removes the file
with the state directory; ``up`` removes it, and the emptied ``dns`` folder, once
the lab has no cluster DNS.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import time
from typing import TYPE_CHECKING

from netlab.errors import netlab_command
from netlab.feature import StartResult
from netlab.kernel import processes as proc
from netlab.realize import lab_folder, lab_writes, state_dir
from netlab.realize.state_dir import lab_dir
from netlab.workload.echo_log import LogFile
from netlab.workload.tasks import proc_of, task_in

if TYPE_CHECKING:
    from netlab.model.lab import Lab, PodInfo

# The cluster DNS model (and the topology's) is loaded when a lab is made or looked at, not by ``down``.

FILE_MODE = 0o644  # as /etc/hosts
KEY = "records"  # in the container's record: digest of the records file its dnsmasq last read
# In the container's record too: the records file as it was when netlab had dnsmasq read it (inode, size, mtime
# and ctime, ns: :func:`_identity`), and the size of its log then, from which its first read is netlab's own.
FILE_KEY, LOG_KEY = "records_file", "records_log"
WAIT = 5.0  # seconds: a dnsmasq that is not stopped reads a file of a few hundred lines in milliseconds
POLL = 0.01


def hosts_path(lab_name: str, create: bool = False) -> str:
    """``<state dir>/<lab>/dns/hosts``: the file dnsmasq's ``--addn-hosts`` names."""
    return os.path.join(lab_dir(lab_name, create=create), "dns", "hosts")


def is_addon(pod: PodInfo) -> bool:
    """The cluster DNS add-on's pod (model/clusterdns.py is_addon_pod)."""
    from netlab.model.clusterdns import is_addon_pod

    return is_addon_pod(pod.spec)


def wanted(lab: Lab) -> str | None:
    """The hosts file of the lab's cluster DNS add-on; None when the lab has none (no Services, or its own
    kube-system/kube-dns)."""
    from netlab.model import dnsrecords

    if not any(is_addon(p) for p in lab.pods):
        return None
    return dnsrecords.hosts_file(dnsrecords.cluster_records(lab.topo, lab.addressing, lab.terminal))


def read(lab_name: str) -> str | None:
    """The file as it is, None when missing (or not a text file)."""
    try:
        with open(hosts_path(lab_name), encoding="utf-8") as fh:
            return fh.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, UnicodeDecodeError):
        return None


def digest(text: str) -> str:
    """What the containers feature records of the file dnsmasq last read (:func:`note_start`, :func:`reload`)."""
    return hashlib.sha256(text.encode()).hexdigest()


def sync(lab: Lab, pods: dict) -> StartResult:
    """Write the file when it is missing or differs (atomically); take it away when the lab has no add-on.

    A file rewritten is one whose content dnsmasq may not hold: the one it read last may have been edited or gone
    (``rm`` and SIGHUP empty it of every name), and the digest its container's record keeps is what netlab gave
    it, not what it read since. The record forgets it, so :func:`reload` sends the running dnsmasq SIGHUP (one that
    starts now reads the file as it is, :func:`note_start`)."""
    done = StartResult()
    text, have = wanted(lab), read(lab.name)
    path = hosts_path(lab.name)
    if text is None:  # no cluster DNS (the last Service removed): the file goes, and its folder when empty
        if lab_folder.sub_problem(state_dir.STATE_ROOT, lab.name, "dns") is not None:
            return done  # the user's folder (a symlink, a mount): nothing removed through it
        if have is not None:
            os.unlink(path)
        with contextlib.suppress(OSError):  # not there, or not empty
            os.rmdir(os.path.dirname(path))
        return done
    if have != text:
        lab_dir(lab.name)  # the lab's folder made as netlab makes it (marked), then dns/ below it
        why = lab_folder.sub_problem(state_dir.STATE_ROOT, lab.name, "dns")
        if why is not None:  # a symlink, or a bind mount of a user's folder: never written through
            done.problems.append(f"dns: {os.path.dirname(path)}: {why}; the cluster DNS records are not written "
                                 "there (left alone)")
            return done
        try:  # fd-relative, on the lab folder's mount: a swap since the look above is not written through either
            lab_writes.write_atomic(path, text.encode(), mode=FILE_MODE)
        except lab_writes.Refused as exc:
            done.problems.append(f"dns: {exc}; the cluster DNS records are not written there (left alone)")
            return done
        ran = _addon_records(lab, pods)
        for crec in ran:
            crec[KEY] = None
        if have is not None or ran:  # a repair (a missing file too, once dnsmasq ran); not the lab's first making
            done.actions.append(f"wrote the cluster DNS records {path} ({len(text.splitlines()) - 1} A records)")
    return done


def drift(lab: Lab, pods: dict) -> list[str]:
    """The records file missing or not as planned, or, as planned, read again by dnsmasq since it was edited
    (:func:`read_since`), for status. ``pods``: the workload's pod records."""
    text = wanted(lab)
    if text is None:
        return []
    have = read(lab.name)
    if lab_folder.sub_problem(state_dir.STATE_ROOT, lab.name, "dns") is not None:
        return []  # its folder is the user's (a symlink, a mount): up leaves it, and says so
    if have == text:
        return [f"dns: {why}; up has it read them again" for crec in _addon_records(lab, pods)
                if (why := read_since(lab.name, crec)) is not None]
    # What dnsmasq answers is what it read last: status cannot tell whether that was this file (a SIGHUP since)
    if have is None:
        return [f"dns: the cluster DNS records {hosts_path(lab.name)} are missing (dnsmasq answers the names it read "
                "last, none once it reads the file again: SIGHUP); up writes them again and has dnsmasq read them"]
    return [f"dns: the cluster DNS records {hosts_path(lab.name)} differ from the plan (dnsmasq answers the names it "
            "read last, these lines once it reads the file again: SIGHUP); up writes them again and has dnsmasq "
            "read them"]


def argv_tail(lab_name: str) -> list[str]:
    """What the add-on's command gets besides the model's: the hosts file, a path of this machine's state
    directory (the model does not know where it is)."""
    return [f"--addn-hosts={hosts_path(lab_name)}"]


def lab_of(pod: PodInfo) -> str:
    """The lab a pod's namespace name says (``<lab>-<pod>``, naming.netns_name)."""
    return pod.netns[: -len(pod.name) - 1]


def note_start(lab: Lab, pod: PodInfo, crec: dict) -> None:
    """A container (re)started now: if it is the add-on's dnsmasq, it reads the records file as it is."""
    if is_addon(pod):
        text = read(lab.name)
        crec[KEY] = digest(text) if text is not None else None
        _note_read(lab.name, crec, _size(crec.get("log") or ""))


def _note_read(lab_name: str, crec: dict, log_at: int) -> None:
    """dnsmasq of ``crec`` reads the records file now, at netlab's hand: its first read logged past ``log_at``."""
    crec[FILE_KEY], crec[LOG_KEY] = _identity(hosts_path(lab_name)), log_at


def _identity(path: str) -> list[int] | None:
    """The file's inode, size, mtime and ctime (ns): any write, rename over or ``touch`` of it changes the ctime,
    which no one can set back; None when it is not there."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def read_since(lab_name: str, crec: dict) -> str | None:
    """Why the records dnsmasq of ``crec`` holds may not be the file's, though the file is as planned; None when
    they are (or it cannot be told: a record of an older netlab).

    dnsmasq reads the file only as it starts and on SIGHUP, and logs each read (``read PATH - N names``, or
    ``failed to load names from PATH``). netlab notes the file (:func:`_identity`) and the log's size whenever it
    has dnsmasq read it. If the file is still the one noted, every read since read what netlab wrote. If it was
    changed since (edited, removed, put back: its ctime moved) and the log shows a read past netlab's own, that
    read may have taken the file as it was edited (dnsmasq answers it until it reads the file again), and status
    cannot see what it took; with no read past netlab's, dnsmasq still holds what netlab had it read. One stat
    per status; the log is read only once the file changed."""
    noted, at = crec.get(FILE_KEY), crec.get(LOG_KEY)
    path = hosts_path(lab_name)
    if noted is None or at is None or _identity(path) in (None, noted):
        return None
    reads = _reads(crec.get("log") or "", at, path)
    if reads is not None and reads <= 1:
        return None
    why = "" if reads is None else f", {reads - 1} time{'s' if reads > 2 else ''}"
    said = f"dnsmasq read it again since netlab had it read them (SIGHUP{why})" if reads is not None else \
        "its log started over since netlab had it read them, so whether it read them again cannot be told"
    return (f"the cluster DNS records {path} were changed since dnsmasq read them at netlab's hand, and {said}: "
            "it answers what it read then, which may not be the plan")


def _reads(log: str, at: int, path: str) -> int | None:
    """How many reads of ``path`` dnsmasq's log says past offset ``at``; None when the log no longer holds all
    that it wrote there (it started over, or cannot be read)."""
    try:
        with LogFile.open(log) as fh:  # from its data start: a log started over on tmpfs has a hole before it
            if os.fstat(fh.fileno()).st_size < at or fh.tell() > at:
                return None
            fh.seek(at)
            seen = fh.read()
    except OSError:
        return None
    return seen.count(f"read {path} - ".encode()) + seen.count(f"failed to load names from {path}".encode())


def _addon_records(lab: Lab, pods: dict) -> list[dict]:
    """The container records of the lab's add-on dnsmasq (one; none before it first started)."""
    return [crec for pod in lab.pods if is_addon(pod)
            if (crec := pods.get(pod.name, {}).get("containers", {}).get(pod.containers[0].name))]


def reload(lab: Lab, pods: dict) -> StartResult:
    """SIGHUP to the add-on's running dnsmasq when the records file changed since it read it; wait until it has."""
    done = StartResult()
    for pod in lab.pods:
        if not is_addon(pod):
            continue
        cname = pod.containers[0].name
        crec = pods.get(pod.name, {}).get("containers", {}).get(cname)
        text = read(lab.name)
        noted = crec.get(FILE_KEY) is not None and crec.get(LOG_KEY) is not None if crec else False
        if not crec or text is None or (crec.get(KEY) == digest(text) and noted and read_since(lab.name, crec) is None):
            continue  # a record of an older netlab, without the note read_since needs: SIGHUP once, then noted
        p = proc_of(crec)
        if p is None or task_in(crec, pod.netns) in (None, "Z", "X", "T"):
            continue  # not running (held by its restartPolicy, or stopped): it reads the file when it starts
        log = crec.get("log") or ""
        offset = _size(log)
        if proc.start_time(p.pid) != p.start:
            continue
        os.kill(p.pid, signal.SIGHUP)
        what = f"container {pod.name}/{cname}"
        said = _await_read(log, offset, hosts_path(lab.name))
        if said is True:
            crec[KEY] = digest(text)
            _note_read(lab.name, crec, offset)
            later = "" if noted else ": noted, so status can tell a read of them edited (an older netlab's record)"
            done.actions.append(f"{what} read the cluster DNS records again (SIGHUP; no restart){later}")
        else:
            done.problems.append(f"{what}: dnsmasq did not read the cluster DNS records again after SIGHUP "
                                 f"({said}); `{netlab_command(f'logs --lab {lab.name} {pod.name}')}` shows what it "
                                 "said")
    return done


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _await_read(log: str, offset: int, path: str) -> bool | str:
    """True once the log says dnsmasq read ``path`` (after ``offset``); else why not, in words."""
    ok, bad = f"read {path} - ".encode(), f"failed to load names from {path}".encode()
    deadline = time.monotonic() + WAIT
    mark = b""  # what the log said last before offset: found again in a log that started over with its newest lines
    try:
        with open(log, "rb") as fh:
            if os.fstat(fh.fileno()).st_size >= offset:  # not started over since offset was taken
                mark = os.pread(fh.fileno(), min(offset, 256), max(0, offset - 256))
    except OSError:
        pass
    while True:
        try:
            with LogFile.open(log) as fh:  # from its data start: never the hole of one that started over on tmpfs
                if after := os.fstat(fh.fileno()).st_size >= offset:  # else it started over (10 MiB), shorter
                    fh.seek(max(offset, fh.tell()))  # a hole punched past offset: all it keeps came after it
                seen = fh.read()
            if not after and mark and mark in seen:  # with its newest lines
                seen = seen[seen.rindex(mark) + len(mark):]
        except OSError:
            seen = b""
        if ok in seen:
            return True
        if bad in seen:
            line = seen[seen.index(bad):].split(b"\n", 1)[0]
            return line.decode(errors="replace")
        if time.monotonic() > deadline:
            return f"its log said nothing of it in {WAIT:g} s"
        time.sleep(POLL)
