"""A lab's ``logs/`` or ``nodes/<node>/...`` swapped for a user's folder (a symlink) right after netlab looked at it:
the log clean-up (containers.forget_runs, for a container whose command changed) and a gone node's Flannel files
(flannel_files.remove) remove nothing through it. Before, each looked at the folder first, then removed by path:
a swap in that window had the user's files removed. Now each removes fd-relative in the folder it checked
(lab_folder.open_sub, lab_writes.open_dir)."""

from __future__ import annotations

import os

import pytest

import yaml

from netlab.model.lab import resolve
from netlab.model.topology import Topology
from netlab.realize import lab_folder, lab_writes, state_dir
from netlab.services import flannel_files
from netlab.workload import containers

LAB = "uws"


def _swap_after(monkeypatch, module, name: str, folder: str, theirs, last: str = "") -> None:
    """``module.name`` (a check of the lab's folders) swaps ``folder`` for a symlink to ``theirs`` once it returned
    (once it checked a folder named ``last`` among its arguments, when given)."""
    real = getattr(module, name)

    def checked(*args, **kwargs):
        out = real(*args, **kwargs)
        if last in str(args) and not os.path.islink(folder):
            os.rename(folder, folder + ".was")
            os.symlink(str(theirs), folder)
        return out

    monkeypatch.setattr(module, name, checked)


def test_forget_runs_removes_nothing_in_a_logs_folder_swapped_after_its_check(state_root, tmp_path, monkeypatch):
    state_dir.lab_dir(LAB)
    logs = containers.log_dir(LAB)
    os.makedirs(logs, mode=0o700)
    for name in ("b.main.log", "b.main.previous.log"):
        with open(os.path.join(logs, name), "w") as fh:
            fh.write("netlab's\n")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "b.main.log").write_text("USER current\n")
    (theirs / "b.main.previous.log").write_text("USER previous\n")
    _swap_after(monkeypatch, lab_folder, "open_sub", logs, theirs)
    containers.forget_runs(LAB, "b", "main")
    assert sorted(os.listdir(theirs)) == ["b.main.log", "b.main.previous.log"]
    assert (theirs / "b.main.log").read_text() == "USER current\n"
    assert os.listdir(logs + ".was") == []  # netlab's own, in the folder it checked: removed


TOPO = """
name: uws
nodes: [{name: n1}, {name: n2}]
pods:
  - {name: a, node: n1}
"""


def test_flannel_remove_removes_nothing_in_a_folder_swapped_after_its_check(state_root, tmp_path, monkeypatch):
    lab = resolve(Topology.model_validate(yaml.safe_load(TOPO)))
    state_dir.lab_dir(lab.name)
    flannel_files.sync(lab)
    run = os.path.join(flannel_files.node_root(lab.name, "n2"), "run", "flannel")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "subnet.env").write_text("USER\n")
    _swap_after(monkeypatch, lab_writes, "problem", run, theirs, last="flannel")
    removed = flannel_files.remove(lab.name, "n2")
    assert (theirs / "subnet.env").read_text() == "USER\n"
    assert not any(p.startswith(run) for p in removed)
    assert os.path.isfile(os.path.join(run + ".was", "subnet.env"))  # left: the way to it is the user's now


