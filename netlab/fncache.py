"""The ``netlab`` program's generated code compiled once: a bytecode cache beside netlab's own.

Python 3.11 writes a dataclass's methods (``__init__``, ``__repr__``, ``__eq__``, a frozen one's
``__setattr__`` and ``__delattr__``, ``__hash__``) as source text and compiles each one, every time the
class is defined: ~690 functions for the ~140 dataclasses `status` loads (netlab's plan, results and kernel
records, pydantic's and annotated_types' own), 45-65 ms of CPU of a command's ~0.25 s, more than the rest of
the dataclass machinery. So does ``typing`` for each annotation written as a string (a ``ForwardRef``: ~900
of them, 290 different, as pydantic's core schema and the models load; ~6 ms). The text of each is the same
from one run to the next, and so is what it compiles to.

So the program (launch.py, as it turns the cycle collector off; ``import netlab`` in another program is left
as it is) keeps that code compiled in one file beside netlab's bytecode,
``netlab/__pycache__/fncache.<cache tag>.bin``, by its source text: a text found there is not compiled again,
one that is not is compiled as Python would (same file name ``<string>``, no ``__future__`` flags: neither
dataclasses nor typing has any) and the file is written at the program's end with it, as Python writes a
module's bytecode, and where it would: not with PYTHONDONTWRITEBYTECODE (``python -B``). So a setup that
compiles netlab (scripts/setup.sh, scripts/bytecode.py) fills it first: ``python -m netlab.fncache`` loads
every netlab module with the cache on and writes it.

A text is its own key: a module edited since only misses (its new methods are compiled and kept), an old
entry is never wrong, only unused; the file is rewritten without them when it holds more than
:data:`MAX_ENTRIES`. Code runs as root from that file as from the ``.pyc`` files beside it, so it is read only
where they could be trusted alike: a regular file owned by root or by this user, which nobody else may write
(as the folder above it); a file that cannot be read, is not this Python's (its magic number) or is damaged
is no cache, and nothing is said.
"""

import builtins
import marshal
import os
import stat
import sys

MAX_ENTRIES = 6000
_MAGIC = b"netlab-fn1\n"


def cache_path() -> str:
    """The cache file of this Python (its bytecode's tag) and optimization level."""
    opt = f".opt-{sys.flags.optimize}" if sys.flags.optimize else ""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__",
                        f"fncache.{sys.implementation.cache_tag}{opt}.bin")


def _bytecode_magic() -> bytes:
    from importlib._bootstrap_external import MAGIC_NUMBER  # loaded at Python's start

    return MAGIC_NUMBER


