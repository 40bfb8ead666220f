"""``-o json`` (or ``-o yaml``) and a command that fails before it writes its own document: one error document on
standard output, beside the error's line on stderr (docs/json.md, "When a command fails").

A script that asked for JSON got an empty stdout and a text line on stderr on exit 2 or 3 (`plan -t missing.yaml
-o json`, `status --lab nope -o json`), where `validate` alone answered in JSON. The error boundary
(cli/boundary.py) calls :func:`write` wherever it says an error's line: the document is
``{"error", "exit_code", "file", "line", "field", "problems"}``, every key written (null, or ``[]``, when it does
not apply). None when the command wrote its own document (validate's ``valid: false``, status's with its
``error``), when no data format was asked for (or click could not read the command line that far), or for a stop
signal (130, 143: stopped, not failed).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any

from netlab.errors import Problem, TopologyError

DATA_FORMATS = ("json", "yaml")


def document(line: str, code: int, exc: BaseException | None = None) -> dict[str, Any]:
    """The error document of an error said as ``line`` (without ``netlab: ``), ending the command with ``code``:
    a topology's error is located at its first problem, and lists every one as validate's ``problems`` do."""
    problems = list(exc.problems) if isinstance(exc, TopologyError) else []
    first = problems[0] if problems else None
    return {"error": line, "exit_code": code,
            "file": first.file if first else None, "line": first.line if first else None,
            "field": (first.field or None) if first else None,
            "problems": [problem_json(p) for p in problems]}


def problem_json(p: Problem) -> dict[str, Any]:
    """A topology's problem as every JSON document lists it (validate's ``problems`` too): a problem of no field
    (a file that cannot be read) has ``field`` null, not ""."""
    return {"file": p.file, "line": p.line, "field": p.field or None, "message": p.message}


def write(obj: dict[str, Any], line: str, code: int, exc: BaseException | None = None) -> None:
    """The error document on stdout, in the format the command was asked for, when it is owed (see above)."""
    from netlab.cli.output import ASKED_KEY, WRITTEN_KEY

    asked = obj.get(ASKED_KEY)
    if asked not in DATA_FORMATS or obj.get(WRITTEN_KEY) or not 0 < code < 128 or sys.stdout is None:
        return
    obj[WRITTEN_KEY] = True
    doc = document(line, code, exc)
    if asked == "yaml":
        import yaml

        text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True)
    else:
        text = json.dumps(doc, indent=2) + "\n"
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError:  # a full disk, a reader gone: the exit code and stderr's line say it; nothing is left to fail
        with contextlib.suppress(OSError, AttributeError, ValueError):
            null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
            os.dup2(null, sys.stdout.fileno())
            os.close(null)
            sys.stdout.flush()
