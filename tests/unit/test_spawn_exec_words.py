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



def _script(tmp_path, first_line: bytes, name: str = "bad.sh") -> str:
    path = tmp_path / name
    path.write_bytes(first_line + b"\necho hi\n")
    path.chmod(0o755)
    return str(path)


def test_a_script_whose_interpreter_is_missing_is_not_command_not_found(tmp_path):
    """QA q11 5: a script whose ``#!`` names no file was "command not found" in up and exec, though it is there;
    execve's ENOENT is its interpreter's. Said as runc and bash before 5.2 say it: the interpreter named."""
    script = _script(tmp_path, b"#!/nonexistent/interp -x")
    words = f"{script}: bad interpreter /nonexistent/interp: No such file or directory"
    assert exec_failed(script, errno.ENOENT) == words
    assert cannot_run(script, FileNotFoundError(errno.ENOENT, "x")) == (127, f"netlab: {words}")
    # found on PATH by its name, as execvp finds it
    assert cannot_run("bad.sh", FileNotFoundError(errno.ENOENT, "x"), {"PATH": str(tmp_path)}) == \
        (127, "netlab: bad.sh: bad interpreter /nonexistent/interp: No such file or directory")
    assert cannot_run("bad.sh", FileNotFoundError(errno.ENOENT, "x"), {"PATH": "/nonexistent-qx"}) == \
        (127, "netlab: bad.sh: command not found")


def test_a_file_that_is_there_whose_loader_is_missing_is_said_as_bash_says_it(tmp_path):
    """ENOENT of a file that is there, not a script with a missing interpreter (an ELF program whose loader is
    missing; an interpreter that is there but cannot run): bash 5.2's words."""
    elf = _script(tmp_path, b"\x7fELF\x02\x01\x01", "prog")
    assert exec_failed(elf, errno.ENOENT) == f"{elf}: cannot execute: required file not found"
    there = _script(tmp_path, b"#!/bin/sh", "ok.sh")  # its interpreter is there: not "bad interpreter"
    assert exec_failed(there, errno.ENOENT) == f"{there}: cannot execute: required file not found"
    # the name the user gave is said, the file exec was given is looked at
    assert exec_failed("bad", errno.ENOENT, _script(tmp_path, b"#!/nope")) == \
        "bad: bad interpreter /nope: No such file or directory"
