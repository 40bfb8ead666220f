"""pyroute2 sockets per namespace, for ``trace``'s questions to the kernel (``ip route get``).

Building, repairing and reading a lab go through netlab.kernel (one codec);
``trace`` asks a few one-off questions for which pyroute2's parser is fine.
"""

from __future__ import annotations

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from netlab.kernel import netns as nsmod


class Sockets:
    """One IPRoute per namespace, opened in-process and closed together."""

    def __init__(self) -> None:
        self._ipr: dict[str, IPRoute] = {}
        self._index: dict[str, dict[str, int]] = {}

    def __call__(self, netns: str) -> IPRoute:
        ipr = self._ipr.get(netns)
        if ipr is None:
            ipr = self._ipr[netns] = nsmod.open_iproute(netns)
        return ipr

    def index(self, netns: str, ifname: str) -> int:
        """ifindex of a link by name (cached; a miss asks the kernel for that one link)."""
        cache = self._index.setdefault(netns, {})
        if ifname not in cache:
            try:
                (link,) = self(netns).link("get", ifname=ifname)
            except NetlinkError as exc:
                if exc.code == 19:
                    raise LookupError(f"{ifname} does not exist in {netns}") from None
                raise
            cache[ifname] = link["index"]
        return cache[ifname]

    def forget(self, netns: str, ifname: str | None = None) -> None:
        if ifname is None:
            self._index.pop(netns, None)
        else:
            self._index.get(netns, {}).pop(ifname, None)

    def drop(self, netns: str) -> None:
        ipr = self._ipr.pop(netns, None)
        self._index.pop(netns, None)
        if ipr is not None:
            ipr.close()

    def close(self) -> None:
        for netns in list(self._ipr):
            self.drop(netns)


