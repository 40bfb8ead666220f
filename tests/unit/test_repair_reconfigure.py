"""The repair every command names for a lab whose conflist was edited in place while its pods run (cni/edited.py:
pods attached with the old config): `status` named `up -t FILE --reconfigure` (QA qr3 1), while trace's fix line,
break's and quiz's refusals, exec's, logs' and inspect's hints and probe's bridge hint named the plain `up`, which
refuses such a lab (exit 2). They name realize.state.repair_command / repair_up with the CNI's check
(cni.edited.repair_command, repair_up): realize cannot ask the CNI itself."""

from __future__ import annotations

import pytest

from netlab.cli.trace import nftables_lines
from netlab.cni import edited
from netlab.errors import EnvironmentNotReady
from netlab.probe.bypass import hints
from netlab.realize import state as state_mod
from test_cni_edited import up, world  # noqa: F401 - the fixture: lab fked up, its conflist edited since

RECONFIGURE = "sudo netlab up -t FILE --reconfigure"  # the lab came from no file (status names FILE alike)


def test_the_repair_of_a_lab_with_pods_of_an_edited_conflist_is_up_reconfigure(world):  # noqa: F811
    lab, k, plugins, path = world
    st = state_mod.load_state(lab.name)
    assert state_mod.repair_up(st) == f"sudo netlab up --lab {lab.name}"  # realize alone cannot tell
    assert edited.reconfigures(st)
    assert edited.repair_up(st) == RECONFIGURE
    assert edited.repair_command(lab.name) == RECONFIGURE
    # the commands' lines: probe's bridge hint, inspect's nftables counter hint
    node = lab.nodes[0]
    line, = hints(lab, [("a", "b", "icmp", None)], {node.netns})
    assert f"or {RECONFIGURE}; see:" in line
    table = {"ip kube-proxy": {"listing": ["table ip kube-proxy {"], "chains": [{"name": "services", "rules": [
        {"packets": None}]}]}}
    assert f"`{RECONFIGURE}` takes it out" in nftables_lines(table, node.netns, lab.name)[-1]
    up(lab, k, reconfigure=True)  # re-attached: the plain repair again
    assert not edited.reconfigures(state_mod.load_state(lab.name))
    assert edited.repair_command(lab.name) == f"sudo netlab up --lab {lab.name}"


def test_logs_hint_names_up_reconfigure(world, tmp_path):  # noqa: F811
    from netlab.api.exec import open_log

    lab, k, plugins, path = world
    folder = tmp_path / "a-log"
    folder.mkdir()  # a directory at the log's name: `up` would start the container once it is moved away
    with pytest.raises(EnvironmentNotReady) as exc:
        open_log(str(folder), "a", "main", lab.name)
    assert f"then `{RECONFIGURE}` starts it" in str(exc.value)


def test_a_lab_without_cni_pods_is_not_resolved_for_it(world, monkeypatch):  # noqa: F811
    lab, k, plugins, path = world
    st = state_mod.load_state(lab.name)
    st.extra.pop("cni")
    monkeypatch.setattr(state_mod.LabState, "resolved", lambda self: pytest.fail("resolved"))
    assert not edited.reconfigures(st) and "cni" not in st.extra  # read, nothing added to it


def test_trace_break_and_exec_name_the_cnis_repair():
    """trace's fix lines (trace.run), break's refusals and failures (breaks.run) and exec's log hints (api.exec)
    name the repair through the module's own name: it is the one that asks the CNI."""
    from netlab.api import exec as api_exec
    from netlab.breaks import run as break_run
    from netlab.trace import run as trace_run

    assert trace_run.repair_command is break_run.repair_command is api_exec.repair_command is edited.repair_command
