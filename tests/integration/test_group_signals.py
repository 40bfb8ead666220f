"""A terminal's Ctrl-C goes to its whole foreground process group: netlab and every child in netlab's group.

netlab decides what a signal stops (`down` finishes first, a watcher's repair finishes first: signals.py,
api/watch.py), so the programs it runs meanwhile must not hear the terminal's signal: a CNI plugin's DEL cut
short kept its host-local lease, an ``iptables-restore`` cut short failed the repair it was part of. Each test
starts netlab as a shell starts a job (a process group of its own, SIGINT at its default), stops the child
where the test sees it (a file the plugin writes; the kernel's xtables lock that ``iptables-restore -w``
waits for), sends SIGINT to the whole group (``os.killpg``), lets the child go on, and reads the kernel.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import NETLAB, lab_down, lab_namespaces, netlab, state_path, unique_lab, wait_for, write_topology
from watching import topology as watched_topology
from netlab.errors import netlab_command

pytestmark = pytest.mark.root


def as_a_terminal_starts_it() -> None:
    """A job's SIGINT as a shell leaves it, whatever this test process inherited."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])


def job(argv: list[str], env: dict | None = None) -> subprocess.Popen:
    """``argv`` as a shell runs a foreground job: a process group of its own, which Ctrl-C signals whole."""
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, process_group=0,
                            preexec_fn=as_a_terminal_starts_it, env={**os.environ, **(env or {})})


