"""Real labs (root), used the way a library caller's own tests use them: results that are values
(pickled to another process, deep-copied, hashed), arguments checked as the CLI checks them, a dict
lab and the built-in default lab that do not replace each other, and library words in library results.

Every lab is tiny, named qfl + 7 hex digits, and always taken down (the ``labs`` fixture).
"""

from __future__ import annotations

import copy
import dataclasses
import multiprocessing
import pickle
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from netlab import Lab
from netlab.api.lab import internal
from netlab.breaks.run import break_lab
from netlab.errors import netlab_command

pytestmark = pytest.mark.root


def small(name: str) -> dict:
    return {"name": name, "nodes": [{"name": "n1"}, {"name": "n2"}],
            "pods": [{"name": "a", "node": "n1", "labels": {"app": "web"}}, {"name": "b", "node": "n2"}],
            "services": [{"name": "web", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}]}


def _fields(result: object) -> tuple[str, int]:
    """What a child process reads of a result it was sent."""
    return type(result).__name__, len(dataclasses.asdict(result))  # type: ignore[call-overload]


def test_results_of_a_real_lab_are_values(labs):
    name = labs.name("qfl")
    with Lab.up(small(name)) as lab:
        trace = lab.trace("a", "b")
        assert trace.delivered and internal(trace) is not None  # the CLI's text still has the walk behind it
        break_lab(name, "ip-forward-off")  # drift, for status' details
        status = lab.status()
        assert not status.clean and status.details
        results = [lab.probe(protos=["icmp"]), trace, lab.inspect("n1"), lab.inspect("a", ["routes"]),
                   lab.pod("a"), lab.service("web"), lab.node("n1"), status, lab.last_up, *Lab.attach(name).pods()]
        lab.repair()
        for result in results:
            again = pickle.loads(pickle.dumps(result))
            assert again == result and hash(again) == hash(result), type(result).__name__
            assert copy.deepcopy(result) == result and dataclasses.asdict(result)
        assert internal(pickle.loads(pickle.dumps(trace))) is None  # the fields alone, not the library's walk
        assert len(pickle.dumps(trace)) < 3 * len(repr(trace))
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            sent = pool.map(_fields, results)
        assert [n for n, _ in sent] == [type(r).__name__ for r in results]
        assert lab.pod("a").labels == {"app": "web"} and hash(lab.pod("a")) == hash(lab.pod("a"))


def test_a_protocol_in_capitals_or_unknown_is_refused_not_traced_as_lost(labs):
    """trace(proto="TCP") sent a packet no rule matched and answered delivered=False with a firewall to look
    at; "sctp" was a TypeError from deep inside. Both are refused as reach refuses them; "tcp" is delivered."""
    from netlab.errors import UsageError

    name = labs.name("qfl")
    with Lab.up(small(name)) as lab:
        assert lab.trace("a", "b", proto="tcp", port=8080).delivered
        for proto in ("TCP", "sctp"):
            for call in (lab.trace, lab.reach):
                with pytest.raises(UsageError, match=f"proto '{proto}': want one of icmp, tcp, udp"):
                    call("a", "b", proto=proto, port=8080)
        with pytest.raises(UsageError, match="size -3 is not in the range 1-65000"):
            lab.trace("a", "b", size=-3)
        assert lab.inspect("a", "routes").routes and lab.inspect("a", "routes").links is None
        assert lab.probe(protos="tcp").summary.probes == len([p for p in lab.probe().probes if p.protocol == "tcp"])


@pytest.mark.parametrize("first", ["default", "dict"])
def test_a_dict_lab_and_the_default_lab_of_one_name_do_not_replace_each_other(labs, first):
    """Lab.up(None, name=N) then Lab.up({"name": N, ...}) took the default lab's namespaces down without a
    word (and the reverse): the state keeps no file for either. Refused now, as a file over a dict is."""
    from helpers import lab_namespaces
    from netlab.errors import UsageError

    name = labs.name("qfl")
    topologies = {"default": None, "dict": {"name": name, "nodes": [{"name": "n1"}]}}
    second = "dict" if first == "default" else "default"
    lab = Lab.up(topologies[first], name=name)
    before = lab_namespaces(name)
    assert len(before) == (7 if first == "default" else 2)  # with the underlay
    words = {"default": "the built-in default", "dict": "a dict"}
    with pytest.raises(UsageError, match=f"lab {name} is up from {words[first]}, and {words[second]} has the same "
                                         r"name: .* pass reconfigure=True"):
        Lab.up(topologies[second], name=name)
    assert lab_namespaces(name) == before and lab.status().clean
    again = Lab.up(topologies[first], name=name)  # the same one again converges it
    assert not again.owned and lab_namespaces(name) == before
    replaced = Lab.up(topologies[second], name=name, reconfigure=True)
    assert len(lab_namespaces(name)) == (2 if first == "default" else 7) and replaced.status().clean
    replaced.down()


