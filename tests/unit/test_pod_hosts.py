"""Each pod's /etc/hosts, the kubelet's managed hosts file (netlab/services/hosts.py), and the care every
file under /etc/netns/<pod namespace>/ gets (netlab/services/netns_files.py), in a private directory.

The text is the kubelet's (kubernetes pkg/kubelet/kubelet_pods.go, managedHostsFileContent) after
netlab's first line; the files are recorded before they are made, rewritten in place, removed only
when they are netlab's, and a file someone else wrote is never touched.
"""

from __future__ import annotations

import json
import os

import pytest

from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.realize import ownership, tags
from netlab.services import hosts, lifecycle, netns_files

LAB = "hh"

# What managedHostsFileContent writes for a pod without hostname, subdomain or hostAliases.
KUBELET = ("# Kubernetes-managed hosts file.\n"
           "127.0.0.1\tlocalhost\n"
           "::1\tlocalhost ip6-localhost ip6-loopback\n"
           "fe00::0\tip6-localnet\n"
           "fe00::0\tip6-mcastprefix\n"
           "fe00::1\tip6-allnodes\n"
           "fe00::2\tip6-allrouters\n"
           "{ip}\t{name}\n")


class State:
    """What the files need of a LabState: its lab's name, its records, saves (counted), and the files removed."""

    def __init__(self, lab: str = LAB):
        self.lab, self.extra, self.saves = lab, {}, 0
        self.removed_files: list[str] = []
        self.netns: dict[str, str] = {}  # the lab's namespaces (a down looks for pod folders to take back in them)

    def save(self) -> None:
        self.saves += 1


def make_lab(services: bool = True, name: str = LAB):
    topo = {"name": name, "nodes": [{"name": "n1"}],
            "pods": [{"name": "a", "node": "n1", "labels": {"app": "a"}}, {"name": "b", "node": "n1"}]}
    if services:
        topo["services"] = [{"name": "s", "selector": {"app": "a"}, "ports": [{"port": 80}]}]
    return resolve(Topology.model_validate(topo))


@pytest.fixture
def etc(tmp_path, monkeypatch):
    path = tmp_path / "etc-netns"
    monkeypatch.setattr(netns_files, "ETC_NETNS", str(path))
    return path


def test_the_text_is_the_kubelets_after_netlabs_line():
    lab = make_lab()
    pod = lab.pod("a")
    text = hosts.hosts_file(LAB, pod)
    first, rest = text.split("\n", 1)
    assert first.startswith(netns_files.marker(LAB))
    assert rest == KUBELET.format(ip=pod.ip, name="a")


def test_a_pods_hostname_and_subdomain_are_its_line_as_generatepodhostnameanddomain_makes_it():
    """spec.hostname replaces the pod's name; spec.subdomain puts the full name first (with or without a
    hostname): `<ip>\t<hostname>.<subdomain>.<namespace>.svc.cluster.local\t<hostname>`."""
    pods = [{"name": "web-0", "node": "n1", "hostname": "db-0", "subdomain": "db"},
            {"name": "solo", "node": "n1", "namespace": "shop", "subdomain": "db"},
            {"name": "named", "node": "n1", "hostname": "box"}]
    lab = resolve(Topology.model_validate({"name": LAB, "nodes": [{"name": "n1"}], "pods": pods}))
    last = {p.name: hosts.hosts_file(LAB, p).splitlines()[-1] for p in lab.pods}
    ip = {p.name: p.ip for p in lab.pods}
    assert last == {"web-0": f"{ip['web-0']}\tdb-0.db.default.svc.cluster.local\tdb-0",
                    "solo": f"{ip['solo']}\tsolo.db.shop.svc.cluster.local\tsolo",
                    "named": f"{ip['named']}\tbox"}


