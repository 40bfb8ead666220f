"""A pod's file under /etc/netns that netlab did not write (someone's hosts file, a resolv.conf symlink) is left
alone by up, and status says it so, as a warning in up's words, not as drift up repairs (found by a QA pass:
up said "left alone" and "nothing to change" while status said "different ... up writes it again", exit 1,
for ever). A file netlab wrote and a person edited stays drift: up rewrites it."""

from __future__ import annotations

import os

import pytest
from test_pod_hosts import LAB, State, make_lab

from netlab.feature import Note
from netlab.services import hosts, lifecycle, netns_files


@pytest.fixture
def etc(tmp_path, monkeypatch):
    path = tmp_path / "etc-netns"
    monkeypatch.setattr(netns_files, "ETC_NETNS", str(path))
    from netlab.services import flannel_files, stale

    monkeypatch.setattr(flannel_files, "drift", lambda lab, state=None: [])
    monkeypatch.setattr(stale, "find", lambda lab: [])
    return path


def test_status_says_a_foreign_hosts_file_and_resolv_link_are_left_alone_as_up_does(etc):
    lab = make_lab()
    b, a = etc / f"{LAB}-b", etc / f"{LAB}-a"
    b.mkdir(parents=True)
    (b / "hosts").write_text("192.0.2.1\tmine\n")
    a.mkdir()
    decoy = etc.parent / "decoy"
    decoy.write_text("nameserver 192.0.2.53\n")
    (a / "resolv.conf").symlink_to(decoy)
    st = State()
    rec = lifecycle._records(st)
    done = hosts.sync(lab, st, rec)
    done += lifecycle.sync_resolv(lab, st, rec)
    said_by_up = sorted(p for p in done.problems if "left alone" in p)
    assert len(said_by_up) == 2, done.problems
    lines = lifecycle.drift(lab, st)
    notes = sorted(line for line in lines if isinstance(line, Note))
    assert notes == said_by_up  # the same words as up's
    assert notes == [f"pod a: {a / 'resolv.conf'} exists and is not netlab's; left alone, so this pod does not use "
                     "the cluster DNS",
                     f"pod b: {b / 'hosts'} exists and is not netlab's; left alone, so this pod does not get the "
                     "kubelet's hosts file ('# Kubernetes-managed hosts file.')"]
    assert [line for line in lines if not isinstance(line, Note)] == []  # no drift: status exits 0
    assert decoy.read_text() == "nameserver 192.0.2.53\n"


def test_a_file_netlab_wrote_then_a_person_edited_is_still_drift(etc):
    lab = make_lab(services=False)
    st = State()
    rec = lifecycle._records(st)
    hosts.sync(lab, st, rec)
    path = etc / f"{LAB}-a" / "hosts"
    path.write_text("10.0.0.9\ta\n")  # netlab's first line gone: recorded as made, up rewrites it
    lines = lifecycle.drift(lab, st)
    assert lines == [f"hosts: {path} is different (pod a would not get the kubelet's hosts file); up writes it again"]
    assert not isinstance(lines[0], Note)


def test_status_reports_notes_as_warnings_not_drift(monkeypatch):
    """lab/status: a feature's Note is a warning of the result; its other lines are drift (exit 1)."""
    from netlab.kernel.nftgen import Written
    from netlab.lab import status as status_mod

    class Feature:
        def drift(self, lab, state):
            return [Note("pod b: /etc/netns/x-b/hosts exists and is not netlab's; left alone"), "hosts: y is missing"]

    class Kernel:
        nft_written = Written()

        def netns_mounted(self, ns):
            return False

        def snapshot_many(self, asks, meanwhile, judge):
            meanwhile()
            return {}

    import types

    lab = make_lab(services=False)
    state = types.SimpleNamespace(resolved=lambda: lab, netns=[], extra={}, phase="up")
    monkeypatch.setattr(status_mod, "tag_for", lambda state: "t")
    monkeypatch.setattr(status_mod, "kernel_links", lambda state: {})
    monkeypatch.setattr(status_mod, "plugin_made", lambda lab, state: set())
    result = status_mod.status(state, Kernel(), [Feature()])  # type: ignore[arg-type]
    assert "pod b: /etc/netns/x-b/hosts exists and is not netlab's; left alone" in result.warnings
    assert "hosts: y is missing" in result.drift
    assert not any("left alone" in line for line in result.drift)


@pytest.mark.parametrize("first", ["before up", "on a running lab"])
def test_a_pods_folder_that_is_a_symlink_is_left_alone_by_up_and_said_so_by_status_not_as_drift(etc, first):
    """/etc/netns/<lab>-<pod> a symlink (QA q47 3): up writes nothing through it and says so; status said both
    files missing, "up writes it again", exit 1, for ever. Now it says up's words, a note, not drift."""
    lab = make_lab()
    a = etc / f"{LAB}-a"
    theirs = etc.parent / "theirs"
    theirs.mkdir()
    st = State()
    rec = lifecycle._records(st)
    if first == "on a running lab":
        etc.mkdir()
        hosts.sync(lab, st, rec)
        lifecycle.sync_resolv(lab, st, rec)
        for name in ("hosts", "resolv.conf"):
            (a / name).unlink()
        a.rmdir()
    else:
        etc.mkdir()
    a.symlink_to(theirs)
    done = hosts.sync(lab, st, rec)
    done += lifecycle.sync_resolv(lab, st, rec)
    assert sorted(os.listdir(theirs)) == [] and a.is_symlink()  # nothing written through it
    said_by_up = sorted(p for p in done.problems if f"{LAB}-a" in p)
    assert said_by_up == [
        f"pod a: {a} is a symlink, not netlab's folder; left alone, so this pod does not get the kubelet's hosts "
        "file ('# Kubernetes-managed hosts file.')",
        f"pod a: {a} is a symlink, not netlab's folder; left alone, so this pod does not use the cluster DNS"]
    lines = lifecycle.drift(lab, st)
    assert sorted(line for line in lines if isinstance(line, Note) and f"{LAB}-a" in line) == said_by_up
    assert [line for line in lines if not isinstance(line, Note)] == []  # no drift: status exits 0, repair none
