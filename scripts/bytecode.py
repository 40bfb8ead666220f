"""The benchmarks time the CLI as a user runs it after ``scripts/setup.sh``: with netlab byte-compiled.

An editable install leaves netlab's modules as source. Where nothing may write
their bytecode (PYTHONDONTWRITEBYTECODE set, a read-only checkout) every
command compiles the modules it loads, ~0.1 s of each run on the 2-core VM;
setup.sh compiles them once, and so does every benchmark that starts the CLI
before it times anything (a module edited since setup would otherwise be
compiled again at each run).
"""

from __future__ import annotations

import compileall
import os

NETLAB_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "netlab")


def compile_netlab() -> None:
    """Byte-compile every netlab module whose bytecode is missing or older than its source."""
    compileall.compile_dir(NETLAB_DIR, quiet=1)
