"""How a plugin call that did not end well is said (QA cnicheck 3, 4): a plugin that exited at once but left a
process holding its output open, one that hung, one that printed past netlab's own bound. Small shell plugins, no
root, no namespace (tests/unit/test_cni_runtime.py has the rest)."""

from __future__ import annotations

import pytest

from netlab.cni import invoke
from netlab.cni.invoke import CallLog, PluginFailed, read_log


def _plugin(tmp_path, name, body):
    p = tmp_path / name
    p.write_text("#!/bin/sh\ncat >/dev/null\n" + body)
    p.chmod(0o755)
    return str(p)


def _run(path, log=None):
    return invoke.exec_plugin(CallLog(log), pod="a", network="n", plugin_path=path, command="ADD",
                              conf={"cniVersion": "1.0.0"}, env={}, node_netns=None)


def test_a_plugin_that_exits_at_once_leaving_a_process_on_its_stdout_is_said_so(tmp_path, monkeypatch):
    monkeypatch.setenv(invoke.TIMEOUT_VAR, "0.5")
    path = _plugin(tmp_path, "qroute", "echo '{\"cniVersion\": \"1.0.0\"}'\nsleep 30 &\nexit 0\n")
    log = str(tmp_path / "calls.jsonl")
    with pytest.raises(PluginFailed) as exc:
        _run(path, log)
    assert str(exc.value) == (
        "pod a: CNI plugin qroute ADD: it exited 0, but a process it left running held its stdout and stderr open "
        "until the call's deadline, 0.5 s (NETLAB_CNI_TIMEOUT): netlab killed its process group; its output: "
        '{"cniVersion": "1.0.0"}')
    [call] = read_log(log)
    # The plugin wrote nothing on stderr; it exited 0 (its own exit is logged, review cnicheck2 3), and netlab
    # killed the call at its deadline, which the log says too (and `netlab cni log` with it).
    assert call["stderr"] == "" and call["exit_code"] == 0 and call["killed_after_s"] == 0.5, call
    from netlab.cli.cni import render_call
    assert ": exit 0, killed by netlab at its deadline, 0.5 s (NETLAB_CNI_TIMEOUT), " in render_call(1, call)


def test_a_hanging_plugin_is_said_timed_out_with_the_deadline_s_variable_not_in_its_stderr(tmp_path, monkeypatch):
    monkeypatch.setenv(invoke.TIMEOUT_VAR, "0.5")
    path = _plugin(tmp_path, "hanging", "echo waiting >&2\nsleep 30\n")
    log = str(tmp_path / "calls.jsonl")
    with pytest.raises(PluginFailed) as exc:
        _run(path, log)
    assert str(exc.value) == ("pod a: CNI plugin hanging ADD: timed out: it ran past the call's deadline, 0.5 s "
                              "(NETLAB_CNI_TIMEOUT): netlab killed its process group; stderr: waiting")
    # The log keeps the plugin's stderr as it wrote it, and says the call was killed at its deadline (its
    # "(killed after 0.5 s)" was lost from the log when it left the stderr: review cnicheck2 3).
    [call] = read_log(log)
    assert call["stderr"] == "waiting\n" and call["exit_code"] is None and call["killed_after_s"] == 0.5, call
    from netlab.cli.cni import render_call
    assert ": timed out, killed by netlab at its deadline, 0.5 s (NETLAB_CNI_TIMEOUT), " in render_call(1, call)


def test_the_output_bound_is_said_to_be_netlab_s_own(tmp_path):
    path = _plugin(tmp_path, "loud", "head -c 3000000 /dev/zero | tr '\\0' x\n")
    with pytest.raises(PluginFailed) as exc:
        _run(path)
    assert str(exc.value) == (
        f"pod a: CNI plugin loud ADD: it printed more than {invoke.OUTPUT_LIMIT} bytes on stdout, netlab's own bound "
        "on a plugin's output (the CNI spec and libcni set none; a result is a few kB): netlab killed it there, and "
        "its output is cut there in the log")
