"""A missing program is named with its Debian package, the same one everywhere: every command's error
(netns.binary) and the doctor's fix read one table (kernel/packages.py)."""

from __future__ import annotations

import shutil

import pytest

from netlab import doctor_verdict
from netlab.errors import EnvironmentNotReady
from netlab.kernel import netns, packages


@pytest.mark.parametrize("program,package", [
    ("iptables-save", "iptables"), ("iptables-nft-restore", "iptables"), ("iptables-legacy-save", "iptables"),
    ("nft", "nftables"), ("conntrack", "conntrack"), ("dnsmasq", "dnsmasq-base"), ("tcpdump", "tcpdump"),
])
def test_a_missing_program_names_its_package(monkeypatch, program, package):
    monkeypatch.setattr(shutil, "which", lambda name, path=None: None)
    with pytest.raises(EnvironmentNotReady) as info:
        netns.binary(program)
    assert str(info.value) == (f"{program} is not installed (netlab looks in /usr/sbin, /usr/bin, /sbin, /bin, "
                               "/usr/local/sbin and /usr/local/bin, not $PATH); fix: apt-get install "
                               f"{package} (or sudo ./scripts/setup.sh)")


@pytest.mark.parametrize("check", sorted(doctor_verdict.PROGRAMS))
def test_the_doctor_names_the_package_every_command_names(monkeypatch, check):
    monkeypatch.setattr(shutil, "which", lambda name, path=None: None)
    line, _ = doctor_verdict.tool_check(check, needed=True)
    with pytest.raises(EnvironmentNotReady) as info:
        netns.binary(doctor_verdict.PROGRAMS[check])
    assert line.fix == packages.install_fix(doctor_verdict.PROGRAMS[check])
    assert str(info.value).endswith(f"fix: {line.fix}")
    assert packages.package_of(doctor_verdict.PROGRAMS[check]) is not None


def test_a_program_not_in_the_table_is_sent_to_setup():
    assert packages.install_fix("no-such-program") == "sudo ./scripts/setup.sh"


@pytest.mark.parametrize("check", sorted(doctor_verdict.PROGRAMS))
def test_the_doctors_line_of_a_missing_tool_names_the_folders_searched(monkeypatch, check):
    """netlab, a root tool, finds its programs in a fixed list of folders, never through $PATH (QA hostenv57 6): a
    program in /opt/bin is not found, and the line says where netlab looked."""
    asked = []
    monkeypatch.setattr(shutil, "which", lambda name, path=None: asked.append(path))
    line, _ = doctor_verdict.tool_check(check, needed=True)
    assert asked == ["/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin"]
    assert line.detail == (f"{doctor_verdict.PROGRAMS[check]} is not installed (netlab looks in /usr/sbin, /usr/bin, "
                           "/sbin, /bin, /usr/local/sbin and /usr/local/bin, not $PATH)")
