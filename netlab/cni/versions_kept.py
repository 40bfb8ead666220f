"""What each CNI plugin answered VERSION, kept for the checks of one ``up`` (cni/check.ask): a module of its own,
light, as a builtin lab's ``up`` enters :func:`answers_kept` without loading the CNI runtime."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

# What each plugin answered VERSION (by plugin, the cniVersion it is spoken to in and CNI_PATH's folders: its
# cni/check.Answer) inside answers_kept(): None outside.
KEPT: ContextVar[dict[tuple[str, ...], Any] | None] = ContextVar("netlab_cni_versions", default=None)


@contextmanager
def answers_kept() -> Iterator[None]:
    """Inside, each plugin is asked VERSION once: the checks of one ``up`` (api/lifecycle.check_conflist, the
    doctor's ``tool CNI plugins`` after it; the pytest plugin's before ``Lab.up_loaded``'s) are given the answers
    the first got, not the plugins run as root again. A plugin's refusal (cni/runtime.refused) is checked each
    time: its file's owner and mode are read, never run. Inside an outer one, the outer's answers are kept."""
    if KEPT.get() is not None:
        yield
        return
    token = KEPT.set({})
    try:
        yield
    finally:
        KEPT.reset(token)
