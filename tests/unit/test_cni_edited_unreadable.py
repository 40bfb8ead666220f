"""A conflist edited in place into one that cannot be read (not JSON, NaN, deleted) while its pods run (QA q17 #5):
stale() found no pod attached with another config (the file gives none), so `status` said "all as planned" (exit 0)
and `up --watch` nothing, while `up --lab` refused the lab at preflight. status says it on one drift line, in
validate's words (network.cni.conflist: FILE: the problem) with the repair (fix the file; once it is valid, `up -t
FILE --reconfigure`), and the watcher says it once, as it does for a valid edit. The real plugins:
tests/integration/test_cni_edited_live.py."""

from __future__ import annotations

import os

import pytest

from netlab.api import watch_repair
from netlab.api.watch import Watcher
from netlab.cni import lifecycle
from netlab.feature import ModuleFeature
from netlab.lab import status as lab_status
from netlab.errors import TopologyError, netlab_command
from netlab.model.load import load_topology
from netlab.realize.lab_lock import lab_lock_stamp
from netlab.realize.state import load_state
from netlab.workload import reconfigure as reconfigure_mod
from test_cni_edited import up, world  # noqa: F401 - the fixture: lab fked up, its conflist edited since


def reconfigure() -> str:
    """The lab came from no file (status names FILE alike); under the test's state folder (errors.netlab_command)."""
    return netlab_command("up --lab fked --reconfigure")  # no file: the lab by name


BREAKS = {
    "not JSON": lambda path: open(path, "w").write('{"cniVersion": "1.0.0",'),
    "NaN": lambda path: open(path, "w").write('{"cniVersion": "1.0.0", "name": "net", "plugins": [{"type": "chain", '
                                              '"mtu": NaN}]}'),
    "deleted": os.unlink,
}


def validate_words(path: str) -> str:
    """What `netlab validate` (model/load.py) says of the lab's file t.yaml beside the conflist: its field and the
    problem, without the file:line in front."""
    with pytest.raises(TopologyError) as exc:
        load_topology(os.path.join(os.path.dirname(path), "t.yaml"))
    [problem] = exc.value.problems
    return f"{problem.field}: {problem.message}"


def line(path: str) -> str:
    if not os.path.exists(path):  # deleted (or moved), not edited: put back, or the topology pointed at it (QA q19)
        return (f"cni: {validate_words(path)}; pods a, b were attached with it before it was deleted (or moved) "
                f"(their CHECK runs with the config they were attached with) and up refuses the lab until it can be "
                f"read: put the file back, or point the topology's network.cni.conflist at its new path; once it "
                f"can be read, `{reconfigure()}` re-attaches them with it")
    return (f"cni: {validate_words(path)}; pods a, b were attached with it before it was edited (their CHECK runs "
            f"with the config they were attached with) and up refuses the lab until it can be read: fix the file "
            f"(or put the old config back); once it is valid, `{reconfigure()}` re-attaches them with it")


def footer(drift: list[str]) -> str:
    """What `status` prints below its drift lines (cli/status_text.py) with the repair it names."""
    from click.testing import CliRunner

    from netlab.cli.status_text import _repair_lines

    with CliRunner().isolation() as (out, _err, _):
        _repair_lines(reconfigure(), tuple(drift), ())
    return out.getvalue().decode()


@pytest.mark.parametrize("breaks", list(BREAKS))
def test_status_says_the_conflist_cannot_be_read_as_drift_whose_repair_is_reconfigure(world, breaks):  # noqa: F811
    lab, k, plugins, path = world
    BREAKS[breaks](path)
    result = lab_status.status(load_state(lab.name), k, [ModuleFeature(lifecycle)])
    assert result.drift == [line(path)]
    assert not result.ok and result.reconfigure  # exit 1, its repair `up -t FILE --reconfigure`
    assert reconfigure_mod.reconfigures(load_state(lab.name))  # what other commands name as the lab's repair


@pytest.mark.parametrize("breaks", list(BREAKS))
def test_status_footer_says_the_file_is_fixed_before_the_reconfigure_it_names(world, breaks):  # noqa: F811
    """QA q19: the footer said "run `up -t FILE --reconfigure` to repair", which exits 2 until the file can be read
    (the drift line beside it said so)."""
    lab, k, plugins, path = world
    BREAKS[breaks](path)
    said = footer(lab_status.status(load_state(lab.name), k, [ModuleFeature(lifecycle)]).drift)
    assert said == f"fix the conflist first (the cni: line says how), then run `{reconfigure()}` to repair\n"


def test_status_footer_of_a_valid_edit_is_the_reconfigure_alone(world):  # noqa: F811
    lab, k, plugins, path = world
    assert footer(lab_status.status(load_state(lab.name), k, [ModuleFeature(lifecycle)]).drift) == \
        f"run `{reconfigure()}` to repair\n"


def test_the_deleted_file_is_named_as_validate_names_it(world):  # noqa: F811
    lab, k, plugins, path = world
    os.unlink(path)
    [said] = lab_status.status(load_state(lab.name), k, [ModuleFeature(lifecycle)]).drift
    assert said.startswith(f"cni: network.cni.conflist: {path}: no such file; pods a, b were attached with it "
                           f"before it was deleted (or moved)")  # not "edited" (QA q19)


@pytest.mark.parametrize("breaks", list(BREAKS))
def test_the_watcher_says_it_once_that_the_file_cannot_be_read(world, monkeypatch, breaks):  # noqa: F811
    """Its sentence was the one for a valid edit ("a plain up refuses a lab whose pods were attached with a config
    edited since; `up --reconfigure` re-attaches them"), which up refuses while the file cannot be read."""
    lab, k, plugins, path = world
    up(lab, k, reconfigure=True)  # every pod on the new config: nothing stale
    monkeypatch.setattr(watch_repair, "drift", lambda state: lab_status.status(
        state, k, [ModuleFeature(lifecycle)]).drift)
    monkeypatch.setattr(Watcher, "_held", lambda self, lab_, state_: ([], [], None))
    applied: list = []
    monkeypatch.setattr(Watcher, "_apply", lambda self, work: applied.append(work))
    lines: list[str] = []
    w = Watcher(None, lab.name, lines.append)
    w.lock_stamp = lab_lock_stamp(lab.name)
    w._converge(load_state(lab.name), [])
    assert lines == [] and applied == []
    BREAKS[breaks](path)
    for _ in range(3):  # three resyncs
        assert w._converge(load_state(lab.name), []) is None
    assert applied == [] and w.retry_at is None
    assert lines == [
        f"saw: a periodic check ({line(path)}); did: nothing: a plain up refuses the lab while its conflist cannot "
        f"be read (its pods run on with the config they were attached with); fix the file (or put the old config "
        f"back); once it is valid, `{reconfigure()}` re-attaches them (this watcher follows it); until then the "
        f"watcher repairs nothing of the lab"]
