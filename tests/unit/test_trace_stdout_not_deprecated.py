"""`netlab trace` writes its text to standard output's bytes without click.get_binary_stream, deprecated in Click 8.5
(removed in 9.0): the run under `python -W error::DeprecationWarning` failed there (cli/graph.py writes alike)."""

from __future__ import annotations

import os
import subprocess
import sys


def test_trace_writes_its_text_with_no_deprecation_warning():
    code = ("import warnings; warnings.simplefilter('error', DeprecationWarning); "
            "from netlab.cli.trace import _emit; _emit(b'hop 1\\n', None)")
    got = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c", code], capture_output=True,
                         env={**os.environ, "PYTHONPATH": os.getcwd()}, timeout=60)
    assert (got.returncode, got.stdout, got.stderr) == (0, b"hop 1\n", b""), got
