"""The benchmarks time the CLI as a user runs it after ``scripts/setup.sh``: with netlab byte-compiled.

An editable install leaves netlab's modules as source. Where nothing may write
their bytecode (PYTHONDONTWRITEBYTECODE set, a read-only checkout) every
command compiles the modules it loads, ~0.1 s of each run on the 2-core VM;
setup.sh compiles them once, and so does every benchmark that starts the CLI
before it times anything (a module edited since setup would otherwise be
compiled again at each run). So with the code the program generates as it loads (dataclasses' methods,
string annotations: netlab/fncache.py): its cache is filled beside the bytecode.
"""

from __future__ import annotations

import compileall
import os
import subprocess
import sys

NETLAB_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "netlab")


def compile_netlab() -> None:
    """Byte-compile every netlab module whose bytecode is missing or older than its source, and fill the cache
    of its generated code (netlab/fncache.py)."""
    compileall.compile_dir(NETLAB_DIR, quiet=1)
    subprocess.run([sys.executable, "-m", "netlab.fncache"], cwd=os.path.dirname(NETLAB_DIR), check=True,
                   stdout=subprocess.DEVNULL)
