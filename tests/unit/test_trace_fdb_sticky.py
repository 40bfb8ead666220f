"""trace names an FDB entry's sticky flag where the kernel has it, as `bridge -j fdb` does (`"flags": ["sticky"]`,
`"state": "static"`): a `static sticky` entry was said `(static)`, the same words as a plain static one, which
moves to the port its MAC is next seen on (a sticky one never does). The root test on a real bridge:
tests/integration/test_bridge_settings.py."""

from __future__ import annotations

from netlab.kernel import rtnl, rtnl_bridge
from netlab.trace.facts import FdbFacts
from netlab.trace.kernel import _fdb_state

STICKY = rtnl_bridge.NTF_STICKY


def test_sticky_is_said_with_every_state_the_kernel_has_it_with():
    master = rtnl.NTF_MASTER
    assert _fdb_state(rtnl.NUD_NOARP, STICKY | master) == "static sticky"
    assert _fdb_state(rtnl.NUD_PERMANENT, STICKY) == "permanent sticky"
    assert _fdb_state(rtnl.NUD_REACHABLE, STICKY) == "dynamic sticky"
    assert _fdb_state(rtnl.NUD_NOARP, master) == "static"
    assert _fdb_state(rtnl.NUD_PERMANENT) == "permanent"
    assert _fdb_state(rtnl.NUD_REACHABLE) == "learned"


def test_the_entry_reads_as_bridge_fdb_prints_it():
    e = FdbFacts(lladdr="02:00:00:00:00:aa", dev="v0", master="br0", state=_fdb_state(rtnl.NUD_NOARP, STICKY))
    assert e.text() == "02:00:00:00:00:aa dev v0 master br0 static sticky"
