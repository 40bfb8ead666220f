"""An argument of the wrong type, to any public method of netlab.Lab, is one UsageError naming the method and the
argument (``lab.exec: command must be a string or a list of strings, not int 5``), raised before the lab is
read or changed, as the CLI's click options refuse a wrong value: not Python's TypeError or AttributeError from
netlab's own code, subprocess or os (QA: ``lab.exec("p1", 5)``, ``impair(5)``, ``down(wait="x")`` ...). A flag
(``force``, ``mtu`` ...) is True or False: ``probe(mtu="no")`` was taken for True. The module's functions
(``netlab.api.load(42)`` ...) say theirs the same way, and ``lab.popen`` refuses Popen's arguments that would undo
its namespace switch.

No root: whatever reads or changes a lab is replaced by a stub that fails the test when reached."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

import netlab.api as api
from netlab.api import lab as lab_mod, results as R
from netlab.api.lab import Lab
from netlab.errors import UsageError


class Reached(AssertionError):
    """The call got past its argument checks to the lab (its state, the kernel, a lock)."""


@pytest.fixture
def untouchable(monkeypatch):
    """Every way a method gets at a lab fails the test: reading its state, loading a topology, taking the lab up,
    down, impairing or breaking it."""
    import netlab.api.impair as impair_mod
    import netlab.api.topology as topology_mod
    import netlab.breaks.run as breaks_run
    import netlab.realize.lab_name as lab_name_mod
    import netlab.realize.state as state_mod

    def reached(*args, **kwargs):
        raise Reached("the lab was read or changed before the arguments were checked")

    monkeypatch.setattr(Lab, "state", reached)
    for module, name in [(lab_mod.lifecycle, "up"), (lab_mod.lifecycle, "down"), (lab_mod, "selected_name"),
                         (topology_mod, "load"), (topology_mod, "load_running"), (impair_mod, "impair"),
                         (breaks_run, "break_lab"), (state_mod, "load_state"), (lab_name_mod, "selected_name")]:
        monkeypatch.setattr(module, name, reached)
    return Lab("qa-args-never-up")


def _loaded():
    """A Loaded as netlab.api.load returns it (its fields are not read before the arguments are checked)."""
    from netlab.api.topology import Loaded

    return Loaded(lab=SimpleNamespace(name="qa-args-never-up"), topology=None, source=None,  # type: ignore[arg-type]
                  origin="<dict>")


@pytest.mark.parametrize("call,message", [
    # exec: the QA's cases, then the rest of its arguments
    (lambda lab: lab.exec("p1", 5), "lab.exec: command must be a string or a list of strings, not int 5"),
    (lambda lab: lab.exec("p1", [1, 2]), "lab.exec: command[0] must be a string, bytes or a path, not int 1"),
    (lambda lab: lab.exec("p1", ["cat"], input=b"x"), "lab.exec: input must be a string or None, not bytes b'x'"),
    (lambda lab: lab.exec("p1", ["true"], timeout="5"),
     "lab.exec: timeout must be a number of seconds or None, not str '5'"),
    (lambda lab: lab.exec("p1", ["true"], timeout=math.nan),
     "lab.exec: timeout nan is not a finite number of seconds, 0 or more"),
    (lambda lab: lab.exec("p1", ["true"], env={"A": 1}), "lab.exec: env['A'] must be a string, not int 1"),
    (lambda lab: lab.exec("p1", ["true"], env={1: "a"}), "lab.exec: env's names must be strings, not int 1"),
    (lambda lab: lab.exec("p1", ["true"], env="A=1"),
     "lab.exec: env must be a dict of strings to strings or None, not str 'A=1'"),
    (lambda lab: lab.exec(5, ["true"]), "lab.exec: name must be a string, not int 5"),
    (lambda lab: lab.exec("p1", b"ls"), "lab.exec: command must be a string or a list of strings, not bytes b'ls'"),
    (lambda lab: lab.exec("p1", []), "lab.exec: no command given"),
    (lambda lab: lab.exec("p1", ["echo", "x" * 200, object]),
     "lab.exec: command[2] must be a string, bytes or a path, not type <class 'object'>"),
    # popen
    (lambda lab: lab.popen("p1", 5), "lab.popen: argv must be a string or a list of strings, not int 5"),
    (lambda lab: lab.popen("p1", ["a", None]),
     "lab.popen: argv[1] must be a string, bytes or a path, not NoneType None"),
    (lambda lab: lab.popen("p1", ["true"], env={"A": 1}), "lab.popen: env['A'] must be a string, not int 1"),
    (lambda lab: lab.popen(None, ["true"]), "lab.popen: name must be a string, not NoneType None"),
    (lambda lab: lab.popen("p1", ["true"], preexec_fn=print),
     "lab.popen: preexec_fn: popen's own enters the pod's namespaces; it takes no other"),
    (lambda lab: lab.popen("p1", ["id"], user="nobody"),
     "lab.popen: user: the process would be that user before it enters the pod's namespaces, which only root may "
     "enter; run the program as another user with argv ['runuser', '-u', USER, '--', PROGRAM, ...]"),
    (lambda lab: lab.popen("p1", "echo hi", shell=True),
     "lab.popen: shell: a string argv runs with /bin/sh -c already"),
    (lambda lab: lab.popen("p1", ["true"], args=["false"]), "lab.popen: args: the command is popen's argv"),
    (lambda lab: lab.popen("p1", ["true"], stdotu=subprocess.PIPE),
     "lab.popen: stdotu: not an argument of subprocess.Popen"),
    # the flags: True or False, as the CLI's flags give them
    (lambda lab: lab.exec("p1", ["true"], check="no"), "lab.exec: check must be True or False, not str 'no'"),
    (lambda lab: lab.logs("p1", previous=1), "lab.logs: previous must be True or False, not int 1"),
    (lambda lab: lab.impair("p1:eth0", clear=1), "lab.impair: clear must be True or False, not int 1"),
    (lambda lab: lab.down(force="no"), "lab.down: force must be True or False, not str 'no'"),
    (lambda lab: lab.probe(services=0), "lab.probe: services must be True or False, not int 0"),
    (lambda lab: lab.probe(mtu="no"), "lab.probe: mtu must be True or False, not str 'no'"),
    (lambda lab: Lab.up(None, reconfigure="yes"), "Lab.up: reconfigure must be True or False, not str 'yes'"),
    (lambda lab: Lab.up_loaded(_loaded(), reconfigure=None),
     "Lab.up_loaded: reconfigure must be True or False, not NoneType None"),
    (lambda lab: Lab("qa", owned=1), "Lab: owned must be True or False, not int 1"),
    # impair
    (lambda lab: lab.impair(5, rate="1mbit"), "lab.impair: target must be a string, not int 5"),
    (lambda lab: lab.impair("p1:eth0", rate=5), "lab.impair: rate must be a string or None, not int 5"),
    (lambda lab: lab.impair("p1:eth0", rate="1mbit", wait="x"),
     "lab.impair: wait must be a number of seconds, not str 'x'"),
    # inspect, logs, the views
    (lambda lab: lab.inspect("p1", 5), "lab.inspect: sections must be a string or a list of strings, not int 5"),
    (lambda lab: lab.inspect("p1", ["links", 5]), "lab.inspect: sections[1] must be a string, not int 5"),
    (lambda lab: lab.inspect(5), "lab.inspect: name must be a string, not int 5"),
    (lambda lab: lab.logs(5), "lab.logs: pod must be a string, not int 5"),
    (lambda lab: lab.logs("p1", 5), "lab.logs: container must be a string or None, not int 5"),
    (lambda lab: lab.pod(5), "lab.pod: name must be a string, not int 5"),
    (lambda lab: lab.node(["n1"]), "lab.node: name must be a string, not list ['n1']"),
    (lambda lab: lab.service("web", 5), "lab.service: namespace must be a string or None, not int 5"),
    # down, repair, break_: the wait for the lab's lock, the progress callback
    (lambda lab: lab.down(wait="x"), "lab.down: wait must be a number of seconds, not str 'x'"),
    (lambda lab: lab.down(wait=-1), "lab.down: wait -1 is not a finite number of seconds, 0 or more"),
    (lambda lab: lab.down(wait=math.inf), "lab.down: wait inf is not a finite number of seconds, 0 or more"),
    (lambda lab: lab.down(progress=5), "lab.down: progress must be a function or None, not int 5"),
    (lambda lab: lab.repair(wait=None), "lab.repair: wait must be a number of seconds, not NoneType None"),
    (lambda lab: lab.break_("ip-forward-off", wait="1"), "lab.break_: wait must be a number of seconds, not str '1'"),
    # break_ and pods(selector) had words of their own ("lab.break_: target 5: want a pod's or node's name")
    (lambda lab: lab.break_(5), "lab.break_: scenario must be a string, not int 5"),
    (lambda lab: lab.break_("ip-forward-off", 5), "lab.break_: target must be a string or None, not int 5"),
    (lambda lab: lab.break_("ip-forward-off", ["n1"]),
     "lab.break_: target must be a string or None, not list ['n1']"),
    (lambda lab: lab.pods(42), "lab.pods: selector must be a string or None, not int 42"),
    (lambda lab: lab.pods(["app=web"]), "lab.pods: selector must be a string or None, not list ['app=web']"),
    # checking it
    (lambda lab: lab.status(5), "lab.status: topology must be a path, a dict or None, not int 5"),
    (lambda lab: lab.probe(5), "lab.probe: topology must be a path, a dict or None, not int 5"),
    (lambda lab: lab.probe(protos=5), "lab.probe: protos must be a string or a list of strings, not int 5"),
    (lambda lab: lab.probe(protos=[5]), "lab.probe: protos[0] must be a string, not int 5"),
    (lambda lab: lab.reach(5, "b"), "lab.reach: src must be a string, not int 5"),
    (lambda lab: lab.trace("a", 5), "lab.trace: dst must be a string, not int 5"),
    (lambda lab: lab.trace("a", "b", pcap=5), "lab.trace: pcap must be a path or None, not int 5"),
    (lambda lab: lab.trace("a", "b", progress="x"), "lab.trace: progress must be a function or None, not str 'x'"),
    # getting a lab
    (lambda lab: Lab.up(42), "Lab.up: topology must be a path, a dict or None, not int 42"),
    (lambda lab: Lab.up(None, name=5), "Lab.up: name must be a string or None, not int 5"),
    (lambda lab: Lab.up(None, wait="60"), "Lab.up: wait must be a number of seconds, not str '60'"),
    (lambda lab: Lab.up_loaded("lab.yaml"), "Lab.up_loaded: loaded must be what netlab.api.load returns, not str"),
    (lambda lab: Lab.attach(5), "Lab.attach: name must be a string or None, not int 5"),
    (lambda lab: Lab(5), "Lab: name must be a string, not int 5"),
])
def test_a_wrong_type_is_one_usage_error_naming_method_and_argument_before_the_lab_is_touched(untouchable, call,
                                                                                               message):
    with pytest.raises(UsageError) as raised:
        call(untouchable)
    text = str(raised.value)
    assert type(raised.value) is UsageError and raised.value.exit_code == 2
    assert text == message
    assert "\n" not in text and text.isprintable()


def test_a_long_or_unprintable_value_is_named_on_one_short_line(untouchable):
    with pytest.raises(UsageError) as raised:
        untouchable.exec("p1", ["true"], input=b"\n\x1b[2J" + b"x" * 500)
    text = str(raised.value)
    assert text.startswith("lab.exec: input must be a string or None, not bytes b'\\n\\x1b[2J")
    assert text.endswith("...") and len(text) < 140 and text.isprintable()


@pytest.mark.parametrize("call", [
    lambda lab: lab.exec("p1", ["cat", b"-", Path("/dev/null")], input="x", timeout=None, env={"A": "b"}),
    lambda lab: lab.exec("p1", ("true",), timeout=0),
    lambda lab: lab.exec("p1", "echo hi", timeout=5),
    lambda lab: lab.popen("p1", "sleep 1", env={"A": "b"}),
    lambda lab: lab.popen("p1", ["true"], stdout=subprocess.PIPE, text=True, cwd="/", shell=False, user=None,
                          group="nogroup", start_new_session=True),
    lambda lab: lab.exec("p1", ["true"], check=True),
    lambda lab: lab.logs("p1", previous=True),
    lambda lab: lab.impair("p1:eth0", clear=True),
    lambda lab: lab.down(force=True),
    lambda lab: lab.probe(services=False, mtu=True),
    lambda lab: Lab.up(None, reconfigure=True),
    lambda lab: Lab.up_loaded(_loaded(), reconfigure=False),
    lambda lab: lab.impair("p1:eth0", rate="1mbit", wait=0),
    lambda lab: lab.inspect("p1", "links,routes"),
    lambda lab: lab.inspect("p1", ("links",)),
    lambda lab: lab.logs("p1", "c", tail=5),
    lambda lab: lab.down(wait=0.5, progress=print),
    lambda lab: lab.repair(wait=1),
    lambda lab: lab.status({"name": "x"}),
    lambda lab: lab.status(Path("lab.yaml")),
    lambda lab: lab.trace("a", "b", pcap=Path("/tmp/x.pcap"), progress=print),
    lambda lab: lab.service("web", "default"),
    lambda lab: Lab.up("lab.yaml", name="x", wait=1, progress=print),
    lambda lab: Lab.attach(None),
])
def test_arguments_of_the_right_types_pass_the_checks(untouchable, call):
    """What the checks let through: str, bytes and paths in a command, None for no timeout, 0 seconds, a dict or
    a path for a topology, a callable progress."""
    with pytest.raises(Reached):
        call(untouchable)


@pytest.fixture
def unread(monkeypatch):
    """The module's functions read nothing: no topology file, no lab's state."""
    import netlab.api.topology as topology_mod
    import netlab.realize.lab_name as lab_name_mod
    import netlab.realize.state as state_mod

    def reached(*args, **kwargs):
        raise Reached("a file or a lab's state was read before the arguments were checked")

    for module, name in [(topology_mod, "read_source"), (state_mod, "running_lab"), (lab_name_mod, "selected_name"),
                         (state_mod, "held_by")]:
        monkeypatch.setattr(module, name, reached)


@pytest.mark.parametrize("call,message", [
    (lambda: api.load(42), "netlab.api.load: topology must be a path, a dict or None, not int 42"),
    (lambda: api.load(None, 5), "netlab.api.load: name must be a string or None, not int 5"),
    (lambda: api.load(None, running="no"), "netlab.api.load: running must be True or False, not str 'no'"),
    (lambda: api.load_running(5), "netlab.api.load_running: name must be a string, not int 5"),
    (lambda: api.selected_name(5), "netlab.api.selected_name: name must be a string or None, not int 5"),
    (lambda: api.selected_name(None, 5), "netlab.api.selected_name: topology must be a path or None, not int 5"),
    (lambda: api.selected_name(required=1), "netlab.api.selected_name: required must be True or False, not int 1"),
    (lambda: api.from_json(5, {}), "netlab.api.from_json: cls must be a result class (netlab.api.results), not int 5"),
    (lambda: api.from_json(R.LabInfo, 5), "netlab.api.from_json: data must be a dict, not int 5"),
    (lambda: api.from_json(R.LabInfo, [("lab", "x")]), "netlab.api.from_json: data must be a dict, not list [('lab', "
                                                        "'x')]"),
])
def test_a_module_function_given_a_wrong_type_says_so_in_the_same_line(unread, call, message):
    """``netlab.api.load(42)`` raised Python's TypeError, ``selected_name(None, 5)`` one from open(), ``from_json(5,
    {})`` returned the dict: each is the methods' one line, with the function's name."""
    with pytest.raises(UsageError) as raised:
        call()
    assert type(raised.value) is UsageError and str(raised.value) == message


@pytest.mark.parametrize("call", [
    lambda: api.load("lab.yaml", "x", running=False),
    lambda: api.load(Path("lab.yaml")),
    lambda: api.load_running("x"),
    lambda: api.selected_name("x", None, False),
    lambda: api.selected_name(None, Path("lab.yaml")),
])
def test_a_module_functions_right_types_pass_the_checks(unread, call):
    with pytest.raises(Reached):
        call()
