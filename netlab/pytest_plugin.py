"""netlab's pytest plugin: real labs as fixtures (registered with the ``pytest11`` entry point).

::

    import pytest

    @pytest.mark.netlab("lab.yaml")               # a path (beside the test file) or a dict shaped like the YAML
    def test_cross_node(netlab_lab):
        assert netlab_lab.reach("client", "web-2").reachable

    @pytest.mark.netlab("lab.yaml", scope="module")   # one lab for every test of the module that uses it
    def test_no_snat(netlab_lab): ...

    def test_two_labs(netlab_factory):
        a = netlab_factory("a.yaml")
        b = netlab_factory({"name": "b", "nodes": [{"name": "n1"}]})

Every lab gets a name of its own (the topology's name, the xdist worker and a
random suffix: ``demo-g1-3fa9c1``), so parallel runs and other people's labs
never collide, and is taken down after its last test, whatever happened:
a failure, Ctrl-C, SIGTERM (a CI timeout's) or SIGHUP (a closed terminal's), which stops the run as Ctrl-C
does in every pytest process (an xdist controller passes it on to its workers).
A process killed with SIGKILL runs nothing: the controller takes down the labs
of an xdist worker that crashed, and the next run names the labs a killed run
left up (netlab.pytest_owners).

When a test fails (once: the first of its setup, call and teardown that fails),
the plugin writes what the lab looked like into the test's folder
(``<basetemp>/netlab/<test>/<lab>/``, or ``--netlab-artifacts DIR``):
``inspect -o json`` of every namespace, the probe matrix (``probe.json``),
``status.json``, the last traces the test ran (``traces.json``) and its last
``reach`` results (``reaches.json``; of a lab a scope's tests share, the
test's own), and a CNI lab's plugin calls (``cni-calls.json``, ``netlab cni
log -o json``'s): netlab.pytest_artifacts writes them. A lab the test brought up
itself is written too once given to :func:`watch`, also one a module's (class's, session's) fixture brings up
and watches with its own ``request.node``: for each test of that scope that fails.
``--netlab-keep`` leaves a failed test's lab up and prints how to reach it
and how to take it down (once per lab).

Without root, or on a machine that lacks a kernel feature or tool the lab
needs, lab tests are skipped with the reason ``netlab doctor`` gives, and the
reasons are repeated at the end of the run.

How the labs are brought up, shared by a scope's tests and taken down is
netlab.pytest_labs's; this module holds the fixtures and hooks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from netlab import pytest_owners, signals
from netlab.pytest_artifacts import LABS, adopt, kept_lines, report_failure, retried_lines, unhook, used_by as _used_by
from netlab.pytest_artifacts import dump_lab as dump_lab, failed as _failed, watch as watch  # re-exported
from netlab.pytest_labs import SKIP_PREFIX, _Registry, _Shared
from netlab.pytest_topology import (ONE_LINE, check_name, check_topology, check_wait, marker_error,
                                    marker_args, resolve_path)

if TYPE_CHECKING:
    from netlab.api import Lab, TopologyInput

REGISTRY = pytest.StashKey["_Registry"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("netlab", "netlab labs (real network namespaces)")
    group.addoption("--netlab-keep", action="store_true", default=False,
                    help="leave the lab of a failed test up for debugging; the end of the run says how to reach "
                         "it and how to take it down")
    group.addoption("--netlab-artifacts", metavar="DIR", default=None,
                    help="where the state of a failed test's labs is written (default: <basetemp>/netlab)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "netlab(topology=None, scope='function', name=None): the lab of the netlab_lab fixture: "
                   "a topology file (relative to the test's folder), a dict shaped like the YAML, or None for the "
                   "built-in default; scope: function, class, module, package or session; name: the base of the "
                   "lab's unique name (default: the topology's name)")
    artifacts = config.getoption("netlab_artifacts")
    _check_folder("--netlab-artifacts", artifacts,
                  "where a failed test's lab state would be written among what keeps the labs running")
    _check_folder("--basetemp", config.option.basetemp,  # pytest's own: it empties that folder, then writes there
                  "which pytest would empty, then write the tests' temporary files and the failed tests' lab state "
                  "in, among what keeps the labs running")
    if artifacts is not None:  # where pytest started, as checked: a test that chdir's (monkeypatch.chdir) moves it not
        config.option.netlab_artifacts = os.path.abspath(artifacts)
    config.stash[REGISTRY] = _Registry(config)
    config.pluginmanager.register(pytest_owners, "netlab-owners")  # its hooks: the labs of killed processes
    _stop_on_sigterm(config)


def _check_folder(option: str, root: str | None, why: str) -> None:
    """``--netlab-artifacts`` or pytest's ``--basetemp`` (the dumps' default root, and a folder pytest deletes
    before it writes there) in the state folder, /run/netns or /etc/netns (however it is spelled) would delete or
    write among the labs' own files: refused before any test runs, as pytest's one-line usage error (exit 4), as
    netlab refuses ``capture -w`` there. A ``--basetemp`` above one of them (``/tmp/x`` with the state folder
    /tmp/x/state, ``/run``) is refused too: pytest empties it whole."""
    if root is None:
        return
    from netlab.realize.own_files import own_folder

    found = own_folder(os.fspath(root))
    if found is not None:
        raise pytest.UsageError(f"{option} {root}: it is inside {found[0]}, {found[1]}, {why}; "
                                "name a folder somewhere else")
    if option == "--basetemp":  # emptied whole: a folder above the labs' deletes them too
        from netlab.realize.own_files import holds_own_folder

        found = holds_own_folder(os.fspath(root))
        if found is not None:
            raise pytest.UsageError(f"{option} {root}: {found[0]}, {found[1]}, is inside it, and pytest empties "
                                    "it before it writes the tests' temporary files there: the labs' files would "
                                    "be deleted; name a folder somewhere else")


def pytest_unconfigure(config: pytest.Config) -> None:
    """The last chance for a lab still up (a run whose session's end was cut short by a second interrupt)."""
    registry = config.stash.get(REGISTRY, None)
    if registry is not None:
        registry.close()


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def netlab_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., Lab]]:
    """Bring up labs in a test: ``netlab_factory(topology, name=None, wait=60.0) -> netlab.Lab``.

    ``topology``: a file (relative paths are looked up beside the test file,
    then in the rootdir), a dict shaped like the YAML, or None for the
    built-in default. Each lab gets a unique name (``name`` or the topology's
    name, the xdist worker, a random suffix) and is taken down when the test
    ends, also when it fails (with ``--netlab-keep`` a failed test's labs stay
    up). Skips the test, with netlab doctor's reason, without root or when the
    machine lacks what the lab needs. A lab with a container that could not
    start fails the call with up's line for it, the lab taken down; an up
    a CNI plugin failed (rolled back) fails it in up's line too, the calls
    that up made written into the test's folder (``cni-calls.json``). A
    topology netlab refuses raises its error (TopologyError), which the test
    may expect; at a marker's setup the same mistake fails it in one line.
    An argument of the wrong kind (a ``topology`` that is no path nor dict, a
    ``name`` that is no lab name, a ``wait`` that is no number of seconds
    from 0) is the marker's one-line pytest.UsageError, before any file is
    read, with or without root.
    """
    registry = request.config.stash[REGISTRY]
    made: list[Lab] = []

    def factory(topology: TopologyInput = None, name: str | None = None, wait: float = 60.0) -> Lab:
        check_topology("netlab_factory", topology)
        check_name("netlab_factory", name)
        wait = check_wait("netlab_factory", wait)
        lab = registry.bring_up(_resolve_path(request, topology), name, wait, raising=True, item=request.node)
        made.append(lab)
        _used_by(request.node, lab)
        return lab

    try:
        yield factory
    finally:
        registry.take_down(made, failed=_failed(request.node))


