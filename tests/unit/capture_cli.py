"""`netlab capture --lab lab a:eth0` with its kernel faked, for the unit tests that run the command in process: a
running lab "lab" (VXLAN on port 8472) whose pod a is namespace lab-a, with one link, eth0; root or not."""

from __future__ import annotations

from types import SimpleNamespace


class NoKernel:
    """trace.kernel.LiveKernel's stand-in (and a base for trace.capture.Capture's): eth0 is the one link."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def links(self, netns):
        return {"eth0": None}


def fake_capture(monkeypatch, capture, live=None, described: bool = False) -> None:
    """The command reads frames through ``capture`` (trace.capture.Capture's stand-in) and ``live`` (its loop's,
    when given); ``described``: without scapy, each frame printed as ``frame <its second>``."""
    import netlab.cli.trace as cli_trace
    from netlab.trace import capture as cap
    from netlab.trace import kernel as tkernel

    lab = SimpleNamespace(name="lab", mode="vxlan", topo=SimpleNamespace(
        network=SimpleNamespace(vxlan=SimpleNamespace(port=8472))))
    monkeypatch.setattr(cli_trace, "require_root", lambda: None)
    monkeypatch.setattr(cli_trace, "_running_lab", lambda name, topology: lab)
    monkeypatch.setattr(cli_trace, "_netns_of", lambda lab, name: "lab-a")
    monkeypatch.setattr(tkernel, "LiveKernel", NoKernel)
    monkeypatch.setattr(cap, "Capture", capture)
    if live is not None:
        monkeypatch.setattr(cap, "live", live)
    if described:
        monkeypatch.setattr(cap, "scapy_layers", lambda port: None)
        monkeypatch.setattr(cap, "describe", lambda frame, port, verbose=False: f"frame {int(frame.ts)}")
