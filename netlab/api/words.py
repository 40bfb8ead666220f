"""A Lab method says what it meets with the Python call as the way out (``Lab('L').repair()``), the CLI's commands
with the command (``sudo netlab up --lab L``): netlab.errors.python_words decides, this sets it for a method."""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar, cast

from netlab.errors import python_words

F = TypeVar("F", bound=Callable[..., Any])


def callers_words(method: F) -> F:
    """Run a Lab method in its caller's words: a Python caller's, or, for the lab a command acts on (the CLI's
    internal_attach, which clears ``_api_words``), the command's."""

    @functools.wraps(method)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        with python_words(getattr(self, "_api_words", True)):
            return method(self, *args, **kwargs)

    return cast(F, run)