class Compiled:
    """Compiled code by source text: ``exec`` stands in for the builtin in dataclasses, ``compile`` in typing."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.codes: dict[str, bytes] = {}  # by key (_key), marshalled: a start loads only those it uses
        self.used: dict[str, object] = {}  # by key, what this process compiled or loaded (one annotation recurs)
        self.added = False

    def code(self, source: str, mode: str) -> object:
        """``source`` compiled (``mode`` "exec" or "eval"), from this process, the file, or compiled now."""
        key = source if mode == "exec" else f"{mode}\0{source}"
        code = self.used.get(key)
        if code is None:
            code = _unpacked(self.codes.get(key))
            if code is None:
                code = builtins.compile(source, "<string>", mode, dont_inherit=True)
                self.codes[key] = marshal.dumps(code)
                self.added = True
            self.used[key] = code
        return code

    def exec(self, source: object, globals: dict | None = None, locals: dict | None = None) -> None:  # noqa: A002
        """dataclasses' ``exec(text, globals, locals)`` of a method's text."""
        if not isinstance(source, str):
            builtins.exec(source, globals, locals)  # type: ignore[arg-type]
            return
        builtins.exec(self.code(source, "exec"), globals, locals)  # type: ignore[arg-type]

    def compile(self, source: object, filename: str, mode: str, flags: int = 0, dont_inherit: bool = False,
                optimize: int = -1) -> object:
        """typing's ``compile(annotation, '<string>', 'eval')`` of a ForwardRef; any other call as the builtin."""
        if isinstance(source, str) and filename == "<string>" and mode == "eval" and not flags and optimize == -1:
            return self.code(source, "eval")
        return builtins.compile(source, filename, mode, flags, dont_inherit, optimize)  # type: ignore[call-overload]

    def load(self) -> None:
        """The file's entries, where it is a cache this process may trust; else none."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or not _trusted(st) or not _trusted(os.stat(os.path.dirname(self.path))):
                return
            data = os.read(fd, st.st_size + 1)  # one read; a file that grew since is no cache (marshal says)
        except OSError:
            return
        finally:
            os.close(fd)
        head = _MAGIC + _bytecode_magic()
        if not data.startswith(head):
            return
        try:
            codes = marshal.loads(memoryview(data)[len(head):])
        except (EOFError, ValueError, TypeError):
            return
        if isinstance(codes, dict) and all(isinstance(v, bytes) for v in codes.values()):
            self.codes = codes

    def save(self, only_used: bool = False) -> None:
        """Write the file with what this process compiled, as Python writes bytecode: not where it may not
        (PYTHONDONTWRITEBYTECODE), and silently not where it cannot. ``only_used``: without the texts this
        process did not meet (so it is when the file holds more than MAX_ENTRIES: old modules' texts)."""
        if not self.added or sys.dont_write_bytecode:
            return
        codes = self.codes
        if only_used or len(codes) > MAX_ENTRIES:
            codes = {key: code for key, code in codes.items() if key in self.used}
        tmp = f"{self.path}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            try:
                with os.fdopen(fd, "wb", closefd=False) as f:
                    f.write(_MAGIC + _bytecode_magic() + marshal.dumps(codes))
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            self.added = False
        except (OSError, ValueError):
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _unpacked(packed: bytes | None) -> object:
    """The code the file keeps for a method (loaded when its class is defined, not with the file); None where it
    keeps none, or a damaged one."""
    if packed is None:
        return None
    try:
        code = marshal.loads(packed)
    except (EOFError, ValueError, TypeError):
        return None
    return code if isinstance(code, type(_unpacked.__code__)) else None


def _trusted(st: os.stat_result) -> bool:
    """A regular file or folder of root's or this user's that nobody else may write."""
    return st.st_uid in (0, os.geteuid()) and not st.st_mode & 0o022


_installed: Compiled | None = None


def install() -> Compiled:
    """Dataclasses defined and annotations read from now on take their code from the cache (the program's; see
    above)."""
    global _installed
    import atexit
    import dataclasses
    import typing

    if _installed is None:
        _installed = Compiled(cache_path())
        _installed.load()
        # module globals, found before the builtins
        dataclasses.exec = _installed.exec  # type: ignore[attr-defined]
        typing.compile = _installed.compile  # type: ignore[attr-defined]
        atexit.register(_installed.save)  # at the program's end (launch.exit_now runs the exit functions)
    return _installed


def fill() -> int:
    """Load every netlab module with the cache on and write it, as compileall writes bytecode (whatever
    PYTHONDONTWRITEBYTECODE says: asked for). The number of texts it holds."""
    import importlib
    import pkgutil

    import netlab

    cache = install()
    for info in pkgutil.walk_packages(netlab.__path__, "netlab."):
        last = info.name.rsplit(".", 1)[-1]
        if last == "__main__" or last.startswith("pytest_"):  # the program itself; pytest's plugin, not the program's
            continue
        try:
            importlib.import_module(info.name)
        except Exception:  # noqa: BLE001 - a module this machine cannot load: its code is compiled at run time
            continue
    cache.added = True
    writes = sys.dont_write_bytecode
    sys.dont_write_bytecode = False
    try:
        cache.save(only_used=True)
    finally:
        sys.dont_write_bytecode = writes
    return len(cache.used)


if __name__ == "__main__":
    print(f"{cache_path()}: {fill()} texts")
