"""`netlab doctor`'s `host netlab install` line (QA sec58 4): setup.sh installs netlab editable, so whoever can
change the checkout's netlab/, its .venv, or a folder above the checkout is root on every `sudo netlab`. A
warning naming what someone other than root can change, with the fix; ok for a root-owned install."""

from __future__ import annotations

import os
import pwd

import pytest

from netlab import doctor
from netlab.doctor_install import check_install
from netlab.doctor_lines import ADVISORY, OK, WARN
from netlab.model.lab import resolve
from netlab.model.load import load_topology

NOBODY = pwd.getpwnam("nobody").pw_uid
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="makes files of another user's")


@pytest.fixture
def checkout(tmp_path):
    os.chmod(tmp_path, 0o755)
    co = tmp_path / "netlab-checkout"
    for folder in ("netlab/cli", ".venv/lib/site-packages", ".git"):
        (co / folder).mkdir(parents=True, mode=0o755)
    for f in ("netlab/__init__.py", "netlab/cli/base.py", ".venv/lib/site-packages/click.py", ".git/HEAD"):
        (co / f).write_text("")
    return co


def test_a_root_owned_install_is_ok(checkout):
    check = check_install(str(checkout), str(checkout / ".venv"))
    assert (check.status, check.detail) == (OK, f"{checkout} and {checkout}/.venv: root's, writable by root alone")


@pytest.mark.parametrize("what, why", [
    ("netlab/cli/base.py", "is owned by nobody (mode 644), not by root"),
    ("netlab/cli", "is writable by everyone (mode 777)"),
    (".venv/lib/site-packages/click.py", "is owned by nobody (mode 644), not by root"),
    ("", "is owned by nobody (mode 755), not by root"),
    ("..", "is owned by nobody (mode 755), not by root"),
])
def test_what_someone_else_can_change_is_named_with_the_fix(checkout, what, why):
    path = os.path.normpath(checkout / what)
    if "777" in why:
        os.chmod(path, 0o777)
    else:
        os.chown(path, NOBODY, -1)
    check = check_install(str(checkout), str(checkout / ".venv"))
    assert check.status == WARN and check.detail == (
        "someone other than root can change the netlab that root runs (whoever can is root on every sudo netlab): "
        f"{path} {why}"), check.detail
    assert check.fix.startswith(f"chown -R root: {checkout} && chmod -R go-w {checkout} "), check.fix
    assert "clone netlab as root into a root-owned folder and run scripts/setup.sh there" in check.fix


def test_a_users_file_in_git_is_not_run_and_not_named(checkout):
    os.chown(checkout / ".git" / "HEAD", NOBODY, -1)
    assert check_install(str(checkout), str(checkout / ".venv")).status == OK


def test_the_doctor_says_it_and_up_does_not_gate_on_it():
    lab = resolve(load_topology(None))
    (check,) = doctor.diagnose(lab, set(), ["install"])
    assert check.title == "host netlab install" and check.status in (OK, WARN), check
    assert "install" in ADVISORY and "install" in [c.name for c in doctor.report(lab, for_this_lab=False)]


def test_the_fix_line_quotes_a_checkout_with_a_blank(tmp_path):
    """The fix is a command the user types as root: a checkout whose path has a blank is one word in it (unquoted,
    `chown -R root: /x/my checkout` chowned /x/my and the relative `checkout` of the user's working folder)."""
    os.chmod(tmp_path, 0o755)
    co = tmp_path / "my checkout"
    (co / "netlab").mkdir(parents=True, mode=0o755)
    (co / "netlab" / "x.py").write_text("")
    os.chown(co / "netlab" / "x.py", NOBODY, -1)
    check = check_install(str(co), None)
    assert check.status == WARN
    assert check.fix.startswith(f"chown -R root: '{co}' && chmod -R go-w '{co}' ")
