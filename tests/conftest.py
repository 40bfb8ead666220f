import os
import sys

import pytest

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