def test_every_pod_gets_one_the_dns_pod_too_recorded_before_it_is_made(etc):
    lab = make_lab()
    st = State()
    rec = lifecycle._records(st)
    saved = []
    st.save = lambda: saved.append(json.loads(json.dumps(rec)))  # type: ignore[method-assign]
    done = hosts.sync(lab, st, rec)
    names = sorted(p.netns for p in lab.pods)
    assert "kube-dns" in {p.name for p in lab.pods}
    assert sorted(os.listdir(etc)) == names
    for pod in lab.pods:
        assert (etc / pod.netns / "hosts").read_text() == hosts.hosts_file(LAB, pod)
    # Write-ahead: the one save before any file exists names every file and directory as intent.
    assert saved and saved[0]["hosts"] == {n: "intent" for n in names} == saved[0]["dirs"]
    assert saved[0]["etc_netns"] == "intent"
    assert rec["hosts"] == {n: "created" for n in names} == rec["dirs"] and rec["etc_netns"] == "created"
    assert sorted(done.actions) == sorted(f"wrote {etc / n / 'hosts'}" for n in names)
    assert hosts.drift(lab, rec) == []


def test_an_edited_file_is_drift_and_rewritten_in_place(etc):
    lab = make_lab(services=False)
    st = State()
    rec = lifecycle._records(st)
    hosts.sync(lab, st, rec)
    path = etc / f"{LAB}-a" / "hosts"
    inode = path.stat().st_ino
    path.write_text("10.0.0.9\ta\n")  # a learner's edit: netlab's first line is gone
    assert hosts.drift(lab, rec) == [f"hosts: {path} is different (pod a would not get the kubelet's hosts file); "
                                "up writes it again"]
    done = hosts.sync(lab, st, rec)
    assert done.actions == [f"rewrote {path} (it was edited)"]
    assert path.read_text() == hosts.hosts_file(LAB, lab.pod("a")) and path.stat().st_ino == inode
    path.unlink()
    assert hosts.drift(lab, rec)[0].startswith(f"hosts: {path} is missing")
    assert hosts.sync(lab, st, rec).actions == [f"wrote {path}"]
    assert hosts.sync(lab, st, rec).actions == []  # as it should be: nothing said


def test_a_file_someone_else_wrote_is_left_alone_and_never_removed(etc):
    lab = make_lab(services=False)
    theirs = etc / f"{LAB}-b"
    theirs.mkdir(parents=True)
    (theirs / "hosts").write_text("192.0.2.1\tmine\n")
    link = etc / f"{LAB}-a"
    link.mkdir()
    outside = etc.parent / "outside"
    outside.write_text("keep\n")
    (link / "hosts").symlink_to(outside)  # never followed, never written through
    st = State()
    rec = lifecycle._records(st)
    done = hosts.sync(lab, st, rec)
    assert (theirs / "hosts").read_text() == "192.0.2.1\tmine\n" and outside.read_text() == "keep\n"
    assert any(f"{theirs / 'hosts'} exists and is not netlab's; left alone" in p for p in done.problems)
    assert any(f"{link / 'hosts'} exists and is not netlab's" in p for p in done.problems)
    assert f"{LAB}-b" not in rec["hosts"] and f"{LAB}-a" not in rec["hosts"]
    lifecycle.stop(st, [], everything=True)
    assert (theirs / "hosts").read_text() == "192.0.2.1\tmine\n" and (link / "hosts").is_symlink()
    assert outside.read_text() == "keep\n"


def test_down_removes_only_netlabs_files_and_the_directories_it_made(etc):
    lab = make_lab()
    st = State()
    lifecycle.sync_resolv(lab, st, lifecycle._records(st))
    rec = lifecycle._records(st)
    hosts.sync(lab, st, rec)
    rewritten = etc / f"{LAB}-b" / "hosts"
    rewritten.write_text("192.0.2.1\tb\n")  # rewritten entirely by a person: theirs now
    lifecycle.stop(st, [f"{LAB}-a", f"{LAB}-kube-dns"])  # pods that go
    assert sorted(os.listdir(etc)) == [f"{LAB}-b"]
    lifecycle.stop(st, [], everything=True)
    assert os.listdir(etc / f"{LAB}-b") == ["hosts"] and rewritten.read_text() == "192.0.2.1\tb\n"
    rec = lifecycle._records(st)
    assert rec["hosts"] == rec["resolv"] == rec["dirs"] == {} and rec["etc_netns"] is None


