"""`netlab status`'s last lines: the repair, only for what it repairs. For a Never pod whose container could not
start and whose other container exited 3, it said "run `sudo netlab up -t FILE` again to repair", and that up
exits 1 the same (a Never pod's failed container stays exited; a command that is not there fails again)."""

from __future__ import annotations

import types

import pytest
from cli_inprocess import run_cli

from netlab import api
from netlab.api import internals as api_internals, lifecycle
from netlab.cli import lab as cli_lab
from netlab.errors import netlab_command
from netlab.realize import source_edit
from netlab.lab import readahead
from netlab.lab.status import StatusResult

# The lines workload.lifecycle.drift gives for the pod (restartPolicy Never; bad: [/nonexistent], ok: exit 3).
BAD = ("containers: pod job container bad could not start: [Errno 2] No such file or directory: "
       "'/nonexistent'")
NEVER = ("containers: pod job container ok exited with code 3 (pid 15453); see `netlab logs job -c ok`; "
         "restartPolicy Never: `netlab up` leaves it exited")
ROUTE = "missing route: 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink in qx5n-n1"  # up puts it back
REPAIR = "sudo netlab up -t /t/n.yaml"
# An Always pod's container the watcher holds back (workload.lifecycle.drift, crashloop.Waiting.words).
HELD = ("containers: pod crash container main exited with code 3 (pid 15460); see `netlab logs crash -c main`; "
        "CrashLoopBackOff (back-off 20s): `netlab up --watch` (pid 15400) restarts it in 12.5s")


@pytest.fixture
def status_of(monkeypatch):
    """`netlab status --lab qx5n` (and -o json) of a lab whose drift is the given lines."""
    monkeypatch.setattr(cli_lab, "require_root", lambda: None)
    monkeypatch.setattr(readahead, "start", lambda *a: types.SimpleNamespace(close=lambda: None))
    lab = types.SimpleNamespace(name="qx5n", _against_ahead=lambda topology: (types.SimpleNamespace(source=None), None,
                                                                              []))
    monkeypatch.setattr(api.Lab, "attach", staticmethod(lambda name: lab))
    monkeypatch.setattr(api_internals, "repair_up", lambda state, **kw: REPAIR)
    monkeypatch.setattr("netlab.workload.reconfigure.repair_command", lambda name: REPAIR)  # the lab's state's, as above

    def run(*drift: str, output: str = "text"):
        monkeypatch.setattr(lifecycle, "status", lambda state, kernel: StatusResult(lab="qx5n", drift=list(drift)))
        return run_cli("status", "--lab", "qx5n", "-o", output)
    return run


def test_a_never_pods_failed_containers_are_not_offered_up_as_their_repair(status_of):
    res = status_of(BAD, NEVER)
    last = res.stdout.splitlines()[-1]
    assert res.returncode == 1 and "` to repair" not in res.stdout, res.stdout
    assert last.startswith(f"`{REPAIR}` does not repair those containers: a container that could not start is "
                           "tried again by each `up`, and fails the same until its command can run"), last
    assert "a Never pod's container that failed stays exited: to run it again, change its command" in last
    assert status_of(BAD, NEVER, output="json").stdout.count("/nonexistent") == 2  # in drift, and in kept


def test_the_repair_is_offered_for_the_rest(status_of):
    lines = status_of(ROUTE, NEVER).stdout.splitlines()
    assert lines[-2:] == [f"run `{REPAIR}` to repair the rest",
                          f"`{REPAIR}` does not repair that container: a Never pod's container that failed stays "
                          "exited: to run it again, change its command or take the pod out of the file and back "
                          "(`up` each time), or `down` and `up`"]
    assert status_of(ROUTE).stdout.splitlines()[-1] == f"run `{REPAIR}` to repair"


def test_a_container_in_back_off_is_the_watchers_to_restart_or_ups_now(status_of):
    lines = status_of(HELD).stdout.splitlines()
    assert lines[-1] == ("`netlab up --watch` restarts that container when its back-off ends (CrashLoopBackOff); "
                         f"`{REPAIR}` restarts it now"), lines
    assert "` to repair" not in "\n".join(lines)
    lines = status_of(ROUTE, HELD, NEVER).stdout.splitlines()
    assert lines[-3] == f"run `{REPAIR}` to repair the rest"
    assert lines[-2].startswith("`netlab up --watch` restarts that container when its back-off ends")
    assert lines[-1].startswith(f"`{REPAIR}` does not repair that container: a Never pod's")


