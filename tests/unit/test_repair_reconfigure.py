"""The repair every command names for a lab whose conflist was edited in place while its pods run (cni/edited.py:
pods attached with the old config): `status` named `up -t FILE --reconfigure` (QA qr3 1), while trace's fix line,
break's and quiz's refusals, exec's, logs' and inspect's hints and probe's bridge hint named the plain `up`, which
refuses such a lab (exit 2). They name realize.state.repair_command / repair_up with the CNI's check, as status
decides it (workload.reconfigure.repair_command, repair_up): realize cannot ask the CNI itself."""

from __future__ import annotations

import pytest

from netlab.cli.inspect_text import nftables_lines
from netlab.cni import edited
from netlab.workload import reconfigure as reconfigure_mod
from netlab.errors import EnvironmentNotReady, netlab_command
from netlab.probe.bypass import hints
from netlab.realize import state as state_mod
from fake_lab import machine_holds
from test_cni_edited import up, world  # noqa: F401 - the fixture: lab fked up, its conflist edited since


def reconfigure() -> str:
    """The lab came from no file (status names FILE alike); under the test's state folder (errors.netlab_command)."""
    return netlab_command("up --lab fked --reconfigure")  # no file: the lab by name


def test_the_repair_of_a_lab_with_pods_of_an_edited_conflist_is_up_reconfigure(world):  # noqa: F811
    lab, k, plugins, path = world
    st = state_mod.load_state(lab.name)
    assert state_mod.repair_up(st) == netlab_command(f"up --lab {lab.name}")  # realize alone cannot tell
    assert reconfigure_mod.reconfigures(st)
    assert reconfigure_mod.repair_up(st) == reconfigure()
    assert reconfigure_mod.repair_command(lab.name) == reconfigure()
    # the commands' lines: probe's bridge hint, inspect's nftables counter hint
    node = lab.nodes[0]
    line, = hints(lab, [("a", "b", "icmp", None)], {node.netns})
    assert f"or {reconfigure()}; see:" in line
    table = {"ip kube-proxy": {"listing": ["table ip kube-proxy {"], "chains": [{"name": "services", "rules": [
        {"packets": None}]}]}}
    assert f"`{reconfigure()}` takes it out" in nftables_lines(table, node.netns, lab.name)[-1]
    up(lab, k, reconfigure=True)  # re-attached: the plain repair again
    assert not reconfigure_mod.reconfigures(state_mod.load_state(lab.name))
    assert reconfigure_mod.repair_command(lab.name) == netlab_command(f"up --lab {lab.name}")


def test_logs_hint_names_up_reconfigure(world, tmp_path):  # noqa: F811
    from netlab.api.exec import open_log

    lab, k, plugins, path = world
    folder = tmp_path / "a-log"
    folder.mkdir()  # a directory at the log's name: `up` would start the container once it is moved away
    with pytest.raises(EnvironmentNotReady) as exc:
        open_log(str(folder), "a", "main", lab.name)
    assert f"then `{reconfigure()}` starts it" in str(exc.value)


def test_a_lab_without_cni_pods_is_not_resolved_for_it(world, monkeypatch):  # noqa: F811
    lab, k, plugins, path = world
    st = state_mod.load_state(lab.name)
    st.extra.pop("cni")
    monkeypatch.setattr(state_mod.LabState, "resolved", lambda self: pytest.fail("resolved"))
    assert not reconfigure_mod.reconfigures(st) and "cni" not in st.extra  # read, nothing added to it


def test_trace_break_and_exec_name_the_cnis_repair():
    """trace's fix lines (trace.run), break's refusals and failures (breaks.run) and exec's log hints (api.exec)
    name the repair through the module's own name: it is the one that asks the CNI."""
    from netlab.api import exec as api_exec
    from netlab.breaks import run as break_run
    from netlab.trace import run as trace_run

    assert trace_run.repair_command is break_run.repair_command is api_exec.repair_command is reconfigure_mod.repair_command


def test_a_deleted_namespace_of_such_a_lab_is_made_again_by_up_reconfigure(world, monkeypatch):  # noqa: F811
    """realize.netns_missing.netns_gone (realize.state's then) named the plain `up`, which refuses the lab: trace, exec and inspect raise the CNI's
    (workload.reconfigure.netns_gone), as status names the repair."""
    from netlab.api import exec as api_exec, lab_checks, lab_pods
    from netlab.cli import trace as cli_trace
    from netlab.errors import NetnsGone
    from netlab.trace import run as trace_run

    lab, k, plugins, path = world
    machine_holds(monkeypatch, k)  # its other namespaces are there: not a lab `gone`
    said = f"namespace fked-a was deleted while lab fked is up; `{reconfigure()}` makes it again"
    assert str(reconfigure_mod.lab_netns_gone("fked-a", lab.name)) == said
    assert str(reconfigure_mod.netns_gone(NetnsGone("fked-a", "/run/netns/fked-a"), lab.name)) == said
    assert trace_run.netns_gone is reconfigure_mod.netns_gone and trace_run.lab_netns_gone is reconfigure_mod.lab_netns_gone
    assert api_exec.lab_netns_gone is reconfigure_mod.lab_netns_gone
    for module in (lab_pods, lab_checks, cli_trace):  # imported where they raise it
        text = open(module.__file__).read()
        assert "netns_missing import lab_netns_gone" not in text and "netns_missing import netns_gone" not in text
    up(lab, k, reconfigure=True)
    assert str(reconfigure_mod.lab_netns_gone("fked-a", lab.name)).endswith(f"`{netlab_command('up --lab fked')}` makes it again")


