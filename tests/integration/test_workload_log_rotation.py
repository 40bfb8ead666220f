"""A command container's log that starts over while the container writes without pause (QA q52 2): no line lost,
none before the line that says it started over, on ext4 (the file's oldest blocks collapsed away) and on tmpfs
(/run on most machines: punched into a hole). The container writes through its own O_APPEND descriptor; the
server's start-over (``echo_log.start_over_if_full``) is called here, at a cap made small (1 MiB), as the lab's
server calls it past 10 MiB. Before, the lines written between its last read and its truncation were lost, and
those written between the truncation and its own write landed before its line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from helpers import log_start, read_log, wait_for, write_topology
from private_mounts import PrivateMounts
from watching import running

pytestmark = pytest.mark.root

PY = sys.executable
# Numbered lines of 100 bytes, one write each, without pause: the file never stands still.
WRITER = ("import os\ni = 0\nwhile True:\n    i += 1\n    os.write(1, b'%09d %s\\n' % (i, b'x' * 89))\n")


@pytest.fixture(params=["ext4", "tmpfs"])
def state_fs(request, tmp_path, labs):
    """NETLAB_STATE_DIR on a file system of its own, of the kind named: an ext4 image on a loop device (sparse,
    256 MiB) or a tmpfs, mounted in the test's own mount namespace (private_mounts.py: a killed test leaves no
    mount), where the CLI runs; the test reaches its files through ``ns.seen``."""
    mnt = tmp_path / "fs"
    mnt.mkdir(mode=0o700)
    ns = PrivateMounts(str(tmp_path))
    if request.param == "ext4":
        image = tmp_path / "ext4.img"
        subprocess.run(["truncate", "-s", "256M", str(image)], check=True)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
        # -o loop: the loop device is the mount's (autoclear), let go with it, even when the unmount is lazy
        mounted = subprocess.run(ns.argv(["mount", "-o", "loop", str(image), str(mnt)]), capture_output=True,
                                 text=True)
        if mounted.returncode != 0 and not os.path.exists("/dev/loop-control"):
            ns.close()
            pytest.skip(f"no loop devices on this machine for an ext4 image: {mounted.stderr.strip()}")
        assert mounted.returncode == 0, mounted.stderr
    else:
        ns.run("mount", "-t", "tmpfs", "-o", "size=256m,mode=0700", "tmpfs", str(mnt))
    state = mnt / "state"
    os.mkdir(ns.seen(str(state)), mode=0o700)
    env = {"NETLAB_STATE_DIR": str(state)}
    try:
        yield request.param, env, ns
    finally:
        try:
            for lab in labs.names:
                ns.netlab("down", "--lab", lab, check=False, env=env)
        finally:
            try:
                if subprocess.run(ns.argv(["umount", str(mnt)])).returncode != 0:
                    ns.run("umount", "--lazy", str(mnt))  # a process still holds it: detached
            finally:
                ns.close()


def numbers(lines: list[bytes]) -> list[int]:
    return [int(line.split(b" ", 1)[0]) for line in lines]


def test_a_log_started_over_under_a_writer_without_pause_loses_no_line_and_keeps_their_order(
        state_fs, labs, monkeypatch, tmp_path):
    from netlab.workload import echo_log

    kind, env, ns = state_fs
    monkeypatch.setattr(echo_log, "LOG_MAX", 2**20)
    lab = labs.name("lr")
    ns.netlab("up", "-t", write_topology(
        tmp_path, f"name: {lab}\nnodes: [{{name: n1}}]\npods:\n  - name: w\n    node: n1\n    containers:\n"
        f"      - name: main\n        command: [{json.dumps(PY)}, \"-c\", {json.dumps(WRITER)}]\n"), env=env)
    path = ns.seen(os.path.join(env["NETLAB_STATE_DIR"], lab, "logs", "w.main.log"))
    before = 0  # the newest line number a start-over kept
    for _ in range(50):
        assert wait_for(lambda: os.path.getsize(path) - log_start(path) > 2**20, 30), os.path.getsize(path)
        assert echo_log.start_over_if_full(path)
        lines = read_log(path).encode().split(b"\n")[:-1]  # the last one may be half written
        assert b"this log reached 1 MiB and starts over" in lines[0], lines[:2]  # first, nothing before it
        kept = numbers(lines[1:])
        assert kept == list(range(kept[0], kept[0] + len(kept))), "lines lost"  # none missing, in order
        assert kept[0] > before and len(kept) * 100 >= 2**20 // 10 - 4096  # its newest tenth, from a whole line
        before = kept[0]
    assert os.stat(path).st_blocks * 512 < 8 * 2**20  # bounded: 50 MiB and more were written
    if kind == "ext4":  # its oldest blocks collapsed away: the file is shorter
        assert log_start(path) == 0 and os.path.getsize(path) < 8 * 2**20
    else:  # tmpfs: punched into a hole, which readers skip
        assert log_start(path) > 50 * 2**20
    pid = container_pid_at(ns.seen(env["NETLAB_STATE_DIR"]), lab)
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not running(pid), 10)
    shown = ns.netlab("logs", "--lab", lab, "w", env=env).stdout.encode().split(b"\n")
    assert b"this log reached 1 MiB and starts over" in shown[0] and b"\0" not in shown[0], shown[:2]
    last = numbers(shown[1:-1])
    assert last == list(range(last[0], last[0] + len(last))) and last[0] == before
    # The SIGKILL may cut the writer's last write short: a write that spans two pages of the file stops between
    # them at a fatal signal (the kernel's generic_perform_write), leaving the head of the next line, nothing else.
    assert (b"%09d %s\n" % (last[-1] + 1, b"x" * 89)).startswith(shown[-1]), shown[-1]


def container_pid_at(state: str, lab: str) -> int:
    with open(os.path.join(state, lab, "state.json")) as fh:
        return json.load(fh)["extra"]["workload"]["pods"]["w"]["containers"]["main"]["pid"]
