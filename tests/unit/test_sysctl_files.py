"""Sysctl files read and written by walking /proc/sys (kernel/procsys.py), on a tree of plain files (no root).

The walk resolves names under ``SYSCTL_ROOT``; here that is a temporary
folder shaped like /proc/sys, with or without its ``net/ipv6`` folder (a kernel
booted with ipv6.disable=1 has none: IPv6 is off there, which is what a lab
asks of ``disable_ipv6``).
"""

from __future__ import annotations

import pytest

from netlab.kernel import procsys

V6_ALL, V6_DEFAULT = "net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"


@pytest.fixture
def sysctl_tree(tmp_path, monkeypatch):
    """A /proc/sys of IPv4 files only (``add_ipv6`` gives it the IPv6 folder too)."""
    root = tmp_path / "sys"
    for key, value in (("net/ipv4/ip_forward", "0"), ("net/ipv4/conf/all/rp_filter", "2"),
                       ("net/ipv4/conf/flannel.1/rp_filter", "1")):
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_text(value + "\n")
    monkeypatch.setattr(procsys, "SYSCTL_ROOT", str(root))
    monkeypatch.setattr(procsys, "IPV6_DIR", str(root / "net/ipv6"))
    return root


def add_ipv6(root) -> None:
    for which in ("all", "default"):
        (root / "net/ipv6/conf" / which).mkdir(parents=True)
        (root / "net/ipv6/conf" / which / "disable_ipv6").write_text("0\n")


def test_files_are_read_by_their_sysctl_names_and_a_missing_one_is_none(sysctl_tree):
    got = procsys.read_sysctls_here(["net.ipv4.ip_forward", "net.ipv4.conf.flannel.1.rp_filter",
                                   "net.ipv4.conf.eth9.rp_filter"])
    assert got == {"net.ipv4.ip_forward": "0", "net.ipv4.conf.flannel.1.rp_filter": "1",
                   "net.ipv4.conf.eth9.rp_filter": None}
    procsys.write_sysctls_here([("net.ipv4.ip_forward", "1")])
    assert procsys.read_sysctl_here("net.ipv4.ip_forward") == "1"
    with pytest.raises(FileNotFoundError):
        procsys.write_sysctls_here([("net.ipv4.conf.eth9.rp_filter", "0")])


def test_a_kernel_without_ipv6_has_it_off_and_nothing_to_write(sysctl_tree):
    assert procsys.read_sysctls_here([V6_ALL, V6_DEFAULT, "net.ipv6.conf.all.forwarding"]) == {
        V6_ALL: "1", V6_DEFAULT: "1", "net.ipv6.conf.all.forwarding": None}
    assert procsys.read_sysctl_here(V6_ALL) == "1"
    procsys.write_sysctls_here([(V6_ALL, "1"), (V6_DEFAULT, "1"), ("net.ipv4.ip_forward", "1")])
    procsys.write_sysctl_here(V6_ALL, "1")
    assert not (sysctl_tree / "net/ipv6").exists()  # nothing made where the kernel has nothing
    assert procsys.read_sysctl_here("net.ipv4.ip_forward") == "1"
    # Turning IPv6 on, or any other IPv6 key, cannot be done there: said as for any missing sysctl.
    for key, value in ((V6_ALL, "0"), ("net.ipv6.conf.all.forwarding", "1")):
        with pytest.raises(FileNotFoundError):
            procsys.write_sysctls_here([(key, value)])
        with pytest.raises(FileNotFoundError):
            procsys.write_sysctl_here(key, value)


def test_with_ipv6_its_files_are_read_and_written_as_any(sysctl_tree):
    add_ipv6(sysctl_tree)
    assert procsys.read_sysctls_here([V6_ALL, "net.ipv6.conf.eth9.disable_ipv6"]) == {
        V6_ALL: "0", "net.ipv6.conf.eth9.disable_ipv6": None}  # no such interface: absent, not "off"
    procsys.write_sysctls_here([(V6_ALL, "1")])
    procsys.write_sysctl_here(V6_DEFAULT, "1")
    assert procsys.read_sysctls_here([V6_ALL, V6_DEFAULT]) == {V6_ALL: "1", V6_DEFAULT: "1"}
    with pytest.raises(FileNotFoundError):
        procsys.write_sysctls_here([("net.ipv6.conf.eth9.disable_ipv6", "1")])
