"""A stop signals only the very process it found (its pid and start time), with or without pidfds, and says which
processes it stopped were not the lab's (review and QA: kill.stop_namespaces keyed processes by pid, and `up` and
`down` named only the containers). Real child processes; the scans of /proc are constructed."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import types

import pytest

from netlab.kernel import kill, processes
from netlab.kernel.processes import ProcId


@pytest.fixture
def children():
    """Start ``sh -c 'echo in; read x' mMARKER``, returned once it runs (its first line: its command line is in
    /proc by then), with its ProcId; all are reaped at the end."""
    started: list[subprocess.Popen] = []

    def start(marker: int) -> tuple[subprocess.Popen, ProcId]:
        p = subprocess.Popen(["sh", "-c", "echo in; read x", f"m{marker}"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        started.append(p)
        assert p.stdout is not None and p.stdout.readline() == "in\n"
        start_ = processes.start_time(p.pid)
        assert start_ is not None
        return p, ProcId(p.pid, start_)

    yield start
    for p in started:
        if p.poll() is None:
            p.kill()
        p.communicate()


@pytest.fixture(params=["pidfd", "no-pidfd"])
def pidfds(request, monkeypatch):
    """Both ways a process is signalled: through its pidfd, and by pid where pidfd_open is ENOSYS (Linux < 5.3)."""
    if request.param == "no-pidfd":
        def enosys(pid: int, flags: int = 0) -> int:
            raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))

        monkeypatch.setattr(os, "pidfd_open", enosys)
    return request.param


def test_a_pid_whose_start_time_is_not_the_one_found_is_another_process_never_signalled(children, pidfds):
    p, found = children(3401)
    assert kill.terminate([ProcId(found.pid, found.start + 1)], lambda pid: True, grace=5) == []
    assert p.poll() is None  # the process now at that pid is not the one found: left alone
    assert kill.terminate([found], lambda pid: True, grace=5) == []
    assert p.wait(timeout=30) == -signal.SIGTERM


def test_a_process_no_longer_in_the_namespaces_is_not_signalled(children, pidfds):
    p, found = children(3402)
    assert kill.terminate([found], lambda pid: False, grace=5) == []
    assert p.poll() is None


def scanned(monkeypatch, rounds: list[dict[int, str]]) -> None:
    """kill.stop_namespaces' scans of /proc answer ``rounds`` (then nothing); every pid of them is in the namespace
    while it runs."""
    inside = {pid for found in rounds for pid in found}
    answers = iter(rounds)
    monkeypatch.setattr(kill, "find_in_namespaces", lambda names, uts=(): next(answers, {}))
    monkeypatch.setattr(kill, "ns_identity", lambda path: (1, 1))
    monkeypatch.setattr(kill, "namespace_of", lambda pid, wanted: "sn-b" if pid in inside and processes.running(pid)
                        else None)


def test_the_stop_says_which_processes_it_stopped_were_not_the_labs(monkeypatch, children):
    container, mine = children(3403)
    user, yours = children(3404)
    scanned(monkeypatch, [{container.pid: "sn-b", user.pid: "sn-b"}])
    others: list[kill.Found] = []
    assert kill.stop_namespaces(["sn-b"], ours=lambda p: p == mine, others=others, grace=5) == []
    assert others == [kill.Found(yours, "sn-b", "sh -c echo in; read x m3404")]
    assert container.wait(timeout=30) == user.wait(timeout=30) == -signal.SIGTERM


def test_a_process_that_outlived_the_stop_is_said_not_as_one_it_stopped(monkeypatch, children):
    """A survivor is said by the pid and command it had when found, and is no process of yours it stopped; a
    later scan finding it again (the same pid and start time) is not a newcomer."""
    p, found = children(3405)
    scanned(monkeypatch, [{p.pid: "sn-b"}] * (kill.KILL_ROUNDS + 1))
    monkeypatch.setattr(kill, "_terminate", lambda procs, still_ours, grace, wait: ([], list(procs)))
    others: list[kill.Found] = []
    said = kill.stop_namespaces(["sn-b"], ours=lambda proc: False, others=others)
    assert said == [f"pid {p.pid} (sh -c echo in; read x m3405) in sn-b"] and others == []


def test_the_lines_up_and_down_say():
    from netlab.api.results import StoppedProcess
    from netlab.cli import removed
    from netlab.cli.lab import stopped_words

    stopped = [StoppedProcess("l-b", 4242, "sleep 1000"), StoppedProcess("l-b", 4250, "bash"),
               StoppedProcess("l-c", 4260, "nc -l 80")]
    before = {"l-b": ("pod default/b", ["main", "web"])}
    assert removed.lines(["l-b"], before, [], stopped) == [
        "removed pod default/b (network namespace l-b, containers main, web stopped; also stopped 2 processes of "
        "yours in the pod: 4242 sleep 1000, 4250 bash)",
        "also stopped 1 process of yours in l-c: 4260 nc -l 80"]  # a namespace no line names (made again)
    assert stopped_words(stopped[:1]) == "; also stopped 1 process of yours in its namespaces: 4242 sleep 1000 in l-b"
    many = [(pid, "sleep 1", "") for pid in range(1, 8)]
    assert kill.others_words(many, "the pod").endswith(": 1 sleep 1, 2 sleep 1, 3 sleep 1, 4 sleep 1, 5 sleep 1 "
                                                       "and 2 more")
    # a rollback, which says what its stops said, says each as a line of its own
    assert kill.other_line(kill.Stopped(ProcId(4242, 7), "l-b", "sleep 1000")) == \
        "stopped a process of yours in l-b: 4242 (sleep 1000)"


def test_down_says_the_processes_of_yours_it_stopped(monkeypatch):
    from cli_inprocess import run_cli

    from netlab import api
    from netlab.api.results import StoppedProcess
    from netlab.cli import lab as cli_lab

    monkeypatch.setattr(cli_lab, "require_root", lambda: None)
    monkeypatch.setattr(api, "selected_name", lambda *a, **k: "l")
    done = types.SimpleNamespace(was_up=True, removed_netns=["l-a", "l-n1"], removed_pod_files=[], skipped=[],
                                 problems=[], stopped_processes=[StoppedProcess("l-a", 4242, "sleep 1000")])
    monkeypatch.setattr(api.Lab, "down", lambda self, **kw: done)
    assert run_cli("down", "--lab", "l").stdout == ("lab l is down (2 namespaces removed; also stopped 1 process of "
                                                    "yours in its namespaces: 4242 sleep 1000 in l-a)\n")


def test_a_command_line_with_a_newline_is_said_on_one_line_and_kept_as_found():
    """qa55: `nsenter ... sh -c 'sleep 1005<newline>true'` was left out of stopped_processes (its line did not
    parse back) and said as a two-line warning. Its record carries the escaped command line as it is to
    stopped_processes, no line read back."""
    import subprocess

    from netlab.api.lab import _stopped_processes
    from netlab.api.results import StoppedProcess
    from netlab.kernel.kill import Found, Stopped, command_of
    from netlab.kernel.processes import ProcId

    proc = subprocess.Popen(["sh", "-c", "echo ready\nsleep 30", "x\x1b[2J"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"  # past its exec: its argv is read
        said = command_of(proc.pid)
        assert said == "sh -c echo ready\\nsleep 30 x\\x1b[2J", said
        stopped = Stopped.of(Found(ProcId(proc.pid, 1), "/run/netlab/lab/uts/b", said), "lab-b")
        assert _stopped_processes([stopped]) == (StoppedProcess("lab-b", proc.pid, said),)
    finally:
        proc.kill()
        proc.wait()


def test_a_process_gone_before_its_signal_is_not_said_stopped(monkeypatch, children):
    """One found that exits by itself before the stop's SIGTERM reaches it (the signal finds it gone) was not
    stopped by the stop: it is no process of yours it stopped."""
    user, yours = children(3407)
    scanned(monkeypatch, [{user.pid: "sn-b"}])
    monkeypatch.setattr(kill, "send", lambda fd, sig: False)  # its pidfd says it is gone as the signal is sent
    others: list[kill.Found] = []
    assert kill.stop_namespaces(["sn-b"], ours=lambda p: False, others=others) == []
    assert others == []


def test_the_processes_a_stop_stopped_are_named_by_their_program_and_netlab_commands_as_such(tmp_path):
    """QA reap57 3: a ``netlab probe`` (its threads in a pod's namespaces) stopped by ``down`` was said as ``a process
    of yours``, its command cut at 40 characters to its interpreter's path."""
    launcher = tmp_path / "netlab"  # as scripts/make_launcher.sh (or pip's console script) writes it
    launcher.write_text("#!/usr/bin/env python3\nimport sys\nfrom netlab.launch import main\nsys.exit(main())\n")
    probe = f"/work/main/.venv/bin/python3 {launcher} probe b 10.96.0.10:53/udp"
    assert kill.others_words([(4242, probe, "")], "the pod") == \
        "also stopped 1 netlab command in the pod: 4242 netlab probe b 10.96.0.10:53/udp"
    assert kill.others_words([(4242, "/usr/bin/python3 -m netlab trace a b", "")], "it") == \
        "also stopped 1 netlab command in it: 4242 netlab trace a b"
    # a script of that name that is not netlab's (not there, or not importing netlab), and other programs: by their
    # name, cut with an ellipsis
    other = tmp_path / "netlab.d" / "netlab"
    other.parent.mkdir()
    other.write_text("#!/usr/bin/env python3\nprint('hello')\n")
    long = "/usr/local/sbin/some-daemon --config /etc/some-daemon/config.yaml --verbose"
    assert kill.others_words([(1, "/usr/bin/python3 /opt/tools/netlab probe", ""), (2, long, "l-b"),
                              (3, probe, "")], "the pod") == (
        "also stopped 3 processes in the pod: 1 python3 /opt/tools/netlab probe, "
        "2 some-daemon --config /etc/some-daemon/c… in l-b, 3 netlab probe b 10.96.0.10:53/udp (a netlab command)")
    assert kill.others_words([(1, f"/usr/bin/python3 {other} probe", "")], "it").startswith(
        "also stopped 1 process of yours in it: 1 python3 /")
    assert kill.other_line(kill.Stopped(ProcId(4242, 7), "l-b", probe)) == \
        "stopped another netlab command in l-b: 4242 (netlab probe b 10.96.0.10:53/udp)"
