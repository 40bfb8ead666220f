"""dir() and help() of ``netlab`` and ``netlab.api`` show the API (no root).

Both packages load their names on first use (a module ``__getattr__``), and had no ``__dir__``: ``dir(netlab.api)``
gave ``Any``, ``TYPE_CHECKING``, ``importlib`` ..., and ``help(netlab.api)`` listed ``__getattr__`` alone, as
pydoc finds a module's members through ``dir()`` (inspect.getmembers) and keeps those ``__all__`` names."""

from __future__ import annotations

import pydoc
import subprocess
import sys

import netlab
import netlab.api


def test_dir_of_netlab_api_is_its_public_names_and_loads_nothing():
    code = ("import sys, netlab.api\n"
            "names = dir(netlab.api)\n"
            "print(set(netlab.api.__all__) <= set(names), 'Lab' in names, 'netlab.api.lab' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "True True False\n", ""), proc  # still lazy
    assert {"Lab", "labs", "load", "Interrupted", "NetlabError", "ProbeReport"} <= set(dir(netlab.api))
    assert "Lab" in dir(netlab) and "__version__" in dir(netlab)


def test_help_of_netlab_api_and_netlab_lists_the_api():
    text = pydoc.render_doc(netlab.api, renderer=pydoc.plaintext)
    for shown in ("class Lab(", "class ProbeReport(", "class Interrupted(", "labs()", "load(", "to_json("):
        assert shown in text, shown
    assert "class Lab(" in pydoc.render_doc(netlab, renderer=pydoc.plaintext)
