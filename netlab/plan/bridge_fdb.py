"""A bridge's FDB entry a hand added (``bridge fdb add MAC dev PORT master static|permanent|dynamic sticky``).

No plan holds one: the kernel learns where each MAC is, and netlab, Flannel and the CNI plugins add none to a
bridge. One there pins a MAC to a port (static: frames for a pod go out of the wrong port, or none) or to the
bridge itself (permanent, ``local``: they are taken by the node, not forwarded), so status says it is extra and
up deletes it. So is a sticky one that ages (``dynamic sticky``): the kernel refreshes it on each frame from the
MAC but never moves it, and learning never sets sticky. What the kernel keeps by itself is no such entry
(realize/observe.py): the learned ones (they age) and each port's and the bridge's own MAC (permanent, made and
taken away with the port).

An entry's flags are kept with it (``sticky``: the MAC does not move to the port it is next seen on), so a rollback
that adds back an entry up deleted makes the entry that was there, not a plain static one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from netlab.plan.resource_base import Resource


@dataclass(frozen=True)
class PortFdb(Resource):
    kind: ClassVar[str] = "bridge-fdb"
    dev: str  # the port (or the bridge itself) the entry sends the MAC to
    lladdr: str
    master: str  # the bridge
    vlan: int | None = None
    state: str = "static"  # static | permanent | dynamic (a hand's only when sticky: learning never sets it)
    flags: tuple[str, ...] = ()  # ("sticky",): bridge fdb's words for the entry's NTF_ flags besides master

    @property
    def key(self) -> tuple:
        return ("bridge-fdb", self.netns, self.dev, self.lladdr, self.vlan)

    def _spec(self) -> str:
        return f"{self.lladdr} dev {self.dev}" + (f" vlan {self.vlan}" if self.vlan else "")

    def _words(self) -> str:
        return " ".join((self.state, *self.flags))

    def command(self) -> str:
        return f"bridge -n {self.netns} fdb add {self._spec()} master {self._words()}"

    def describe(self) -> str:
        return f"bridge fdb {self._spec()} master {self.master} {self._words()} in {self.netns}"