def test_a_pod_that_goes_takes_its_file_and_the_dns_going_keeps_the_hosts_files(etc):
    lab = make_lab()
    st = State()
    rec = lifecycle._records(st)
    lifecycle.sync_resolv(lab, st, rec)
    hosts.sync(lab, st, rec)
    # The Services go (so does the DNS pod): resolv.conf goes, every remaining pod keeps its hosts file
    # and its directory.
    smaller = make_lab(services=False)
    lifecycle.sync_resolv(smaller, st, rec)
    hosts.sync(smaller, st, rec)
    assert sorted(os.listdir(etc)) == [f"{LAB}-a", f"{LAB}-b"]
    assert os.listdir(etc / f"{LAB}-a") == ["hosts"] and set(rec["dirs"]) == {f"{LAB}-a", f"{LAB}-b"}
    lifecycle.stop(st, [], everything=True)
    assert not etc.exists()  # netlab made /etc/netns here: it goes once empty


def test_the_last_lab_to_leave_removes_the_etc_netns_another_lab_made(etc):
    """Labs side by side: the one that made /etc/netns goes first, the last one to leave removes it."""
    first, second = make_lab(services=False), make_lab(services=False, name="hj")
    st1, st2 = State(), State("hj")
    hosts.sync(first, st1, lifecycle._records(st1))
    hosts.sync(second, st2, lifecycle._records(st2))
    assert lifecycle._records(st1)["etc_netns"] == "created" and lifecycle._records(st2)["etc_netns"] is None
    assert netns_files.made_by_netlab(str(etc))
    lifecycle.stop(st1, [], everything=True)
    assert sorted(os.listdir(etc)) == ["hj-a", "hj-b"]  # the second lab's directories keep it
    lifecycle.stop(st2, [], everything=True)
    assert not etc.exists()


def test_an_etc_netns_someone_else_made_stays_when_the_labs_leave_it_empty(etc):
    etc.mkdir()
    lab = make_lab(services=False)
    st = State()
    hosts.sync(lab, st, lifecycle._records(st))
    assert not netns_files.made_by_netlab(str(etc)) and lifecycle._records(st)["etc_netns"] is None
    lifecycle.stop(st, [], everything=True)
    assert etc.is_dir() and os.listdir(etc) == []


def test_an_etc_netns_another_lab_removed_meanwhile_is_made_again(etc):
    rec = lifecycle._records(State())
    assert netns_files.make_netns_dir(rec, f"{LAB}-a")  # /etc/netns went after this lab found it there
    assert (etc / f"{LAB}-a").is_dir() and rec["etc_netns"] == "created" and netns_files.made_by_netlab(str(etc))


def test_an_etc_netns_removed_between_mkdir_and_its_check_is_made(etc, monkeypatch):
    """mkdir found /etc/netns there (EEXIST), another lab left it empty and removed it before lstat looked:
    it is made, not a FileNotFoundError that rolls the whole up back."""
    etc.mkdir()
    lstat = os.lstat

    def removed_first(path, *args, **kwargs):
        if path == str(etc) and etc.exists():
            etc.rmdir()
        return lstat(path, *args, **kwargs)

    monkeypatch.setattr(netns_files.os, "lstat", removed_first)
    assert netns_files.make_etc_netns() and etc.is_dir() and netns_files.made_by_netlab(str(etc))


def test_an_etc_netns_removed_twice_while_a_pods_directory_is_made_is_made_again(etc, monkeypatch):
    """Two labs leaving one after the other each remove the empty /etc/netns this lab has just made again."""
    mkdir, removals = os.mkdir, []

    def others_leave(path, *args, **kwargs):
        if path == str(etc / f"{LAB}-a") and len(removals) < 2 and etc.exists():
            removals.append(path)
            etc.rmdir()
        return mkdir(path, *args, **kwargs)

    monkeypatch.setattr(netns_files.os, "mkdir", others_leave)
    etc.mkdir()
    rec = lifecycle._records(State())
    assert netns_files.make_netns_dir(rec, f"{LAB}-a")
    assert len(removals) == 2 and (etc / f"{LAB}-a").is_dir() and rec["etc_netns"] == "created"


