"""capture's reading loop at Ctrl-C (netlab/trace/capture.py live): the frames already queued still count; what
capture says of a capture that caught nothing (netlab/cli/trace.py)."""

from __future__ import annotations

import pytest

from netlab.trace.capture import Frame, live


class _Interrupted:
    """A capture whose wait is cut short by Ctrl-C after one frame, with two more queued on its socket."""

    ended = None
    notes: list[str] = []

    def __init__(self) -> None:
        self.waits = 0

    def wait(self, deadline: float, into: list[Frame]) -> list[Frame]:
        self.waits += 1
        if self.waits == 1:
            into.append(_frame(1))
            return [_frame(1)]
        raise KeyboardInterrupt

    def drain(self) -> list[Frame]:
        return [_frame(2), _frame(3)]


def _frame(n: int) -> Frame:
    return Frame("lab-a", "eth0", "in", float(n), b"\x00" * 14, 14)


@pytest.mark.parametrize("count,got", [(10, [1, 2, 3]), (2, [1, 2])])
def test_ctrl_c_keeps_the_queued_frames_up_to_the_count_and_still_ends_the_capture(count, got):
    seen: list[Frame] = []
    with pytest.raises(KeyboardInterrupt):
        live(_Interrupted(), count, 60, seen.append)  # type: ignore[arg-type]
    assert [int(f.ts) for f in seen] == got


class _Batch:
    """A capture whose one wait reads three frames at once (a loaded machine's reader came late), one more queued
    on its socket."""

    ended = None
    notes: list[str] = []

    def wait(self, deadline: float, into: list[Frame]) -> list[Frame]:
        into += [_frame(1), _frame(2), _frame(3)]
        return [_frame(1), _frame(2), _frame(3)]

    def drain(self) -> list[Frame]:
        return [_frame(4)]


def test_ctrl_c_while_a_batch_read_at_once_is_handed_on_keeps_the_rest_of_it():
    """The Ctrl-C landed while the first of three frames read at once was printed: the other two were dropped
    with the batch, and only the socket's queue was drained (CI: 6 of 12 DNS frames). The frame being handed on is
    handed on again, whole."""
    seen: list[int] = []

    def on_frame(frame: Frame) -> None:
        if not seen and not getattr(on_frame, "interrupted", False):
            on_frame.interrupted = True  # type: ignore[attr-defined]
            raise KeyboardInterrupt  # as Python raises it in the middle of the printing
        seen.append(int(frame.ts))

    with pytest.raises(KeyboardInterrupt):
        live(_Batch(), 10, 60, on_frame)  # type: ignore[arg-type]
    assert seen == [1, 2, 3, 4]


@pytest.mark.parametrize("stopped,why", [("timeout", "the timeout ran out"), ("interrupted", "stopped by Ctrl-C"),
                                        ("terminated", "stopped by SIGTERM")])
def test_a_capture_of_no_frames_says_where_for_how_long_and_why_it_stopped(stopped, why):
    from netlab.cli.trace import no_frames_line
    from netlab.errors import netlab_command

    line = no_frames_line("lab-a", "eth0", stopped, 10.04, "lab")
    assert line.startswith(f"netlab: 0 frames captured on lab-a eth0 in 10.0 s ({why}): ") and "\n" not in line
    assert line.endswith(f"e.g. `{netlab_command('trace --lab lab SRC DST')}`")  # as typed, whatever lab is up


def test_a_capture_ended_by_ctrl_c_exits_0_as_tcpdump_and_the_readme_and_help_say_so(monkeypatch):
    """Ctrl-C is how a capture ends (as tcpdump's, which exits 0 at SIGINT), not an interruption (130): the
    frames that came are printed, exit 0. The README's exit-code list names it as the exception, --help too."""
    import re
    from pathlib import Path

    from capture_cli import NoKernel, fake_capture
    from cli_inprocess import run_cli

    class _Capture(NoKernel):
        ended = None

        def __init__(self, namespaces, iface, bpf=None):
            pass

    def live(capture, count, timeout, show, note=None):
        show(_frame(1))
        raise KeyboardInterrupt  # Ctrl-C after one frame

    fake_capture(monkeypatch, _Capture, live, described=True)
    proc = run_cli("capture", "--lab", "lab", "a:eth0", "--timeout", "60")
    assert (proc.returncode, proc.stdout) == (0, "frame 1\n"), proc.stderr
    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())
    codes = readme[readme.index("Exit codes: 0"):readme.index("Shell completion:")]
    assert "130 interrupted by Ctrl-C" in codes and re.search(r"`capture` is the exception: .*exits 0", codes), codes
    assert "exits 0, as tcpdump does" in " ".join(run_cli("capture", "--help").stdout.split())
