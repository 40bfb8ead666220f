"""NETLAB_CNI_LOG (QA q3 #2): up's copy of its CNI calls, which a new lab's rollback does not take with the lab.

Without it a failed up of a new lab says where the calls went and how to keep them; with it every call of the run
(env, stdin, stdout, stderr, exit code) is in the file the failure names. No root: a failing shell plugin for the
copy itself, the fake plugins of test_cni_reattach for up. The real plugins: tests/integration/test_cni_edited_live.py.
"""

from __future__ import annotations

import json
import os

import pytest

from cni_fakes import cni_topo, cni_world, lab_of, up
from netlab.cni import invoke, lifecycle
from netlab.cni.invoke import CallLog, PluginFailed, exec_plugin
from netlab.errors import ApplyFailed, UsageError
from netlab.feature import ModuleFeature
from netlab.kernel.fake import FakeKernel
from netlab.lab import teardown, up as lab_up
from netlab.lab.journal import Journal
from netlab.realize import state as state_mod, state_dir

TOPO = cni_topo("fkkl") + """\
  - {name: a, node: n1, ip: 10.244.0.2}
"""
# An earlier run's copy, which a run's copy replaces (a file that holds anything else is refused:
# test_output_kinds_kept.py)
EARLIER = '{"command": "ADD", "lab": "older", "pod": "a"}\n'


@pytest.fixture(autouse=True)
def no_copy(monkeypatch):
    monkeypatch.delenv(invoke.LOG_VAR, raising=False)
    yield
    invoke.close_copy()


def test_every_call_is_appended_to_the_copy_with_its_input_and_output(tmp_path, monkeypatch):
    plugin = tmp_path / "failing"
    plugin.write_text('#!/bin/sh\ncat >/dev/null\necho "it said no" >&2\n'
                      'echo \'{"cniVersion": "1.0.0", "code": 7, "msg": "no"}\'\nexit 1\n')
    plugin.chmod(0o755)
    copy = tmp_path / "kept.jsonl"
    copy.write_text(EARLIER)
    monkeypatch.setenv(invoke.LOG_VAR, str(copy))
    assert invoke.keep_copy() == str(copy) and copy.read_text() == EARLIER  # kept until a call comes
    for _ in range(2):
        with pytest.raises(PluginFailed):
            exec_plugin(CallLog(str(tmp_path / "lab.jsonl")), pod="a", network="net", plugin_path=str(plugin),
                        command="ADD", conf={"cniVersion": "1.0.0", "name": "net", "marker": 1},
                        env={"CNI_ARGS": "K8S_POD_NAME=a"}, node_netns=None, timeout=5)
    calls = [json.loads(line) for line in copy.read_text().splitlines()]  # this run's calls, from the start
    # the lab's calls, as `netlab cni log -o json` shows them: its time as elapsed_s, docs/json.md's key (QA qr3 5)
    assert calls == [invoke.call_json(json.loads(line)) for line in (tmp_path / "lab.jsonl").read_text().splitlines()]
    assert calls[0]["elapsed_s"] == calls[0]["duration"] and isinstance(calls[0]["elapsed_s"], float)
    assert len(calls) == 2 and calls[0]["stdin"] == {"cniVersion": "1.0.0", "name": "net", "marker": 1}
    assert calls[0]["env"]["CNI_COMMAND"] == "ADD" and calls[0]["env"]["CNI_ARGS"] == "K8S_POD_NAME=a"
    assert (calls[0]["exit_code"], calls[0]["stderr"]) == (1, "it said no\n") and '"code": 7' in calls[0]["stdout"]


def test_a_name_the_copy_cannot_have_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv(invoke.LOG_VAR, str(tmp_path))  # a directory
    with pytest.raises(UsageError):
        invoke.keep_copy()


@pytest.fixture
def world(tmp_path, monkeypatch):
    def failing(log, *, pod, command, **kw):
        if command == "ADD":
            raise PluginFailed(f"pod {pod}: CNI plugin chain ADD: failed (exit 1): no")

    with cni_world(tmp_path, monkeypatch, TOPO, failing):
        yield lab_of(tmp_path)