def test_json_names_no_repair_when_up_repairs_nothing_as_the_text_says(status_of):
    """The text said "`up` does not repair that container" while -o json said "repair": that up (only kept hinted
    otherwise). A repair is named when up repairs something, and kept says what it leaves."""
    import json

    doc = json.loads(status_of(NEVER, output="json").stdout)
    assert (doc["repair"], doc["kept"]) == (None, [NEVER])
    doc = json.loads(status_of(BAD, NEVER, output="json").stdout)
    assert (doc["repair"], doc["kept"]) == (None, [BAD, NEVER])
    doc = json.loads(status_of(ROUTE, NEVER, output="json").stdout)
    assert (doc["repair"], doc["kept"]) == (REPAIR, [NEVER])
    assert status_of(NEVER).stdout.splitlines()[-1].startswith(f"`{REPAIR}` does not repair that container: ")


def test_status_counts_in_one_unit_and_its_footer_counts_nothing_twice(status_of, monkeypatch):
    """It said "2 differences from the plan", then "14 more differences not shown above": the 14 were the
    "(and 14 more)" of a table's line, already among the 2. Objects, with every difference counted once."""
    rules = [f"extra chain: KUBE-SEP-X{i}" for i in range(20)]
    table = f"different: iptables nat rules in qx5n-n1 ({'; '.join(rules[:6])} (and 14 more))"
    details = [{"state": "different", "object": "iptables nat rules in qx5n-n1", "differences": rules},
               {"state": "missing", "object": "route", "differences": []}]
    monkeypatch.setattr(lifecycle, "status", lambda state, kernel: StatusResult(
        lab="qx5n", drift=[table, ROUTE], details=details))
    lines = run_cli("status", "--lab", "qx5n").stdout.splitlines()
    assert lines[0] == "lab qx5n: 2 objects differ from the plan (21 differences):", lines
    assert lines[3] == ("the lines above show 7 of the 21 differences: "
                        f"`{netlab_command('status --lab qx5n -o json')}` lists every one (details[].differences)"), lines
    assert status_of(ROUTE).stdout.splitlines()[0] == "lab qx5n: 1 object differs from the plan:"


def test_status_of_a_file_says_no_up_repairs_a_never_pods_failed_container(status_of, monkeypatch, tmp_path):
    """QA qw 3: `status -t FILE` said "run `None` to apply it" when the only difference was a Never pod's failed
    container (no repair to name): it says, as plain `status` does, that the file's `up` does not repair it."""
    path = tmp_path / "n.yaml"
    path.write_text("name: qx5n\nnodes: [{name: n1}]\n")
    monkeypatch.setattr(api_internals, "replaces", lambda state, p: False)
    up = netlab_command(f"up -t {path}")

    monkeypatch.setattr(api_internals, "repair_up", lambda state, **kw: up)

    def status(*drift: str) -> list[str]:
        monkeypatch.setattr(lifecycle, "status", lambda state, kernel: StatusResult(lab="qx5n", drift=list(drift)))
        res = run_cli("status", "-t", str(path))
        assert res.returncode == 1 and "None" not in res.stdout, res.stdout
        return res.stdout.splitlines()

    lines = status(NEVER)
    assert lines[-1].startswith(f"`{up}` does not repair that container: a Never pod's container that failed stays "
                                "exited"), lines
    assert "to apply" not in "\n".join(lines)
    assert status(ROUTE, NEVER)[-2:-1] == [f"run `{up}` to apply the rest"]
    assert status(ROUTE)[-1] == f"run `{up}` to apply it"


