"""The programs netlab runs for the kernel start in a process group of their own, deaf to SIGINT and SIGTERM from
their birth (kernel/own_group.py): between the fork and the child's own setpgid the child is still in netlab's
group, and a Ctrl-C to the group then killed a watcher's ``iptables-restore`` (the apply rolled back)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from netlab.kernel import own_group

# The program signals itself as the group's Ctrl-C would have in the instant before its setpgid, then says it lived
SELF_SIGNALLED = "import os, signal, sys; os.kill(os.getpid(), signal.{sig}); print('alive', os.getpgrp()); " \
                 "print('blocked', bin(int([l for l in open('/proc/self/status') if l.startswith('SigBlk')][0]" \
                 ".split()[1], 16)))"


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_stop_signal_that_reaches_the_program_at_its_birth_does_not_kill_it(sig):
    done = own_group.run([sys.executable, "-I", "-c", SELF_SIGNALLED.format(sig=sig)], timeout=30, text=True)
    assert done.returncode == 0, done
    alive, group = done.stdout.split("\n")[0].split()
    assert alive == "alive" and int(group) not in (os.getpgrp(), 0), done.stdout
    blocked = int(done.stdout.split("\n")[1].split()[1], 2)
    for stop in (signal.SIGINT, signal.SIGTERM):
        assert blocked & (1 << (stop - 1)), done.stdout


def test_the_callers_mask_is_as_it_was_and_input_reaches_the_program():
    before = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    done = own_group.run([sys.executable, "-I", "-c", "import sys; print(sys.stdin.read().upper())"], b"rules\n",
                         timeout=30)
    assert done.returncode == 0 and done.stdout == b"RULES\n\n", done
    assert signal.pthread_sigmask(signal.SIG_BLOCK, set()) == before
    # no input: the program reads /dev/null, not the terminal
    assert own_group.run([sys.executable, "-I", "-c", "import sys; print(repr(sys.stdin.read()))"], timeout=30,
                         text=True).stdout == "''\n"


@pytest.mark.parametrize("program", ["iptables-restore", "iptables-legacy-restore", "iptables-save", "nft"])
def test_the_kernels_programs_keep_the_mask_they_are_born_with(program):
    """A program that unblocked SIGINT or SIGTERM as it starts (Go's runtime does: CNI plugins are not started so)
    would take one left pending at its birth: netlab's programs for the kernel do not. Sent both, pending, before
    its exec (a Python shim that blocks them, signals itself, then execs the program), it runs to its end."""
    from netlab.kernel.netns import binary

    shim = ("import os, signal, sys; signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM}); "
            "os.kill(os.getpid(), signal.SIGINT); os.kill(os.getpid(), signal.SIGTERM); os.execv(sys.argv[1], "
            "sys.argv[1:])")
    done = subprocess.run([sys.executable, "-I", "-c", shim, binary(program), "--version"], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0 and done.stdout, done
