"""Every line that says which `up` repairs a running lab names realize.state.repair_up's: `up -t FILE` for a lab
as its file made it, `up --lab NAME` after `netlab impair`'s run-time changes (the file would put its own
impairments back) and for a lab with no file. `status`'s containers lines and kube-proxy health-check lines,
`inspect`'s nftables counter hint, a pod's log that is not a file, and a namespace deleted under a running lab all
said `sudo netlab up --lab NAME`, whatever the lab; `status`'s last line said "run `X` again to repair", for an X
the user may never have run. No root: the state is saved in the test's state directory, the kernel's answers are
stubs (test_trace_fix_is_status_repair.py, test_repair_after_impair.py).
"""

from __future__ import annotations

import os

import types

import pytest

from netlab.api.exec import LogWriter, open_log
from netlab.cli.inspect_text import nftables_lines
from netlab.errors import EnvironmentNotReady, NetnsGone, UsageError, netlab_command
from netlab.realize.netns_missing import netns_gone
from netlab.realize.state import load_state
from netlab.workload import drift as container_drift, health, lifecycle
from test_inspect_nftables import view
from test_repair_after_impair import impaired_at_run_time
from test_trace_fix_is_status_repair import LAB, saved_lab

CASES = pytest.mark.parametrize("from_file, impaired", [(True, False), (True, True), (False, False)],
                                ids=["file", "file-impaired", "dict"])


def repair_of(tmp_path, from_file: bool, impaired: bool) -> str:
    """Lab svc saved as up (from a file or a dict, impaired at run time or not); the repair `status` says."""
    saved_lab(tmp_path, from_file, nft=False)
    if impaired:
        impaired_at_run_time({"rate": "5mbit"})
    if from_file and not impaired:
        return netlab_command(f"up -t '{tmp_path}/my svc.yaml'")
    return netlab_command(f"up --lab {LAB}")


@CASES
def test_status_containers_and_health_lines_name_the_labs_repair(state_root, tmp_path, monkeypatch, from_file,
                                                                  impaired):
    repair = repair_of(tmp_path, from_file, impaired)
    state = load_state(LAB)
    assert state is not None
    assert container_and_health_lines(monkeypatch, state) == lines_naming(state, repair)


def test_status_t_of_another_file_names_that_files_up_in_every_line(state_root, tmp_path, monkeypatch):
    """`status -t nft2.yaml` of a lab up from another file: its last line said `up -t nft2.yaml --reconfigure`,
    and its containers and health-check lines `up -t nft.yaml`, which puts back the lab the user means to
    replace. Every line names the one `up` that applies the file given."""
    from netlab import api
    from netlab.api import lab as lab_mod

    saved_lab(tmp_path, True, nft=False)
    other = tmp_path / "svc2.yaml"
    other.write_text((tmp_path / "my svc.yaml").read_text().replace("\nservices:\n", "\n  - {name: extra, node: "
                                                                    "node-2}\nservices:\n", 1))
    state, _ = api.Lab.attach(LAB)._against(str(other))
    assert "extra" in [p.name for p in state.resolved().pods]
    repair = netlab_command(f"up -t {other} --reconfigure")
    assert container_and_health_lines(monkeypatch, state) == lines_naming(state, repair)
    differs = types.SimpleNamespace(ok=False, lab=LAB, objects=1, drift=["a rule is missing"], details=[],
                                    warnings=[], reconfigure=False)
    monkeypatch.setattr(lab_mod.lifecycle, "status", lambda state, kernel: differs)
    assert lab_mod.internal_status(api.Lab.attach(LAB), str(other)).repair == repair  # status's last line
    assert api.Lab.attach(LAB)._against(None)[0].repair is None  # the lab's own: repair_up of its state


def container_and_health_lines(monkeypatch, state) -> list[str]:
    """status's lines of the lab's containers and health checks, for the plan of ``state`` (its pods' containers:
    web-1's stopped, web-2's on an old command, client's in a deleted namespace; one check not served, one
    answering otherwise)."""
    lab = state.resolved()
    web1, web2, client = (next(p for p in lab.pods if p.name == n) for n in ("web-1", "web-2", "client"))
    argv = {p.name: lifecycle.container_argv(p, p.containers[0]) for p in lab.pods}
    argv[web2.name] = ["an", "old", "command"]
    state.extra[lifecycle.RECORD] = {
        "version": lifecycle.RECORD_VERSION,
        "pods": {p.name: {"containers": {p.containers[0].name: {"pid": 4242, "start": 1, "argv": argv[p.name]}}}
                 for p in lab.pods}}
    monkeypatch.setattr(container_drift, "uts_hostnames", lambda paths: {p.name: p.hostname for p in lab.pods})
    monkeypatch.setattr(container_drift, "task_of", lambda crec, netns: "T" if netns == web1.netns else
                        None if netns == client.netns else "S")  # web-1 stopped; client's container gone
    monkeypatch.setattr(container_drift, "in_old_sandbox", lambda crec, uts, netns: netns == client.netns)
    monkeypatch.setattr(container_drift.node_uts, "drift", lambda lab: [])
    monkeypatch.setattr(lifecycle.dns_records, "drift", lambda lab, pods: [])
    checks = [types.SimpleNamespace(key=k, port=31000, status=200, local=1, what=lambda k=k: f"check {k}")
              for k in ("a", "b")]
    monkeypatch.setattr(health, "_checks", lambda lab: checks)
    monkeypatch.setattr(health, "_server", lambda name: None)
    monkeypatch.setattr(health.launch, "ask", lambda *a: types.SimpleNamespace(health={"b": (31000, 503, 0)}))
    return lifecycle.drift(lab, state)


