"""Root's `netlab` (and `kube-netlab`), the launcher scripts/make_launcher.sh writes, runs Python isolated (-I,
QA sec58 3): `sudo PYTHONPATH=/tmp/pp netlab` (sudoers' env_keep, a root shell with a user's environment, or
`sudo -E`) imported /tmp/pp/sitecustomize.py as root, someone else's code run as root. Under -I Python reads no
PYTHON* variable and puts neither the script's folder nor the user's site on sys.path; the venv's site-packages
and their .pth files (netlab's editable install) still load."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_a_pythonpath_sitecustomize_is_not_run_by_the_launcher(tmp_path):
    launcher = tmp_path / "netlab"
    subprocess.run([os.path.join(ROOT, "scripts", "make_launcher.sh"), sys.executable, str(launcher)], check=True)
    (tmp_path / "pp").mkdir()
    (tmp_path / "pp" / "sitecustomize.py").write_text(
        f"open({str(tmp_path / 'ran')!r}, 'w').write('uid %d' % __import__('os').getuid())\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "pp"))
    proc = subprocess.run([str(launcher), "--version"], capture_output=True, text=True, timeout=60, env=env)
    # netlab still loads (the venv's site-packages and its editable install's .pth are read under -I)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "netlab, version 0.1.0\n", ""), proc
    assert not (tmp_path / "ran").exists(), (tmp_path / "ran").read_text()


def test_the_launcher_line_says_isolated(tmp_path):
    launcher = tmp_path / "netlab"
    subprocess.run([os.path.join(ROOT, "scripts", "make_launcher.sh"), sys.executable, str(launcher)], check=True)
    assert launcher.read_text().splitlines()[0] == f"#!/usr/bin/env -S --block-signal=INT,TERM,HUP {sys.executable} -I"