def _up(lab):
    k = FakeKernel()
    with pytest.raises(ApplyFailed) as exc:
        up(lab, k)
    assert state_mod.load_state(lab.name) is None  # rolled back: the lab's folder, and its CNI log, went
    return str(exc.value)


def test_a_new_labs_failed_up_says_how_to_keep_its_calls(world):
    assert _up(world) == ("pod a: CNI plugin chain ADD: failed (exit 1): no; its DEL ran: pod a is not attached; "
                          "rolled back (and the lab's CNI log with it: NETLAB_CNI_LOG=FILE keeps a copy of this run's "
                          "calls)")


def test_with_netlab_cni_log_the_failure_names_the_copy(world, tmp_path, monkeypatch):
    monkeypatch.setenv(invoke.LOG_VAR, str(tmp_path / "kept.jsonl"))
    assert _up(world).endswith(f"is not attached; rolled back (and the lab's CNI log with it; this run's calls: "
                               f"{tmp_path / 'kept.jsonl'})")
    assert (tmp_path / "kept.jsonl").exists()


@pytest.fixture
def attached(tmp_path, monkeypatch):
    """A lab whose plugins attach every pod (the fake plugins of test_cni_reattach), and NETLAB_CNI_LOG set."""
    from test_cni_reattach import Plugins

    plugins = Plugins()

    def logged(log, **kw):  # each call recorded as exec_plugin records it (the lab's log, and the copy)
        log.record(invoke.Call(pod=kw["pod"], network=kw["network"], plugin=kw["plugin_path"].rsplit("/", 1)[-1],
                               command=kw["command"], env=kw["env"], stdin=kw["conf"], runs_in=str(kw["node_netns"])))
        return plugins(log, **kw)

    with cni_world(tmp_path, monkeypatch, TOPO, logged):
        copy = tmp_path / "kept.jsonl"
        copy.write_text(EARLIER)
        monkeypatch.setenv(invoke.LOG_VAR, str(copy))
        yield lab_of(tmp_path), copy


def commands(copy):
    return [json.loads(line).get("command") for line in copy.read_text().splitlines()]


def test_the_copy_holds_one_ups_calls_and_no_later_status_or_down(attached):
    """QA q11 2: in the Python API the copy stayed open after up, and status's CHECKs and down's DELs went into it."""
    lab, copy = attached
    k = FakeKernel()
    up(lab, k)
    assert commands(copy) == ["ADD", "ADD"] and invoke.copy_path() is None  # lo and eth0 of pod a; closed
    assert lifecycle.drift(lab, state_mod.load_state(lab.name)) == []  # status's CHECK
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])
    assert commands(copy) == ["ADD", "ADD"]


class Refusing:
    name = "refusing"

    def preflight(self, lab):
        raise UsageError("refused before any change")


def test_an_up_refused_before_any_change_leaves_the_copy_as_it_was(attached):
    lab, copy = attached
    k = FakeKernel()
    with pytest.raises(UsageError):
        lab_up.up(lab, k, features=[ModuleFeature(lifecycle), Refusing()], journal=Journal(k))
    assert copy.read_text() == EARLIER and invoke.copy_path() is None


def test_a_watchers_apply_appends_its_calls_after_a_header_line(attached):
    """QA q11: every apply of up --watch truncated the copy; the first apply is up's (from the file's start), each
    later one (lab_up.up_held) appends its calls after a line of its own, and one without a call writes nothing."""
    lab, copy = attached
    k = FakeKernel()
    up(lab, k)
    lab_up.up_held(lab, k, features=[ModuleFeature(lifecycle)])  # the pod as attached: its CHECKs (lo, eth0)
    lines = [json.loads(line) for line in copy.read_text().splitlines()]
    assert [c.get("command") for c in lines] == ["ADD", "ADD", None, "CHECK", "CHECK"] and invoke.copy_path() is None
    assert lines[2]["netlab_cni_log"] == "up --watch apply" and lines[2]["lab"] == "fkkl"
    assert isinstance(lines[2]["started"], float)
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])


