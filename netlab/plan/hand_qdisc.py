"""A root qdisc added by hand, as ``up`` deletes it and a rollback adds it again (netlab/impair/stray.py).

Apart from plan/impair.py, which reads the topology's model: the kernels (kernel/live.py, kernel/fake.py) apply it,
and a ``down`` that loads them loads no model.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, ClassVar

from netlab.plan.resource_base import Resource


def handle_of(body: bytes) -> int:
    """The handle of a qdisc a dump's message ``body`` gives (struct tcmsg's tcm_handle; 0: none, the kernel's)."""
    return struct.unpack_from("=I", body, 8)[0] if len(body) >= 12 else 0


@dataclass(frozen=True)
class HandQdisc(Resource):
    """A root qdisc someone added by hand on a planned interface no impairment names (impair/stray.py): never
    planned, only found. ``up`` deletes it through the run's journal; a rollback adds it again from ``body``,
    the message body its dump gave (its kind and options). What hung under it goes with it and does not come back
    with the body: ``under`` counts it as the dump found it (classes, qdiscs under them, filters), and the rollback
    says what of it the kernel does not show again (impair/stray.put_back_alone)."""

    kind: ClassVar[str] = "root qdisc"
    dev: str = ""
    words: str = ""  # as netlab says it: tbf rate 8kbit
    body: bytes = b""
    args: str = ""  # tc's words that make it (kernel/tc.qdisc_args): handle 8001: tbf rate 8000bit burst 3200b ...
    under: tuple[int, int, int] = (0, 0, 0)  # classes, qdiscs under them, filters

    @property
    def handle(self) -> int:
        """The handle up read: its deletion names it (RTM_DELQDISC), so the kernel refuses to delete another root
        qdisc someone put there since (EINVAL, "Invalid handle")."""
        return handle_of(self.body)

    @property
    def key(self) -> tuple:
        return ("root qdisc", self.netns, self.dev)

    def command(self) -> str:
        """The ``tc qdisc add`` that makes it, as every resource's command is what makes it (up's op deletes it:
        ``tc qdisc del dev DEV root``; its rollback's adds it, from ``body``)."""
        return f"tc -n {self.netns} qdisc add dev {self.dev} root {self.args or self.words}"

    def describe(self) -> str:
        return f"root qdisc {self.words} of {self.dev} in {self.netns}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "netns": self.netns, "dev": self.dev, "qdisc": self.words}
