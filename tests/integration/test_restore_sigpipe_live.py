"""A rule payload that ``iptables-restore`` refuses at its first line kills no caller whose SIGPIPE is the default
(root, a real namespace, the real iptables-restore; kernel/sigpipe.py).

iptables-restore stops reading at the first line it refuses and exits: the rest of a payload larger than a pipe
holds (a lab of many Services) was written to a pipe with no reader, and the write's SIGPIPE ended a program using
netlab's API that had set SIGPIPE back to SIG_DFL (many do), silently, status 141, instead of its one-line error.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from netlab.kernel.netns import exists, remove_netns

pytestmark = pytest.mark.root

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CALLER = """
import signal, sys
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
from netlab.kernel import iptables
from netlab.kernel.netns import create_netns, make_tag, remove_netns, run_in_netns
name = sys.argv[1]
create_netns(name, make_tag("sq-sigpipe", name))
try:
    payload = "*bogus\\n" + "# a comment line, as a large lab's payload is long\\n" * 30000  # 1.5 MB
    try:
        iptables.restore(name, payload, label="filter")
    except iptables.IptablesError as exc:
        print(exc)
    print(run_in_netns(name, [iptables.tools()[0]]).stdout.decode().count("-A "), "rules")
finally:
    remove_netns(name)
"""


def test_a_refused_payload_larger_than_a_pipe_is_an_error_in_a_caller_whose_sigpipe_is_the_default():
    name = f"sq{uuid.uuid4().hex[:6]}-n1"
    try:
        proc = subprocess.run([sys.executable, "-c", CALLER, name], cwd=ROOT, capture_output=True, text=True,
                              timeout=300)
    finally:
        if exists(name):  # the caller died before its own clean-up
            remove_netns(name)
    # Before: the caller died of SIGPIPE (-13), saying nothing, before it removed its namespace.
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    said, rules = proc.stdout.splitlines()
    assert said.startswith(f"{name}: iptables-restore (filter) failed: ") and "line 1" in said, said
    assert rules == "0 rules"  # all or nothing: nothing
