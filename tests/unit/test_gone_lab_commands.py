"""Commands that meet a lab `netlab list` shows `gone`, or one a `netlab down` is deleting (the fake kernel).

QA q18 defect 1: of a lab whose namespaces were all deleted while its state file stayed, `status` said "is not
up ..." (StateGone, exit 3), but `exec` and `trace` said a namespace "was deleted while lab L is up" (exit 2),
`probe` "is not up ... start it", and `get pods`/`get nodes` listed it (exit 0). Defect 2: while a `down` deletes
the lab, `probe` said "start it with `up -t FILE`" (exit 3), `status` "being changed by pid N" (exit 3) and
`get nodes` printed its table, where exec, logs, get pods and trace say "is being taken down" (exit 2).
One function says both (realize.interrupted.taken_down). Real namespaces: tests/integration/test_down_racing_commands.py.
"""

from __future__ import annotations

import os

import pytest
from fake_lab import machine_holds, make_lab, up

from netlab.errors import down_command, netlab_command
from netlab.api import views
from netlab.errors import LabBusy, NetlabError, python_words
from netlab.kernel.fake import FakeKernel
from netlab.probe import runner
from netlab.realize import interrupted, state_dir
from netlab.realize.lab_lock import LabLock
from netlab.realize.netns_missing import lab_netns_gone
from netlab.realize.state import load_state

lab = pytest.fixture(make_lab, name="lab")


def gone_line(name: str) -> str:
    return (f"lab {name} is not up: none of its namespaces is there any more, yet its state file remains "
            f"({state_dir.state_file(name)}); once its folder may be written, `{down_command(name)}` "
            f"forgets it (or `{netlab_command(f'up --lab {name}')}` makes it again)")


@pytest.fixture
def gone_lab(lab, monkeypatch):
    k = FakeKernel()
    up(lab, k)
    machine_holds(monkeypatch, k)
    for name in list(k.ns):  # `ip netns del` of every namespace of it: its state stays (`list`: gone)
        k.delete_netns(name)
    return lab


def test_exec_and_trace_of_a_gone_lab_say_status_s_line(gone_lab):
    exc = lab_netns_gone("fk-a", gone_lab.name)  # exec, trace, inspect meet the pod's namespace gone
    assert (str(exc), exc.exit_code) == (gone_line("fk"), 3)


def test_get_pods_and_nodes_of_a_gone_lab_say_status_s_line(gone_lab):
    for read in (lambda: views.pods(load_state("fk"), gone_lab), lambda: views.nodes(gone_lab)):
        with pytest.raises(NetlabError) as info:
            read()
        assert (str(info.value), info.value.exit_code) == (gone_line("fk"), 3)


def test_probe_of_a_gone_lab_says_status_s_line(gone_lab):
    with pytest.raises(NetlabError) as info:
        runner.run(gone_lab)
    assert (str(info.value), info.value.exit_code) == (gone_line("fk"), 3)


def test_a_lab_with_its_namespaces_is_listed_not_refused(lab, monkeypatch):
    k = FakeKernel()
    up(lab, k)
    machine_holds(monkeypatch, k)
    assert [n.name for n in views.nodes(lab)] == ["n1", "n2"]  # no pin under /run/netns here: created None
    assert "was deleted while lab fk is up" in str(lab_netns_gone("fk-a", lab.name))


def test_probe_get_nodes_and_status_during_a_down_say_it_is_being_taken_down(lab, monkeypatch):
    k = FakeKernel()
    up(lab, k)
    machine_holds(monkeypatch, k)
    seen = interrupted.seen(lab.name)  # status began its read
    state = load_state(lab.name)
    state.phase = "deleting"  # what down writes before it deletes anything
    state.save()
    with LabLock(lab.name, "netlab down"):
        said = {}
        for what, read in (("probe", lambda: runner.run(lab)), ("nodes", lambda: views.nodes(lab))):
            with pytest.raises(NetlabError) as info:
                read()
            said[what] = (str(info.value), info.value.exit_code)
        err = seen.meanwhile()
        assert isinstance(err, LabBusy)  # a break or `up --lab` that read the lab waits for the down's lock
        said["status"] = (str(err), err.exit_code)
    assert said == {"probe": ("lab fk is being taken down (`netlab down`): its namespaces go with it", 2),
                    "nodes": ("lab fk is being taken down (`netlab down`): its nodes' namespaces go with it", 2),
                    "status": ("lab fk is being taken down (`netlab down`): what status read of it is its work "
                               "half done, not drift", 2)}


