"""kernel/nft.py without root: which way a transaction goes (libnftables or the nft program) and its errors.

The library and the program are replaced by fakes that answer as they do
(return code, output, nft's error text); the real ones are exercised in
tests/integration/test_nft_library.py.
"""

from __future__ import annotations

import contextlib
import json
import threading

import pytest

from netlab.errors import EnvironmentNotReady
from netlab.kernel import libnftables, nft
from netlab.kernel import netns as nsmod
from netlab.model import naming

LIB = object()  # stands for the loaded library: the fakes below never call into it
SYNTAX = (b"{path}:3:39-39: Error: syntax error, unexpected newline\n"
          b"add rule ip t d ip daddr 1.2.3.4 bogus\n                                      ^\n")


class Calls:
    def __init__(self) -> None:
        self.ways: list[str] = []


@pytest.fixture
def door(monkeypatch):
    """The library loads, namespaces are entered for nothing, and neither way touches a kernel."""
    calls = Calls()
    monkeypatch.delenv(nft.ENV, raising=False)
    monkeypatch.setattr(libnftables, "load", lambda: LIB)
    monkeypatch.setattr(nsmod, "entered", lambda name: contextlib.nullcontext())
    monkeypatch.setattr(nft, "_have_program", lambda: True)

    def run_file(lib, path):
        assert lib is LIB and nft._library_lock.locked()
        calls.ways.append("library")
        with open(path, "rb") as f:  # the payload, as nft opens it
            calls.ways.append(f.read().decode())
        return 0, b"", b""

    def run_process(netns, payload, what):
        calls.ways.append("process")
        return 0, b""

    monkeypatch.setattr(libnftables, "run_file", run_file)
    monkeypatch.setattr(nft, "_run_process", run_process)
    return calls


def test_the_library_when_it_loads_and_is_free(door):
    nft.run("nfl-a", "add table ip t\n")
    assert door.ways == ["library", "add table ip t\n"]
    assert not nft._library_lock.locked()


def test_the_program_when_the_library_is_busy_missing_or_not_wanted(door, monkeypatch):
    monkeypatch.setattr(nft, "_holder_small", False)  # another thread is in the library with a full sync
    with nft._library_lock:
        nft.run("nfl-a", "add table ip t\n")
    monkeypatch.setenv(nft.ENV, "process")
    nft.run("nfl-a", "add table ip t\n")
    monkeypatch.delenv(nft.ENV)
    monkeypatch.setattr(libnftables, "load", lambda: None)
    nft.run("nfl-a", "add table ip t\n")
    assert door.ways == ["process"] * 3


def test_an_unknown_choice_or_a_missing_library_asked_for_is_one_line(door, monkeypatch):
    monkeypatch.setenv(nft.ENV, "fast")
    with pytest.raises(EnvironmentNotReady, match=r"^NETLAB_NFT='fast': use library or process") as info:
        nft.run("nfl-a", "add table ip t\n")
    assert "\n" not in str(info.value)
    monkeypatch.setenv(nft.ENV, "library")
    monkeypatch.setattr(libnftables, "load", lambda: None)
    monkeypatch.setattr(libnftables, "load_error", lambda: "libnftables.so.1: cannot open shared object file")
    with pytest.raises(EnvironmentNotReady, match=r"^NETLAB_NFT=library: libnftables.so.1 cannot be loaded "
                                                  r"\(libnftables.so.1: cannot open shared object file\); run "
                                                  r"scripts/setup.sh \(package libnftables1\)$"):
        nft.run("nfl-a", "add table ip t\n")
    assert door.ways == []


def test_the_librarys_error_reads_as_nfts_on_one_line(door, monkeypatch):
    """nft names its input by the path it opened (/proc/self/fd/N); the error names it as ``nft -f -`` does."""
    monkeypatch.setattr(libnftables, "run_file", lambda lib, path: (-1, b"", SYNTAX.replace(b"{path}", path.encode())))
    with pytest.raises(nft.NftError) as info:
        nft.run("nfl-a", "add table ip t\nadd chain ip t d\nadd rule ip t d ip daddr 1.2.3.4 bogus\n", "table ip t")
    assert str(info.value) == ("nfl-a: nft -f (table ip t) failed: /dev/stdin:3:39-39: Error: syntax error, unexpected "
                               "newline (in: add rule ip t d ip daddr 1.2.3.4 bogus)")
    assert not nft._library_lock.locked()


