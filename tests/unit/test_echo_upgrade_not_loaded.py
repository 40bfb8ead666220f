"""`up` replacing a lab's echo server of an older netlab (echo_upgrade.replace) stops the old one only once the new
one's interpreter has loaded: when it did not (it ended, or did not say so in time), the old server is left to
serve the pods' echo containers and `up` says so, instead of stopping it with nothing to serve them."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

from netlab.workload import echo_upgrade, launch


def test_a_replacement_that_did_not_load_leaves_the_old_server_serving(monkeypatch):
    stopped: list[str] = []
    monkeypatch.setattr(echo_upgrade, "outdated", lambda lab: echo_upgrade.Outdated(4242, 1))
    monkeypatch.setattr(launch, "exits", lambda lab, ids: {})
    monkeypatch.setattr(launch, "control_path", lambda lab, create=False: "/nonexistent/echo.sock")
    monkeypatch.setattr(launch, "server_log", lambda lab: None)
    monkeypatch.setattr(launch, "start_launcher", lambda control, log: subprocess.Popen(  # ends, nothing loaded
        [sys.executable, "-c", "import sys; sys.exit(1)"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE))
    monkeypatch.setattr(launch, "stop_server", lambda lab, grace=3.0: stopped.append(lab) or [])
    monkeypatch.setattr(launch, "send_specs", lambda launcher, specs: None)
    monkeypatch.setattr(launch, "await_echo", lambda launcher, specs, pods: [])
    lab = SimpleNamespace(name="fk")
    done = echo_upgrade.replace(lab, {"pods": {}}, [], {})  # type: ignore[arg-type]
    assert stopped == [], "the old server was stopped though its replacement never loaded"
    assert done.actions == [] and len(done.problems) == 1, done
    assert "pid 4242" in done.problems[0] and "not replaced" in done.problems[0], done.problems


def test_an_old_server_that_does_not_stop_keeps_serving_and_the_new_one_is_not_sent_the_pods(monkeypatch):
    """The old server still holds the control socket and the pods' ports: the new one would clash with it."""
    sent: list[object] = []
    aborted: list[object] = []
    monkeypatch.setattr(echo_upgrade, "outdated", lambda lab: echo_upgrade.Outdated(4242, 1))
    monkeypatch.setattr(launch, "exits", lambda lab, ids: {})
    monkeypatch.setattr(launch, "control_path", lambda lab, create=False: "/nonexistent/echo.sock")
    monkeypatch.setattr(launch, "server_log", lambda lab: None)
    monkeypatch.setattr(launch, "start_launcher", lambda control, log: SimpleNamespace())
    monkeypatch.setattr(launch, "await_loaded", lambda launcher: True)
    monkeypatch.setattr(launch, "abort_launch", lambda launcher: aborted.append(launcher))
    monkeypatch.setattr(launch, "stop_server", lambda lab, grace=3.0: [4242])  # it survived SIGKILL's wait
    monkeypatch.setattr(launch, "send_specs", lambda launcher, specs: sent.append(specs))
    monkeypatch.setattr(launch, "await_echo", lambda launcher, specs, pods: [])
    done = echo_upgrade.replace(SimpleNamespace(name="fk"), {"pods": {}}, [], {})  # type: ignore[arg-type]
    assert sent == [] and len(aborted) == 1, (sent, aborted)
    assert done.actions == [] and len(done.problems) == 1 and "did not stop" in done.problems[0], done


def test_a_newer_netlabs_server_is_not_taken_for_an_outdated_one(monkeypatch):
    """A downgrade: the newer server knows this netlab's questions; replacing it would undo the upgrade (and two
    installs would replace each other's at every up)."""
    monkeypatch.setattr(echo_upgrade, "spoken_by", lambda lab: (4242, echo_upgrade.PROTOCOL + 1))
    assert echo_upgrade.outdated("fk") is None
    monkeypatch.setattr(echo_upgrade, "spoken_by", lambda lab: (4242, echo_upgrade.PROTOCOL - 1))
    assert echo_upgrade.outdated("fk") == echo_upgrade.Outdated(4242, echo_upgrade.PROTOCOL - 1)
