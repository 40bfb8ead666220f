"""The CNI runtime against small fake plugins (no root, no namespace): order, prevResult, cache, errors, deadlines.

Each fake is a script that appends what it was given (command, stdin,
CNI_* variables) to a file and answers like a plugin. The real plugins, in
real namespaces, are tests/integration/test_cni.py's.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from netlab.cni.invoke import CallLog, PluginFailed, read_log
from netlab.cni.runtime import Runtime, RuntimeConf
from netlab.model.cniconf import parse_conflist

FAKE = r'''#!/usr/bin/env python3
import json, os, sys
conf = json.load(sys.stdin)
cmd = os.environ["CNI_COMMAND"]
with open(os.environ["FAKE_LOG"] if "FAKE_LOG" in os.environ else %(log)r, "a") as fh:
    fh.write(json.dumps({"plugin": %(name)r, "cmd": cmd, "conf": conf,
                         "env": {k: v for k, v in os.environ.items() if k.startswith("CNI_")}}) + "\n")
if cmd == "ADD":
    prev = conf.get("prevResult") or {"cniVersion": conf["cniVersion"], "interfaces": [], "ips": [], "routes": []}
    prev["interfaces"] = prev["interfaces"] + [{"name": %(name)r}]
    if not prev["ips"]:
        prev["ips"] = [{"address": "10.244.0.7/24", "gateway": "10.244.0.1"}]
    print(json.dumps(prev))
elif cmd == "VERSION":
    print(json.dumps({"cniVersion": "1.0.0", "supportedVersions": ["0.4.0", "1.0.0"]}))
'''


@pytest.fixture
def bins(tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    log = tmp_path / "calls.txt"
    for name in ("first", "second"):
        p = d / name
        p.write_text(FAKE % {"log": str(log), "name": name})
        p.chmod(0o755)
    fail = d / "failing"
    fail.write_text('#!/bin/sh\ncat >/dev/null\necho "bridge said no" >&2\n'
                    'echo \'{"cniVersion": "1.0.0", "code": 11, "msg": "no more addresses", "details": "range full"}\'\n'
                    'exit 1\n')
    fail.chmod(0o755)
    hang = d / "hanging"
    hang.write_text("#!/bin/sh\ncat >/dev/null\nsleep 30 &\nsleep 30\n")
    hang.chmod(0o755)
    return d, log


def calls(log):
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def rt(pod="web"):
    return RuntimeConf(pod=pod, container_id="c" * 64, netns="lab-web", ifname="eth0", node_netns=None,
                       args=[("IgnoreUnknown", "1"), ("K8S_POD_NAME", pod)], capability_args={"ips": ["10.244.0.9/24"]})


def net(version="1.0.0", *types):
    plugins = [{"type": t, "capabilities": {"ips": True}} if t == "first" else {"type": t} for t in types]
    return parse_conflist(json.dumps({"cniVersion": version, "name": "n", "plugins": plugins}))


def test_add_chains_prev_result_and_caches_the_last(bins, tmp_path):
    d, log = bins
    runtime = Runtime(str(tmp_path / "cache"), [str(d)], CallLog(str(tmp_path / "calls.jsonl")))
    result = runtime.add(net("1.0.0", "first", "second"), rt())
    first, second = calls(log)
    assert [first["plugin"], second["plugin"]] == ["first", "second"]
    assert "prevResult" not in first["conf"] and first["conf"]["runtimeConfig"] == {"ips": ["10.244.0.9/24"]}
    assert second["conf"]["prevResult"]["interfaces"] == [{"name": "first"}] and "runtimeConfig" not in second["conf"]
    assert first["env"]["CNI_NETNS"] == "/run/netns/lab-web" and first["env"]["CNI_IFNAME"] == "eth0"
    assert first["env"]["CNI_ARGS"] == "IgnoreUnknown=1;K8S_POD_NAME=web" and first["env"]["CNI_PATH"] == str(d)
    assert [i["name"] for i in result["interfaces"]] == ["first", "second"]
    assert runtime.cached_result("n", rt()) == result
    recorded = read_log(str(tmp_path / "calls.jsonl"))
    assert [(c["plugin"], c["command"], c["exit_code"]) for c in recorded] == [("first", "ADD", 0), ("second", "ADD", 0)]
    assert recorded[0]["stdin"]["name"] == "n" and json.loads(recorded[1]["stdout"]) == result
    assert all(c["duration"] > 0 for c in recorded)


def test_del_runs_in_reverse_with_the_cached_result_and_twice_is_fine(bins, tmp_path):
    d, log = bins
    runtime = Runtime(str(tmp_path / "cache"), [str(d)], CallLog(None))
    result = runtime.add(net("1.0.0", "first", "second"), rt())
    log.write_text("")
    changed = rt()
    changed.args = []  # DEL takes the CNI_ARGS the ADD was made with, from the cache
    runtime.delete(net("1.0.0", "first", "second"), changed)
    dels = calls(log)
    assert [c["plugin"] for c in dels] == ["second", "first"]
    assert all(c["conf"]["prevResult"] == result for c in dels)
    assert dels[0]["env"]["CNI_ARGS"] == "IgnoreUnknown=1;K8S_POD_NAME=web"
    assert runtime.cached_result("n", rt()) is None
    log.write_text("")
    runtime.delete(net("1.0.0", "first", "second"), rt())  # no cache: DEL still runs, without prevResult
    assert [("prevResult" in c["conf"]) for c in calls(log)] == [False, False]


def test_check_needs_040_and_sends_the_cached_result(bins, tmp_path):
    d, log = bins
    runtime = Runtime(str(tmp_path / "cache"), [str(d)], CallLog(None))
    old = net("0.3.1", "first")
    runtime.add(old, rt())
    assert "0.4.0" in runtime.check(old, rt())
    new = net("1.0.0", "first", "second")
    result = runtime.add(new, rt("other"))
    log.write_text("")
    assert runtime.check(new, rt("other")) is None
    assert [(c["plugin"], c["cmd"], c["conf"]["prevResult"]) for c in calls(log)] == [
        ("first", "CHECK", result), ("second", "CHECK", result)]


def test_a_failing_plugin_is_one_line_naming_pod_plugin_command_and_msg(bins, tmp_path):
    d, _ = bins
    runtime = Runtime(str(tmp_path / "cache"), [str(d)], CallLog(str(tmp_path / "calls.jsonl")))
    with pytest.raises(PluginFailed) as exc:
        runtime.add(net("1.0.0", "first", "failing"), rt())
    text = str(exc.value)
    assert text == ("pod web: CNI plugin failing ADD: failed (exit 1): no more addresses (range full) [code 11]; "
                    "stderr: bridge said no")
    assert exc.value.exit_code == 4
    assert runtime.cached_result("n", rt()) is None  # nothing cached for a failed ADD
    assert [c["exit_code"] for c in read_log(str(tmp_path / "calls.jsonl"))] == [0, 1]


def test_a_hanging_plugin_is_killed_with_its_children_at_the_deadline(bins, tmp_path):
    d, _ = bins
    runtime = Runtime(str(tmp_path / "cache"), [str(d)], CallLog(str(tmp_path / "calls.jsonl")), timeout=0.5)
    t0 = time.monotonic()
    with pytest.raises(PluginFailed, match=r"^pod web: CNI plugin hanging ADD: timed out: it ran past the call's deadline, 0.5 s "
                       r"\(NETLAB_CNI_TIMEOUT\): netlab killed its process group$"):
        runtime.add(net("1.0.0", "hanging"), rt())
    assert time.monotonic() - t0 < 10  # not the 30 s its child sleeps: the whole group was killed
    [call] = read_log(str(tmp_path / "calls.jsonl"))
    assert call["exit_code"] is None


def test_a_missing_plugin_and_a_path_as_type_are_refused(bins, tmp_path):
    d, _ = bins
    runtime = Runtime(str(tmp_path / "cache"), [str(d)], CallLog(None))
    with pytest.raises(PluginFailed, match="'nope' not found"):
        runtime.plugin_path("nope")
    with pytest.raises(PluginFailed, match="not found"):
        runtime.plugin_path("../bin/first")


def test_version_asks_the_plugin(bins, tmp_path):
    d, _ = bins
    runtime = Runtime(str(tmp_path / "cache"), [str(d)], CallLog(None))
    assert runtime.version("first")["supportedVersions"] == ["0.4.0", "1.0.0"]


def test_version_is_called_with_libcnis_dummy_values(bins, tmp_path):
    """libcni's GetVersionInfo sets CNI_NETNS, CNI_IFNAME and CNI_PATH to "dummy" (a plugin built on an older skel
    refuses VERSION without them) and CNI_CONTAINERID and CNI_ARGS empty; netlab sent CNI_PATH alone."""
    d, log = bins
    Runtime(str(tmp_path / "cache"), [str(d)], CallLog(None)).version("first")
    (call,) = calls(log)
    assert call["conf"] == {"cniVersion": "1.0.0"} and call["env"] == {
        "CNI_COMMAND": "VERSION", "CNI_CONTAINERID": "", "CNI_NETNS": "dummy", "CNI_IFNAME": "dummy", "CNI_ARGS": "",
        "CNI_PATH": "dummy"}


def test_validate_asks_each_plugin_version_and_names_the_line(tmp_path):
    """`netlab validate`: a plugin that does not speak the list's version, and one that is missing."""
    import subprocess
    import sys
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "oldie").write_text('#!/bin/sh\necho \'{"cniVersion":"0.3.1","supportedVersions":["0.3.0","0.3.1"]}\'\n')
    (bindir / "oldie").chmod(0o755)
    (tmp_path / "n.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "n",
                                                     "plugins": [{"type": "oldie"}, {"type": "gone"}]}))
    (tmp_path / "t.yaml").write_text("name: cnv\nnodes: [{name: a}]\nnetwork:\n"
                                     "  cni: {conflist: n.conflist, binDir: bin}\n")
    proc = subprocess.run([sys.executable, "-m", "netlab", "validate", "-t", str(tmp_path / "t.yaml")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert f"{tmp_path / 't.yaml'}:4: network.cni.conflist: plugin oldie does not speak cniVersion 1.0.0 " \
           "(it speaks 0.3.0, 0.3.1)" in lines[0]
    assert "network.cni.conflist: plugin 'gone' not found in" in lines[1] and len(lines) == 2


def test_the_call_log_keeps_every_add_and_del_and_only_the_newest_checks(tmp_path, monkeypatch):
    """Every status CHECKs every pod (and `up --watch` runs one every --resync): the log grew without end. Past
    its limit it keeps how each pod was attached and detached, and the newest CHECKs of each pod and plugin."""
    from netlab.cni import invoke

    monkeypatch.setattr(invoke, "LOG_LIMIT", 6_000)
    cuts = []
    real = invoke.write_atomic
    monkeypatch.setattr(invoke, "write_atomic", lambda *a: cuts.append(1) or real(*a))
    log = CallLog(str(tmp_path / "calls.jsonl"))

    written = 0

    def record(pod: str, command: str, n: int) -> None:
        nonlocal written
        c = invoke.Call(pod=pod, network="n", plugin="bridge", command=command, env={}, stdin={"n": n},
                        runs_in="x-n1")
        written += len(json.dumps(c.to_json(), sort_keys=True)) + 1
        log.record(c)

    for pod in ("a", "b"):
        record(pod, "ADD", 0)
    for n in range(1, 40):
        for pod in ("a", "b"):
            record(pod, "CHECK", n)
    record("a", "DEL", 40)
    calls = read_log(str(tmp_path / "calls.jsonl"))
    assert os.path.getsize(tmp_path / "calls.jsonl") <= 6_000 + 200
    assert [(c["pod"], c["command"]) for c in calls if c["command"] != "CHECK"] == [("a", "ADD"), ("b", "ADD"),
                                                                                     ("a", "DEL")]
    for pod in ("a", "b"):
        checks = [c["stdin"]["n"] for c in calls if c["pod"] == pod and c["command"] == "CHECK"]
        assert checks == list(range(40 - len(checks), 40)) and len(checks) < 30  # the newest, the old ones gone
    assert 0 < len(cuts) <= (written - 6_000) // 3_000 + 1, (len(cuts), written)  # see below


def test_a_call_log_of_many_pods_is_cut_to_half_and_not_at_every_call(tmp_path, monkeypatch):
    """A lab whose ADDs alone fill the log: cutting only CHECKs left it over its limit, so every later call read,
    rewrote and synced the whole file (a 200-pod status took 5 s). Cut to half the limit, oldest calls first, it
    is cut again only once as much was written again."""
    from netlab.cni import invoke

    monkeypatch.setattr(invoke, "LOG_LIMIT", 6_000)
    cuts = []
    real = invoke.write_atomic
    monkeypatch.setattr(invoke, "write_atomic", lambda *a: cuts.append(1) or real(*a))
    path = str(tmp_path / "calls.jsonl")
    log, written = CallLog(path), 0
    for round_, command in enumerate(("ADD", "CHECK", "CHECK", "CHECK")):
        for pod in range(60):
            c = invoke.Call(pod=f"p{pod}", network="n", plugin="bridge", command=command, env={},
                            stdin={"round": round_}, runs_in="x-n1")
            written += len(json.dumps(c.to_json(), sort_keys=True)) + 1
            log.record(c)
            assert os.path.getsize(path) <= 6_000
    assert 0 < len(cuts) <= (written - 6_000) // 3_000 + 1, (len(cuts), written)
    last = read_log(path)[-1]
    assert (last["pod"], last["stdin"]) == ("p59", {"round": 3})


def test_a_plugin_that_prints_too_much_fails_and_its_output_is_cut(tmp_path):
    """Two plugins printing 30 MB each took netlab to 300 MB (decoded, logged, parsed): past 1 MiB a plugin's
    output is cut before all that, and the call fails in one line."""
    from netlab.cni import invoke

    d = tmp_path / "bin"
    d.mkdir()
    loud = d / "loud"
    loud.write_text("#!/bin/sh\ncat >/dev/null\nhead -c 3000000 /dev/zero | tr '\\0' x\n")
    loud.chmod(0o755)
    runtime = Runtime(str(tmp_path / "cache"), [str(d)], CallLog(str(tmp_path / "calls.jsonl")))
    with pytest.raises(PluginFailed) as exc:
        runtime.add(net("1.0.0", "loud"), rt())
    assert str(exc.value) == (f"pod web: CNI plugin loud ADD: it printed more than {invoke.OUTPUT_LIMIT} bytes on "
                              "stdout, netlab's own bound on a plugin's output (the CNI spec and libcni set none; a "
                              "result is a few kB): netlab killed it there, and its output is cut there in the log")
    [logged] = read_log(str(tmp_path / "calls.jsonl"))
    assert len(logged["stdout"]) == invoke.OUTPUT_LIMIT


def test_a_plugin_that_prints_without_end_is_stopped_at_the_bound_not_at_its_deadline(tmp_path, monkeypatch):
    """Its output is read as it comes, up to the bound: the plugin is killed there (with its process group), long
    before the call's deadline, and netlab never holds more than the bound of it."""
    from netlab.cni import invoke

    d = tmp_path / "bin"
    d.mkdir()
    endless = d / "endless"
    endless.write_text("#!/bin/sh\ncat >/dev/null\nyes 'x' >&2\n")
    endless.chmod(0o755)
    monkeypatch.setenv(invoke.TIMEOUT_VAR, "10")  # reached, the call would say "timed out"
    runtime = Runtime(str(tmp_path / "cache"), [str(d)], CallLog(str(tmp_path / "calls.jsonl")))
    with pytest.raises(PluginFailed) as exc:
        runtime.add(net("1.0.0", "endless"), rt())
    assert str(exc.value).startswith("pod web: CNI plugin endless ADD: it printed more than "
                                     f"{invoke.OUTPUT_LIMIT} bytes on stderr, netlab's own bound"), str(exc.value)
    [logged] = read_log(str(tmp_path / "calls.jsonl"))
    assert len(logged["stderr"]) == invoke.OUTPUT_LIMIT and logged["exit_code"] == -9, logged["exit_code"]
