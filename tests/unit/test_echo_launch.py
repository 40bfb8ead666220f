"""The lab's echo server started early (workload/echo_start.EarlyEcho), without root: its interpreter starts
before the pods' UTS namespaces are pinned, and gets its specs once they are; when something fails in
between, the launcher that never got its specs is stopped, not left waiting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.workload import echo_start, launch

DEFAULT = Path(__file__).resolve().parents[2] / "topologies" / "default-2node.yaml"


@pytest.fixture
def lab(monkeypatch, tmp_path):
    """The default lab, its state directory in tmp_path (nothing is made under the real one)."""
    from netlab.realize import state_dir

    root = tmp_path / "state"
    root.mkdir(mode=0o700)
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(root))
    return resolve(load_topology(str(DEFAULT)))


def waiting_launcher(started: list) -> subprocess.Popen:
    """A stand-in launcher: it reads its input to the end, as the real one reads its specs."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.buffer.read()"], stdin=subprocess.PIPE)
    started.append(proc)
    return proc


def test_the_launcher_starts_first_and_gets_the_specs_once_the_namespaces_are_pinned(monkeypatch, tmp_path, lab):
    order: list[str] = []
    started: list[subprocess.Popen] = []
    monkeypatch.setattr(launch, "start_launcher", lambda *args: order.append("launcher") or waiting_launcher(started))
    monkeypatch.setattr(launch, "control_path", lambda lab, create=False: str(tmp_path / "echo.sock"))
    monkeypatch.setattr(launch, "stop_server", lambda lab: order.append("stop old server") or [])
    monkeypatch.setattr(echo_start, "ensure_uts", lambda lab, names: order.append("pins") or
                        ({n: str(tmp_path / n) for n in names}, list(names), []))
    monkeypatch.setattr(echo_start, "output_logs", lambda lab_name, paths: list(paths))
    sent: list[list[dict]] = []
    real_send = launch.send_specs
    monkeypatch.setattr(launch, "send_specs", lambda proc, specs: sent.append(specs) or real_send(proc, specs))
    early = echo_start.EarlyEcho(lab, lab.pods)
    proc = early.join()
    assert order == ["launcher", "pins", "stop old server"] and proc is started[0]
    assert [s["id"].split("/")[0] for s in sent[0]] == [p.name for p in lab.pods]
    assert sent[0][0]["uts"] == str(tmp_path / lab.pods[0].name)
    assert proc.wait(10) == 0  # it read its specs to the end


def test_a_launcher_that_never_got_its_specs_is_stopped(monkeypatch, tmp_path, lab):
    started: list[subprocess.Popen] = []
    monkeypatch.setattr(launch, "start_launcher", lambda *args: waiting_launcher(started))
    monkeypatch.setattr(launch, "control_path", lambda lab, create=False: str(tmp_path / "echo.sock"))

    def pins_fail(lab, names):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(echo_start, "ensure_uts", pins_fail)
    early = echo_start.EarlyEcho(lab, lab.pods)
    with pytest.raises(OSError, match="No space"):
        early.join()
    assert started and started[0].poll() is not None and early.launcher is None  # killed and reaped
