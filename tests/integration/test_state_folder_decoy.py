"""NETLAB_STATE_DIR naming other programs' folders, and a state folder below another user's (root; QA qs, 2 and 3).

With a state folder shaped like /var/lib, `list` offered `dpkg` as a lost lab, `down --lab dpkg` wrote a lock
into it, `down --force` emptied it, and `up` of a lab named as a folder there took it (and `down` deleted its
files). Below a folder `nobody` owns, netlab made and wrote its state folder, which nobody could swap. Now a folder
netlab did not make is never a lab's, `down` removes only netlab's own names, and every folder above the state
folder must be root's. The decoys are compared byte for byte (type, mode, owner, inode, content).
"""

from __future__ import annotations

import json
import os

import pytest

from helpers import lab_namespaces, netlab, unique_lab

pytestmark = pytest.mark.root
NOBODY = 65534


def snapshot(root) -> dict:
    out = {}
    for base, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            path = os.path.join(base, name)
            st = os.lstat(path)
            body = open(path, "rb").read() if os.path.isfile(path) and not os.path.islink(path) else None
            out[os.path.relpath(path, root)] = (st.st_mode, st.st_uid, st.st_ino, st.st_mtime_ns, body)
    return out


def topology(lab: str) -> str:
    return f"name: {lab}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1}}, {{name: b, node: n1}}]\n"


def take_down(lab: str, env: dict) -> None:
    """A lab a test made after all (without the fix, `up` took the folder): down, whatever its state says."""
    if lab_namespaces(lab):
        netlab("down", "--lab", lab, "--force", env=env, check=False)
    assert lab_namespaces(lab) == []


def one_line_exit_3(proc, *words: str) -> None:
    assert proc.returncode == 3 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc
    for word in words:
        assert word in proc.stderr, proc.stderr


def test_a_state_folder_of_other_programs_folders_loses_none_of_them(tmp_path):
    decoy = tmp_path / "decoy"  # root's, 0755, as /var/lib
    (decoy / "dpkg" / "info").mkdir(parents=True)
    (decoy / "dpkg" / "status").write_text("s\n")
    (decoy / "dpkg" / "info" / "a.list").write_text("x\n")
    (decoy / "dpkg" / "lock").write_text("l\n")
    (decoy / "ssl" / "certs").mkdir(parents=True)
    (decoy / "ssl" / "certs" / "a.pem").write_text("pem\n")
    taken = unique_lab("sz")  # a lab whose name is a folder there already
    (decoy / taken / "sub").mkdir(parents=True)
    (decoy / taken / "notes.txt").write_text("mine\n")
    (decoy / taken / "sub" / "keep").write_text("keep\n")
    os.chmod(decoy, 0o755)
    env = {"NETLAB_STATE_DIR": str(decoy)}
    before = snapshot(decoy)

    listed = netlab("list", env=env, check=False)
    assert listed.returncode == 0 and "dpkg" not in listed.stdout + listed.stderr and "lost" not in listed.stdout
    for lab in ("dpkg", "ssl", taken):
        one_line_exit_3(netlab("down", "--lab", lab, env=env, check=False), "is not a lab folder of netlab's")
        one_line_exit_3(netlab("down", "--lab", lab, "--force", env=env, check=False),
                        "is not a lab folder of netlab's")
    path = tmp_path / "t.yaml"
    path.write_text(topology(taken))
    try:
        one_line_exit_3(netlab("up", "-t", str(path), env=env, check=False), f"{decoy / taken} is not a lab folder")
    finally:
        take_down(taken, env)
    assert snapshot(decoy) == before

    lab = unique_lab("sz")  # a real lab in that state folder: its own folder, made and taken away by netlab
    path.write_text(topology(lab))
    try:
        netlab("up", "-t", str(path), env=env)
        folder = decoy / lab
        assert (folder / "netlab-lab").is_file() and oct(folder.stat().st_mode & 0o777) == "0o700"
        (folder / "mine.txt").write_text("mine\n")  # not netlab's: down leaves it, and says so
        down = netlab("down", "--lab", lab, env=env)
        assert f"{folder}/mine.txt: not netlab's; left alone" in down.stderr, down
        assert lab_namespaces(lab) == [] and sorted(os.listdir(folder)) == ["mine.txt"]
        assert lab not in netlab("list", env=env, check=False).stdout  # unmarked: no lab's now
    finally:
        take_down(lab, env)
    assert {k: v for k, v in snapshot(decoy).items() if not k.startswith(lab)} == before


