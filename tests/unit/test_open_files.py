"""The open-files limit (RLIMIT_NOFILE) reached: said as itself, and never taken for an answer.

An EMFILE while reading a namespace's tag is no answer to "is this the lab's?": `down` under `ulimit -n 12`
took every namespace for someone else's, said "is down", exit 0, and deleted the state; an `up` failing under
`ulimit -n 24` said "rolled back" with the lab left whole and its state gone. On the fake kernel here, with
the error injected where the real one meets it; tests/integration/test_open_files_live.py runs the real CLI
under a real limit.
"""

from __future__ import annotations

import contextlib
import errno
import resource
import subprocess
import sys

import pytest
from fake_lab import IdleFeature, make_lab, up

from netlab.errors import down_command
from netlab import doctor
from netlab.errors import EXIT_ENVIRONMENT, ApplyFailed, EnvironmentNotReady, NetnsGone
from netlab.kernel import netns as nsmod, procsys
from netlab.kernel.fake import FakeKernel
from netlab.kernel.live import LiveKernel
from netlab.lab import teardown
from netlab.realize import state as state_mod, tags

lab = pytest.fixture(make_lab, name="lab")


def open_files(exc: BaseException) -> bool:
    """An EMFILE is what ``exc`` says, or was raised from."""
    while exc is not None:
        if getattr(exc, "errno", None) == errno.EMFILE or getattr(exc, "code", None) == errno.EMFILE:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class Stops(IdleFeature):
    """A feature whose stops are recorded: down's first change."""

    def __init__(self):
        self.calls: list[str] = []

    def stop_early(self, state):
        self.calls.append("stop early")
        return None

    def stop(self, state, netns_names, everything=False, early=None):
        self.calls.append("stop")
        return []


def unreadable_tags(kernel: FakeKernel) -> None:
    def read_tags(names):
        raise OSError(errno.EMFILE, "Too many open files", "tag")

    kernel.read_tags = read_tags  # type: ignore[method-assign]


def test_a_tag_read_that_fails_is_raised_not_taken_for_untagged(monkeypatch):
    monkeypatch.setattr(nsmod, "is_netns_mount", lambda name: True)
    monkeypatch.setattr(nsmod, "entered", lambda name: contextlib.nullcontext())
    monkeypatch.setattr(nsmod, "list_netns", lambda: ["lab1-a"])

    def emfile(keys):
        raise OSError(errno.EMFILE, "Too many open files", "tag")

    monkeypatch.setattr(procsys, "read_sysctls_here", emfile)
    kernel = object.__new__(LiveKernel)
    with pytest.raises(OSError) as caught:
        kernel.read_tag("lab1-a")
    assert caught.value.errno == errno.EMFILE
    with pytest.raises(OSError):  # down --force and `list` would leave it out as not the lab's
        tags.tagged_namespaces("lab1")

    def gone(keys):
        raise NetnsGone("lab1-a", "/run/netns/lab1-a")

    monkeypatch.setattr(procsys, "read_sysctls_here", gone)
    assert kernel.read_tag("lab1-a") is None  # deleted since: a definite answer


def test_down_that_cannot_read_the_tags_changes_nothing_and_keeps_the_state(lab):
    k = FakeKernel()
    up(lab, k)
    made, phase = sorted(k.ns), state_mod.load_state(lab.name).phase
    unreadable_tags(k)
    feature = Stops()
    with pytest.raises(EnvironmentNotReady) as caught:
        teardown.down(lab.name, k, [feature])
    assert caught.value.exit_code == EXIT_ENVIRONMENT and open_files(caught.value)
    assert "cannot tell which namespaces are its own" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert sorted(k.ns) == made and feature.calls == []  # nothing stopped, nothing deleted
    state = state_mod.load_state(lab.name)
    assert state is not None and state.phase == phase and sorted(state.netns) == made


def failing_restore(kernel: FakeKernel) -> None:
    """The first rule table written fails with EMFILE (the real `up` under `ulimit -n 24`)."""
    kernel.fail = lambda op: errno.EMFILE if op.verb == "restore" else None


