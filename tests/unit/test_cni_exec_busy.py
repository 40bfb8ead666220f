"""A plugin's exec refused with ETXTBSY ("Text file busy": some process holds the file open for writing) is tried
again, as libcni's RawExec does (6 tries, 1 s apart), within the call's deadline; one that stays busy fails in one
line saying what holds it and how often it was tried; other exec errors are never tried again.

The file is held open for writing by this test (the kernel counts any writer: a copy under way, or the child of a
thread that forked while a test wrote the script), and netlab's pause between tries is this test's: the writer
closes there, so the second try meets a closed file, with no timing."""

from __future__ import annotations

import os

import pytest

from helpers import write_program
from netlab.cni import invoke
from netlab.cni.invoke import CallLog, PluginFailed
from netlab.cni.runtime import Runtime

VERSION = "#!/bin/sh\ncat >/dev/null\necho '{\"cniVersion\": \"1.0.0\", \"supportedVersions\": [\"1.0.0\"]}'\n"


@pytest.fixture
def plugin(tmp_path):
    """bin/bridge, a VERSION-answering plugin, and a write descriptor on it (closed at the end if still open)."""
    os.chmod(tmp_path, 0o755)
    (tmp_path / "bin").mkdir(mode=0o755)
    path = tmp_path / "bin" / "bridge"
    write_program(path, VERSION)
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    held = {"fd": fd}
    yield path, held
    if held["fd"] is not None:
        os.close(held["fd"])


def _waits(monkeypatch, then=None):
    waits: list[float] = []

    def wait(seconds):
        waits.append(seconds)
        if then is not None:
            then()
    monkeypatch.setattr(invoke, "_wait_for_writer", wait)
    return waits


def test_a_plugin_open_for_writing_at_its_first_exec_is_run_once_the_writer_closes(plugin, monkeypatch, tmp_path):
    path, held = plugin

    def writer_closes():
        os.close(held["fd"])
        held["fd"] = None
    waits = _waits(monkeypatch, writer_closes)
    log = tmp_path / "calls.jsonl"
    answer = Runtime("/nonexistent", [str(path.parent)], CallLog(str(log))).version("bridge")
    assert answer["supportedVersions"] == ["1.0.0"]
    assert waits == [invoke.BUSY_WAIT]  # one pause, libcni's second
    (call,) = invoke.read_log(str(log))  # one call in the log: the one that ran
    assert call["exit_code"] == 0 and call["command"] == "VERSION"


def test_a_plugin_that_stays_busy_fails_in_one_line_after_libcnis_tries(plugin, monkeypatch, tmp_path):
    path, _ = plugin
    waits = _waits(monkeypatch)
    log = tmp_path / "calls.jsonl"
    with pytest.raises(PluginFailed) as caught:
        Runtime("/nonexistent", [str(path.parent)], CallLog(str(log))).version("bridge")
    line = str(caught.value)
    assert "\n" not in line
    assert line.startswith(f"pod -: CNI plugin bridge VERSION: failed (exit 127); stderr: cannot run {path}: "
                           "Text file busy: a process holds the file open for writing"), line
    assert f"netlab tried {invoke.BUSY_TRIES} times, 1 s apart, as libcni does" in line
    assert waits == [invoke.BUSY_WAIT] * (invoke.BUSY_TRIES - 1)
    (call,) = invoke.read_log(str(log))
    assert call["exit_code"] == 127 and "Text file busy" in call["stderr"]


def test_the_pauses_end_at_the_calls_deadline(plugin, monkeypatch):
    path, _ = plugin
    waits = _waits(monkeypatch)
    with pytest.raises(PluginFailed, match="Text file busy"):
        invoke.exec_plugin(CallLog(None), pod="p", network="n", plugin_path=str(path), command="VERSION", conf={},
                           env={}, node_netns=None, timeout=0.5)
    assert len(waits) == invoke.BUSY_TRIES - 1 and all(0 < w <= 0.5 for w in waits), waits


def test_another_exec_error_is_not_tried_again(tmp_path, monkeypatch):
    odd = tmp_path / "odd"
    write_program(odd, "no interpreter line, not ELF\n")  # ENOEXEC
    waits = _waits(monkeypatch)
    with pytest.raises(PluginFailed, match=r"failed \(exit 127\); stderr: cannot run .*odd: Exec format error$"):
        invoke.exec_plugin(CallLog(None), pod="p", network="n", plugin_path=str(odd), command="VERSION", conf={},
                           env={}, node_netns=None)
    assert waits == []