@pytest.fixture
def netlab_lab(request: pytest.FixtureRequest) -> Lab:
    """The lab of the test's ``@pytest.mark.netlab(topology, scope="function", name=None)`` marker.

    A ``netlab.Lab`` that is up: ``netlab_lab.reach("a", "b")``,
    ``.exec(pod, argv)``, ``.probe()``, ``.trace(src, dst)``, ``.pod(name).ip``...
    With ``scope="module"`` (or class, package, session) the tests of that
    scope that ask for the same topology share one lab, taken down after the
    last of them. Unique name, teardown, skips and failure dumps as for
    ``netlab_factory``; a container that could not start is an error at setup.
    The lab is the plugin's: ``with netlab_lab as lab:`` leaves it up (as for
    the labs of ``netlab_factory``); a test that calls its ``down()`` makes
    the next test of its scope fail at setup, naming that test.
    """
    marker = request.node.get_closest_marker("netlab")
    if marker is None:
        raise marker_error(f"{request.node.nodeid}: the netlab_lab fixture needs a "
                           "@pytest.mark.netlab(topology) marker (or use netlab_factory)")
    topology, scope, name = marker_args(marker)
    topology = _resolve_path(request, topology)
    registry = request.config.stash[REGISTRY]
    if scope == "function":
        lab = registry.bring_up(topology, name, 60.0, item=request.node)
        request.addfinalizer(lambda: registry.take_down([lab], failed=_failed(request.node)))
    else:
        cache: _Shared = request.getfixturevalue(f"_netlab_{scope}_labs")
        lab = cache.get(topology, name, request.node)
        cache.users.setdefault(lab.name, []).append(request.node)
    _used_by(request.node, lab)
    return lab


