"""The Debian package that brings each program netlab runs: one table for the doctor's fixes
(netlab/doctor.py) and every other command's "is not installed" error (:func:`netns.binary`).

A program is named as netlab runs it (``iptables-nft-save``, ``conntrack``); the package is the one
``apt-get install`` takes (``iptables``, ``conntrack``), the one scripts/setup.sh installs.
"""

from __future__ import annotations

# Each of iptables' programs, both backends: one package (iptables-nft-save is xtables-nft-multi's link).
_IPTABLES = {f"{prog}{backend}{end}" for prog in ("iptables", "ip6tables") for backend in ("", "-nft", "-legacy")
             for end in ("", "-save", "-restore")}
PACKAGES = {
    **{prog: "iptables" for prog in _IPTABLES},
    "nft": "nftables",
    "conntrack": "conntrack",
    "dnsmasq": "dnsmasq-base",
    "tcpdump": "tcpdump",
    "dot": "graphviz",
}


def package_of(program: str) -> str | None:
    """The Debian package of a program netlab runs; None for one not in the table."""
    return PACKAGES.get(program)


def install_fix(program: str) -> str:
    """How to get ``program``: ``apt-get install PACKAGE (or sudo ./scripts/setup.sh)``."""
    package = package_of(program)
    if package is None:
        return "sudo ./scripts/setup.sh"
    return f"apt-get install {package} (or sudo ./scripts/setup.sh)"
