"""capture when the interface it reads goes down or away (QA q15 defect 2): ``down``, an ``up`` that removed the
pod, ``break bridge-port-down`` on the captured port. A packet socket bound to a device reads ENETDOWN once when
the device goes down and reads on once it is up (tcpdump goes on); a device deleted leaves the socket bound to no
device. Before, the ENETDOWN ended capture in a Python traceback (OSError: [Errno 100] Network is down)."""

from __future__ import annotations

import errno
import os

import pytest

from netlab.trace import capture as cap
from netlab.trace.capture import Frame, _read_all, live


class _Socket:
    """A packet socket's reads, in order: bytes are a frame, an errno is an error read, then EAGAIN for good."""

    def __init__(self, *reads: object, name: str = "eth0"):
        self.reads = list(reads)
        self.name = name

    def recvmsg(self, *args: object):
        if not self.reads:
            raise BlockingIOError(errno.EAGAIN, "again")
        r = self.reads.pop(0)
        if isinstance(r, int):
            raise OSError(r, os.strerror(r))
        return r, [], 0, (self.name, 3, 4 if r == b"out" else 0, 1, b"")

    def getsockname(self):
        return (self.name, 3, 0, 1, b"")


@pytest.mark.parametrize("code", [errno.ENETDOWN, errno.ENXIO, errno.ENODEV])
def test_a_read_that_says_the_link_went_down_or_away_is_told_and_the_frames_around_it_are_kept(code):
    told: list[tuple[str, int]] = []
    frames = _read_all("lab-a", _Socket(b"in", code, b"out"), lambda ns, c: told.append((ns, c)))  # type: ignore
    assert [f.direction for f in frames] == ["in", "out"]
    assert told == [("lab-a", code)]


def test_a_link_error_said_again_and_again_ends_the_read_instead_of_spinning():
    told: list[int] = []
    s = _Socket(*([errno.ENETDOWN] * 50))
    assert _read_all("lab-a", s, lambda ns, c: told.append(c)) == []  # type: ignore[arg-type]
    assert told == [errno.ENETDOWN] and len(s.reads) == 48


def test_another_errno_is_not_taken_for_a_link_event():
    with pytest.raises(OSError) as exc:
        _read_all("lab-a", _Socket(errno.EBADF), lambda ns, c: None)  # type: ignore[arg-type]
    assert exc.value.errno == errno.EBADF


def _capture(sock: _Socket, tmp_path, monkeypatch) -> cap.Capture:
    """A one-interface Capture over a stand-in socket, its namespace a file of tmp_path."""
    path = tmp_path / "lab-a"
    path.write_text("")
    monkeypatch.setattr(cap, "netns_path", lambda ns: str(tmp_path / ns))
    monkeypatch.setattr(cap.fdwait, "ready", lambda socks, t: list(socks))
    c = cap.Capture([], iface="eth0")
    c.socks = {"lab-a": sock}  # type: ignore[dict-item]
    st = os.stat(path)
    c.homes = {"lab-a": (st.st_dev, st.st_ino)}
    return c


DOWN = "lab-a eth0 went down; still capturing (frames again once it is up)"


def test_a_link_down_is_a_note_once_a_check_after_it_finds_the_device_and_the_capture_goes_on(tmp_path, monkeypatch):
    c = _capture(_Socket(b"in", errno.ENETDOWN), tmp_path, monkeypatch)
    assert [f.direction for f in c.wait(float("inf"))] == ["in"]
    assert c.notes == [] and c.ended is None  # a deleted device goes down first: not said yet
    assert c.wait(float("inf")) == []  # the next check: the device is there, down
    assert c.notes == [DOWN] and c.ended is None
    c.socks["lab-a"].reads = [b"out"]  # type: ignore[attr-defined]  # up again: frames again
    assert [f.direction for f in c.wait(float("inf"))] == ["out"] and c.ended is None and c.notes == [DOWN]


def test_a_device_deleted_after_its_down_was_read_is_said_deleted_only(tmp_path, monkeypatch):
    """QA (closing44 Left): capture said "went down" just before "deleted": a device deleted goes down first
    (ENETDOWN), and its socket is unbound a moment later, often after the read. Only the deletion is said."""
    sock = _Socket(b"in", errno.ENETDOWN)
    c = _capture(sock, tmp_path, monkeypatch)
    assert [f.direction for f in c.wait(float("inf"))] == ["in"] and c.ended is None
    sock.name = ""  # unbound: deleted
    assert c.wait(float("inf")) == []
    assert c.ended == "interface eth0 of lab-a was deleted (its pod or the lab taken down?)" and c.notes == []