def _shared_fixture(scope: Any) -> Any:
    @pytest.fixture(scope=scope)
    def fixture(request: pytest.FixtureRequest) -> Generator[_Shared, None, None]:
        shared = _Shared(request.config.stash[REGISTRY], str(scope))
        try:
            yield shared
        finally:
            shared.close()

    fixture.__doc__ = f"(netlab plugin) labs shared by the tests of one {scope}."
    return fixture


_netlab_class_labs = _shared_fixture("class")
_netlab_module_labs = _shared_fixture("module")
_netlab_package_labs = _shared_fixture("package")
_netlab_session_labs = _shared_fixture("session")


# --- SIGTERM, SIGHUP: the run stops as at Ctrl-C, in the xdist controller and in every worker -------------------

_workers: list[Any] = []  # the xdist controller's workers (subprocess.Popen), to pass a SIGTERM on to
_stopping: list[int] = []  # the SIGTERM this process turned into a KeyboardInterrupt (at most one)
# Why a KeyboardInterrupt of netlab's (signals.Terminated) and not Python's own: CPython (3.8+) ends a `python -m`
# program with SIGINT, status 130, whatever its exit code, once a plain KeyboardInterrupt left code that exec() or
# eval() ran from a string (pythonrun.c, run_eval_code_obj; a subclass does not count). A SIGTERM while netlab's
# modules are first imported, in Lab.up, lands in such code (a dataclass's methods are made that way) often: pytest
# caught it and returned 2, and the process still exited 130.


def _stop_on_sigterm(config: pytest.Config) -> None:
    """SIGTERM (what a CI job's timeout sends first) stops the run as Ctrl-C does, so the session's end still
    takes the labs down; left to its default it killed pytest with the labs up. In every pytest process, at
    once: with ``pytest -n``, the controller got it and died where it stood, and its workers, orphaned, were
    stopped by execnet's SIGINT 5 s later, or, where SIGINT is ignored (a background job of a shell script,
    nohup), ``os._exit``-ed 10 s after that with their labs up. Only where nobody set a handler of their own
    (netlab's ``up`` sets its own while it runs, its rollback).

    SIGHUP alike (an ssh session dropped, a terminal closed: the kernel sends it to the whole foreground group,
    the controller and every worker): left to its default it killed each pytest process with its labs up. One
    ignored (``nohup pytest``) stays ignored."""
    for sig in signals.TERMINATING:
        if signal.getsignal(sig) is signal.SIG_DFL:
            try:
                signal.signal(sig, _sigterm)
            except ValueError:  # not the main thread
                return
    if hasattr(config, "workerinput"):  # an xdist worker
        _worker_stops_with_its_controller()


