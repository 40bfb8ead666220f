"""The cluster DNS's A and PTR records file (workload/dns_records.py), which dnsmasq re-reads on SIGHUP: its
content, where it is, how it is written, and how `up` knows dnsmasq read it (no root)."""

from __future__ import annotations

import os
import stat
import threading
import time

import pytest
import yaml

from netlab.realize.state_dir import StateWriteFailed
from netlab.model import clusterdns as dns
from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.realize import state_dir
from netlab.workload import dns_records
from netlab.workload.containers import container_argv

TOPO = """
name: dnrec
nodes: [{name: n1}]
pods:
  - {name: web-1, node: n1, ip: 10.244.0.2, labels: {app: web}}
  - {name: client, node: n1, ip: 10.244.0.3}
services:
  - {name: web, selector: {app: web}, clusterIP: 10.96.0.20, ports: [{name: http, port: 80}]}
"""


def lab_of(text: str = TOPO):
    return resolve(Topology.model_validate(yaml.safe_load(text)))


def test_the_file_holds_every_a_record_in_ptr_order_and_the_command_none():
    lab = lab_of()
    assert dns_records.wanted(lab) == (
        "# netlab: the cluster DNS's A and PTR records (dnsmasq --addn-hosts; read again on SIGHUP)\n"
        "10.96.0.20 web.default.svc.cluster.local\n"
        "10.96.0.10 kube-dns.kube-system.svc.cluster.local\n"
        "10.96.0.1 kubernetes.default.svc.cluster.local\n"
        "10.244.0.2 10-244-0-2.web.default.svc.cluster.local\n"
        "10.244.0.4 10-244-0-4.kube-dns.kube-system.svc.cluster.local\n"
        "10.96.0.10 ns.dns.cluster.local\n"
        # the named ports' names answer A too, last: no address takes its PTR from them
        "10.96.0.20 _http._tcp.web.default.svc.cluster.local\n"
        "10.96.0.10 _dns._udp.kube-dns.kube-system.svc.cluster.local\n"
        "10.96.0.10 _dns-tcp._tcp.kube-dns.kube-system.svc.cluster.local\n"
        "10.96.0.1 _https._tcp.kubernetes.default.svc.cluster.local\n")
    (pod,) = [p for p in lab.pods if p.name == dns.DNS_NAME]
    argv = container_argv(pod, pod.containers[0])
    # the records the file holds are not on the command line, so they change without a new command
    assert not [a for a in argv if a.startswith("--host-record") or "10.96.0.20" in a or "10.244.0.2" in a]
    assert argv[-1] == f"--addn-hosts={state_dir.STATE_ROOT}/dnrec/dns/hosts"
    assert "--user=root" in argv  # dnsmasq re-reads it as root: the lab's state directory is root's (0700)
    # a new endpoint and a new ClusterIP change the file, not the command
    more = lab_of(TOPO.replace("10.96.0.20", "10.96.0.25").replace(
        "  - {name: client,", "  - {name: web-2, node: n1, ip: 10.244.0.5, labels: {app: web}}\n  - {name: client,"))
    (pod2,) = [p for p in more.pods if p.name == dns.DNS_NAME]
    assert container_argv(pod2, pod2.containers[0]) == argv
    assert "10.96.0.25 web.default.svc.cluster.local\n" in (dns_records.wanted(more) or "")
    assert "10.244.0.5 10-244-0-5.web.default.svc.cluster.local\n" in (dns_records.wanted(more) or "")
    # a Service's SRV records are only dnsmasq's command line's: a new Service is a new command
    svc = lab_of(TOPO + "  - {name: api, selector: {app: web}, clusterIP: 10.96.0.30, ports: [{port: 81}]}\n")
    (pod3,) = [p for p in svc.pods if p.name == dns.DNS_NAME]
    assert any("api.default" in a for a in container_argv(pod3, pod3.containers[0]))


def test_a_lab_without_the_add_on_has_no_file():
    assert dns_records.wanted(lab_of(TOPO.split("services:")[0])) is None


