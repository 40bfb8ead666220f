"""Mounts a test makes in a mount namespace of its own, which go with it: a test killed before its teardown (a run
stopped, a worker killed) leaves no mount on the host (a tmpfs it filled under /tmp/pytest-of-root stayed mounted).

A holder process (``unshare --mount --propagation unchanged``) keeps the namespace while the test runs; the test's
mounts and the netlab commands that need them run in it (``nsenter --mount``), and the test's own process reaches
its files through the holder's root (``/proc/PID/root/...``: the path walked in the holder's namespace). The mount
that holds the test's folder is a slave there: what the host mounts comes in, what is mounted in it stays in it.
/run/netns stays shared with the host's (it is its own mount point, made so as ``ip netns`` and every ``up`` make
it, before the namespace is), so that a lab's network namespaces made in it are the host's, named as any other.

The holder reads its stdin, a pipe from the test's process, to its end: when the test's process ends, killed too,
the holder ends, and with it the namespace and every mount made in it (unless a process started in it still lives,
a lab's container: it goes when the lab is taken down)."""

from __future__ import annotations

import os
import subprocess

from helpers import NETLAB
from netlab.kernel.netns import ensure_netns_dir


class PrivateMounts:
    def __init__(self, where: str):
        ensure_netns_dir()
        top = subprocess.run(["findmnt", "-n", "-o", "TARGET", "-T", where], capture_output=True, text=True,
                             check=True).stdout.strip()
        script = 'mount --make-slave "$1" && echo ready && exec cat >/dev/null'
        self.holder = subprocess.Popen(["unshare", "--mount", "--propagation", "unchanged", "--", "sh", "-c",
                                        script, "sh", top], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.holder.stdout is not None
        ready = self.holder.stdout.readline()
        assert ready == b"ready\n", (ready, self.holder.wait())

    def argv(self, argv: list[str]) -> list[str]:
        """``argv`` run in the namespace, from this process's working directory."""
        return ["nsenter", f"--mount=/proc/{self.holder.pid}/ns/mnt", f"--wd={os.getcwd()}", "--", *argv]

    def run(self, *argv: str) -> None:
        subprocess.run(self.argv(list(argv)), check=True)

    def netlab(self, *args: str, check: bool = True, env: dict | None = None,
               timeout: float = 300) -> subprocess.CompletedProcess:
        """The CLI in the namespace, as helpers.netlab runs it in the host's."""
        proc = subprocess.run(self.argv(NETLAB + list(args)), capture_output=True, text=True,
                              env={**os.environ, **(env or {})}, timeout=timeout)
        assert not check or proc.returncode == 0, (args, proc.returncode, proc.stdout, proc.stderr)
        return proc

    def seen(self, path: str) -> str:
        """``path`` in the namespace, as this process reaches it."""
        return f"/proc/{self.holder.pid}/root{os.path.abspath(path)}"

    def close(self) -> None:
        """The holder ends: the namespace goes with its mounts once nothing started in it lives."""
        assert self.holder.stdin is not None and self.holder.stdout is not None
        self.holder.stdin.close()
        self.holder.stdout.close()
        self.holder.wait()