def test_a_state_folder_below_a_folder_of_nobodys_is_refused_by_every_command_and_the_doctor(tmp_path):
    nob = tmp_path / "nob"
    nob.mkdir()
    os.chown(nob, NOBODY, NOBODY)
    env = {"NETLAB_STATE_DIR": str(nob / "state")}
    lab = unique_lab("sz")
    path = tmp_path / "t.yaml"
    path.write_text(topology(lab))
    said = f"{nob}, a folder above it, is owned by uid {NOBODY}, not root"
    try:
        one_line_exit_3(netlab("up", "-t", str(path), env=env, check=False), said)
    finally:
        take_down(lab, env)
    assert os.listdir(nob) == []
    (nob / "state").mkdir(mode=0o700)  # made by root, below nobody's folder: still refused
    one_line_exit_3(netlab("list", env=env, check=False), said)
    one_line_exit_3(netlab("down", "--lab", lab, env=env, check=False), said)
    assert os.listdir(nob / "state") == []
    doctor = netlab("doctor", env=env, check=False)
    assert doctor.returncode == 3 and said in doctor.stdout + doctor.stderr, doctor
    os.symlink(nob, tmp_path / "link")
    env = {"NETLAB_STATE_DIR": str(tmp_path / "link" / "state")}
    one_line_exit_3(netlab("list", env=env, check=False), f"{tmp_path}/link, a folder above it, is a symlink")


def test_root_0700_folders_with_a_lock_or_a_state_of_another_programs_are_no_earlier_releases_labs(tmp_path):
    """QA qs2 6: any root 0700 folder holding `lock` or `state.json` was taken for a lab of a release before the
    mark: `down` wrote its lock and the mark there, `down --force` deleted its state.json, logs/ and cni/."""
    decoy = tmp_path / "decoy"
    for rel, text in {"app/lock": "l\n", "app/logs/keep": "keep\n", "app/notes": "n\n", "app/cni/cache": "c\n",
                      "svc/state.json": '{"pid": 3}\n', "svc/logs/app.log": "log\n"}.items():
        (decoy / rel).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        (decoy / rel).write_text(text)
    os.chmod(decoy, 0o755)
    for lab in ("app", "svc"):
        os.chmod(decoy / lab, 0o700)
    env = {"NETLAB_STATE_DIR": str(decoy)}
    before = snapshot(decoy)
    listed = netlab("list", env=env, check=False)
    # The decoys are no labs of this folder (a lab of the machine's another folder may be listed "elsewhere": the
    # other pytest worker's, whose name may well hold "svc": their names are compared, not the text)
    named = {line.split()[0] for line in listed.stdout.splitlines()[1:] if line.strip()}
    assert listed.returncode == 0 and not named & {"app", "svc"}, listed
    assert not ({lab["lab"] for lab in json.loads(netlab("list", "-o", "json", env=env).stdout)} & {"app", "svc"})
    for lab in ("app", "svc"):
        for extra in ([], ["--force"]):
            one_line_exit_3(netlab("down", "--lab", lab, *extra, env=env, check=False),
                            f"{decoy / lab} is not a lab folder of netlab's")
        one_line_exit_3(netlab("status", "--lab", lab, env=env, check=False), "is not a lab folder of netlab's")
    assert snapshot(decoy) == before  # no lock written, no mark, nothing removed
