"""capture's reading loop at Ctrl-C (netlab/trace/capture.py live): the frames already queued still count; what
capture says of a capture that caught nothing (netlab/cli/trace.py)."""

from __future__ import annotations

import pytest

from netlab.trace.capture import Frame, live


class _Interrupted:
    """A capture whose wait is cut short by Ctrl-C after one frame, with two more queued on its socket."""

    def __init__(self) -> None:
        self.waits = 0

    def wait(self, deadline: float) -> list[Frame]:
        self.waits += 1
        if self.waits == 1:
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


@pytest.mark.parametrize("stopped,why", [("timeout", "the timeout ran out"), ("interrupted", "stopped by Ctrl-C")])
def test_a_capture_of_no_frames_says_where_for_how_long_and_why_it_stopped(stopped, why):
    from netlab.cli.trace import no_frames_line

    line = no_frames_line("lab-a", "eth0", stopped, 10.04)
    assert line.startswith(f"netlab: 0 frames captured on lab-a eth0 in 10.0 s ({why}): ") and "\n" not in line
