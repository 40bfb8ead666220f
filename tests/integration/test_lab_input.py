"""Nothing the user types becomes a path it should not be (issue 9, section 4): ``--lab`` values.

Every ``--lab`` value passes the lab-name check of a topology's ``name:``
before any file operation: exit 2, one line, nothing touched. The decoys are
directories and files this test makes (``/etc`` itself is only ever given to
the check, in tests/unit/test_state_names.py); a value that would reach them through
the state directory (absolute, ``..``, ``.``) must leave them as they were.
"""

from __future__ import annotations

import os
import uuid

import pytest

from helpers import netlab, write_topology

pytestmark = pytest.mark.root

# Paths name nothing that exists (a unique name): on a regressed netlab they would be deleted.
NOWHERE = f"tmp/ib-nowhere-{uuid.uuid4().hex[:8]}"
BAD = {
    "absolute": "/" + NOWHERE,
    "dotdot": "../../" + NOWHERE,
    "dot": ".",
    "long": "a" * 300,
    "empty": "",
    "newline": "demo\n",
    "upper": "Demo",
    "control": "de\x1bmo",
}

# Every command that takes --lab, with the arguments it needs besides it.
COMMANDS = {
    "down": ["down"],
    "status": ["status"],
    "probe": ["probe"],
    "exec": ["exec", "--lab", None, "p", "--", "true"],
    "logs": ["logs", "--lab", None, "p"],
    "trace": ["trace", "--lab", None, "a", "b"],
    "capture": ["capture", "--lab", None, "a:eth0"],
    "inspect": ["inspect", "--lab", None, "a"],
    "graph": ["graph"],
    "break": ["break", "ip-forward-off"],
    "quiz": ["quiz"],
}


def argv(command: str, value: str) -> list[str]:
    args = list(COMMANDS[command])
    if None in args:
        args[args.index(None)] = value
        return args
    return args + ["--lab", value]


def assert_refused(proc, value: str) -> None:
    assert proc.returncode == 2, (value, proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("netlab: --lab "), lines[0]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("value", list(BAD.values()), ids=list(BAD))
def test_down_refuses_a_bad_lab_value(value):
    assert_refused(netlab(*argv("down", value), check=False), value)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_refuses_a_path_as_lab(command):
    for value in (BAD["dotdot"], BAD["long"], BAD["empty"]):
        assert_refused(netlab(*argv(command, value), check=False), value)


def test_down_with_a_path_as_lab_leaves_the_decoy(tmp_path):
    """Today ``down --lab /tmp/x`` deletes /tmp/x: the decoy must survive every spelling."""
    state = tmp_path / "state"
    decoy = f"/tmp/ib-decoy-{uuid.uuid4().hex[:8]}"
    os.mkdir(decoy)
    with open(os.path.join(decoy, "keep"), "w") as fh:
        fh.write("keep me\n")
    # A lab of someone else in the same state directory: `--lab .` must not reach it either.
    other = state / "other"
    other.mkdir(parents=True, mode=0o700)
    os.chmod(state, 0o700)
    (other / "state.json").write_text("{}")
    rel = os.path.relpath(decoy, str(state))
    try:
        for value in (decoy, rel, rel + "/", ".", "other/..", decoy + "\n"):
            proc = netlab("down", "--lab", value, check=False, env={"NETLAB_STATE_DIR": str(state)})
            assert_refused(proc, value)
            assert os.path.isfile(os.path.join(decoy, "keep")), f"--lab {value!r} deleted the decoy"
            assert (other / "state.json").is_file(), f"--lab {value!r} deleted another lab's state"
    finally:
        for name in os.listdir(decoy):
            os.unlink(os.path.join(decoy, name))
        os.rmdir(decoy)


def test_lab_and_topology_together_are_refused_by_every_command(tmp_path):
    path = write_topology(tmp_path, "name: ibx\nnodes: [{name: a}]\n")
    for command in ("down", "status", "probe", "graph"):
        proc = netlab(command, "--lab", "ibx", "-t", path, check=False)
        assert proc.returncode == 2, (command, proc.stderr)
        assert "not both" in proc.stderr and "Traceback" not in proc.stderr
