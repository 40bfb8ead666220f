"""The legacy iptables backend on a kernel without legacy iptables (CONFIG_IP_NF_IPTABLES_LEGACY off), QA mf63
defect 2: `iptables-restore --version` answers "(legacy)", every restore fails "can't initialize iptables table
`filter': Table does not exist". The doctor said "ok tool iptables-restore ... legacy backend" and `up` failed late
(exit 4, after making namespaces); the SCTP and hostPort lines blamed kernel configs with wrong fixes, also when
`--version` itself failed. Faked in a private mount namespace of each command's own (``unshare -m``): a script bound
over /usr/sbin/xtables-legacy-multi answers as that machine's does; the machine's file is never touched."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from helpers import NETLAB, state_path, unique_lab, write_topology

pytestmark = pytest.mark.root

LEGACY = "/usr/sbin/xtables-legacy-multi"
NO_TABLES = """#!/bin/sh
for a in "$@"; do
  if [ "$a" = "--version" ]; then echo "iptables-restore v1.8.9 (legacy)"; exit 0; fi
done
cat >/dev/null
echo "iptables-restore v1.8.9 (legacy): can't initialize iptables table \\`filter': Table does not exist (do you need \
to insmod?)" >&2
exit 2
"""
BROKEN = "#!/bin/sh\necho 'xtables-legacy-multi: error while loading shared libraries' >&2\nexit 127\n"


def faked(script: str, tmp_path, *args: str) -> subprocess.CompletedProcess:
    fake = tmp_path / "xtables-legacy-multi"
    fake.write_text(script)
    fake.chmod(0o755)
    bind = f'mount --bind "{fake}" {LEGACY} && exec "$@"'
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", bind, "fake", *NETLAB, *args],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NETLAB_IPTABLES": "legacy", "PYTHONPATH": os.getcwd()})


def lines(proc: subprocess.CompletedProcess) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads(proc.stdout)["checks"]}


@pytest.mark.skipif(not os.path.exists(LEGACY), reason="needs iptables' legacy tools")
def test_legacy_tables_the_kernel_cannot_make_fail_the_doctor_and_up_makes_nothing(tmp_path):
    doctor = faked(NO_TABLES, tmp_path, "doctor", "-o", "json")
    checks = lines(doctor)
    restore = checks["iptables-restore"]
    assert restore["status"] == "FAIL" and "Table does not exist" in restore["detail"], restore
    assert "CONFIG_IP_NF_IPTABLES_LEGACY" in restore["detail"] and "NETLAB_IPTABLES=nft" in restore["fix"], restore
    for name in ("sctp", "hostport"):  # not the kernel's SCTP or nat matches: not tried, the nft backend's fix
        assert checks[name]["detail"].startswith("not tried: "), checks[name]
        assert "NETLAB_IPTABLES=nft" in checks[name]["fix"] and "CONFIG_NETFILTER" not in checks[name]["fix"]
    assert doctor.returncode != 0

    lab = unique_lab("mf")
    path = write_topology(tmp_path, f"name: {lab}\nnodes:\n  - {{name: n1}}\npods:\n  - {{name: a, node: n1}}\n")
    up = faked(NO_TABLES, tmp_path, "up", "-t", path)
    assert up.returncode == 3, (up.returncode, up.stdout, up.stderr)
    assert up.stderr.startswith("netlab: FAIL  tool iptables-restore: ") and "NETLAB_IPTABLES=nft" in up.stderr
    assert "Traceback" not in up.stderr and up.stderr.count("\n") == 1, up.stderr
    made = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert lab not in made and not os.path.exists(state_path(lab))  # nothing made, nothing to roll back


@pytest.mark.skipif(not os.path.exists(LEGACY), reason="needs iptables' legacy tools")
def test_an_iptables_restore_that_does_not_run_leaves_sctp_and_hostport_not_tried(tmp_path):
    checks = lines(faked(BROKEN, tmp_path, "doctor", "-o", "json"))
    assert checks["iptables-restore"]["status"] == "FAIL", checks["iptables-restore"]
    for name in ("sctp", "hostport"):
        assert checks[name]["detail"].startswith("not tried: "), checks[name]
        assert "CONFIG_NETFILTER" not in checks[name]["fix"], checks[name]