def test_sync_writes_it_root_readable_in_the_labs_folder_rewrites_only_a_change_and_removes_it():
    lab = lab_of()
    state_dir.lab_dir(lab.name)  # up made the lab's folder
    path = dns_records.hosts_path(lab.name)
    assert dns_records.sync(lab, {}).actions == []  # the first write is the lab's making, not a repair
    with open(path) as fh:
        assert fh.read() == dns_records.wanted(lab)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    inode = os.stat(path).st_ino
    assert dns_records.sync(lab, {}).actions == [] and os.stat(path).st_ino == inode  # unchanged: not written
    assert dns_records.drift(lab, {}) == []
    with open(path, "a") as fh:
        fh.write("10.0.0.1 edited.default.svc.cluster.local\n")
    # what dnsmasq answers is what it read last (the file as planned, unless a SIGHUP made it read this one)
    assert dns_records.drift(lab, {}) == [f"dns: the cluster DNS records {path} differ from the plan (dnsmasq answers "
                                      "the names it read last, these lines once it reads the file again: SIGHUP); "
                                      "up writes them again and has dnsmasq read them"]
    assert dns_records.sync(lab, {}).actions == [f"wrote the cluster DNS records {path} (10 A records)"]
    assert os.stat(path).st_ino != inode  # a new file renamed over the old: a reader has one or the other
    os.unlink(path)
    assert dns_records.drift(lab, {}) == [f"dns: the cluster DNS records {path} are missing (dnsmasq answers the names "
                                      "it read last, none once it reads the file again: SIGHUP); up writes them "
                                      "again and has dnsmasq read them"]
    dns_records.sync(lab, {})
    assert dns_records.sync(lab_of(TOPO.split("services:")[0]), {}).actions == [] and not os.path.exists(path)
    assert not os.path.lexists(os.path.dirname(path))  # the dns folder too, once the last Service went


def test_the_dns_folder_stays_while_it_holds_anything_else():
    lab = lab_of()
    state_dir.lab_dir(lab.name)
    dns_records.sync(lab, {})
    folder = os.path.dirname(dns_records.hosts_path(lab.name))
    with open(os.path.join(folder, "notes"), "w") as fh:
        fh.write("someone's\n")
    dns_records.sync(lab_of(TOPO.split("services:")[0]), {})
    assert os.listdir(folder) == ["notes"]


def test_a_failed_write_leaves_the_old_file_whole_and_no_temporary_one(monkeypatch):
    lab = lab_of()
    state_dir.lab_dir(lab.name)
    path = dns_records.hosts_path(lab.name)
    dns_records.sync(lab, {})
    old = dns_records.read(lab.name)
    changed = lab_of(TOPO.replace("10.96.0.20", "10.96.0.25"))

    def full(fd, data):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(state_dir.os, "write", full)
        with pytest.raises(StateWriteFailed):
            dns_records.sync(changed, {})
    assert dns_records.read(lab.name) == old and os.listdir(os.path.dirname(path)) == ["hosts"]


def test_a_file_written_again_is_read_again_whatever_digest_netlab_gave_dnsmasq_last():
    """QA qd59 1: `rm` of the file and SIGHUP empty dnsmasq of every name (an edited line and SIGHUP: a wrong one);
    the digest in its container's record is what netlab gave it, the file as planned. up writes the file again,
    and the record forgets the digest, so reload() sends SIGHUP (it skipped it: the digest was the planned one)."""
    lab = lab_of()
    state_dir.lab_dir(lab.name)
    path = dns_records.hosts_path(lab.name)
    dns_records.sync(lab, {})
    crec = {"argv": ["dnsmasq"], "restarts": 0}
    dns_records.note_start(lab, next(p for p in lab.pods if dns_records.is_addon(p)), crec)
    pods = {dns.DNS_NAME: {"containers": {"dnsmasq": crec}}, "web-1": {"containers": {"main": {"restarts": 0}}}}
    text = dns_records.wanted(lab) or ""
    assert crec[dns_records.KEY] == dns_records.digest(text)
    dns_records.sync(lab, pods)  # as planned: nothing written, the record as it was
    assert crec[dns_records.KEY] == dns_records.digest(text)
    for spoil in (lambda: os.unlink(path), lambda: open(path, "a").write("10.0.0.1 x.default.svc.cluster.local\n")):
        spoil()
        assert dns_records.sync(lab, pods).problems == [] and dns_records.read(lab.name) == text
        assert crec[dns_records.KEY] is None  # != digest(text): reload() sends SIGHUP
        assert "records" not in pods["web-1"]["containers"]["main"]
        crec[dns_records.KEY] = dns_records.digest(text)


