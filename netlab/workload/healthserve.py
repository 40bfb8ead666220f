"""The echo server's side of kube-proxy's health checks (workload/health.py asks, echoserver.py holds them).

Each check is a listening socket opened in a node's network namespace (a
socket keeps the namespace it was opened in), kept with that namespace's
identity for good (its pin's inode and change time: processes.ns_birth). A
node's namespace deleted and made again under its name is a new one: a check
still listening in the old one is not served there (``served`` leaves it out,
so ``status`` names it), and the next ``sync`` listens anew in the new one. So is a check whose listening
socket the kernel destroyed (``ss -K``: echo.listens, EchoServer.forget_lost).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Iterator

from netlab.kernel import netns as nsmod
from netlab.kernel.processes import ns_birth
from netlab.model.naming import netns_path
from netlab.workload.echo import Served, listen

if TYPE_CHECKING:
    from netlab.workload.echoserver import EchoServer

# Where a check listens: (node namespace, port, that namespace's identity when it listened)
Where = tuple[str, int, "tuple[int, int, int] | None"]


def _birth(netns: str) -> tuple[int, int, int] | None:
    try:
        return ns_birth(netns_path(netns))
    except ValueError:  # no namespace name of a lab's
        return None


def sync(server: EchoServer, specs: list[dict]) -> Iterator[str]:
    """Serve exactly these health checks (plan/health.py's specs), kube-proxy's on each node: one that stays on
    its namespace (the same one) and port gets its new answer in place; one that moves is listened for anew; the
    others are dropped. ``R <id>`` for each served, ``E <id> <why>`` for one that cannot be."""
    wanted = {str(s.get("id")): s for s in specs}
    server.lost_checks.clear()  # the whole set is served from now on: a check lost before is listened for anew
    for hid in [h for h in server.health if h not in wanted]:
        server.loop.drop(hid)
        del server.health[hid]
    for hid, spec in wanted.items():
        try:
            netns, port = str(spec["netns"]), int(spec["port"])
            answer = (int(spec["status"]), str(spec["body"]).encode())
        except (KeyError, TypeError, ValueError):
            yield f"E {hid} not a health check"
            continue
        old = server.health.get(hid)
        if old is not None and old[0] == (netns, port, _birth(netns)):
            old[1].answer = answer  # what the next request gets: kube-proxy's SyncEndpoints
            yield f"R {hid}"
            continue
        if old is not None:
            server.loop.drop(hid)
            del server.health[hid]
        try:
            # A socket keeps the namespace it was opened in: the thread goes back to the server's own.
            with nsmod.entered(netns):
                socks = listen([(port, "TCP")])
                birth = _birth(netns)
        except Exception as exc:  # noqa: BLE001 - any reason (a gone namespace, a port taken) is the answer
            yield f"E {hid} {str(exc).replace(chr(10), ' ')[:200]}"
            continue
        served = Served(hid, str(spec.get("node", "")), None, answer, proxy=bool(spec.get("proxy")))
        server.loop.serve(served, socks)
        server.health[hid] = ((netns, port, birth), served)
        yield f"R {hid}"


def lost(server: EchoServer, hid: str) -> None:
    """A check whose listening socket the kernel destroyed (``ss -K``): no longer served (``served`` leaves it out,
    so ``status`` names it); the next ``sync`` listens anew."""
    server.loop.drop(hid)
    server.health.pop(hid, None)
    server.lost_checks.add(hid)


def prune(server: EchoServer) -> None:
    """Checks whose node namespace was deleted (its pin gone, or another namespace's now): closed, as :func:`lost`.
    A socket keeps the namespace it was opened in alive, and with it the namespace's links: a node deleted by hand
    (``ip netns delete``) lived on, its eth0 still a port of the underlay's bridge, until the next ``up``; now the
    kernel frees it within a round of the server's loop, as it does a node no socket holds."""
    for hid, ((netns, _port, birth), _what) in list(server.health.items()):
        if _birth(netns) != birth:
            lost(server, hid)


def served(server: EchoServer) -> Iterator[str]:
    """``C <id> <port> <status> <localEndpoints>`` for each health check served (status' drift): -1 for none
    (kube-proxy's own health server); a check whose node namespace is no longer the one it listens in is not (it
    is closed now, :func:`prune`, as the loop would within its round)."""
    prune(server)
    for hid, ((_netns, port, _birth_then), what) in server.health.items():
        status = what.answer[0] if what.answer else 0
        local = json.loads(what.answer[1]).get("localEndpoints", -1) if what.answer and not what.proxy else -1
        yield f"C {hid} {port} {status} {local}"