def lines_naming(state, repair: str) -> list[str]:
    web1, web2, client = (next(p for p in state.resolved().pods if p.name == n) for n in ("web-1", "web-2", "client"))
    return [
        f"containers: pod web-1 container {web1.containers[0].name} is stopped (pid 4242, by SIGSTOP or SIGTSTP); "
        f"`{repair}` restarts it",
        f"containers: pod web-2 container {web2.containers[0].name} runs another command than planned; `{repair}` restarts it",
        f"containers: pod client container {client.containers[0].name} runs on in the pod's old, deleted network "
        f"namespace (pid 4242); `{repair}` stops it and starts it in the pod's new one",
        f"kube-proxy: check a is not served; `{repair}` serves it",
        f"kube-proxy: check b answers 503 with localEndpoints 0 on port 31000, want 200 with 1; `{repair}` sets it",
    ]


@CASES
def test_inspects_counter_hint_names_the_up_that_takes_the_counter_out(state_root, tmp_path, from_file, impaired):
    repair = repair_of(tmp_path, from_file, impaired)
    line = nftables_lines({"ip kube-proxy": view(counter=False)}, f"{LAB}-node-1", LAB)[-1]
    assert line.endswith(f" counter, and `{repair}` takes it out)"), line


@CASES
def test_a_log_that_is_not_a_file_names_the_labs_repair(state_root, tmp_path, from_file, impaired):
    repair = repair_of(tmp_path, from_file, impaired)
    path = tmp_path / "main.log"
    os.mkfifo(path)  # something else than netlab's log file stands where it writes it
    with pytest.raises(EnvironmentNotReady) as err:  # not running: its next start, which the repair makes
        open_log(str(path), "web-1", "main", LAB, writer=LogWriter(None, True))
    assert str(err.value) == (f"the log of web-1/main is not a file ({path} was replaced); the container's next "
                              f"start writes a new one (`{repair}` starts it again as its pod's restartPolicy says)")
    path.unlink()
    path.mkdir()  # a directory: someone's, which no start moves (test_logs_dir.py): the repair once it is moved
    with pytest.raises(EnvironmentNotReady) as err:
        open_log(str(path), "web-1", "main", LAB, writer=LogWriter(None, True))
    assert str(err.value) == (f"the log of web-1/main, {path}, is a directory, not a file: the container cannot "
                              f"start until it is moved away (netlab leaves it as it is); then `{repair}` starts it")


@CASES
def test_a_namespace_deleted_under_a_running_lab_names_the_labs_repair(state_root, tmp_path, from_file, impaired):
    from netlab.realize.netns_missing import lab_netns_gone  # the one constructor of the five raisers (trace, exec, ...)

    repair = repair_of(tmp_path, from_file, impaired)
    err = lab_netns_gone(f"{LAB}-web-1", LAB)
    assert isinstance(err, NetnsGone) and isinstance(err, UsageError) and err.exit_code == 2
    assert (err.netns, err.filename, err.lab, err.lab_up) == (f"{LAB}-web-1", f"/run/netns/{LAB}-web-1", LAB, True)
    assert str(err) == f"namespace {LAB}-web-1 was deleted while lab {LAB} is up; `{repair}` makes it again"
    # one met while entering it (kernel.netns.entered), said the same
    met = netns_gone(NetnsGone(f"{LAB}-web-1", f"/run/netns/{LAB}-web-1"), LAB)
    assert str(met) == str(err)


def test_a_namespace_of_a_lab_that_is_not_up_names_its_status(state_root):
    from netlab.realize.netns_missing import lab_netns_gone

    err = lab_netns_gone("qz9-a", "qz9")
    assert (err.lab, err.lab_up, err.repair) == ("qz9", False, None)
    assert str(err) == f"namespace qz9-a does not exist; is the lab up? (`{netlab_command('status --lab qz9')}`)"