def test_a_missing_file_written_again_is_said_once_dnsmasq_ran_with_it():
    """QA qd59 6: up wrote a missing records file that status had named and said nothing of it ("nothing to
    change", JSON changed false; its count of files written one short). The lab's first file is its making."""
    lab = lab_of()
    state_dir.lab_dir(lab.name)
    path = dns_records.hosts_path(lab.name)
    assert dns_records.sync(lab, {}).actions == []  # no dnsmasq ran yet: the lab being made
    crec: dict = {"argv": ["dnsmasq"], "restarts": 0}
    dns_records.note_start(lab, next(p for p in lab.pods if dns_records.is_addon(p)), crec)
    os.unlink(path)
    assert dns_records.sync(lab, {dns.DNS_NAME: {"containers": {"dnsmasq": crec}}}).actions == [
        f"wrote the cluster DNS records {path} (10 A records)"]


def test_up_waits_for_dnsmasqs_word_that_it_read_the_file(tmp_path, monkeypatch):
    """After SIGHUP, dnsmasq logs `read <path> - N names` once it holds the new records: up returns then, not
    before; a log that says it failed, or nothing within the bound, is a problem in words."""
    log, path = tmp_path / "kube-dns.dnsmasq.log", "/run/netlab/x/dns/hosts"
    log.write_text("dnsmasq[7]: read /run/netlab/x/dns/hosts - 5 names\n")  # the start's, before the signal
    offset = log.stat().st_size
    monkeypatch.setattr(dns_records, "WAIT", 0.3)
    assert dns_records._await_read(str(log), offset, path) == "its log said nothing of it in 0.3 s"

    def say(line: str) -> None:
        time.sleep(0.1)
        with open(log, "a") as fh:
            fh.write(line)

    writer = threading.Thread(target=say, args=("dnsmasq[7]: auth[A] x from 10.244.0.3\n"
                                                f"dnsmasq[7]: read {path} - 6 names\n",))
    writer.start()
    began = time.monotonic()
    assert dns_records._await_read(str(log), offset, path) is True
    assert time.monotonic() - began >= 0.05
    writer.join()
    offset = log.stat().st_size
    say(f"dnsmasq[7]: failed to load names from {path}: Permission denied\n")
    assert dns_records._await_read(str(log), offset, path) == \
        f"failed to load names from {path}: Permission denied"
    log.write_text(f"dnsmasq[7]: read {path} - 6 names\n")  # the log started over (past 10 MiB): from its start
    assert dns_records._await_read(str(log), offset, path) is True
    # It started over with its newest lines (QA q51 1), the read before the signal among them: not taken for the
    # new one; what follows what it said last before the signal is.
    older = f"dnsmasq[7]: read {path} - 6 names\n" + "dnsmasq[7]: auth[A] y from 10.244.0.3\n" * 20
    big = "dnsmasq[7]: auth[A] z from 10.244.0.3\n" * 100 + older  # 10 MiB, as far as this goes
    offset = len(big)

    def start_over_then_say(line: str | None) -> None:
        time.sleep(0.05)
        log.write_text("netlab: this log reached 10 MiB and starts over with its newest 1 MiB\n" + older)
        if line:
            say(line)

    for line, said in ((None, "its log said nothing of it in 0.3 s"), (f"dnsmasq[7]: read {path} - 7 names\n", True)):
        log.write_text(big)
        writer = threading.Thread(target=start_over_then_say, args=(line,))
        writer.start()
        assert dns_records._await_read(str(log), offset, path) == said
        writer.join()