def test_the_lock_is_let_go_when_the_library_raises(door, monkeypatch):
    def broken(lib, path):
        raise OSError(24, "Too many open files")
    monkeypatch.setattr(libnftables, "run_file", broken)
    with pytest.raises(OSError):
        nft.run("nfl-a", "add table ip t\n")
    assert not nft._library_lock.locked()


def test_a_missing_namespace_is_named_both_ways(monkeypatch):
    """The real ``entered`` (no root needed to fail): the library's way says what the program's way says."""
    monkeypatch.setattr(libnftables, "load", lambda: LIB)
    monkeypatch.setattr(naming, "NETNS_DIR", "/nonexistent-netns-dir")  # where netns_path looks
    monkeypatch.setenv(nft.ENV, "library")
    with pytest.raises(nft.NftError, match=r"^nfl-gone: namespace not found while writing nftables rules$"):
        nft.run("nfl-gone", "add table ip t\n")
    with pytest.raises(nft.NftError, match=r"^nfl-gone: namespace not found while reading nftables$"):
        nft.list_table("nfl-gone", "ip", "kube-proxy")
    assert not nft._library_lock.locked()


@pytest.mark.parametrize("answer,expected", [
    ((0, json.dumps({"nftables": [{"metainfo": {}}]}).encode(), b""), {"nftables": [{"metainfo": {}}]}),
    ((1, b"", b"Error: No such file or directory\nlist table ip kube-proxy\n              ^^^^^^^^^^\n"), None),
])
def test_list_table_answers(door, monkeypatch, answer, expected):
    seen = []

    def run_command(lib, command, json=False):
        seen.append((command, json))
        return answer
    monkeypatch.setattr(libnftables, "run_command", run_command)
    assert nft.list_table("nfl-a", "ip", "kube-proxy") == expected
    assert seen == [("list table ip kube-proxy", True)]


def test_list_table_text_is_nfts_own_listing_through_the_same_door(door, monkeypatch):
    """inspect's text: ``nft list table`` (no -j) by the library, or the program when the library is busy."""
    seen = []
    answers = iter([(0, b"table ip kube-proxy {\n}\n", b""),
                    (1, b"", b"Error: No such file or directory\nlist table ip kube-proxy\n")])

    def run_command(lib, command, json=False):
        seen.append((command, json))
        return next(answers)
    monkeypatch.setattr(libnftables, "run_command", run_command)
    assert nft.list_table_text("nfl-a", "ip", "kube-proxy") == "table ip kube-proxy {\n}\n"
    assert nft.list_table_text("nfl-a", "ip", "kube-proxy") is None  # no such table
    assert seen == [("list table ip kube-proxy", False)] * 2 and not nft._library_lock.locked()
    argv = []

    def read_process(netns, words, json_output):
        argv.append(["nft"] + (["-j"] if json_output else []) + words)
        return 0, b"table ip kube-proxy {\n}\n", b""
    monkeypatch.setattr(nft, "_read_process", read_process)
    with nft._library_lock:  # another thread is in the library: the program, without -j
        assert nft.list_table_text("nfl-a", "ip", "kube-proxy") == "table ip kube-proxy {\n}\n"
    assert argv == [["nft", "list", "table", "ip", "kube-proxy"]]
    monkeypatch.setattr(libnftables, "run_command", lambda lib, command, json=False: (
        -1, b"", b"netlink: Error: cache initialization failed: Operation not permitted\n"))
    with pytest.raises(nft.NftError, match=r"^nfl-a: nft list table ip kube-proxy failed: netlink: Error: cache "):
        nft.list_table_text("nfl-a", "ip", "kube-proxy")