@pytest.mark.parametrize("phase, words", [
    ("deleting", "the `netlab down` that was taking it down"),
    ("creating", "the `netlab up` that was making it")])
def test_a_namespace_missing_from_a_lab_a_killed_run_left_says_list_s_line(lab, monkeypatch, phase, words):
    """QA q17 2b: of a lab whose `down` (or `up`) was killed halfway, exec, trace and inspect said a namespace
    "was deleted while lab fk is up; `up` makes it again", where list and status say `down` finishes it."""
    k = FakeKernel()
    up(lab, k)
    machine_holds(monkeypatch, k)
    with LabLock(lab.name, "netlab down" if phase == "deleting" else "netlab up"):
        state = load_state(lab.name)
        state.phase = phase  # then killed: nobody holds the lock, the phase stays
        state.save()
    k.delete_netns("fk-a")
    exc = lab_netns_gone("fk-a", lab.name)
    # an up's line names `up --lab` too: its state names all that up was making, a namespace it deleted since too
    ways = f"`{netlab_command('up --lab fk')}` finishes it, or " if phase == "creating" else ""
    assert str(exc).startswith(f"lab fk: {words} (pid {os.getpid()}) ended before it finished (killed); "
                               f"{ways}`{down_command('fk')}` ")
    assert str(exc).endswith(" (namespace fk-a is not there)") and exc.exit_code == 2
    with python_words():
        assert "`Lab('fk').down()`" in str(lab_netns_gone("fk-a", lab.name))


@pytest.fixture
def killed_down_lab(lab, monkeypatch):
    """The lab as a `down` killed at its hook down-deleted leaves it: every namespace deleted, its logs taken
    (a pod's features), its state kept in phase deleting, and nobody holding its lock."""
    k = FakeKernel()
    up(lab, k)
    machine_holds(monkeypatch, k)
    with LabLock(lab.name, "netlab down"):
        state = load_state(lab.name)
        state.phase = "deleting"
        state.save()
        for name in list(k.ns):
            k.delete_netns(name)
    return (f"lab fk: the `netlab down` that was taking it down (pid {os.getpid()}) ended before it finished "
            f"(killed); `{down_command('fk')}` finishes it")


def test_probe_of_a_lab_a_killed_down_left_without_its_underlay_says_list_s_line(lab, killed_down_lab):
    """It said "is not up (no namespace fk-underlay); start it with `sudo netlab up -t FILE`"."""
    with pytest.raises(NetlabError) as info:
        runner.run(lab)
    assert str(info.value) == (f"lab fk: the `netlab down` that was taking it down (pid {os.getpid()}) ended before "
                               f"it finished (killed); `{down_command('fk')}` finishes it (no namespace "
                               "fk-underlay)") and info.value.exit_code == 2


def test_logs_of_a_gone_lab_prints_the_log_after_status_s_line_and_exits_3(gone_lab, monkeypatch):
    """`logs` was not checked (the last pass's Left): it printed the log, exit 0, of a lab the other commands call
    not up. The log stays with the state (its last run's output, what a reader of a gone lab may want): printed,
    after status's line on stderr, and exit 3 as the others; a log it does not have is that line alone."""
    from cli_inprocess import run_cli

    from netlab.cli import workload as cli_workload
    from netlab.workload import lifecycle

    monkeypatch.setattr(cli_workload, "require_root", lambda: None)
    (container,) = [c.name for c in next(p for p in gone_lab.pods if p.name == "a").containers]
    path = lifecycle.log_path("fk", "a", container)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write("served 3 requests\n")
    for args in ((), ("-f",)):
        got = run_cli("logs", "--lab", "fk", "a", *args)
        assert (got.returncode, got.stdout, got.stderr) == (3, "served 3 requests\n", f"netlab: {gone_line('fk')}\n")
    got = run_cli("logs", "--lab", "fk", "a", "--previous")  # none: the line once
    assert (got.returncode, got.stdout, got.stderr) == (3, "", f"netlab: {gone_line('fk')}\n")


def test_get_pods_and_nodes_of_a_lab_a_killed_down_left_say_list_s_line(lab, killed_down_lab):
    """QA q31 3, q32 2: they listed its pods SandboxChanged (whose way out is `up`) and its nodes, exit 0, where
    exec, probe and status say list's line (`down` finishes it)."""
    said = {}
    for what, read in (("pods", lambda: views.pods(load_state("fk"), lab)), ("nodes", lambda: views.nodes(lab))):
        with pytest.raises(NetlabError) as info:
            read()
        said[what] = (str(info.value), info.value.exit_code)
    assert said == {"pods": (f"{killed_down_lab} (namespace fk-a is not there)", 2),
                    "nodes": (f"{killed_down_lab} (namespace fk-n1 is not there)", 2)}