def test_down_force_finds_the_hosts_files_that_say_they_are_the_labs(etc, monkeypatch):
    monkeypatch.setattr(tags, "ETC_NETNS", str(etc))
    (etc / f"{LAB}-a").mkdir(parents=True)
    (etc / f"{LAB}-a" / "hosts").write_text(f"{netns_files.marker(LAB)} pod a\n")
    (etc / f"{LAB}-b").mkdir()
    (etc / f"{LAB}-b" / "hosts").write_text("# someone's\n")
    os.mkfifo(etc / f"{LAB}-b" / "resolv.conf")  # read without blocking: not a regular file, not the lab's
    rec = ownership._files_record(tags.pod_files(LAB, [f"{LAB}-a", f"{LAB}-b"]))
    assert rec["hosts"] == {f"{LAB}-a": "created"} and rec["resolv"] == {} and rec["dirs"] == {f"{LAB}-a": "created"}
    st = State()
    st.extra["services"] = rec
    lifecycle.stop(st, [f"{LAB}-a", f"{LAB}-b"], everything=True)
    assert sorted(os.listdir(etc)) == [f"{LAB}-b"]


def test_a_fifo_put_where_netlabs_file_was_is_never_waited_on_nor_removed(etc):
    """A FIFO opened for writing blocks until someone reads it: up must say it cannot write there, at once."""
    import stat
    import threading

    lab = make_lab(services=False)
    st = State()
    rec = lifecycle._records(st)
    hosts.sync(lab, st, rec)
    path = etc / f"{LAB}-a" / "hosts"
    path.unlink()
    os.mkfifo(path)
    box: dict = {}
    worker = threading.Thread(target=lambda: box.update(done=hosts.sync(lab, st, rec)), daemon=True)
    worker.start()
    worker.join(5)
    if worker.is_alive():  # let it go, then fail
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
        worker.join(5)
        pytest.fail("sync waited for a reader of the FIFO")
    assert any(f"pod a: cannot write {path}" in p for p in box["done"].problems), box["done"].problems
    assert hosts.drift(lab, rec)[0].startswith(f"hosts: {path} is missing")
    lifecycle.stop(st, [], everything=True)
    assert stat.S_ISFIFO(os.lstat(path).st_mode)  # not netlab's file: left


@pytest.fixture
def files_only(monkeypatch):
    """lifecycle.start with its file part alone (no chains, Flannel files, conntrack: the kernel's)."""
    from netlab.services import flannel_files, stale

    monkeypatch.setattr(lifecycle, "sync_chains", lambda lab, rec: netns_files.StartResult())
    monkeypatch.setattr(lifecycle, "sync_conntrack", lambda lab, rec: netns_files.StartResult())
    monkeypatch.setattr(flannel_files, "sync", lambda lab, state=None: netns_files.StartResult())
    monkeypatch.setattr(stale, "find", lambda lab: [])


