"""nft's library in netlab's process and the nft program write the same transaction (root).

Each test makes its own scratch namespaces (``nflib-<random>-...``, removed in
a finally) and checks what the kernel holds with the ``nft`` program itself
(``nft -j list table``, run as a process): through ``netlab.kernel.nft`` with
libnftables in the process (``NETLAB_NFT=library``) and with the program
forced (``NETLAB_NFT=process``), a table is written the same way, read back
the same way, and a transaction that fails in its last line changes nothing
and is reported on one line, in the same words.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from contextlib import contextmanager
from typing import Iterator

import pytest

from helpers import in_netns
from netlab.kernel import nfclose, nft
from netlab.kernel.netns import create_netns, make_tag, remove_netns

pytestmark = pytest.mark.root

MODES = ["library", "process"]
# kube-proxy's shapes in miniature: a verdict map keyed ip . proto . port, a service chain choosing an endpoint
# chain by numgen, an endpoint chain with DNAT.
TABLE = """add table ip nflib
add chain ip nflib services
add chain ip nflib service-web { }
add chain ip nflib endpoint-a
add chain ip nflib endpoint-b
add map ip nflib service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; }
add rule ip nflib services ip daddr . meta l4proto . th dport vmap @service-ips
add rule ip nflib service-web numgen random mod 2 vmap { 0 : goto endpoint-a, 1 : goto endpoint-b }
add rule ip nflib endpoint-a meta l4proto tcp dnat to 10.244.0.5:8080
add rule ip nflib endpoint-b meta l4proto tcp dnat to 10.244.1.5:8080
add element ip nflib service-ips { 10.96.0.20 . tcp . 80 : goto service-web }
"""
# Changes the table in its first two lines, then names a chain that does not exist: the kernel refuses the batch.
FAILING = """flush chain ip nflib service-web
add chain ip nflib extra
delete chain ip nflib no-such-chain
"""


@contextmanager
def scratch(*names: str) -> Iterator[list[str]]:
    tag = uuid.uuid4().hex[:6]
    made: list[str] = []
    try:
        for name in names:
            ns = f"nflib-{tag}-{name}"
            create_netns(ns, make_tag(f"nflib-{tag}", tag))
            made.append(ns)
        yield made
    finally:
        for ns in made:
            remove_netns(ns)


def kernel_view(ns: str) -> dict:
    """``nft -j list table ip nflib`` by the program: what the kernel holds."""
    return json.loads(in_netns(ns, "nft", "-j", "list", "table", "ip", "nflib", check=True).stdout)


def census(view: dict) -> dict[str, int]:
    """How many tables, chains, maps and rules the listing holds."""
    kinds = [next(iter(o)) for o in view["nftables"][1:]]
    return {kind: kinds.count(kind) for kind in sorted(set(kinds), key=kinds.index)}


def shape(view: dict) -> list:
    """The table without its handles (numbers the kernel gives out; two namespaces need not agree)."""
    def strip(obj):
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items() if k != "handle"}
        if isinstance(obj, list):
            return [strip(v) for v in obj]
        return obj
    return strip(view["nftables"][1:])


@pytest.mark.parametrize("mode", MODES)
def test_a_table_written_and_read_back(mode, monkeypatch):
    monkeypatch.setenv(nft.ENV, mode)
    with scratch("n1") as (ns,):
        assert nft.list_table(ns, "ip", "nflib") is None
        nft.run(ns, TABLE, "table ip nflib")
        kernel = kernel_view(ns)
        assert nft.list_table(ns, "ip", "nflib") == kernel
        assert census(kernel) == {"table": 1, "chain": 4, "map": 1, "rule": 4}
        (element,) = next(o["map"] for o in kernel["nftables"] if "map" in o)["elem"]
        assert element[1] == {"goto": {"target": "service-web"}}


def test_both_ways_leave_the_kernel_the_same_table(monkeypatch):
    with scratch("lib", "proc") as (lib_ns, proc_ns):
        monkeypatch.setenv(nft.ENV, "library")
        nft.run(lib_ns, TABLE)
        monkeypatch.setenv(nft.ENV, "process")
        nft.run(proc_ns, TABLE)
        assert shape(kernel_view(lib_ns)) == shape(kernel_view(proc_ns))


def test_a_failing_transaction_changes_nothing_and_says_so_on_one_line(monkeypatch):
    errors = {}
    with scratch("lib", "proc") as names:
        for mode, ns in zip(MODES, names):
            monkeypatch.setenv(nft.ENV, mode)
            nft.run(ns, TABLE)
            before = kernel_view(ns)
            with pytest.raises(nft.NftError) as info:
                nft.run(ns, FAILING, "table ip nflib")
            assert kernel_view(ns) == before  # not even the first two lines
            errors[mode] = str(info.value).replace(ns, "NS")
    assert errors["library"] == errors["process"]
    assert "\n" not in errors["library"]
    assert errors["library"] == ("NS: nft -f (table ip nflib) failed: /dev/stdin:3:23-35: Error: Could not process "
                                 "rule: No such file or directory (in: delete chain ip nflib no-such-chain)")


def test_a_thread_that_finds_the_library_busy_writes_through_the_program(monkeypatch):
    """Unset NETLAB_NFT and another thread in the library: this write cannot wait for it, it runs nft."""
    monkeypatch.delenv(nft.ENV, raising=False)
    monkeypatch.setattr(nft, "_holder_small", False)  # the thread in the library writes a whole table
    with scratch("n1") as (ns,):
        failures: list[BaseException] = []

        def write() -> None:
            try:
                nft.run(ns, TABLE)
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                failures.append(exc)

        with nft._library_lock:  # what another thread writing a node holds
            writer = threading.Thread(target=write)
            writer.start()
            writer.join(timeout=60)
            assert not writer.is_alive(), "the write waited for the library"
        assert not failures
        assert census(kernel_view(ns)) == {"table": 1, "chain": 4, "map": 1, "rule": 4}


def test_nodes_written_side_by_side(monkeypatch):
    """Threads writing several nodes at once (as `up` does), each through the library or the program,
    whichever is free: every node ends with the whole table."""
    monkeypatch.delenv(nft.ENV, raising=False)
    with scratch("n1", "n2", "n3", "n4") as names:
        failures: list[BaseException] = []

        def write(ns: str) -> None:
            try:
                nft.run(ns, TABLE)
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                failures.append(exc)

        threads = [threading.Thread(target=write, args=(ns,)) for ns in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not failures
        first = shape(kernel_view(names[0]))
        assert all(shape(kernel_view(ns)) == first for ns in names[1:])


def test_the_librarys_socket_outlives_its_context_then_is_closed(monkeypatch):
    """kernel/nfclose.py: the context's netfilter socket is held past nft_ctx_free (whose close would wait
    for the kernel to free the flushed rules) and closed on another thread; none is left open after, and
    the kernel holds each change."""
    monkeypatch.setenv(nft.ENV, "library")
    let_go: list[int] = []

    def recorded(fd: int) -> None:
        let_go.append(os.fstat(fd).st_ino)
        real(fd)

    real = nfclose.let_go
    monkeypatch.setattr(nfclose, "let_go", recorded)
    def netfilter_sockets() -> set[tuple[int, int]]:
        return {(fd, ino) for fd, ino in nfclose.sockets() if nfclose.is_netfilter(fd)}

    before = netfilter_sockets()
    with scratch("n1") as (ns,):
        nft.run(ns, TABLE)
        nft.run(ns, "flush chain ip nflib service-web\n")  # frees a rule and its anonymous map
        assert nfclose.wait_closed()
        assert netfilter_sockets() == before
        assert census(kernel_view(ns)) == {"table": 1, "chain": 4, "map": 1, "rule": 3}
        # The closing thread lives where the caller does, not in the node: no thread of this process stays
        # in the node's namespace (it would keep it alive, and `down` stops the processes it finds there).
        node = os.stat(f"/run/netns/{ns}").st_ino
        assert nfclose._thread is not None and nfclose._thread.is_alive()
        assert all(os.stat(f"/proc/self/task/{tid}/ns/net").st_ino != node for tid in os.listdir("/proc/self/task"))
        assert os.stat(f"/proc/self/task/{nfclose._thread.native_id}/ns/net").st_ino == \
            os.stat("/proc/thread-self/ns/net").st_ino
    # Per run: the socket that checks one can be opened, and the context's own (held: told apart from others).
    assert len(let_go) == 4 and len(set(let_go)) == 4