def test_logs_of_a_lab_a_killed_down_left_says_list_s_line(lab, killed_down_lab, monkeypatch):
    """It said "no log for a/main yet (was it started? ...)", exit 2: list's line now, first, then the log when
    one is left (exit 2, as exec); Lab.logs raises the line."""
    from cli_inprocess import run_cli

    from netlab import api
    from netlab.cli import workload as cli_workload
    from netlab.workload import lifecycle

    monkeypatch.setattr(cli_workload, "require_root", lambda: None)
    (container,) = [c.name for c in next(p for p in lab.pods if p.name == "a").containers]
    for args in ((), ("-f",), ("--previous",)):
        got = run_cli("logs", "--lab", "fk", "a", *args)
        assert (got.returncode, got.stdout, got.stderr) == (
            2, "", f"netlab: {killed_down_lab} (the log of a/{container} is not there)\n"), got
    with pytest.raises(NetlabError) as info:
        api.Lab("fk").logs("a")
    assert str(info.value) == (f"{killed_down_lab} (the log of a/{container} is not there)".replace(
        f"`{down_command('fk')}`", "`Lab('fk').down()`")) and info.value.exit_code == 2
    path = lifecycle.log_path("fk", "a", container)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write("served 3 requests\n")
    got = run_cli("logs", "--lab", "fk", "a")  # its log left: printed after the line
    assert (got.returncode, got.stdout, got.stderr) == (
        2, "served 3 requests\n", f"netlab: {killed_down_lab} (namespace fk-a is not there)\n"), got


@pytest.mark.parametrize("phase", ["deleting", "up"])
def test_get_pods_and_nodes_of_a_lab_a_down_killed_after_it_stopped_the_containers_say_list_s_line(
        lab, monkeypatch, phase):
    """QA q42 1: a `down` killed once it stopped the containers and unpinned their UTS namespaces, before it deleted
    the network namespaces: get pods listed every pod ContainerStatusUnknown and get nodes its table, exit 0, where
    exec, logs, status and probe say list's line. A running lab whose UTS pins were taken by hand is still listed."""
    from netlab.workload import lifecycle

    k = FakeKernel()
    up(lab, k)
    machine_holds(monkeypatch, k)
    monkeypatch.setattr(views, "_created", lambda ns: "2026-01-01T00:00:00Z" if ns in k.ns else None)
    monkeypatch.setattr(lifecycle, "is_uts_mount", lambda path: False)  # every pin unmounted
    with LabLock(lab.name, "netlab down"):
        state = load_state(lab.name)
        state.phase = phase
        state.save()
    if phase == "up":
        assert [p.name for p in views.pods(load_state("fk"), lab)] == ["a", "b"]
        assert [n.name for n in views.nodes(lab)] == ["n1", "n2"]
        return
    line = (f"lab fk: the `netlab down` that was taking it down (pid {os.getpid()}) ended before it finished "
            f"(killed); `{down_command('fk')}` finishes it")
    said = {}
    for what, read in (("pods", lambda: views.pods(load_state("fk"), lab)), ("nodes", lambda: views.nodes(lab))):
        with pytest.raises(NetlabError) as info:
            read()
        said[what] = (str(info.value), info.value.exit_code)
    assert said == {"pods": (f"{line} (pod a's UTS namespace is not there)", 2),
                    "nodes": (f"{line} (node n1's UTS namespace is not there)", 2)}
    from cli_inprocess import run_cli

    from netlab.cli import workload as cli_workload

    monkeypatch.setattr(cli_workload, "require_root", lambda: None)
    for name, words in (("a", "pod a"), ("n1", "node n1")):  # exec says it in the same words (workload/uts.py)
        got = run_cli("exec", "--lab", "fk", name, "--", "true")
        assert (got.returncode, got.stdout, got.stderr) == (
            2, "", f"netlab: {line} ({words}'s UTS namespace is not there)\n"), got
    monkeypatch.setattr(lifecycle, "is_uts_mount", lambda path: True)  # a down killed before it stopped anything
    assert [p.name for p in views.pods(load_state("fk"), lab)] == ["a", "b"]
    assert [n.name for n in views.nodes(lab)] == ["n1", "n2"]
