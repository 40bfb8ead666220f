"""The doctor's ``host netlab install`` line: can someone other than root change the code root runs?

``scripts/setup.sh`` installs netlab editable: every ``sudo netlab`` imports the checkout's ``netlab/`` and the
packages of its ``.venv`` as root. Whoever can change one of those files, a folder they are in, or a folder
above the checkout (the rule netlab applies to topologies and CNI plugins, model/trust.py, here with root
alone trusted: a user who owns the checkout and may run only ``sudo netlab`` is root through it) is root on
every ``sudo netlab``. A root-owned clone (CI) passes; a user's clone (Vagrant's ``vagrant`` user) warns: that
is only safe where that user may run anything as root already. A warning, never a FAIL: netlab still works,
and ``up`` does not gate on it.
"""

from __future__ import annotations

import os
import sys
from itertools import islice

from netlab.doctor_lines import OK, WARN, Check
from netlab.errors import command_path
from netlab.model.trust import below, resolve

SHOWN = 3  # offenders named on the line; the rest counted


def install_paths() -> tuple[str, str | None]:
    """The checkout (the folder netlab's package is in) and the venv (None: Python's own prefix, no venv)."""
    checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # this file is in netlab/
    return checkout, (sys.prefix if sys.prefix != sys.base_prefix else None)


def changeable(checkout: str, venv: str | None) -> list[tuple[str, str]]:
    """(path, why) of each folder above and of the checkout itself, each file and folder of its netlab/ package
    and of the venv, and the Python the venv runs, that someone other than root can change."""
    root = {0}
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    for path in (checkout, *([venv, sys.executable] if venv else [])):
        try:
            where, why = resolve(path, root)
        except OSError:
            continue
        if why is not None and where not in seen:
            seen.add(where)
            found.append((where, _words(where, why)))
    for tree in (os.path.join(checkout, "netlab"), *([venv] if venv else [])):
        found += [(p, _words(p, why)) for p, why in below(tree, root) if p not in seen]
    return found


def _words(path: str, why: str) -> str:
    """trust's words for what ``path`` is, after its name: root alone is trusted here, not "root or you"."""
    for prefix in ("it ", f"its folder {path} ", f"the symlink {path} on its way "):
        if why.startswith(prefix):
            why = ("(a symlink on the way) " if "symlink" in prefix else "") + why.removeprefix(prefix)
            break
    return why.replace(", not by root or you", ", not by root")


def check_install(checkout: str | None = None, venv: str | None = None) -> Check:
    """The ``install`` check (of this process's own netlab and venv when not given)."""
    if checkout is None:
        checkout, venv = install_paths()
    found = changeable(checkout, venv)
    where = checkout if venv is None else f"{checkout} and {venv}"
    if not found:
        return Check("install", OK, f"{where}: root's, writable by root alone")
    shown = "; ".join(f"{path} {why}" for path, why in islice(found, SHOWN))
    more = f" (and {len(found) - SHOWN} more)" if len(found) > SHOWN else ""
    # a command the user types as root: each folder one word (a blank in a name made `chown -R` of two others)
    trees = " ".join(command_path(t) for t in dict.fromkeys(
        [checkout, *([venv] if venv and not venv.startswith(checkout + "/") else [])]))
    return Check("install", WARN,
                 f"someone other than root can change the netlab that root runs (whoever can is root on every "
                 f"sudo netlab): {shown}{more}",
                 f"chown -R root: {trees} && chmod -R go-w {trees} (and make every folder above it root's, "
                 "writable by root alone), or clone netlab as root into a root-owned folder and run "
                 "scripts/setup.sh there; fine as it is only where those users may run anything as root already")