def _as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run this checkout's Python as uid 65534: its virtualenv's interpreter, or (where that one lies under a
    directory nobody may enter, as /root/.pyenv) the system's of the same version with the virtualenv's
    packages on the path; skipped when neither runs."""
    checkout = str(Path(__file__).resolve().parents[2])
    env = {"PATH": "/usr/bin:/bin", "HOME": "/", "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": f"{checkout}:{sysconfig.get_paths()['purelib']}"}
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    for python in (sys.executable, f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}"):
        proc = subprocess.run([*nobody, python, "-c", "import netlab.api.lab"], capture_output=True, text=True,
                              env=env, cwd="/", timeout=60)
        if proc.returncode == 0:
            return subprocess.run([*nobody, python, *argv], capture_output=True, text=True, env=env, cwd="/",
                                  timeout=60)
    pytest.skip(f"this checkout cannot be run by uid 65534: {proc.stderr.strip()[-200:]}")


NEEDS_ROOT = "netlab needs root: a lab is made of network namespaces, and its state in /run/netlab is root's; " \
             "run it with sudo"


def test_without_root_the_library_and_the_cli_say_netlab_needs_root(labs):
    """As uid 65534, with root's labs in /run/netlab: labs() and Lab(x).down() said "/run/netlab is owned by uid
    0, not by us; remove it and retry", advice that destroys everyone's labs on a shared machine. Now the
    needs-root error (EnvironmentNotReady, exit 3) that up gives, in the library as in the CLI."""
    import os

    from netlab.realize.state_dir import STATE_ROOT

    if STATE_ROOT != "/run/netlab":
        pytest.skip("NETLAB_STATE_DIR moves the state directory")
    name = labs.name("qfl")
    with Lab.up({"name": name, "nodes": [{"name": "n1"}]}):  # root's labs are there, one at least
        assert os.stat(STATE_ROOT).st_uid == 0
        code = ("import netlab.api as api\nfrom netlab import Lab\n"
                f"for call in (api.labs, lambda: Lab({name!r}).down(), lambda: Lab({name!r}).status()):\n"
                "    try:\n        call()\n    except api.EnvironmentNotReady as exc:\n"
                "        print(exc.exit_code, exc)\n")
        proc = _as_nobody("-c", code)
        lines = proc.stdout.splitlines()
        assert lines[:2] == [f"3 {NEEDS_ROOT}"] * 2, proc.stdout + proc.stderr
        assert lines[2].startswith("3 netlab needs root") and len(lines) == 3, proc.stdout + proc.stderr
        for command in (["list"], ["down", "--lab", name], ["list", "-o", "json"]):
            cli = _as_nobody("-m", "netlab", *command)
            assert cli.returncode == 3 and "needs root" in cli.stderr and "remove it" not in cli.stderr, cli.stderr
        assert Lab.attach(name).status().clean  # nothing of it was touched


def test_library_results_and_waits_speak_python_and_the_cli_its_own(labs, tmp_path, caplog, capfd):
    """Status.repair and Trace.repair said "sudo netlab up --lab X" to a Python caller, and a wait for the
    lab's lock printed "netlab: waiting for pid ..." on the caller's standard error. Now the library says
    Lab('X').repair() and logs the wait (logger "netlab"); the CLI's words and line are as they were."""
    import json
    import threading

    from helpers import netlab
    from netlab.realize.lab_lock import LabLock

    name = labs.name("qfl")
    with Lab.up(small(name)) as lab:
        break_lab(name, "ip-forward-off")
        assert lab.status().repair == f"Lab({name!r}).repair()"
        assert lab.trace("a", "b").repair == f"Lab({name!r}).repair()"
        cli_status = json.loads(netlab("status", "--lab", name, "-o", "json", check=False).stdout)
        cli_trace = json.loads(netlab("trace", "--lab", name, "a", "b", "-o", "json", check=False).stdout)
        assert cli_status["repair"] == cli_trace["repair"] == netlab_command(f"up --lab {name}")

        held, release = threading.Event(), threading.Event()

        def hold() -> None:
            with LabLock(name, "the test"):
                held.set()
                release.wait(30)

        holder = threading.Thread(target=hold)
        holder.start()
        held.wait(10)
        threading.Timer(1.0, release.set).start()
        capfd.readouterr()
        caplog.set_level("WARNING", logger="netlab")
        assert lab.repair().changed  # waited for the test's hold, then repaired
        holder.join(10)
        waited = f"waiting for pid {__import__('os').getpid()} (the test) to release lab {name}"
        assert [(r.name, r.getMessage()) for r in caplog.records] == [("netlab", waited)]
        assert "waiting for" not in capfd.readouterr().err
        assert lab.status().clean

        with LabLock(name, "the test"):  # the CLI prints its line, as before
            proc = subprocess.Popen([sys.executable, "-m", "netlab", "up", "--lab", name], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            line = proc.stderr.readline()
        out, err = proc.communicate(timeout=120)
        assert line == f"netlab: {waited}\n" and proc.returncode == 0, line + err