def test_a_containers_drift_line_names_up_reconfigure(world, monkeypatch):  # noqa: F811
    """workload's container lines (a container exited, stopped, its command changed) named the plain `up`."""
    from netlab.workload import lifecycle as workload

    lab, k, plugins, path = world
    given = []
    # the repair as the lines would name it (worked out when a line names it: workload/drift.once)
    monkeypatch.setattr(workload.container_drift, "lines",
                        lambda lab_, pods, repair: given.append(workload.container_drift.once(repair)()) or [])
    monkeypatch.setattr(workload.dns_records, "drift", lambda lab_, pods: [])
    workload.drift(lab, state_mod.load_state(lab.name))
    up(lab, k, reconfigure=True)
    workload.drift(lab, state_mod.load_state(lab.name))
    assert given == [reconfigure(), netlab_command(f"up --lab {lab.name}")]



def test_the_drift_line_of_one_pod_says_its_and_it(world):  # noqa: F811
    """QA q18 4: "since pod a was attached with it: their CHECK runs with the config they were attached with"."""
    lab, k, plugins, path = world
    state = state_mod.load_state(lab.name)
    one, two = (str(edited.drift_line(lab, state, names)) for names in (["a"], ["a", "b"]))
    assert one == (f"cni: conflist {path} changed since pod a was attached with it: its CHECK runs with the config it "
                   f"was attached with; `{reconfigure()}` re-attaches it with the new one"), one
    assert two == (f"cni: conflist {path} changed since pods a, b were attached with it: their CHECK runs with the "
                   f"config they were attached with; `{reconfigure()}` re-attaches them with the new one"), two


def test_the_drift_line_in_python_words_names_the_python_call_as_the_containers_line_does(world):  # noqa: F811
    """QA q17 3b: one Lab.status() said the cni line's repair as `sudo netlab up -t FILE --reconfigure` while the
    container line beside it said `Lab.up('FILE', reconfigure=True)`: both go through errors.repair_way."""
    from netlab.errors import python_words, repair_way

    lab, k, plugins, path = world
    state = state_mod.load_state(lab.name)
    with python_words():
        said = str(edited.drift_line(lab, state, ["a"]))
        way = repair_way(lab.name, reconfigure())
    assert way == "Lab('fked').repair(reconfigure=True)"  # no file: the lab by name (QA 61 3)
    assert f"; `{way}` re-attaches it with the new one" in said and "sudo" not in said, said


def test_a_lab_whose_pods_of_the_old_config_have_all_terminated_is_repaired_by_a_plain_up_in_every_line(
        world, monkeypatch):  # noqa: F811
    """A terminal pod whose stopped sandbox's DEL has not run is DELed by a plain `up` with the config its ADD used
    (cni/edited._stale leaves it out): `status` named that plain `up`, while trace's, exec's, probe's, break's lines
    (their repair from the lab read without its terminal pods) named `up --reconfigure`. Both are one rule now,
    status's, on the lab as `up` serves it (workload/terminal.served)."""
    from netlab.cni import lifecycle
    from netlab.feature import ModuleFeature
    from netlab.lab import status as lab_status
    from netlab.workload import terminal

    lab, k, plugins, path = world
    monkeypatch.setattr(terminal, "terminal_pods", lambda lab_, state: frozenset({"a", "b"}))  # both exited for good
    st = state_mod.load_state(lab.name)
    done = lab_status.status(st, k, [ModuleFeature(lifecycle)])
    assert not done.reconfigure and not any("changed since" in line for line in done.drift), done.drift
    plain = netlab_command(f"up --lab {lab.name}")
    assert not reconfigure_mod.reconfigures(st)
    assert reconfigure_mod.repair_up(st) == reconfigure_mod.repair_command(lab.name) == plain
    monkeypatch.setattr(terminal, "terminal_pods", lambda lab_, state: frozenset({"a"}))  # b runs on, old config
    assert lab_status.status(st, k, [ModuleFeature(lifecycle)]).reconfigure
    assert reconfigure_mod.repair_command(lab.name) == reconfigure()