def test_ctrl_c_to_the_group_during_down_lets_each_cni_del_finish(labs, tmp_path):
    """Debian's bridge and host-local behind a wrapper whose DEL says it began, then waits for the test's word:
    SIGINT to down's whole group while both DELs wait. Exit 130 once the lab is down, and both DELs ran to their
    end: exit 0, every host-local lease released."""
    bindir, leases = tmp_path / "bin", tmp_path / "leases"
    bindir.mkdir()
    began, go, ended = tmp_path / "began", tmp_path / "go", tmp_path / "ended"
    wrapper = bindir / "sgxbridge"
    wrapper.write_text(f"""#!/bin/sh
[ "$CNI_COMMAND" = DEL ] || exec /usr/lib/cni/bridge
conf=$(cat)
echo "$CNI_CONTAINERID" >> {began}
i=0
while [ ! -e {go} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
printf '%s' "$conf" | /usr/lib/cni/bridge
rc=$?
echo "$CNI_CONTAINERID $rc" >> {ended}
exit $rc
""")
    wrapper.chmod(0o755)
    (tmp_path / "net.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "sgx-net", "plugins": [
        {"type": "sgxbridge", "bridge": "cni0", "isGateway": True, "mtu": 1450,
         "capabilities": {"ips": True, "ipRanges": True},
         "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(leases)}}]}))
    lab = labs.name("sgx")
    labs.up(f"name: {lab}\nnetwork:\n  cni: {{conflist: net.conflist, binDir: bin}}\n"
            "nodes: [{name: n1, podCIDR: 10.244.0.0/24}, {name: n2, podCIDR: 10.244.1.0/24}]\n"
            "pods: [{name: p1, node: n1}, {name: p2, node: n2}]\n")
    held = [f for f in os.listdir(leases / "sgx-net") if f.startswith("10.")]
    assert len(held) == 2, held

    proc = job(NETLAB + ["down", "--lab", lab])
    try:
        assert wait_for(lambda: began.exists() and len(began.read_text().split()) == 2, timeout=60, step=0.01), \
            "down never began both DELs"
        os.killpg(proc.pid, signal.SIGINT)  # the terminal's Ctrl-C: netlab's whole group
        go.touch()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (out, err)
    assert err == f"netlab: interrupted by SIGINT; lab {lab} is down\n", err
    assert not lab_namespaces(lab) and not os.path.exists(state_path(lab))
    assert sorted(line.split()[1] for line in ended.read_text().splitlines()) == ["0", "0"], ended.read_text()
    assert not [f for f in os.listdir(leases / "sgx-net") if f.startswith("10.")]  # both DELs released theirs


def held_lock_env(lock_path: Path) -> dict[str, str]:
    """The legacy backend, with an xtables lock of the test's own that the restores wait for until the test lets it
    go: without the hook, ``iptables-restore -w 5`` stops waiting after 5 s, which a loaded machine's delay between
    the restore's start and the test's SIGINT can pass (the apply then failed, rolled back: "apply failed: ...
    Stopped waiting after 5s", exit 0, and no Service rules)."""
    return {"NETLAB_IPTABLES": "legacy", "XTABLES_LOCKFILE": str(lock_path), "NETLAB_TEST_XTABLES_WAIT": "100"}


def restores_of(pid: int) -> list[int]:
    """The ``iptables-legacy-restore -w`` processes ``pid`` started (its children, by /proc): a restore of rules,
    which waits for the xtables lock; not the ``iptables-restore --version`` of the apply's preflight (the doctor's
    check, which takes no lock and is over in a moment: a SIGINT sent then was a test of the preflight)."""
    out = []
    for p in (int(d) for d in os.listdir("/proc") if d.isdigit()):
        try:
            with open(f"/proc/{p}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{p}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if ppid == pid and argv[0].endswith(b"iptables-legacy-restore") and b"-w" in argv:
            out.append(p)
    return out


def test_the_preflights_programs_do_not_hear_the_groups_ctrl_c():
    """The kernel probe's programs (up's preflight, the doctor: ``iptables-restore --version``; the watcher's apply
    of an edited file runs it) start in a process group of their own, as every program netlab runs: Ctrl-C to
    netlab's group killed that one, and the watcher's apply then failed ("`iptables-restore --version` failed")
    though Ctrl-C waits for it."""
    from netlab.kernel import features

    probe = features.probe_kernel([], {"group": [sys.executable, "-I", "-c", "import os; print(os.getpgrp())"]})
    status, text = probe.outputs["group"]
    assert status == 0 and int(text) != os.getpgrp(), (status, text)


def _until_seen(proc: subprocess.Popen) -> list[str]:
    """The watcher's lines up to the one that says it watches the lab ("saw: lab ..."); it ending first fails."""
    lines: list[str] = []
    assert proc.stdout is not None
    while not any("saw: lab " in line for line in lines):
        line = proc.stdout.readline()
        assert line, "the watcher ended:\n" + "".join(lines) + proc.stderr.read()
        lines.append(line)
    return lines


def test_ctrl_c_to_the_group_lets_a_watchers_iptables_restore_finish_its_repair(tmp_path):
    """`up --watch` applies an edited topology (a new Service: an ``iptables-restore`` in each node) in a thread
    of its own, and Ctrl-C waits for that apply. The legacy backend's ``iptables-restore -w`` waits for the
    xtables lock, which the test holds (a lock file of its own: XTABLES_LOCKFILE); SIGINT goes to the watcher's
    group while a restore waits, then the lock is let go. The apply finishes, the watcher ends with 0, and each
    node has the Service's rules."""
    lab = unique_lab("sgx")
    lock_path = tmp_path / "xtables.lock"
    env = held_lock_env(lock_path)
    service = ("services:\n  - name: sgx\n    selector: {app: sgx}\n    clusterIP: 10.96.0.77\n"
               "    ports: [{port: 80, targetPort: 8080}]\n")
    base = watched_topology(lab).replace("  - name: a\n", "  - name: a\n    labels: {app: sgx}\n", 1)
    path = write_topology(tmp_path, base)
    netlab("up", "-t", path, env=env)
    proc = None
    try:
        proc = job(NETLAB + ["up", "-t", path, "--watch", "--resync", "60"], env=env)
        lines = _until_seen(proc)
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # every iptables-legacy-restore of the watcher waits here now
            Path(path).write_text(base + service)
            # The edited file's apply, not any restore: a repair's restore waits here too, and Ctrl-C then lets
            # that repair finish and ends the loop before it looks at the file (the next test). The Service brings
            # the cluster DNS pod, whose namespace only the edited file's apply makes; the watcher runs one apply
            # at a time, and this one is not done before its restores, which wait for this lock
            assert wait_for(lambda: restores_of(proc.pid) and os.path.exists(f"/run/netns/{lab}-kube-dns"),
                            timeout=30, step=0.01), "the edited file's apply began no iptables-restore"
            os.killpg(proc.pid, signal.SIGINT)  # the terminal's Ctrl-C: the watcher's whole group
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, "".join(lines) + out + err
        applied = [line for line in out.splitlines() if f"{path} changed; did: " in line]  # the edited file's apply
        assert len(applied) == 1 and "did: apply failed" not in applied[0] and "did: nothing" not in applied[0], \
            "".join(lines) + out + err
        assert "not applied" not in out, "".join(lines) + out + err
        for node in ("node-1", "node-2"):
            saved = subprocess.run(["ip", "netns", "exec", f"{lab}-{node}", "iptables-legacy-save", "-t", "nat"],
                                   capture_output=True, text=True, check=True).stdout
            assert "10.96.0.77/32" in saved, (node, "".join(lines) + out + err)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        lab_down(lab)


def test_ctrl_c_while_a_repair_waits_says_the_edit_it_did_not_apply(tmp_path):
    """A restore of the watcher's that waits for the xtables lock is not always the edited file's apply: a repair
    (node-1's nat drift, found by the resync) waits, the file is edited meanwhile, then Ctrl-C. The repair finishes
    and the loop ends before it looks at the file (it starts no apply once a signal came): the edit is not
    applied, and the last line says so, naming the `up` that applies it; it said nothing, and the lab looked
    converged to the edited file."""
    lab = unique_lab("sgx")
    lock_path = tmp_path / "xtables.lock"
    env = held_lock_env(lock_path)
    service = "services:\n  - name: sgx\n    selector: {app: sgx}\n    ports: [{port: 80}]\n"
    base = watched_topology(lab).replace("  - name: a\n", "  - name: a\n    labels: {app: sgx}\n", 1)
    path = write_topology(tmp_path, base)
    netlab("up", "-t", path, env=env)
    mark = ["-t", "nat", "-A", "KUBE-MARK-MASQ", "-j", "MARK", "--set-xmark", "0x4000/0x4000"]
    proc = None
    try:
        proc = job(NETLAB + ["up", "-t", path, "--watch", "--resync", "0.2"], env=env)
        lines = _until_seen(proc)
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # every iptables-legacy-restore of the watcher waits here now
            # drift by hand (the machine's own xtables lock, not the test's): the resync's repair puts it back
            subprocess.run(["ip", "netns", "exec", f"{lab}-node-1", "iptables-legacy", "-w", *mark[:2], "-D",
                            *mark[3:]], check=True)
            assert wait_for(lambda: restores_of(proc.pid), timeout=30, step=0.01), "no repair began"
            assert not os.path.exists(f"/run/netns/{lab}-kube-dns")  # the repair's restore: the file is as it was
            Path(path).write_text(base + service)
            os.killpg(proc.pid, signal.SIGINT)  # the terminal's Ctrl-C: the watcher's whole group
        out, err = proc.communicate(timeout=60)
        said = "".join(lines) + out + err
        assert proc.returncode == 0, said
        assert "did: restore iptables nat in " in out and "changed; did: " not in out, said  # the repair, alone
        last = out.splitlines()[-1]
        assert f"stopped watching lab {lab} (SIGINT); {path} changed since its last apply, not applied " \
               f"(`{netlab_command(f'up -t {path}')}` applies it); it stays up" in last, said
        saved = subprocess.run(["ip", "netns", "exec", f"{lab}-node-1", "iptables-legacy-save", "-t", "nat"],
                               capture_output=True, text=True, check=True).stdout
        assert "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000" in saved and "KUBE-SVC-" not in saved, said
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        lab_down(lab)