def test_the_dnsmasq_containers_record_passes_the_state_schema():
    """The digest up keeps in the add-on's container record (KEY) is a field of the strict state schema: a state
    file that is checked whole (edited, or written by another netlab) was refused as corrupt
    (``records: Extra inputs are not permitted``) and `down` of the lab exited 3."""
    from pydantic import ValidationError

    from netlab.realize.state_schema import ContainerRecord

    crec = {"argv": ["dnsmasq"], "log": "/run/netlab/x/logs/kube-dns.dnsmasq.log", "restarts": 0,
            dns_records.KEY: dns_records.digest("10.96.0.10 kube-dns.kube-system.svc.cluster.local\n")}
    assert ContainerRecord.model_validate(crec).records == crec[dns_records.KEY]
    assert ContainerRecord.model_validate({**crec, dns_records.KEY: None}).records is None
    with pytest.raises(ValidationError):
        ContainerRecord.model_validate({**crec, dns_records.KEY: "../not-a-digest"})


def test_status_names_a_read_of_the_file_since_it_was_changed_and_reload_sends_sighup_for_it(tmp_path, monkeypatch):
    """QA lf61 1: a line edited, dnsmasq made to read it (SIGHUP), the file put back: as planned, so status said
    nothing and up sent no SIGHUP, while dnsmasq answered the edit. The file changed since netlab had dnsmasq read
    it, with a read in the log past netlab's own, is drift; changed with no read since, or read with the file
    unchanged, is not; a log that started over since cannot tell, and is said so."""
    lab = lab_of()
    state_dir.lab_dir(lab.name)
    path = dns_records.hosts_path(lab.name)
    dns_records.sync(lab, {})
    log = tmp_path / "kube-dns.dnsmasq.log"
    log.write_text("dnsmasq[7]: started\n")
    crec = {"argv": ["dnsmasq"], "restarts": 0, "log": str(log)}
    dns_records.note_start(lab, next(p for p in lab.pods if dns_records.is_addon(p)), crec)
    assert crec[dns_records.LOG_KEY] == len("dnsmasq[7]: started\n")
    pods = {dns.DNS_NAME: {"containers": {"dnsmasq": crec}}}
    read_line = f"dnsmasq[7]: read {path} - 10 names\n"
    with open(log, "a") as fh:
        fh.write(read_line)  # its start's read: netlab's
    assert dns_records.drift(lab, pods) == []
    with open(log, "a") as fh:
        fh.write(read_line)  # a SIGHUP of someone's, of the file as netlab wrote it: nothing changed
    assert dns_records.drift(lab, pods) == []
    text = dns_records.read(lab.name) or ""
    with open(path, "w") as fh:  # edited and put back, never read meanwhile... but read above: the log decides
        fh.write(text)
    assert dns_records.drift(lab, pods) == [
        f"dns: the cluster DNS records {path} were changed since dnsmasq read them at netlab's hand, and dnsmasq "
        "read it again since netlab had it read them (SIGHUP, 1 time): it answers what it read then, which may not "
        "be the plan; up has it read them again"]
    log.write_text("x\n")  # started over: shorter than where netlab's read began
    assert "its log started over since netlab had it read them" in dns_records.drift(lab, pods)[0]
    # reload sends SIGHUP although the digest is the file's: found running, signalled, waited for
    sent: list[int] = []
    monkeypatch.setattr(dns_records, "proc_of", lambda c: type("P", (), {"pid": 42, "start": 1})())
    monkeypatch.setattr(dns_records, "task_in", lambda c, netns: "S")
    monkeypatch.setattr(dns_records.proc, "start_time", lambda pid: 1)
    monkeypatch.setattr(dns_records.os, "kill", lambda pid, sig: sent.append(pid))
    monkeypatch.setattr(dns_records, "_await_read", lambda *a: True)
    assert crec[dns_records.KEY] == dns_records.digest(text)
    assert dns_records.reload(lab, pods).actions == [
        f"container {dns.DNS_NAME}/dnsmasq read the cluster DNS records again (SIGHUP; no restart)"] and sent == [42]
    assert dns_records.drift(lab, pods) == [] and dns_records.reload(lab, pods).actions == []
    # the file changed, no read past netlab's in the log: dnsmasq holds what netlab had it read
    with open(path, "w") as fh:
        fh.write(text)
    assert dns_records.drift(lab, pods) == []