@pytest.mark.parametrize("deleted", [False, True])
def test_a_down_still_held_when_the_capture_stops_is_told_or_said_deleted(tmp_path, monkeypatch, deleted):
    sock = _Socket(b"in", errno.ENETDOWN)
    c = _capture(sock, tmp_path, monkeypatch)
    assert live(c, 1, 3600, lambda f: None, lambda note: None) == 1  # its count: stops after that read
    c.held, c.notes = [DOWN], []
    sock.name = "" if deleted else "eth0"
    c.last_check()
    assert (c.notes, c.ended) == (([], "interface eth0 of lab-a was deleted (its pod or the lab taken down?)")
                                  if deleted else ([DOWN], None))


def test_a_deleted_device_ends_the_capture_with_its_frames_kept(tmp_path, monkeypatch):
    sock = _Socket(b"in", errno.ENETDOWN, name="")  # deleted: the socket is bound to no device, its name reads ""
    c = _capture(sock, tmp_path, monkeypatch)
    assert [f.direction for f in c.wait(float("inf"))] == ["in"]
    assert c.ended == "interface eth0 of lab-a was deleted (its pod or the lab taken down?)" and c.notes == []
    assert c.wait(float("inf")) == [] and c.notes == []


def test_a_deleted_namespace_ends_the_capture(tmp_path, monkeypatch):
    c = _capture(_Socket(), tmp_path, monkeypatch)
    (tmp_path / "other").write_text("")
    os.replace(tmp_path / "other", tmp_path / "lab-a")  # the name again, another file: another namespace
    c.wait(float("inf"))
    assert c.ended == "namespace lab-a was deleted (the lab taken down?)"


def test_live_hands_on_the_notes_and_stops_when_the_capture_ended(tmp_path, monkeypatch):
    c = _capture(_Socket(b"in", errno.ENETDOWN, b"in"), tmp_path, monkeypatch)
    calls = []

    def wait(deadline: float, into: list[Frame]) -> list[Frame]:
        calls.append(1)
        if len(calls) == 2:
            c.socks["lab-a"].name = ""  # type: ignore[attr-defined]  # deleted after the first read
        return cap.Capture.wait(c, deadline, into)

    monkeypatch.setattr(c, "wait", wait)
    seen: list[str] = []
    notes: list[str] = []
    assert live(c, 100, 3600, lambda f: seen.append(f.direction), notes.append) == 2
    assert seen == ["in", "in"] and notes == [] and c.ended and len(calls) == 2  # deleted: not said down


def test_capture_whose_interface_is_deleted_prints_its_frames_says_so_in_one_line_and_exits_1(monkeypatch):
    from capture_cli import NoKernel, fake_capture
    from cli_inprocess import run_cli

    class _Gone(NoKernel):
        ended = None

        def __init__(self, namespaces, iface, bpf=None):
            self.waits = 0
            self.notes: list[str] = []

        def last_check(self):
            pass

        def wait(self, deadline, into):  # down (told once the device was seen after it), deleted later
            self.waits += 1
            if self.waits == 1:
                self.notes.append("lab-a eth0 went down; still capturing (frames again once it is up)")
                into.append(Frame("lab-a", "eth0", "in", 1.0, b"", 14))
                return into[-1:]
            self.ended = "interface eth0 of lab-a was deleted (its pod or the lab taken down?)"
            into.append(Frame("lab-a", "eth0", "in", 2.0, b"", 14))
            return into[-1:]

    fake_capture(monkeypatch, _Gone, described=True)
    proc = run_cli("capture", "--lab", "lab", "a:eth0", "--timeout", "60")
    assert (proc.returncode, proc.stdout) == (1, "frame 1\nframe 2\n"), proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[1:] == ["netlab: lab-a eth0 went down; still capturing (frames again once it is up)",
                         "netlab: capture on lab-a eth0 ended after 2 frames in 0.0 s: interface eth0 of lab-a was "
                         "deleted (its pod or the lab taken down?)"], proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_ctrl_c_that_lands_as_frames_are_read_loses_none_of_them(tmp_path, monkeypatch):
    """A Ctrl-C that came while a read was taking frames off the socket (here: as the second of three is read)
    takes effect once the frames are the caller's: `capture` stopped as the last DNS answer came printed 11 of 12
    frames on a loaded machine (the frames read in that call went with its KeyboardInterrupt)."""
    import signal

    class _Interrupting(_Socket):
        def recvmsg(self, *args: object):
            if len(self.reads) == 2:
                signal.raise_signal(signal.SIGINT)  # Python raises it at its next check, inside the read loop
            return super().recvmsg(*args)

    c = _capture(_Interrupting(b"in", b"out", b"in"), tmp_path, monkeypatch)
    seen: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        live(c, 100, 3600, lambda f: seen.append(f.direction))
    assert seen == ["in", "out", "in"]
