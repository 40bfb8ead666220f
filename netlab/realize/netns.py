"""Moved to netlab.kernel.netns (the one door to the kernel); this name stays until every caller moved."""

from netlab.kernel.netns import *  # noqa: F401,F403
from netlab.kernel.netns import (_check, _is_nsfs, _libc, _unlink_placeholder)  # noqa: F401