def test_the_copy_is_never_one_of_the_labs_own_files(attached, monkeypatch):
    """QA q28 6: NETLAB_CNI_LOG naming a lab's lock, state or marker (or a pod's /etc/netns hosts) was opened and
    cut by up's first CHECK ("nothing to change"); it is refused as -w refuses it, before any call, the file kept."""
    lab, copy = attached
    k = FakeKernel()
    up(lab, k)
    folder = state_dir.lab_dir(lab.name, create=False)
    own = sorted(os.path.join(folder, name) for name in os.listdir(folder)
                 if os.path.isfile(os.path.join(folder, name)))
    assert own and any(name.endswith("state.json") for name in own)
    for path in own + ["/etc/netns/fkkl-a/hosts"]:
        before = open(path, "rb").read() if os.path.exists(path) else None
        monkeypatch.setenv(invoke.LOG_VAR, path)
        with pytest.raises(UsageError) as exc:
            lab_up.up(lab, k, features=[ModuleFeature(lifecycle)], journal=Journal(k))
        assert "\n" not in str(exc.value) and str(exc.value).startswith(f"cannot write {path}: it is inside ")
        assert (open(path, "rb").read() if os.path.exists(path) else None) == before, path
    teardown.down(lab.name, k, [ModuleFeature(lifecycle)])


def test_the_ups_of_two_labs_in_one_process_both_stay_in_the_copy_each_call_with_its_lab(attached, tmp_path):
    """QA 61 7: a multi-lab run (a pytest run's labs, one process) kept only its last lab's calls: each up cut the
    copy, and no line said which lab it was of. The process's first up cuts it, a later one appends; every line
    names its lab."""
    from netlab.model.lab import resolve
    from netlab.model.load import load_topology

    lab, copy = attached
    (tmp_path / "t2.yaml").write_text(cni_topo("fkk2") + "  - {name: a, node: n1, ip: 10.244.0.2}\n")
    other = resolve(load_topology(str(tmp_path / "t2.yaml")))
    k = FakeKernel()
    up(lab, k)
    up(other, k)
    lines = [json.loads(line) for line in copy.read_text().splitlines()]
    assert [(c["lab"], c["command"]) for c in lines] == [("fkkl", "ADD")] * 2 + [("fkk2", "ADD")] * 2, lines
    for name in (lab.name, other.name):
        teardown.down(name, k, [ModuleFeature(lifecycle)])


def test_a_copy_to_dev_stdout_appended_by_the_shell_keeps_the_file(tmp_path, monkeypatch):
    """``NETLAB_CNI_LOG=/dev/stdout netlab up ... >> log``: the copy goes after what log held (the shell's
    descriptor, its O_APPEND), never cut as a file of the copy's own would be (QA qr62)."""
    plugin = tmp_path / "failing"
    plugin.write_text('#!/bin/sh\ncat >/dev/null\necho \'{"code": 7, "msg": "no"}\'\nexit 1\n')
    plugin.chmod(0o755)
    log = tmp_path / "log.txt"
    log.write_text("before\n")
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    try:
        monkeypatch.setenv(invoke.LOG_VAR, f"/proc/self/fd/{fd}")
        invoke.keep_copy()
        with pytest.raises(PluginFailed):
            exec_plugin(CallLog(str(tmp_path / "lab.jsonl")), pod="a", network="net", plugin_path=str(plugin),
                        command="ADD", conf={"cniVersion": "1.0.0", "name": "net"}, env={}, node_netns=None,
                        timeout=5)
        invoke.close_copy()
    finally:
        os.close(fd)
    first, call = log.read_text().splitlines()
    assert first == "before" and json.loads(call)["exit_code"] == 1
