"""One CNI plugin call as libcni makes it, against small fake plugins (no root, no namespace): QA qc's findings.

* A DEL or CHECK that exits 0 succeeded, whatever it printed (libcni's ExecPluginWithoutResult reads no stdout).
* A plugin's error with newlines is one line; a plugin killed by a signal is named so.
The real plugins in real namespaces are tests/integration/test_cni_bench.py's.
"""

from __future__ import annotations

import json

import pytest

from netlab.cli.cni import render_call
from netlab.cni.invoke import CallLog, PluginFailed, read_log
from netlab.cni.runtime import Runtime, RuntimeConf
from netlab.model.cniconf import parse_conflist


def _plugin(tmp_path, name, body):
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    (d / name).write_text("#!/bin/sh\ncat >/dev/null\n" + body)
    (d / name).chmod(0o755)
    return d


def _rt():
    return RuntimeConf(pod="web", container_id="c" * 64, netns="qcx-web", ifname="eth0", node_netns=None)


def _net(kind):
    return parse_conflist(json.dumps({"cniVersion": "1.0.0", "name": "qcnet", "plugins": [{"type": kind}]}))


def test_a_del_or_check_that_exits_0_succeeds_whatever_it_printed(tmp_path):
    d = _plugin(tmp_path, "noisy", 'echo "debug: noisy doing $CNI_COMMAND"\nexit 0\n')
    rt_ = Runtime(str(tmp_path / "cache"), [str(d)], CallLog(str(tmp_path / "calls.jsonl")))
    rt_._cache_write(_net("noisy"), _rt(), {"cniVersion": "1.0.0", "ips": [{"address": "10.244.0.7/24"}]})
    assert rt_.check(_net("noisy"), _rt()) is None  # it said "its output is not JSON: debug: ..."
    rt_.delete(_net("noisy"), _rt())  # raised PluginFailed
    calls = read_log(str(tmp_path / "calls.jsonl"))
    assert [(c["command"], c["exit_code"], c["stdout"]) for c in calls] == [
        ("CHECK", 0, "debug: noisy doing CHECK\n"), ("DEL", 0, "debug: noisy doing DEL\n")]  # kept in the log
    assert render_call(1, calls[1]).splitlines()[-1] == (
        "  stdout debug: noisy doing DEL (not read: a DEL or CHECK that exits 0 succeeds)")
    # An ADD's output is its result: text there is still a failure.
    with pytest.raises(PluginFailed, match=r"^pod web: CNI plugin noisy ADD: its output is not JSON: debug: noisy"):
        rt_.add(_net("noisy"), _rt())


def test_a_plugin_error_with_newlines_is_one_line(tmp_path):
    err = {"code": 100, "msg": "iptables failed\nfor real",
           "details": "running iptables: exit status 1: iptables v1.8.9: bad rule\nTry iptables -h\n"}
    (tmp_path / "err.json").write_text(json.dumps(err))  # as Go's json.Marshal writes it: \n escaped
    d = _plugin(tmp_path, "multi", f"cat {tmp_path}/err.json\nprintf 'line one\\nline two\\n' >&2\nexit 1\n")
    rt_ = Runtime(str(tmp_path / "cache"), [str(d)], CallLog(str(tmp_path / "calls.jsonl")))
    with pytest.raises(PluginFailed) as exc:
        rt_.add(_net("multi"), _rt())
    assert str(exc.value) == ("pod web: CNI plugin multi ADD: failed (exit 1): iptables failed | for real (running "
                              "iptables: exit status 1: iptables v1.8.9: bad rule | Try iptables -h) [code 100]; "
                              "stderr: line one line two")
    assert json.loads(read_log(str(tmp_path / "calls.jsonl"))[0]["stdout"]) == err  # whole in the log


def test_a_plugin_killed_by_a_signal_is_named_so(tmp_path):
    d = _plugin(tmp_path, "killed", "kill -9 $$\n")
    rt_ = Runtime(str(tmp_path / "cache"), [str(d)], CallLog(str(tmp_path / "calls.jsonl")))
    with pytest.raises(PluginFailed, match=r"^pod web: CNI plugin killed ADD: failed \(killed by SIGKILL\)$"):
        rt_.add(_net("killed"), _rt())
    call = read_log(str(tmp_path / "calls.jsonl"))[0]
    assert call["exit_code"] == -9 and "killed by SIGKILL, " in render_call(1, call).splitlines()[0]