def test_list_table_errors_are_one_line(door, monkeypatch):
    monkeypatch.setattr(libnftables, "run_command", lambda lib, command, json=False: (
        -1, b"", b"netlink: Error: cache initialization failed: Operation not permitted\n"))
    with pytest.raises(nft.NftError, match=r"^nfl-a: nft -j list table ip kube-proxy failed: netlink: Error: cache "
                                           r"initialization failed: Operation not permitted$"):
        nft.list_table("nfl-a", "ip", "kube-proxy")
    monkeypatch.setattr(libnftables, "run_command", lambda lib, command, json=False: (0, b"{not json", b""))
    with pytest.raises(nft.NftError, match=r"^nfl-a: nft -j printed something that is not JSON$"):
        nft.list_table("nfl-a", "ip", "kube-proxy")


@pytest.mark.parametrize("table", ["kube proxy", "x; flush ruleset", "", "a\nb"])
def test_a_table_name_nft_would_read_as_more_words_is_refused(door, table):
    with pytest.raises(nft.NftError, match=r"^nfl-a: nft cannot name the table ip .* unquoted$"):
        nft.list_table("nfl-a", "ip", table)
    assert door.ways == []


def test_loading_a_library_that_is_not_there(monkeypatch):
    monkeypatch.setattr(libnftables, "SONAME", "libnftables-netlab-missing.so.1")
    monkeypatch.setattr(libnftables, "_lib", None)
    monkeypatch.setattr(libnftables, "_load_error", None)
    assert libnftables.load() is None
    assert "libnftables-netlab-missing.so.1" in (libnftables.load_error() or "")


def test_a_child_forked_while_another_thread_is_in_the_library_runs_the_program(door, monkeypatch):
    """The child has no thread to let the lock go (it would wait for ever, even with NETLAB_NFT=library)
    and the library may be half-way through that thread's call: the child runs the program; the parent
    keeps the library, and a child forked while it is free has it too."""
    from netlab.kernel.child import run_in_child

    monkeypatch.setenv(nft.ENV, "library")

    def way() -> str:  # in the child: its own copy of the calls
        door.ways.clear()
        nft.run("nfl-a", "add table ip t\n")
        return door.ways[0]

    with nft._library_lock:  # another thread is in the library
        assert run_in_child(way, timeout=10) == "process"
    assert run_in_child(way, timeout=10) == "library"
    door.ways.clear()
    nft.run("nfl-a", "add table ip t\n")
    assert door.ways[0] == "library"


class WatchedLock:
    """The library's lock, telling the test when a thread started to wait for it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waiting = threading.Event()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if blocking:
            self.waiting.set()
        return self.lock.acquire(blocking, timeout)

    def release(self) -> None:
        self.lock.release()

    def locked(self) -> bool:
        return self.lock.locked()


def test_a_small_transaction_waits_for_a_small_one_in_the_library(door, monkeypatch):
    """A partial sync behind another partial sync takes its turn in the library (~10 ms each) rather than
    start the program (25-40 ms); behind a full sync, or itself a full sync, it runs the program at once."""
    lock = WatchedLock()
    monkeypatch.setattr(nft, "_library_lock", lock)
    monkeypatch.setattr(nft, "SMALL_WAIT", 60.0)
    lock.acquire(blocking=False)  # another thread writes a small transaction
    monkeypatch.setattr(nft, "_holder_small", True)
    writer = threading.Thread(target=nft.run, args=("nfl-a", "add table ip t\n"))
    writer.start()
    assert lock.waiting.wait(10)  # it waits for its turn ...
    assert door.ways == []
    lock.release()
    writer.join(10)
    assert door.ways == ["library", "add table ip t\n"]  # ... and takes it
    assert not lock.locked()

    door.ways.clear()
    big = "add table ip t\n" + "# a full sync\n" * (nft.SMALL // 14 + 1)
    for holder_small, payload in ((True, big), (False, "add table ip t\n")):
        lock.acquire(blocking=False)
        monkeypatch.setattr(nft, "_holder_small", holder_small)
        nft.run("nfl-a", payload)
        lock.release()
    assert door.ways == ["process", "process"]


def test_a_small_transaction_that_waited_too_long_runs_the_program(door, monkeypatch):
    monkeypatch.setattr(nft, "SMALL_WAIT", 0.01)
    monkeypatch.setattr(nft, "_holder_small", True)
    with nft._library_lock:  # a small transaction that takes its time
        nft.run("nfl-a", "add table ip t\n")
    assert door.ways == ["process"]
