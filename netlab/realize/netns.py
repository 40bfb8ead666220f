"""Moved to netlab.kernel.netns (the one door to the kernel). Its last importers are trace/ and
cli/trace.py, which the trace split moves onto netlab.kernel; then this file goes."""

from netlab.kernel.netns import *  # noqa: F401,F403
from netlab.kernel.netns import (_check, _is_nsfs, _libc, _unlink_placeholder)  # noqa: F401
