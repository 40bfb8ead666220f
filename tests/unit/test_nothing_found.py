"""A command that finds nothing says so on stderr, and stdout holds no row: as kubectl's "No resources found",
so that `netlab get pods -l app=x | wc -l` is 0 and a loop over the rows sees none (it read the sentence as one)."""

from __future__ import annotations

import types

from click.testing import CliRunner

from netlab import api
from netlab.cli import cli


def _lab(monkeypatch, pods=(), services=()):
    from netlab.cli import get as cli_get

    lab = types.SimpleNamespace(name="g", pods=lambda selector=None: pods, nodes=lambda: (),
                                services=lambda: services)
    monkeypatch.setattr(cli_get, "require_root", lambda: None)
    monkeypatch.setattr(api.Lab, "attach", staticmethod(lambda name: lab))


def test_get_that_finds_nothing_says_it_on_stderr_exit_0(monkeypatch):
    _lab(monkeypatch)
    nomatch = CliRunner().invoke(cli, ["get", "--lab", "g", "pods", "-l", "app=nomatch"])
    assert (nomatch.exit_code, nomatch.stdout, nomatch.stderr) == (0, "", "netlab: no pods in lab g match "
                                                                          "'app=nomatch'\n")
    none = CliRunner().invoke(cli, ["get", "--lab", "g", "svc"])
    assert (none.exit_code, none.stdout, none.stderr) == (0, "", "netlab: no services in lab g\n")
    as_json = CliRunner().invoke(cli, ["get", "--lab", "g", "svc", "-o", "json"])
    assert (as_json.exit_code, as_json.stderr) == (0, "") and '"items": []' in as_json.stdout  # the document


def test_list_with_no_lab_up_says_it_on_stderr_exit_0(monkeypatch):
    from netlab.cli import lab as cli_lab

    monkeypatch.setattr(cli_lab, "require_root", lambda: None)
    monkeypatch.setattr(api, "labs", lambda: [])
    out = CliRunner().invoke(cli, ["list"])
    assert (out.exit_code, out.stdout, out.stderr) == (0, "", "netlab: no lab is up\n")
    assert CliRunner().invoke(cli, ["list", "-o", "json"]).stdout == "[]\n"


def test_cni_log_with_no_call_says_it_on_stderr(monkeypatch):
    from netlab.cli import cni as cli_cni
    from netlab.cni import invoke

    lab = types.SimpleNamespace(name="g", model=types.SimpleNamespace(cni="bash-bridge", pods=()))
    monkeypatch.setattr(cli_cni, "require_root", lambda: None)
    monkeypatch.setattr(api.Lab, "attach", staticmethod(lambda name: lab))
    monkeypatch.setattr(invoke, "read_log", lambda path: [])
    out = CliRunner().invoke(cli, ["cni", "log", "--lab", "g"])
    assert (out.exit_code, out.stdout, out.stderr) == (0, "", "netlab: no CNI calls recorded\n")
