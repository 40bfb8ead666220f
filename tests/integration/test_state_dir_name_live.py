"""A state folder's name (NETLAB_STATE_DIR) that is not UTF-8 text (QA hostenv57 2): the doctor said ok, then `up`,
`list`, `status` and `down` were a traceback (UnicodeEncodeError, the lab's tag hashed the name as text). It is
refused in one line by the doctor and every command, nothing made; a name of UTF-8 text that is not ASCII works."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

from helpers import NETLAB, write_topology

pytestmark = pytest.mark.root


def _run(state: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*NETLAB, *args], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, NETLAB_STATE_DIR=state))


def _topology(lab: str) -> str:
    return f"name: {lab}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1}}]\n"


def test_a_state_folder_named_with_a_byte_that_is_not_utf8_is_refused_by_all(tmp_path):
    state = os.fsdecode(f"/tmp/hestate{uuid.uuid4().hex[:6]}-".encode() + b"\xff")
    lab = f"he{uuid.uuid4().hex[:7]}"
    path = write_topology(tmp_path, _topology(lab), "topo.yaml")
    doctor = _run(state, "doctor")
    assert doctor.returncode == 3 and "Traceback" not in doctor.stderr, doctor.stdout + doctor.stderr
    assert f'FAIL  host state directory: "{state[:-1]}\\udcff": its name holds a byte that is not UTF-8 text ' \
           "(0xff)" in doctor.stdout, doctor.stdout
    for args in (("up", "-t", path), ("list",), ("status", "--lab", lab), ("down", "--lab", lab),
                 ("logs", "--lab", lab, "a")):
        proc = _run(state, *args)
        assert proc.returncode == 3 and proc.stderr.count("\n") == 1, (args, proc.stdout, proc.stderr)
        assert proc.stderr.startswith(f'netlab: cannot use "{state[:-1]}\\udcff": its name holds a byte that is '
                                      "not UTF-8 text (0xff)"), proc.stderr
    assert not os.path.lexists(state)
    assert not [n for n in os.listdir("/run/netns") if n.startswith(f"{lab}-")]


def test_a_state_folder_named_in_utf8_that_is_not_ascii_holds_labs(tmp_path):
    state = f"/tmp/hestate{uuid.uuid4().hex[:6]}-état-ß"
    lab = f"he{uuid.uuid4().hex[:7]}"
    path = write_topology(tmp_path, _topology(lab), "topo.yaml")
    try:
        up = _run(state, "doctor")
        assert "FAIL  host state directory" not in up.stdout, up.stdout
        up = _run(state, "up", "-t", path)
        assert up.returncode == 0, up.stdout + up.stderr
        listed = _run(state, "list")
        assert listed.returncode == 0 and lab in listed.stdout, listed.stdout + listed.stderr
        status = _run(state, "status", "--lab", lab)
        assert status.returncode == 0 and "all as planned" in status.stdout, status.stdout + status.stderr
    finally:
        down = _run(state, "down", "--lab", lab)
        assert down.returncode == 0 and f"lab {lab} is down" in down.stdout, down.stdout + down.stderr
        assert not [n for n in os.listdir("/run/netns") if n.startswith(f"{lab}-")]
        shutil.rmtree(state, ignore_errors=True)


def _deep(top: str, size: int) -> str:
    """A state folder path of ``size`` bytes under ``top``, every folder above it made (root's, 0755)."""
    os.makedirs(top, mode=0o755)
    path = top
    while size - len(path) > 201:
        path = os.path.join(path, "d" * 200)
    os.makedirs(path, mode=0o755, exist_ok=True)
    return os.path.join(path, "s" * (size - len(path) - 1))


def test_a_state_folder_too_long_for_what_netlab_makes_in_it_is_said_and_refused(tmp_path):
    top = f"/tmp/helong{uuid.uuid4().hex[:6]}"
    lab = f"he{uuid.uuid4().hex[:7]}"
    path = write_topology(tmp_path, _topology(lab), "topo.yaml")
    try:
        state = _deep(top, 4056)
        doctor = _run(state, "doctor")
        assert doctor.returncode == 3, doctor.stdout + doctor.stderr
        assert f"FAIL  host state directory: {state}: its name is 4056 bytes long, and netlab makes paths up to 206 " \
               "bytes longer below it" in doctor.stdout, doctor.stdout
        up = _run(state, "up", "-t", path)
        assert up.returncode == 3 and up.stderr.count("\n") == 1 and "its name is 4056 bytes long" in up.stderr, \
            up.stdout + up.stderr
        assert not os.path.lexists(state)
        assert not [n for n in os.listdir("/run/netns") if n.startswith(f"{lab}-")]
        longest = _deep(f"{top}/ok", 3889)  # the longest that holds them: no complaint
        doctor = _run(longest, "doctor")
        assert "host state directory" in doctor.stdout and "FAIL  host state directory" not in doctor.stdout
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.mark.parametrize("kind", ["newline", "run-netns", "in-run-netns", "in-etc-netns", "var-run-netns"])
def test_a_state_folder_that_breaks_a_line_or_is_the_systems_netns_folder_is_refused_by_all(tmp_path, kind):
    """A newline in NETLAB_STATE_DIR was printed as is, a message broken in two lines; /run/netns (or /etc/netns,
    or a folder in them) passed the doctor, and `up` made /run/netns/LAB, a namespace to `ip netns list`
    (QA rb61 4, 5). Refused as a name that is not UTF-8 is, nothing made."""
    lab = f"rb{uuid.uuid4().hex[:7]}"
    state, shown, why = {
        "newline": (f"/tmp/rbstate{lab}\nx", f'"/tmp/rbstate{lab}\\nx"', "its name holds a control character (\\n)"),
        "run-netns": ("/run/netns", "/run/netns", "it is /run/netns, the system's folder of named network namespaces"),
        "in-run-netns": (f"/run/netns/{lab}", f"/run/netns/{lab}", "it is /run/netns or a folder in it"),
        "in-etc-netns": (f"/etc/netns/{lab}", f"/etc/netns/{lab}", "it is /etc/netns or a folder in it"),
        "var-run-netns": (f"/var/run/netns/{lab}", f"/var/run/netns/{lab}", "it is /run/netns or a folder in it"),
    }[kind]
    path = write_topology(tmp_path, _topology(lab), "topo.yaml")
    doctor = _run(state, "doctor")
    assert doctor.returncode == 3, doctor.stdout + doctor.stderr
    assert f"FAIL  host state directory: {shown}: {why}" in doctor.stdout, doctor.stdout
    for args in (("up", "-t", path), ("list",), ("down", "--lab", lab)):
        proc = _run(state, *args)
        assert proc.returncode == 3 and proc.stderr.count("\n") == 1, (args, proc.stdout, proc.stderr)
        assert proc.stderr.startswith(f"netlab: cannot use {shown}: {why}"), proc.stderr
    assert not os.path.lexists(f"/run/netns/{lab}") and not os.path.lexists(f"/etc/netns/{lab}")
    assert not os.path.lexists(f"/tmp/rbstate{lab}\nx")
    assert not [n for n in os.listdir("/run/netns") if n.startswith(f"{lab}-")]
