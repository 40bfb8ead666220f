"""``Lab.up`` run by a real user who is not root (`runuser -u nobody`), with a NETLAB_STATE_DIR the user may write.
QA q22 4: it said the doctor's line for root in an unprivileged container ("FAIL  host capabilities: root without
CAP_NET_ADMIN and CAP_SYS_ADMIN ... --privileged"), where `netlab up` and the pytest plugin say "needs root"; now
the same one line as the API says for root's state folder. The gate alone: tests/unit/test_api_not_root_words.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid

import pytest

import netlab as netlab_pkg

CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(netlab_pkg.__file__)))
RUNUSER = shutil.which("runuser")
SCRIPT = """
import sys
from netlab import Lab
from netlab.errors import EnvironmentNotReady
try:
    Lab.up({"name": sys.argv[1], "nodes": [{"name": "n1"}], "pods": [{"name": "a", "node": "n1"}]})
except EnvironmentNotReady as exc:
    print(str(exc))
    sys.exit(exc.exit_code)
"""


@pytest.mark.skipif(RUNUSER is None or os.geteuid() != 0, reason="needs root and runuser")
def test_lab_up_by_a_user_who_is_not_root_says_needs_root_in_one_line():
    name = "py" + uuid.uuid4().hex[:6]
    state = tempfile.mkdtemp(prefix=f"{name}-state-")
    try:
        os.chown(state, 65534, 65534)  # nobody's own: the "state is root's" refusal does not come first
        proc = subprocess.run([RUNUSER or "runuser", "-u", "nobody", "--", sys.executable, "-I", "-c",
                               f"import sys; sys.path.insert(0, {CHECKOUT!r})\n{SCRIPT}", name],
                              capture_output=True, text=True, timeout=120, cwd="/",
                              env={"PATH": os.environ.get("PATH", ""), "NETLAB_STATE_DIR": state})
        assert (proc.returncode, proc.stdout, proc.stderr) == (
            3, "netlab needs root: a lab is made of network namespaces; run it with sudo\n", ""), proc
        out = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True, check=True).stdout
        assert not [n for n in json.loads(out or "[]") if n["name"].startswith(name + "-")]  # nothing made
        assert os.listdir(state) == []
    finally:
        shutil.rmtree(state)
