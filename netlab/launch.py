"""The ``netlab`` program's first lines: load the command with Python's cycle collector off.

Starting a command loads tens of thousands of objects that live as long as the
process: click, pydantic's validators, the topology and result classes. While
they load, Python's cyclic garbage collector runs every few hundred allocations
and walks them again and again, for nothing: ``netlab probe`` of 50 pods took
0.53 s of CPU with it on, 0.44 s with it off while loading. So the program starts with the collector
off, and the command group switches it back on once the command's module is
loaded (``cli.base.collect_from_here``), after ``gc.freeze()`` has set aside
what is loaded by then. Garbage the command itself makes is collected as
usual, and a forked child (the probe agent) does not dirty the parent's shared
pages by collecting them.

Only the program does this: ``import netlab`` in another program, and click's
test runner, leave that program's collector as it is. So it is with SIGTERM:
the program stops on it as on Ctrl-C from its first line (netlab/signals.py).
"""

from __future__ import annotations

import gc


def main() -> None:
    gc.disable()
    try:
        from netlab import signals

        signals.terminate_as_interrupt()  # SIGTERM (timeout, systemd, a CI cancel) stops it as Ctrl-C does
        from netlab.cli import main as cli_main
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM while Python loads the program: nothing has started
        import sys

        said = str(exc) if exc.args else "interrupted"
        sys.stderr.write(f"netlab: {said}\n")
        raise SystemExit(getattr(exc, "exit_code", 130)) from None
    from netlab import lockfile

    lockfile.PRINT_WAITS = True  # the program's own standard error: "netlab: waiting for ..." (a library logs it)
    cli_main()
