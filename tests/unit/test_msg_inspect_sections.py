"""netlab inspect -s takes every section its output has, by its name or by its key in -o json
(sysctls and cni too), and --help and the error of an unknown name say them all."""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
from click.testing import CliRunner
from cli_inprocess import run_cli

from netlab import api
from netlab.api import results as R
from netlab.cli import cli
from netlab.cli.inspect_text import render_inspect
from netlab.cli.trace import _inspect_sections
from netlab.errors import UsageError
from netlab.kernel import netns as nsmod, procsys
from netlab.trace import inspect as tinspect
from netlab.trace.sections import ALIASES, INSPECT_SECTIONS, SECTIONS, section_names

NOT_SECTIONS = {"lab", "name", "netns", "what", "unreadable"}  # who and where, and why a section is empty


def output_keys() -> list[str]:
    return [f.name for f in dataclasses.fields(R.Inspection) if f.name not in NOT_SECTIONS]


@pytest.mark.parametrize("key", output_keys())
def test_every_key_of_the_output_names_the_section_that_fills_it(key):
    (name,) = section_names([key])
    assert SECTIONS.get(name, name) == key
    assert _inspect_sections(None, None, (key,)) == (name,)


def test_old_names_and_keys_mix_in_order_once_each():
    assert _inspect_sections(None, None, ("addresses,neigh", "sysctls", "addrs", " bridge_ports ")) == \
        ("addrs", "neigh", "sysctls", "bridge")


def test_help_and_error_say_every_name():
    out = " ".join(CliRunner().invoke(cli, ["inspect", "--help"]).output.split())
    for name in (*INSPECT_SECTIONS, *ALIASES):
        assert name in out, name
    res = run_cli("inspect", "node-1", "-s", "sysctls,bogus,cni")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    error = res.stderr.splitlines()[-1]
    assert "bogus: want some of" in error and "sysctls" not in error.split("want some of")[0]
    for name in (*INSPECT_SECTIONS, *ALIASES):
        assert name in error.split("want some of")[1], name


def test_the_api_says_the_names_too():
    """As the other argument errors: the method and the argument named, no CLI advice (QA q7 #3: it said
    "unknown section bogus: ... (or by their keys in -o json: ...)")."""
    with pytest.raises(UsageError) as err:
        api.Lab("x").inspect("n1", ["routes", "bogus"])
    words = str(err.value)
    assert words.startswith("lab.inspect: sections 'bogus': want some of links, addrs,"), words
    assert "sysctls" in words and "bridge_ports" in words and "-o json" not in words, words


def test_sysctls_alone_are_read_alone(monkeypatch):
    entered: list[str] = []

    @contextlib.contextmanager
    def enter(netns):
        entered.append(netns)
        yield

    monkeypatch.setattr(nsmod, "entered", enter)
    monkeypatch.setattr(procsys, "read_sysctl_here", lambda key: "1")
    monkeypatch.setattr(tinspect, "_links_and_tables", lambda *a: pytest.fail("no netlink wanted"))
    data = tinspect.inspect("x-n1", None, ["sysctls"])
    assert set(data) == {"netns", "what", "sysctls"} and entered == ["x-n1"]
    assert set(data["sysctls"]) == set(tinspect.SYSCTLS)
    text = render_inspect({"lab": "x", "name": "n1", **data})
    assert "sysctls   $ ip netns exec x-n1 sysctl" in text and "net.ipv4.ip_forward = 1" in text


def test_keys_read_their_sections(monkeypatch):
    asked: list[set[str]] = []

    def tables(netns, lab, want):
        asked.append(set(want))
        return {}

    monkeypatch.setattr(tinspect, "_links_and_tables", tables)
    tinspect.inspect("x-n1", None, ["addresses", "neighbours", "bridge_ports"])
    assert asked == [{"addrs", "neigh", "bridge"}]


def test_the_sockets_section_reads_the_kernels_sockets_alone_and_says_when_it_cannot(monkeypatch):
    """-s sockets: TCP's listening and UDP's bound sockets from sock_diag (no link dump), as ss lists them; a
    kernel that cannot list them leaves the section empty and says why."""
    from netlab.kernel.sockdiag import Bound
    from netlab.trace.kernel import LiveKernel

    answers: dict[str, list[Bound] | None] = {"tcp": [Bound(2, "0.0.0.0", 8080, 10)], "udp": [Bound(2, "0.0.0.0",
                                                                                                   8472, 7)]}
    monkeypatch.setattr(LiveKernel, "sockets", lambda self, netns, proto: answers[proto])
    monkeypatch.setattr(tinspect, "_links_and_tables", lambda *a: pytest.fail("no netlink dump wanted"))
    data = tinspect.inspect("x-n1", None, ["sockets"])
    assert data["sockets"] == [  # UDP first, as ss prints them
        {"protocol": "udp", "proto": "udp", "state": "UNCONN", "address": "0.0.0.0", "port": 8472,
         "text": "0.0.0.0:8472"},
        {"protocol": "tcp", "proto": "tcp", "state": "LISTEN", "address": "0.0.0.0", "port": 8080,
         "text": "0.0.0.0:8080"}]  # `protocol` as every document says it, `proto` beside it (deprecated)
    text = render_inspect({"lab": "x", "name": "n1", **data})
    assert "sockets (TCP listening, UDP bound)   $ ip netns exec x-n1 ss -ltun" in text
    assert "  tcp  LISTEN  0.0.0.0:8080" in text and "  udp  UNCONN  0.0.0.0:8472" in text
    answers["udp"] = None
    data = tinspect.inspect("x-n1", None, ["sockets"])
    assert data["sockets"] == [] and "no inet_diag" in data["unreadable"]["sockets"]
    assert "(cannot read: this kernel cannot list its sockets" in render_inspect({"lab": "x", "name": "n1", **data})
