"""The real CLI under a low open-files limit (RLIMIT_NOFILE, soft and hard, as `ulimit -n N` sets both): one
line naming the limit, exit 3, and no namespace that no state names; `up` and `doctor` say the limit, not the
kernel or iptables.

`down` under `ulimit -n 12` could not read its namespaces' tags (EMFILE), took them for someone else's, said
"is down", exit 0, and deleted the state; `up` under 22-26 said "rolled back" with every namespace left and its
state deleted (tests/unit/test_open_files.py has the same on the fake kernel).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess

from helpers import NETLAB, netlab, state_path, two_node_topology


def netns_of(lab: str) -> list[str]:
    """The lab's namespaces, as the kernel's /run/netns lists them (`ip -j netns list`)."""
    out = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return sorted(n["name"] for n in json.loads(out or "[]") if n["name"].startswith(lab + "-"))


def limited(limit: int, *args: str, hard: int | None = None) -> subprocess.CompletedProcess:
    """The CLI with an open-files limit of ``limit`` (soft and hard: netlab cannot raise it; or up to ``hard``)."""
    def low() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard or limit))

    return subprocess.run(NETLAB + list(args), capture_output=True, text=True, preexec_fn=low, timeout=120)


def said_the_limit(proc: subprocess.CompletedProcess, limit: int) -> None:
    assert proc.returncode == 3, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"`ulimit -n` now {limit}" in proc.stderr or f"`ulimit -n` {limit}" in proc.stderr, proc.stderr
    assert "CONFIG_" not in proc.stderr and "reinstall" not in proc.stderr, proc.stderr


def test_down_and_up_at_a_low_open_files_limit_keep_track_of_every_namespace(labs):
    lab = labs.name("fd")
    path, _ = labs.up(two_node_topology(lab))
    made = netns_of(lab)
    assert len(made) == 7
    try:
        # netlab raises its own soft limit to the hard one (as Go does); what it execs gets the one it was given
        run = limited(40, "exec", "--lab", lab, "fedora-1", "--", "sh", "-c", "ulimit -Sn; ulimit -Hn", hard=4096)
        assert run.returncode == 0 and run.stdout.split() == ["40", "4096"], run
        down = limited(12, "down", "--lab", lab)
        said_the_limit(down, 12)
        assert netns_of(lab) == made and os.path.exists(state_path(lab, "state.json"))
        netlab("down", "--lab", lab)  # the limit raised: the lab's state still names every namespace
        assert netns_of(lab) == []
        for limit in (8, 12, 22, 24, 26):  # the doctor's line, before any change (the rollback: the unit test)
            up = limited(limit, "up", "-t", path)
            said_the_limit(up, limit)
            assert "host open-files limit" in up.stderr, up.stderr
            assert netns_of(lab) == [] and not os.path.exists(state_path(lab, "state.json")), (limit, up.stderr)
        doctor = limited(8, "doctor")
        assert doctor.returncode == 3 and "FAIL  host open-files limit: `ulimit -n` 8" in doctor.stdout, doctor
        assert doctor.stdout.count("FAIL") == 1 and "CONFIG_" not in doctor.stdout, doctor.stdout
    finally:
        netlab("down", "--lab", lab, "--force", check=False)
