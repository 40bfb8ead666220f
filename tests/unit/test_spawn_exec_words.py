"""A container's command the kernel would not exec is said as a shell (and ``netlab exec``) says it, not as Python's
OSError prints (QA q7 #4: ``could not start: [Errno 2] No such file or directory: '/x'``)."""

from __future__ import annotations

import errno

import pytest

from netlab.api.exec import cannot_run
from netlab.kernel.spawning import exec_failed


@pytest.mark.parametrize("program, code, words", [
    ("/nonexistent", errno.ENOENT, "/nonexistent: command not found"),
    ("/etc/passwd", errno.EACCES, "/etc/passwd: permission denied"),
    ("/etc", errno.EACCES, "/etc: permission denied"),
    ("/bin/x", errno.ENOEXEC, "/bin/x: cannot execute: Exec format error"),
    ("/a\nb", errno.ENOENT, '"/a\\nb": command not found'),  # one line, whatever the name holds
])
def test_an_exec_that_failed_is_said_as_a_shell_says_it(program, code, words):
    assert exec_failed(program, code) == words
    assert "Errno" not in words


@pytest.mark.parametrize("program, exc", [("/nonexistent", FileNotFoundError(errno.ENOENT, "x")),
                                          ("/etc/passwd", PermissionError(errno.EACCES, "x"))])
def test_the_same_words_as_netlab_exec(program, exc):
    assert cannot_run(program, exc)[1] == f"netlab: {exec_failed(program, exc.errno)}"