def _sigterm(signum: int, frame: object) -> None:
    """Pass SIGTERM (SIGHUP) on to the xdist workers (a terminal's Ctrl-C reaches every process of the run; a CI
    runner's SIGTERM often reaches the controller alone), then stop this process's run as Ctrl-C does.

    Once: a second SIGTERM (the process group's, after the controller's; a runner's repeat) would land in
    the session's end and cut the labs' take-down short. SIGKILL is the way to force it."""
    if _stopping:
        return
    _stopping.append(signum)
    if signum == signal.SIGHUP:
        signals.quiet_hung_up()  # the terminal is gone: pytest's report there failed (EIO), its end cut short
    for popen in _workers:
        try:
            popen.send_signal(signum)  # SIGTERM or SIGHUP; nothing if it has ended (and been reaped)
        except OSError:
            pass
    raise signals.stopped_by(signum)  # Terminated, a KeyboardInterrupt: "interrupted by SIGTERM" (SIGHUP)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_newgateway(gateway: Any) -> None:
    """In the xdist controller: a worker process was started (execnet's popen gateway holds its Popen)."""
    popen = getattr(getattr(gateway, "_io", None), "popen", None)
    if isinstance(popen, subprocess.Popen):
        _workers.append(popen)


def _worker_stops_with_its_controller() -> None:
    """An xdist worker takes its labs down however its controller goes.

    execnet stops a worker that is still running a test when the controller ends the session (or dies) with
    a SIGINT: a worker inherits SIGINT ignored from a controller started in a shell script's background, and
    then went on until execnet ``os._exit``-ed it, its labs up. Python's own SIGINT handler there. And the
    controller's death (SIGKILL, the OOM killer) is a SIGTERM to the worker (the kernel's parent-death
    signal): it stops, and takes its labs down, at once."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if sys.platform == "linux":
        from netlab.kernel.child import PR_SET_PDEATHSIG
        from netlab.kernel import libc

        libc.handle().prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _resolve_path(request: pytest.FixtureRequest, topology: TopologyInput) -> TopologyInput:
    return resolve_path(Path(str(request.node.path)), Path(str(request.config.rootpath)), topology)


# --- when a test fails ---------------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, Any, None]:
    yield
    adopt(item)  # the labs its module's (class's, session's) fixtures watch: the test's too, also if setup failed


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    rep: pytest.TestReport = outcome.get_result()
    if call.excinfo is not None and getattr(call.excinfo.value, ONE_LINE, False):
        rep.longrepr = f"netlab: pytest.UsageError: {call.excinfo.value}"  # one line, as pytest.fail(pytrace=False)
    if rep.when == "call" or rep.failed:
        unhook(item)  # the test's call is over: a lab it takes down from now on is not read (sessionfinish's)
    if rep.failed and item.stash.get(LABS, None) and not _failed(item):
        # Once per test, in whichever phase failed first: its call, or its setup (a fixture after the lab's, or
        # one that brought a lab up, raised: the test never ran), or its teardown (report_failure says which
        # labs are still there to read by then).
        report_failure(item, rep, item.config.stash[REGISTRY].retried)


# --- the end of the run --------------------------------------------------------------------------


def pytest_sessionfinish(session: pytest.Session) -> None:
    registry = session.config.stash.get(REGISTRY, None)
    if registry is not None:
        registry.close()


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    skips: dict[str, int] = {}
    for rep in terminalreporter.stats.get("skipped", []):
        reason = _skip_reason(rep)
        if reason is not None and reason.startswith(SKIP_PREFIX):
            skips[reason] = skips.get(reason, 0) + 1
    # a lab shared by several failed tests: once; a test whose setup failed is reported as an error
    failed = terminalreporter.stats.get("failed", []) + terminalreporter.stats.get("error", [])
    kept = kept_lines(failed)
    retried = retried_lines(failed)  # its take-down failed: not kept, whatever --netlab-keep says
    if skips:
        terminalreporter.section("netlab: lab tests skipped", sep="-")
        for reason, n in skips.items():
            terminalreporter.line(f"{n} test{'s' if n > 1 else ''}: {reason}")
    if kept:
        terminalreporter.section("netlab: labs kept up (--netlab-keep)", sep="-")
        for text in kept:
            terminalreporter.line(text)
    if retried:
        terminalreporter.section("netlab: labs not kept: their take-down failed (--netlab-keep)", sep="-")
        for text in retried:
            terminalreporter.line(text)


def _skip_reason(rep: Any) -> str | None:
    longrepr = getattr(rep, "longrepr", None)
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
        return reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason
    return None

