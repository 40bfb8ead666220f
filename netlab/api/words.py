"""A Lab method says what it meets with the Python call as the way out (``Lab('L').repair()``,
``Lab('L').down(force=True)``), the CLI's commands with the command (``sudo netlab up --lab L``, ``sudo netlab down
--lab L --force``): netlab.errors.python_words decides, and :class:`InCallersWords` sets it for every public method,
classmethod and property of a Lab, so that a method added later cannot forget to."""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
from collections.abc import Iterator
from typing import Any, Callable, TypeVar, cast

from netlab.errors import python_words, words_said

F = TypeVar("F", bound=Callable[..., Any])


@contextlib.contextmanager
def said(api: bool) -> Iterator[None]:
    """A lab whose state is corrupt, lost, or in another state folder (or only the folder an up killed before its
    first state write left), raised with its way out in the caller's words: ``api``, the Python call
    (``Lab('NAME').down(force=True)``), else the command (``sudo netlab down --lab NAME --force``)."""
    from netlab.realize.interrupted_up import UpInterrupted
    from netlab.realize.state_errors import StateCorrupt, StateGone, StateLost
    from netlab.realize.tags import StateElsewhere

    try:
        yield
    except (StateCorrupt, StateLost, StateGone, StateElsewhere, UpInterrupted) as exc:
        raise exc.said_for(api=api) from None


@contextlib.contextmanager
def containers_read() -> Iterator[None]:
    """A recorded container whose process root may not read (processes.CannotTell, a PermissionError: root without
    CAP_SYS_PTRACE, kube-dns's dnsmasq) raised as the CLI's one line says it, an EnvironmentNotReady (exit 3):
    Lab.status, pods and logs raised it bare, no NetlabError."""
    from netlab.errors import EnvironmentNotReady
    from netlab.kernel.caps import denied
    from netlab.kernel.processes import CannotTell

    try:
        yield
    except CannotTell as exc:
        raise EnvironmentNotReady(denied(exc)) from None


@contextlib.contextmanager
def stopped() -> Iterator[None]:
    """A stop signal that what the block called wrapped in an error of its own (pydantic's SchemaError as it
    builds a validator during a first ``Lab.up``, an import's RuntimeError: signals.stop_of) is raised as itself,
    a KeyboardInterrupt, as the CLI says it: the caller's ``except KeyboardInterrupt`` (a ``with`` block's end,
    which takes the lab down) sees the Ctrl-C it is. An error raised while the caller handled a Ctrl-C already
    (a with block's ``down``) is its own. A stop signal that up rolled back (its Interrupted) takes effect as the
    caller's disposition of it says (api/interrupted.py)."""
    from netlab import signals

    before = sys.exc_info()[1]
    try:
        yield
    except KeyboardInterrupt as exc:
        rollback = sys.modules.get("netlab.lab.rollback")  # not imported: no up ran (nor loads what it would)
        if rollback is None or not isinstance(exc, rollback.Interrupted):
            raise
        from netlab.api.interrupted import handed

        handed(exc)
    except Exception as exc:
        stop = signals.stop_of(exc, before)
        if stop is None:
            raise
        raise stop from (None if _in_chain(stop, exc) else exc)  # the error it became: its cause, unless it is


def _in_chain(stop: BaseException, exc: BaseException) -> bool:
    """Whether ``stop`` is one of ``exc``'s causes or contexts (raised from ``exc``, it would be its own)."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        if link is stop:
            return True
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return False


def _words(owner: Any) -> bool:
    """Whose words a call on ``owner`` (a Lab, or the class for a classmethod) is said in: an outer caller's choice
    (a Lab method calling another, the CLI's command), else the Lab's own (internal_attach's: the command's), else
    a Python caller's."""
    outer = words_said()
    return outer if outer is not None else bool(getattr(owner, "_api_words", True))


def callers_words(method: F) -> F:
    """Run a Lab method in its caller's words (:func:`_words`): what it meets names its way out as that caller
    types it (errors.python_words), and a lab whose state cannot say what it made is said so too (:func:`said`)."""
    if getattr(method, "_netlab_words", False):
        return method
    def plain(owner: Any, *args: Any, **kwargs: Any) -> Any:
        api = _words(owner)
        with stopped(), python_words(api), said(api):
            return method(owner, *args, **kwargs)

    def each(owner: Any, *args: Any, **kwargs: Any) -> Any:  # a generator's: said as it runs, not as it is made
        api = _words(owner)
        with stopped(), python_words(api), said(api):
            return (yield from method(owner, *args, **kwargs))

    run: Any = functools.wraps(method)(each if inspect.isgeneratorfunction(method) else plain)
    run._netlab_words = True
    return cast(F, run)


class InCallersWords:
    """A class whose every public method, classmethod and property runs in its caller's words (callers_words):
    each Lab class (LabChecks, PodActions, Lab) is one, so none of its methods has to remember it."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, value in list(vars(cls).items()):
            if name.startswith("_"):
                continue
            if isinstance(value, classmethod):
                setattr(cls, name, classmethod(callers_words(value.__func__)))
            elif isinstance(value, property) and value.fget is not None:
                setattr(cls, name, property(callers_words(value.fget), value.fset, value.fdel, value.__doc__))
            elif inspect.isfunction(value):
                setattr(cls, name, callers_words(value))
