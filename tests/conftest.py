import os
import signal
import sys

import pytest

# The stop signals' tests send SIGHUP as a closed terminal does. A run started with SIGHUP ignored (under nohup, or
# a CI runner that ignores it) hands SIG_IGN down to every program a test starts, which then rightly keeps it
# ignored (netlab leaves alone a SIGHUP its parent ignored): the tests start theirs as a terminal's shell does,
# with SIGHUP at its default. Set before the netlab plugin's pytest_configure, which then handles it in this run.
if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
    signal.signal(signal.SIGHUP, signal.SIG_DFL)

sys.path.insert(0, os.path.dirname(__file__))

from signal_guard import _signals_as_found  # noqa: E402,F401 - autouse: every test leaves its signals as found


def pytest_collection_modifyitems(config, items):
    """Root tests are skipped (with a reason) when not running as root."""
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root: builds real network namespaces")
    for item in items:
        if "root" in item.keywords or "integration" in str(item.fspath):
            item.add_marker(skip)