def test_a_drift_only_reconfigure_repairs_names_up_reconfigure(status_of, monkeypatch, tmp_path):
    """QA qr3 1: a conflist edited in place (a feature's feature.Reconfigure line): status said "run `sudo netlab up
    -t FILE` to repair", and that up refuses it (exit 2). Its text, -o json and status -t FILE name the file's
    `up -t FILE --reconfigure`, which re-attaches the pods; Lab.status names Lab.up('FILE', reconfigure=True)."""
    import json

    path = tmp_path / "n.yaml"
    path.write_text("name: qx5n\nnodes: [{name: n1}]\n")
    state = types.SimpleNamespace(lab="qx5n", source=str(path), repair=None, extra={})
    lab = types.SimpleNamespace(name="qx5n", _against_ahead=lambda topology: (state, None, []))
    monkeypatch.setattr(source_edit, "source_changed", lambda state: None)  # the file gives what the lab runs
    monkeypatch.setattr(api.Lab, "attach", staticmethod(lambda name: lab))
    monkeypatch.setattr(api_internals, "repair_up", lambda state, **kw: f"sudo netlab up -t {path}")
    monkeypatch.setattr(lifecycle, "status", lambda state, kernel: StatusResult(
        lab="qx5n", drift=[ROUTE, "cni: conflist X changed since pod a was attached with it"], reconfigure=True))
    want = netlab_command(f"up -t {path} --reconfigure")
    assert run_cli("status", "--lab", "qx5n").stdout.splitlines()[-1] == f"run `{want}` to repair"
    assert json.loads(run_cli("status", "--lab", "qx5n", "-o", "json").stdout)["repair"] == want
    monkeypatch.setattr(api_internals, "replaces", lambda state, p: False)
    assert run_cli("status", "-t", str(path)).stdout.splitlines()[-1] == f"run `{want}` to apply it"
    assert api_internals.internal_status(lab, api=True).repair == f"Lab.up({str(path)!r}, reconfigure=True)"
    state.source = None  # a lab made from a dict: no file to name
    assert api_internals.internal_status(lab).repair == netlab_command("up --lab qx5n --reconfigure")  # QA 61 3


def test_a_lab_brought_up_from_a_file_under_its_own_name_is_named_in_its_reconfigure(status_of, monkeypatch,
                                                                                      tmp_path):
    """QA q32 1: a lab brought up as Lab.up(FILE, name='qx5m') (every pytest plugin lab) whose conflist was edited:
    status named `sudo netlab up -t FILE --reconfigure`, which makes (or replaces) the file's lab, qx5o, and leaves
    qx5m as it is; the drift line's Python call lacked name=. No `netlab up` names a file's lab otherwise (-t FILE
    --reconfigure takes no --lab): the Python call with name=, as a command run by netlab's own Python."""
    import json
    import os
    import shlex
    import sys

    from netlab.cni import edited

    from netlab.errors import python_words

    path = tmp_path / "n.yaml"
    path.write_text("name: qx5o\nnodes: [{name: n1}]\n")
    state = types.SimpleNamespace(lab="qx5m", source=str(path), repair=None, extra={})
    lab = types.SimpleNamespace(name="qx5m", _against_ahead=lambda topology: (state, None, []))
    monkeypatch.setattr(source_edit, "source_changed", lambda state: None)  # the file gives what the lab runs
    monkeypatch.setattr(api.Lab, "attach", staticmethod(lambda name: lab))
    monkeypatch.setattr(lifecycle, "status", lambda state, kernel: StatusResult(
        lab="qx5m", drift=[ROUTE, "cni: conflist X changed since pod a was attached with it"], reconfigure=True))
    call = f"Lab.up({str(path)!r}, name='qx5m', reconfigure=True)"
    folder = os.environ["NETLAB_STATE_DIR"]  # the test's state folder, after sudo (which drops the environment)
    want = f"sudo NETLAB_STATE_DIR={shlex.quote(folder)} {sys.executable} -c \"from netlab import Lab; {call}\""
    assert shlex.split(want)[1:] == [f"NETLAB_STATE_DIR={folder}", sys.executable, "-c",
                                     f"from netlab import Lab; {call}"]  # as a shell reads it
    assert run_cli("status", "--lab", "qx5m").stdout.splitlines()[-1] == f"run `{want}` to repair"
    assert json.loads(run_cli("status", "--lab", "qx5m", "-o", "json").stdout)["repair"] == want
    assert api_internals.internal_status(lab, api=True).repair == call
    assert edited._way(state) == f"`{want}`"  # the cni: drift line's, and up's refusal's
    with python_words():
        assert edited._way(state) == f"`{call}`"
    path.write_text("name: qx5m\nnodes: [{name: n1}]\n")  # the file names the lab: its own up, as before
    assert edited._way(state) == f"`{netlab_command(f'up -t {path} --reconfigure')}`"

