"""The netlab CLI run many times over without Python's start and netlab's imports each time.

A test that runs one command dozens of times (the fault sweep: an ``up`` failing, or killed, at each of its
~53 operations) spent most of its CPU starting processes: Python, then netlab's modules, 0.2 s of the 0.4 s
a failed ``up`` takes. :class:`ForkedCli` is one process that loads the CLI and the modules a command uses,
once, and runs nothing. Each run is a fork of it that goes on as ``python -m netlab ARGS`` does from its first
line (netlab.launch.main: its signal handling, its exit status, its output), with the run's
``NETLAB_FAULT_*``/``NETLAB_TEST_*`` settings read again (kernel/testhooks.py reads them when it loads). A run
is a process of its own: what it writes, its exit status, the signal that kills it, what it leaves behind.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile

# What the forks start from: the CLI and the modules `up` and `down` load (one that is missing here is
# loaded by the run itself, as the CLI would).
PRELOAD = ("netlab.launch", "netlab.cli", "netlab.cli.lab", "netlab.api", "netlab.api.lab", "netlab.lab.up",
           "netlab.lab.teardown", "netlab.doctor", "netlab.kernel.features", "netlab.kernel.readmany",
           "netlab.cni.lifecycle", "netlab.services.lifecycle", "netlab.workload.lifecycle",
           "netlab.impair.lifecycle", "netlab.model.load", "netlab.trace", "netlab.probe")

SERVER = r"""
import gc, importlib, json, os, sys
gc.disable()  # as netlab.launch loads the program
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
import netlab.launch
main_py = os.path.join(os.path.dirname(netlab.launch.__file__), "__main__.py")
requests = os.fdopen(0, "rb", buffering=0)
while line := requests.readline():
    run = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for fd, path, flags in ((0, "/dev/null", os.O_RDONLY), (1, run["out"], os.O_WRONLY),
                                    (2, run["err"], os.O_WRONLY)):
                opened = os.open(path, flags)
                os.dup2(opened, fd)
                os.close(opened)
            os.environ.update(run["env"])
            if "netlab.kernel.testhooks" in sys.modules:
                importlib.reload(sys.modules["netlab.kernel.testhooks"])
            sys.argv = [main_py, *run["args"]]
            netlab.launch.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
            if not isinstance(exc.code, (int, type(None))):
                print(exc.code, file=sys.stderr)
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush(); sys.stderr.flush()
            finally:
                os._exit(code)
    os.write(1, f"{pid}\n".encode())
    os.write(1, f"{os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])}\n".encode())
"""


class ForkedCli:
    """``run(*args, env=...)``: what ``helpers.netlab(*args, check=False, env=...)`` returns, from a fork."""

    def __init__(self, preload: tuple[str, ...] = PRELOAD) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, json.dumps(list(preload))],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        self.dir = tempfile.TemporaryDirectory(prefix="forked-cli-")

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        env = env or {}
        assert all(k.startswith(("NETLAB_FAULT_", "NETLAB_TEST_")) for k in env), env  # what is read again
        out, err = (os.path.join(self.dir.name, name) for name in ("out", "err"))
        for path in (out, err):
            open(path, "w").close()
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"args": list(args), "env": env, "out": out, "err": err}).encode() + b"\n")
        self.proc.stdin.flush()
        pid = int(self.proc.stdout.readline())
        if not select.select([self.proc.stdout], [], [], timeout)[0]:
            os.kill(pid, signal.SIGKILL)  # as subprocess.run's timeout kills its child, then says so
            self.proc.stdout.readline()
            raise subprocess.TimeoutExpired(["netlab", *args], timeout)
        code = int(self.proc.stdout.readline())
        with open(out) as o, open(err) as e:
            return subprocess.CompletedProcess(["netlab", *args], code, o.read(), e.read())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.dir.cleanup()