def test_an_up_failing_at_the_limit_rolls_back_and_says_the_limit(lab):
    k = FakeKernel()
    failing_restore(k)
    with pytest.raises(ApplyFailed) as caught:
        up(lab, k)
    assert "rolled back" in str(caught.value) and caught.value.exit_code == EXIT_ENVIRONMENT
    assert open_files(caught.value)
    assert not k.ns and state_mod.load_state(lab.name) is None


def test_a_rollback_that_cannot_read_the_tags_keeps_the_state_and_does_not_say_rolled_back(lab):
    k = FakeKernel()
    failing_restore(k)
    real = k.apply

    def apply(ops, order=()):
        try:
            return real(ops, order)
        except Exception:
            unreadable_tags(k)  # the rollback's reads meet the limit too
            raise

    k.apply = apply  # type: ignore[method-assign]
    with pytest.raises(ApplyFailed) as caught:
        up(lab, k)
    text = str(caught.value)
    assert "the rollback failed too" in text and "; rolled back" not in text and "\n" not in text
    assert f"{down_command(lab.name)}" in text and caught.value.exit_code == EXIT_ENVIRONMENT
    state = state_mod.load_state(lab.name)
    assert k.ns and state is not None and set(k.ns) <= set(state.netns)  # every namespace left is named
    del k.read_tags  # the limit raised again: a plain down takes it all
    teardown.down(lab.name, k)
    assert not k.ns and state_mod.load_state(lab.name) is None


def _emfile() -> OSError:
    return OSError(errno.EMFILE, "Too many open files", "rp_filter")


def _wrapped() -> Exception:
    cause = _emfile()
    wrapped = RuntimeError(f"a reader of namespaces could not start: {cause}")
    wrapped.__cause__ = cause
    return wrapped


def _kernels() -> Exception:
    from netlab.kernel.base import KernelError

    try:
        raise KernelError(None, errno.EMFILE, "restore iptables nat in fk-n1: Too many open files")
    except KernelError as exc:
        try:
            raise ApplyFailed(f"{exc}; rolled back") from exc
        except ApplyFailed as failed:
            return failed


@pytest.mark.parametrize("error", [_emfile, _wrapped, _kernels])
def test_an_emfile_anywhere_is_one_line_naming_the_limit_exit_3(monkeypatch, capsys, error):
    import click

    from netlab.cli import boundary

    @click.command()
    def command():
        raise error()

    monkeypatch.setattr(boundary, "cli", command)
    with pytest.raises(SystemExit) as caught:
        boundary._run([], {})
    err = capsys.readouterr().err
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert caught.value.code == EXIT_ENVIRONMENT and err.count("\n") == 1, err
    assert err.startswith("netlab: ") and "Too many open files (EMFILE)" in err, err
    assert f"`ulimit -n` now {soft}" in err and "reinstall" not in err and "CONFIG_" not in err


def test_the_doctor_says_a_low_limit_first_and_alone(monkeypatch, lab):
    from netlab import doctor_host

    monkeypatch.setattr(resource, "getrlimit", lambda which: (12, 12))
    monkeypatch.setattr(resource, "setrlimit", lambda which, lim: None)
    checks = doctor.diagnose(lab, doctor.needs(lab))
    assert [c.name for c in checks] == ["open-files"] and checks[0].status == doctor.FAIL
    line = checks[0].line()
    assert "`ulimit -n` 12" in line and "ulimit -n 1024" in line and "reinstall" not in line
    with pytest.raises(EnvironmentNotReady, match="host open-files limit"):
        doctor.require_for(lab)
    monkeypatch.setattr(resource, "getrlimit", lambda which: (1024, 1024))
    assert doctor_host.check_open_files(7).status == doctor.OK


RAISED = """
import os, resource, sys
from netlab.kernel import nofile
nofile.raise_soft()
print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
pid = os.fork()
if pid == 0:
    nofile.as_given()
    os.execv(sys.executable, [sys.executable, "-c",
             "import resource; print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])"])
os.waitpid(pid, 0)
"""


def test_netlab_raises_its_own_soft_limit_and_gives_the_programs_it_execs_the_one_it_was_given():
    def low() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 256))

    out = subprocess.run([sys.executable, "-c", RAISED], capture_output=True, text=True, preexec_fn=low, check=True)
    assert out.stdout.split() == ["256", "64"]
