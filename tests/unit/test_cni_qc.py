"""One CNI plugin call as libcni makes it, against small fake plugins (no root, no namespace): QA qc's findings.

* A DEL or CHECK that exits 0 succeeded, whatever it printed (libcni's ExecPluginWithoutResult reads no stdout).
* A plugin's error with newlines is one line; a plugin killed by a signal is named so.
* A conflist may give its versions as CNI 1.1.0's ``cniVersions``.
The real plugins in real namespaces are tests/integration/test_cni_bench.py's.
"""

from __future__ import annotations

import json
import re

import pytest

from netlab.cli.cni import render_call
from netlab.cni.invoke import CallLog, PluginFailed, read_log
from netlab.cni.runtime import Runtime, RuntimeConf
from netlab.model.cniconf import ConflistError, parse_conflist, read_conflist


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


@pytest.mark.parametrize("versions,chosen", [
    ({"cniVersions": ["0.4.0", "1.1.0", "1.0.0"]}, "1.1.0"),  # the highest (libcni's conf_test)
    ({"cniVersions": ["9.0.0", "1.0.0", "0.4.0"]}, "1.0.0"),  # past what netlab speaks: left out, as libcni does
    ({"cniVersion": "1.0.0", "cniVersions": ["0.3.1", "0.4.0"]}, "1.0.0"),  # merged with cniVersion
    ({"cniVersion": "1.1.0"}, "1.1.0")])
def test_a_conflist_may_give_its_versions_as_cniversions(versions, chosen):
    """CNI 1.1.0's version choice: the runtime takes the highest of cniVersion and cniVersions. A list with only
    cniVersions was refused ("has no cniVersion"); every plugin gets the chosen one as the list's cniVersion."""
    net = parse_conflist(json.dumps({"name": "qcnet", **versions, "plugins": [{"type": "bridge"}]}))
    assert net.cni_version == chosen


@pytest.mark.parametrize("versions,said", [
    ({}, "has no cniVersion (nor cniVersions)"), ({"cniVersions": []}, "has no cniVersion (nor cniVersions)"),
    ({"cniVersions": "1.0.0"}, "cniVersions must be a list of versions like 1.0.0"),
    ({"cniVersions": ["1.0.f"]}, "cniVersions[0] '1.0.f' (line 1) is not a version like 1.0.0"),
    ({"cniVersions": ["9.0.0"]}, "cniVersions 9.0.0: none is one netlab speaks (0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0)")])
def test_a_conflist_without_a_version_netlab_can_take_is_one_line(versions, said):
    with pytest.raises(ConflistError, match=f"^{re.escape(said)}$"):
        parse_conflist(json.dumps({"name": "qcnet", **versions, "plugins": [{"type": "bridge"}]}))


def test_a_bad_cniversions_entry_is_named_with_its_index_and_line(tmp_path):
    """It was "cniVersion '1.0.f' is not a version", the field the list did not have."""
    text = '{\n  "cniVersion": "1.0.0",\n  "cniVersions": [\n    "0.4.0",\n    "1.0.f"\n  ],\n  "name": "qcnet",\n' \
           '  "plugins": [{"type": "bridge"}]\n}\n'
    (tmp_path / "q.conflist").write_text(text)
    with pytest.raises(ConflistError) as exc:
        read_conflist(str(tmp_path / "q.conflist"))
    assert str(exc.value) == f"{tmp_path / 'q.conflist'}: cniVersions[1] '1.0.f' (line 5) is not a version like 1.0.0"
