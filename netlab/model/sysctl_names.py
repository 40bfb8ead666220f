"""The names of an interface's sysctls, ``net.ipv4.conf.<dev>.<key>`` and ``net.ipv6.conf.<dev>.<key>`` (and the
``neigh`` ones' ``net.ipv{4,6}.neigh.<dev>.<key>``): the one parser of them (pure: plan, kernel, realize and the
fake kernel read them alike).

A device's name may hold dots (``flannel.1``, a VLAN's ``eth0.100``): in netlab's spelling (its plan, records,
JSON) the device is everything between the fixed head and the last word, dots kept; sysctl(8) reads every dot as
a level and writes a device's dots as slashes (``net.ipv4.conf.eth0/100.rp_filter``), which this parser reads
too (no interface name holds a slash: the kernel refuses one). ``all`` and ``default`` are the two names that are
no interface: the namespace's settings and those each new interface copies.
"""

from __future__ import annotations

from dataclasses import dataclass

NOT_INTERFACES = ("all", "default")


@dataclass(frozen=True)
class ConfName:
    """One parsed name: ``family`` ipv4 or ipv6, ``section`` conf or neigh, ``dev`` the interface's name as
    ``ip link`` shows it (or all, default), ``key`` the setting (``rp_filter``)."""

    family: str
    section: str
    dev: str
    key: str

    @property
    def own(self) -> bool:
        """An interface's own setting, not all's nor default's."""
        return self.dev not in NOT_INTERFACES

    @property
    def dotted(self) -> str:
        """netlab's spelling: ``net.ipv4.conf.eth0.100.rp_filter``."""
        return f"net.{self.family}.{self.section}.{self.dev}.{self.key}"

    @property
    def shown(self) -> str:
        """sysctl(8)'s: ``net.ipv4.conf.eth0/100.rp_filter`` (``sysctl -w`` of the dotted one fails)."""
        return f"net.{self.family}.{self.section}.{self.dev.replace('.', '/')}.{self.key}"

    @property
    def path(self) -> str:
        """Its file under /proc/sys: ``net/ipv4/conf/eth0.100/rp_filter``."""
        return f"net/{self.family}/{self.section}/{self.dev}/{self.key}"


def conf_name(name: str, sections: tuple[str, ...] = ("conf",)) -> ConfName | None:
    """``net.ipv4.conf.flannel.1.arp_ignore`` -> ConfName(ipv4, conf, flannel.1, arp_ignore); sysctl(8)'s
    ``net.ipv4.conf.flannel/1.arp_ignore`` alike; None for any other sysctl (``net.ipv4.ip_forward``, a name with
    no device or no key). ``sections``: which of conf and neigh are taken."""
    parts = name.split(".")
    if len(parts) < 5 or parts[0] != "net" or parts[1] not in ("ipv4", "ipv6") or parts[2] not in sections:
        return None
    dev, key = ".".join(parts[3:-1]).replace("/", "."), parts[-1]
    if not key or not all(dev.split(".")) or "/" in key:
        return None
    return ConfName(parts[1], parts[2], dev, key)


def interface_of(name: str, family: str | None = None, key: str | None = None) -> str | None:
    """The interface whose own setting sysctl ``name`` is (None for all's, default's and any other sysctl), of
    ``family`` and with ``key`` when given."""
    c = conf_name(name)
    if c is None or not c.own or (family is not None and c.family != family) or (key is not None and c.key != key):
        return None
    return c.dev
