"""How a capture ends on a signal (QA: a capture stopped by SIGTERM, `timeout 2 netlab capture ...` or `kill`, said
"stopped by Ctrl-C"). SIGTERM ends it as tcpdump's ends (its cleanup() takes SIGTERM as SIGINT and exits 0): the
frames kept, exit 0, and the line says SIGTERM stopped it. One pod's lab of its own, always taken down."""

from __future__ import annotations

import json
import select
import shutil
import signal
import subprocess

import pytest

from helpers import NETLAB

pytestmark = pytest.mark.root


def _capture(lab: str, sig: signal.Signals, *args: str) -> tuple[int, str, str]:
    """`netlab capture` on the pod's loopback (nothing crosses it), sent ``sig`` once it captures."""
    proc = subprocess.Popen(NETLAB + ["capture", "--lab", lab, "a:lo", "--timeout", "60", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stderr is not None
        ready, _, _ = select.select([proc.stderr], [], [], 60)
        first = proc.stderr.readline() if ready else ""
        assert first.startswith(f"netlab: capturing on {lab}-a lo "), first
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


def test_a_capture_ended_by_sigterm_says_so_and_exits_0_as_tcpdump(labs):
    lab = labs.name("cs")
    labs.up(f"name: {lab}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1}}]\n")
    code, out, err = _capture(lab, signal.SIGTERM)
    assert (code, out) == (0, ""), err
    assert err.startswith(f"netlab: 0 frames captured on {lab}-a lo in ") and "(stopped by SIGTERM)" in err, err
    assert err.count("\n") == 1, err  # one line: no traceback, no "interrupted"
    code, out, err = _capture(lab, signal.SIGTERM, "-o", "json")
    assert code == 0 and json.loads(out)["stopped"] == "terminated", (out, err)
    code, out, err = _capture(lab, signal.SIGINT)
    assert code == 0 and "(stopped by Ctrl-C)" in err and err.count("\n") == 1, err
    code, out, err = _capture(lab, signal.SIGINT, "-o", "json")
    assert code == 0 and json.loads(out)["stopped"] == "interrupted", (out, err)
    if shutil.which("tcpdump"):  # the exit code it follows: tcpdump's own, stopped by SIGTERM in the same place
        tcpdump = subprocess.run(["ip", "netns", "exec", f"{lab}-a", "timeout", "--preserve-status", "1",
                                  "tcpdump", "-p", "-n", "-i", "lo"], capture_output=True, text=True, timeout=30)
        assert tcpdump.returncode == 0, tcpdump.stderr