def test_a_fresh_labs_files_are_recorded_then_written_early_and_start_records_them_made(etc, files_only):
    """start_early (while up makes the network): one save names every path as intent before the thread
    writes; start then finds them netlab's and records them made, /etc/netns and the directories too; a file
    someone else put at a pod's path is left alone and said."""
    lab = make_lab()
    theirs = etc / f"{LAB}-b"
    theirs.mkdir(parents=True)
    (theirs / "hosts").write_text("192.0.2.1\tmine\n")
    st = State()
    saved = []
    st.save = lambda: saved.append(json.loads(json.dumps(lifecycle._records(st))))  # type: ignore[method-assign]
    early = lifecycle.start_early(lab, st)
    assert early is not None and saved, "recorded and saved before the thread starts"
    pods = sorted(p.netns for p in lab.pods)
    assert saved[0]["hosts"] == {n: "intent" for n in pods if n != f"{LAB}-b"}
    assert set(saved[0]["resolv"]) == {p.netns for p in lab.pods if p.name != "kube-dns"}
    done = lifecycle.start(lab, st, early)
    rec = lifecycle._records(st)
    assert rec["hosts"] == {n: "created" for n in pods if n != f"{LAB}-b"}
    assert set(rec["resolv"].values()) == {"created"}
    assert rec["etc_netns"] is None  # there before (b's directory in it): not netlab's
    assert rec["dirs"] == {n: "created" for n in pods if n != f"{LAB}-b"}  # b's was someone else's
    assert (theirs / "hosts").read_text() == "192.0.2.1\tmine\n"
    assert any(f"{theirs / 'hosts'} exists and is not netlab's" in p for p in done.problems)
    assert [line.split("; ")[0] for line in hosts.drift(lab, rec)] == [  # up's words: status warns, no drift
        f"pod b: {theirs / 'hosts'} exists and is not netlab's"]
    assert lifecycle.start_early(lab, st) is None  # files recorded: start's sync compares them
    lifecycle.stop(st, [], everything=True)
    assert os.listdir(etc) == [f"{LAB}-b"]


def test_a_fault_in_the_early_writer_fails_start_and_leaves_every_path_recorded(etc, files_only, monkeypatch):
    from netlab.errors import ApplyFailed
    from netlab.kernel import testhooks

    monkeypatch.setattr(testhooks, "FAULT_POINT", "hosts-written")
    monkeypatch.setattr(testhooks, "FAULT_MODE", "fail")
    lab = make_lab(services=False)
    st = State()
    early = lifecycle.start_early(lab, st)
    assert early is not None
    with pytest.raises(ApplyFailed, match="hosts-written"):
        lifecycle.start(lab, st, early)
    rec = lifecycle._records(st)
    assert set(rec["hosts"].values()) == {"intent"} and os.listdir(etc)  # one file written, all named
    assert rec["etc_netns"] == "intent" and set(rec["dirs"].values()) == {"intent"}
    lifecycle.abort_early(early)  # a rollback waits for it again: nothing raised
    lifecycle.stop(st, [], everything=True)  # the rollback's stop
    assert not etc.exists()


def test_a_whole_labs_files_go_in_a_thread_and_the_records_change_only_when_stop_waits_for_it(etc, files_only):
    """down: stop_early's thread takes every file and directory away while the processes stop and the namespaces
    go, changing no record (a process killed meanwhile leaves the state naming them all, for the next down);
    stop, called last with its handle, waits, then empties the records. A person's file stays, and keeps its
    directory (and /etc/netns, which holds it)."""
    lab = make_lab()
    st = State()
    lifecycle.start(lab, st)
    mine = etc / f"{LAB}-a" / "notes"
    mine.write_text("a person's\n")
    before = json.loads(json.dumps(lifecycle._records(st)))
    early = lifecycle.stop_early(st)
    assert early is not None
    early.join()
    assert lifecycle._records(st) == before, "the thread changes no record"
    assert sorted(os.listdir(etc)) == [f"{LAB}-a"] and os.listdir(etc / f"{LAB}-a") == ["notes"]
    lifecycle.stop(st, [], everything=True, early=early)
    rec = lifecycle._records(st)
    assert not rec["dirs"] and not any(rec[kind] for kind in netns_files.FILES)
    assert os.listdir(etc / f"{LAB}-a") == ["notes"]  # and /etc/netns, which holds it
    assert lifecycle.stop_early(st) is None  # nothing recorded: nothing to begin


def test_a_killed_down_leaves_its_files_recorded_and_the_next_one_takes_away_what_is_left(etc, files_only):
    lab = make_lab()
    st = State()
    lifecycle.start(lab, st)
    lifecycle.stop_early(st).join()  # and the process dies: stop never comes
    (etc / f"{LAB}-b").mkdir()  # a directory the killed thread had not yet removed
    lifecycle.stop(st, [], everything=True)
    assert not etc.exists() and not lifecycle._records(st)["dirs"]
