"""A dnsmasq that is installed but does not run (a missing library), QA mf63 defect 5: the doctor said it ok without
running it, and `up` of a lab with Services said "containers started", exit 0, while kube-dns was in Error. The
doctor runs `dnsmasq --version` (in its throwaway namespace) and fails the line; `up` refuses up front. Faked in a
private mount namespace of each command's own (``unshare -m``): a script bound over the machine's dnsmasq."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from helpers import NETLAB, state_path, unique_lab, write_topology

pytestmark = [pytest.mark.root, pytest.mark.skipif(shutil.which("dnsmasq") is None, reason="needs dnsmasq")]

BROKEN = ("#!/bin/sh\necho 'dnsmasq: error while loading shared libraries: libnettle.so.8: cannot open shared "
          "object file: No such file or directory' >&2\nexit 127\n")


def faked(tmp_path, *args: str) -> subprocess.CompletedProcess:
    fake = tmp_path / "dnsmasq"
    fake.write_text(BROKEN)
    fake.chmod(0o755)
    bind = f'mount --bind "{fake}" "{shutil.which("dnsmasq")}" && exec "$@"'
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", bind, "fake", *NETLAB, *args],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": os.getcwd()})


def test_a_dnsmasq_that_does_not_run_fails_the_doctor_and_up_of_a_services_lab_makes_nothing(tmp_path):
    doctor = faked(tmp_path, "doctor", "-o", "json")
    line = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}["dnsmasq"]
    assert line["status"] == "FAIL" and "libnettle.so.8" in line["detail"], line
    assert "apt-get install --reinstall dnsmasq-base" in line["fix"], line

    lab = unique_lab("mf")
    path = write_topology(tmp_path, f"name: {lab}\nnodes:\n  - {{name: n1}}\npods:\n  - {{name: web, node: n1, "
                          "labels: {app: web}}\nservices:\n  - {name: web, selector: {app: web}, "
                          "ports: [{port: 80, targetPort: 8080}]}\n")
    up = faked(tmp_path, "up", "-t", path)
    assert up.returncode == 3 and up.stderr.startswith("netlab: FAIL  tool dnsmasq: "), (up.stdout, up.stderr)
    made = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert lab not in made and not os.path.exists(state_path(lab))