def test_logs_of_a_lab_whose_logs_folder_is_a_users_say_they_are_not_kept(state_root, tmp_path, monkeypatch):
    """up wrote no log in a logs/ of a user's (the containers' output went to /dev/null): `netlab logs` says so in
    one line, exit as for a missing log (2), and never prints the user's file of the same name as the output."""
    import types

    from click.testing import CliRunner

    from helpers import two_node_topology
    from netlab import api
    from netlab.api.lab import Lab
    from netlab.cli import workload as cli_workload
    from netlab.cli.base import cli
    from netlab.errors import UsageError
    from netlab.model.load import parse_yaml

    model = resolve(Topology.model_validate(parse_yaml(two_node_topology(LAB, pods_per_node=1), "t.yaml").data))
    state_dir.lab_dir(LAB)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "fedora-1.main.log").write_text("USER'S OWN FILE\n")
    os.symlink(str(theirs), containers.log_dir(LAB))
    monkeypatch.setattr(Lab, "model", property(lambda self: model))
    monkeypatch.setattr(Lab, "state", lambda self: types.SimpleNamespace(extra={}))
    monkeypatch.setattr(cli_workload, "require_root", lambda: None)
    lab = Lab(LAB)
    monkeypatch.setattr(api.Lab, "attach", staticmethod(lambda name: lab))
    out = CliRunner().invoke(cli, ["logs", "--lab", LAB, "fedora-1"])
    assert "USER'S OWN FILE" not in out.output
    assert isinstance(out.exception, UsageError)
    assert str(out.exception) == (f"no log for fedora-1/main: {containers.log_dir(LAB)}: {lab_folder.A_SYMLINK}; "
                                  "the containers' logs are not kept (their output goes to /dev/null)")
    with pytest.raises(UsageError, match="not kept"):
        lab.logs("fedora-1")


def _server_logs(state_root, tmp_path):
    """A lab whose logs/ up checked (netlab's), then swapped for a symlink to a user's folder holding a log of the
    lab's names; the lab's echo server (its logs folder known by its control socket's)."""
    import threading
    import types

    from netlab.workload.echo import EchoLoop
    from netlab.workload.echoserver import EchoServer

    state_dir.lab_dir(LAB)
    logs = containers.log_dir(LAB)
    assert containers.logs_refused(LAB) is None  # up's check: netlab's own, made
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.rename(logs, logs + ".was")
    os.symlink(str(theirs), logs)
    server = EchoServer(EchoLoop(), logs)
    ready = threading.Event()
    ready.set()
    t = types.SimpleNamespace(ready=ready, error=None, socks=[], release=threading.Event(), tid=1, ticks=1,
                              spec={"log": containers.log_path(LAB, "b", "main"), "pod": "b", "ports": []})
    return server, theirs, t


def test_the_echo_server_writes_no_log_in_a_logs_folder_swapped_after_ups_check(state_root, tmp_path):
    server, theirs, t = _server_logs(state_root, tmp_path)
    (theirs / "b.main.log").write_text("USER\n")
    assert server._admit("b/main", t).startswith("R b/main")
    server.logs["b/main"].write("a request")
    server.logs["b/main"].flush()
    assert (theirs / "b.main.log").read_text() == "USER\n"
    assert sorted(os.listdir(theirs)) == ["b.main.log"]


def test_the_echo_server_cuts_no_log_in_a_logs_folder_swapped_after_ups_check(state_root, tmp_path, monkeypatch):
    from netlab.workload.echo_log import LOG_MAX

    server, theirs, _t = _server_logs(state_root, tmp_path)
    with open(theirs / "b.main.log", "wb") as fh:
        fh.truncate(LOG_MAX + 4096)  # past the limit: a log of netlab's would start over
    server.held_logs["b/main"] = containers.log_path(LAB, "b", "main")
    monkeypatch.setattr(server, "runs", lambda cid: True)
    server.keep_logs()
    assert os.path.getsize(theirs / "b.main.log") == LOG_MAX + 4096


def test_a_del_hands_host_local_netlabs_empty_folder_only_for_a_data_dir_in_the_users_cni_folder():
    from netlab.model.hostlocal import with_data_dir

    mine = {"type": "bridge", "ipam": {"type": "host-local", "dataDir": "/s/lab/cni/networks/n1"}}
    authors = {"type": "bridge", "ipam": {"type": "host-local", "dataDir": "/var/lib/x"}}
    beside = {"type": "bridge", "ipam": {"type": "host-local", "dataDir": "/s/lab/cni2"}}
    assert with_data_dir(mine, "/tmp/e", instead_of="/s/lab/cni")["ipam"]["dataDir"] == "/tmp/e"
    assert with_data_dir(authors, "/tmp/e", instead_of="/s/lab/cni") is authors
    assert with_data_dir(beside, "/tmp/e", instead_of="/s/lab/cni") is beside
