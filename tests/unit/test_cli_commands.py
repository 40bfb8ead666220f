"""The command table: every command is where COMMANDS says, and a command loads only what it uses."""

from __future__ import annotations

import gc
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from helpers import STATE_READING
from netlab.cli.base import COMMANDS, cli
from netlab.errors import netlab_command

DEMO = Path(__file__).resolve().parents[2] / "netlab" / "data" / "default.yaml"


def test_every_module_registers_exactly_the_commands_the_table_gives_it():
    for module in sorted(set(COMMANDS.values())):
        importlib.import_module(module)
    assert set(cli.commands) == set(COMMANDS)
    for name, command in cli.commands.items():
        assert command.callback.__module__ == COMMANDS[name], name


def test_help_lists_the_commands_in_table_order():
    out = CliRunner().invoke(cli, ["--help"])
    assert out.exit_code == 0, out.output
    listed = [line.split()[0] for line in out.output.split("Commands:\n", 1)[1].splitlines() if line.startswith("  ")]
    assert listed == list(COMMANDS)


def _subcommands(group, path=()):
    import click

    for name, command in sorted(group.commands.items()):
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _subcommands(command, (*path, name))


def test_every_help_reads_as_written():
    """Every command's --help: exit 0, and no escaping meant for another formatter ("1%%": click prints help
    text as it is, argparse would have halved it), no unformatted placeholder."""
    for module in sorted(set(COMMANDS.values())):
        importlib.import_module(module)
    for path, _command in _subcommands(cli):
        out = CliRunner().invoke(cli, [*path, "--help"])
        assert out.exit_code == 0, (path, out.output)
        for bad in ("%%", "%(", "{}", "{0}"):
            assert bad not in out.output, (path, bad, out.output)


def test_validate_loads_no_kernel_probe_or_trace_code():
    """`netlab validate` and `plan` need no root and stay quick: the netlink, probe and trace stack is not loaded."""
    code = ("import sys; from netlab.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "heavy = ('pyroute2', 'scapy', 'netlab.realize', 'netlab.probe', 'netlab.trace', 'netlab.kernel',"
            " 'netlab.workload', 'netlab.services', 'netlab.doctor')\n"
            f"light = {STATE_READING!r}\n"
            "loaded = sorted(m for m in sys.modules if m.startswith(heavy) and m not in light)\n"
            "print(','.join(loaded), file=sys.stderr)")
    for command in (["validate"], ["plan"]):
        proc = subprocess.run([sys.executable, "-c", code, *command], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.strip() == "", f"netlab {command[0]} loaded: {proc.stderr.strip()}"


def test_the_program_loads_its_command_with_the_cycle_collector_off_and_collects_after():
    """netlab/launch.py: the collector is off while the program loads the command and what it uses (its
    module's LOADS, cli.base.load_for), then on, with what was loaded frozen (click's core among it); the
    command's own garbage is collected."""
    code = ("import atexit, gc, sys\n"
            "import netlab.launch, netlab.cli.base as base\n"
            "seen = []\n"
            "resume = base.collect_from_here\n"
            "def spy():\n"
            "    loads = sys.modules['netlab.cli.topology'].LOADS\n"
            "    seen.append((gc.isenabled(), all(m in sys.modules for m in loads)))\n"
            "    resume()\n"
            "base.collect_from_here = spy\n"
            "atexit.register(lambda: print(seen, gc.isenabled(), gc.get_freeze_count() > 10000, file=sys.stderr))\n"
            "sys.argv = ['netlab', 'validate', '-t', sys.argv[1]]\n"
            "netlab.launch.main()\n")
    proc = subprocess.run([sys.executable, "-c", code, str(DEMO)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "[(False, True)] True True"


def test_probe_loads_the_models_with_the_cycle_collector_off(tmp_path):
    """`probe` loads its models in the command (after its early agent's start, probe/early.py), not through LOADS:
    the collector stays off while it loads them, the runner and the report, as for every other command. It had been
    switched on before them (~0.1 s of loading with the collector on)."""
    code = ("import atexit, gc, sys\n"
            "import netlab.launch, netlab.cli.base as base, netlab.cli.probe as probe\n"
            "probe.require_root = lambda: None\n"
            "seen = []\n"
            "resume = base.collect_from_here\n"
            "def spy():\n"
            "    loaded = ('netlab.model.topology', 'netlab.api.lab', 'netlab.probe.runner', 'netlab.probe.report')\n"
            "    seen.append((gc.isenabled(), all(m in sys.modules for m in loaded)))\n"
            "    resume()\n"
            "base.collect_from_here = probe.collect_from_here = spy\n"
            "atexit.register(lambda: print(seen, gc.isenabled(), file=sys.stderr))\n"
            "sys.argv = ['netlab', 'probe', '--lab', 'nolab']\n"
            "netlab.launch.main()\n")
    env = dict(os.environ, NETLAB_STATE_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode != 0 and "nolab" in proc.stderr, proc.stderr  # no such lab: said after loading
    assert proc.stderr.strip().splitlines()[-1] == "[(False, True)] True"


def test_probe_starts_its_early_agent_before_anything_loads_the_models(tmp_path):
    """`probe` forks its agent (probe/early.begin) before the topology's models load, so that it probes while they
    load. Root's capability check (cli/base.require_root, require_packets) loaded the doctor's checks, and with them
    pydantic and the models, before the early start (the CLI's first probe run 0.35 s, not 0.26): the doctor's words
    are loaded only to refuse. Root with every capability, as on the host."""
    code = ("import atexit, os, sys\n"
            "import netlab.launch\n"
            "from netlab.kernel import caps\n"
            "from netlab.probe import early\n"
            "os.geteuid = lambda: 0\n"
            "caps.missing = lambda names=None: []\n"
            "caps.user_namespace = lambda: None\n"
            "seen, begin = [], early.begin\n"
            "heavy = ('pydantic', 'netlab.model.topology', 'netlab.model.lab', 'netlab.doctor_host')\n"
            "early.begin = lambda *args: seen.append([m for m in heavy if m in sys.modules]) or begin(*args)\n"
            "atexit.register(lambda: print(seen, file=sys.stderr))\n"
            "sys.argv = ['netlab', 'probe', '--lab', 'nolab']\n"
            "netlab.launch.main()\n")
    env = dict(os.environ, NETLAB_STATE_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode != 0 and "nolab" in proc.stderr, proc.stderr  # no such lab: said after loading
    assert proc.stderr.strip().splitlines()[-1] == "[[]]"


def test_probe_of_a_lab_without_services_loads_no_kube_proxy_plan_nor_junit_writer():
    """A probe loads the plan's kube-proxy, Flannel and internet modules (their rules' and resources' dataclasses,
    ~10 ms) only for a lab with Services, and the XML writer only for --junit: a first run's loading is most of
    its time."""
    code = ("import sys\n"
            "import netlab.cli.probe, netlab.probe.early, netlab.api.lab, netlab.probe.report\n"
            "from netlab.probe import runner, services as svcs\n"
            "from netlab.model.lab import resolve\n"
            "from netlab.model.topology import Topology\n"
            "lab = resolve(Topology.model_validate({'name': 'demo', 'nodes': [{'name': 'n1'}],\n"
            "    'pods': [{'name': 'p1', 'node': 'n1'}, {'name': 'p2', 'node': 'n1'}]}))\n"
            "plan = svcs.build(lab, ('icmp',))\n"
            "probes = [runner.as_nodeport(p, plan, lab) for p in runner.build_matrix(lab, ('icmp',), egress=True)]\n"
            "runner.make_job(lab, probes, 1.0, budget=100, arp='real', dists=plan.distributions)\n"
            # route_attrs: a route's metrics' names, which the netlink codec reads (a few constants)
            "light = ('netlab.plan.cniadd', 'netlab.plan.sysctls', 'netlab.plan.route_attrs')\n"
            "print(sorted(m for m in sys.modules if m.startswith(('netlab.plan.', 'xml')) and m not in light))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# An object held by one of the program's modules, whose end says so: Python's exit clears the modules.
TEAR_DOWN_SPY = ("import atexit, os, sys, threading, time\n"
                 "import netlab.launch\n"
                 "class Spy:\n"
                 "    def __del__(self, write=os.write):\n"
                 "        write(2, b'torn down\\n')\n"
                 "netlab.launch.spy = Spy()\n"
                 "atexit.register(lambda: sys.stderr.write('atexit ran\\n'))\n"
                 "if sys.argv[1] == 'thread':\n"
                 "    threading.Thread(target=lambda: (time.sleep(0.3), sys.stderr.write('thread done\\n'))).start()\n"
                 "sys.argv = ['netlab', *sys.argv[2:]]\n"
                 "netlab.launch.main()\n")


@pytest.mark.parametrize("argv,code", [(["validate", "-t", str(DEMO)], 0), (["validate", "-t", "/nonexistent.yaml"], 2)])
def test_the_program_exits_without_tearing_its_objects_down_after_its_atexit_handlers_and_output(argv, code):
    """netlab/launch.py: a command's end skips Python's tear-down of what it loaded (no object's __del__ runs),
    after the atexit handlers ran and standard output was flushed; the exit status is the command's."""
    proc = subprocess.run([sys.executable, "-c", TEAR_DOWN_SPY, "-", *argv], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.splitlines()[-1] == "atexit ran" and "torn down" not in proc.stderr
    if code == 0:
        assert proc.stdout.rstrip().endswith(CliRunner().invoke(cli, argv).output.rstrip())
    else:
        assert proc.stderr.startswith("/nonexistent.yaml: no such file")


def test_a_thread_that_is_no_daemon_is_still_waited_for_by_python_s_own_exit():
    """The thread sleeps 0.3 s before it says so: the program's own exit would end it unsaid. (Whether Python's
    exit then finalizes the module's object is Python's business: it does not always, so it is not asked.)"""
    proc = subprocess.run([sys.executable, "-c", TEAR_DOWN_SPY, "thread", "validate", "-t", str(DEMO)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "thread done" in proc.stderr.splitlines() and "atexit ran" in proc.stderr.splitlines(), proc.stderr


def test_a_command_run_in_process_leaves_the_callers_collector_as_it_was():
    frozen = gc.get_freeze_count()
    out = CliRunner().invoke(cli, ["validate", "-t", str(DEMO)])
    assert out.exit_code == 0, out.output
    assert gc.isenabled() and gc.get_freeze_count() == frozen


def test_help_and_completion_load_no_command_code():
    """`netlab --help` and tab completion list every command from its module's top alone: what the
    commands use (the topology's models, pydantic, the API, netlink) waits for a command to run."""
    code = ("import os, sys; from netlab.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "heavy = ('pydantic', 'pyroute2', 'scapy', 'yaml', 'netlab.model.topology', 'netlab.model.lab',"
            " 'netlab.api.lab', 'netlab.api.results', 'netlab.kernel', 'netlab.realize', 'netlab.probe.report',"
            " 'netlab.doctor')\n"
            "print(','.join(sorted(m for m in sys.modules if m.startswith(heavy))), file=sys.stderr)")
    env = {**os.environ, "_NETLAB_COMPLETE": "bash_complete", "COMP_WORDS": "netlab ", "COMP_CWORD": "1"}
    for argv, extra in ((["--help"], {}), ([], env)):
        proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60,
                              env=extra or None)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.strip().splitlines()[-1:] in ([], [""]), f"{argv or 'completion'} loaded: {proc.stderr}"
        assert "validate" in proc.stdout and "doctor" in proc.stdout


def test_every_modules_loads_are_modules():
    for module in sorted(set(COMMANDS.values())):
        for name in getattr(importlib.import_module(module), "LOADS", ()):
            importlib.import_module(name)


def test_a_reader_that_goes_away_ends_the_program_quietly_as_sigpipe_would():
    """`netlab break --list | head -1`: the pipe's reader is gone before netlab writes. The program ends as
    cat does there (128 + SIGPIPE = 141), nothing on stderr; click alone would exit 1."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone: the first write fails with EPIPE
    try:
        proc = subprocess.run([sys.executable, "-m", "netlab", "break", "--list"], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)
    assert (proc.returncode, proc.stderr) == (141, "")
    # An error of another pipe is not taken for it: a command's output to a reader still there is whole.
    listing = subprocess.run([sys.executable, "-m", "netlab", "break", "--list"], capture_output=True, text=True,
                             timeout=60)
    assert listing.returncode == 0 and len(listing.stdout.splitlines()) > 5


@pytest.mark.parametrize("args", [["validate", "-t", str(DEMO)], ["validate", "-t", str(DEMO), "-o", "json"],
                                  ["break", "--list"]], ids=["text", "json", "break-list"])
def test_output_to_a_full_disk_is_one_line_not_a_traceback(args):
    """`netlab ... > file` where the disk is full (/dev/full refuses every write with ENOSPC): one line naming
    the output, exit 3, and nothing more from Python's own flush at exit; it was a traceback (exit 1)."""
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "netlab", *args], stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=60)
    assert (proc.returncode, proc.stderr) == (
        3, "netlab: cannot write the output: No space left on device (it is cut short)\n")


@pytest.mark.parametrize("redirect", [">&-", "1</dev/null"], ids=["closed", "read-only"])
@pytest.mark.parametrize("args", [["validate", "-t", str(DEMO)], ["validate", "-t", str(DEMO), "-o", "json"],
                                  ["break", "--list"], ["--version"], ["--help"], ["graph", "-t", str(DEMO)]],
                         ids=["text", "json", "break-list", "version", "help", "graph"])
def test_a_command_whose_output_cannot_be_written_says_so_in_one_line(args, redirect):
    """`netlab validate >&-` (standard output closed) or `1</dev/null` (open read-only): one line, exit 3, as
    `>/dev/full` is, and as `cat >&-` fails; it was exit 0 with the output lost (click writes nothing where
    Python has no sys.stdout), or Python's traceback (EBADF, no attribute 'write'/'buffer' of None). --help and
    --version too: their text is what was asked for, lost as any output is (launch.py says why)."""
    proc = subprocess.run(["sh", "-c", f'exec "$0" -m netlab "$@" {redirect}', sys.executable, *args],
                          stderr=subprocess.PIPE, text=True, timeout=60)
    assert (proc.returncode, proc.stderr) == (3, "netlab: cannot write the output: Bad file descriptor (standard "
                                                 "output is closed or read-only; nothing was done)\n")


@pytest.mark.parametrize("given, said", [
    (["--resync", "3"], "--resync goes"),
    (["--restart-backoff", "1", "--resync", "3"], "--restart-backoff and --resync go"),
])
def test_the_watchers_options_without_watch_are_refused_before_anything(given, said):
    """`up --resync 3` without --watch would do nothing, unsaid: refused (exit 2) before the file is read (a
    file that does not exist here: without the check the error would be its)."""
    proc = subprocess.run([sys.executable, "-m", "netlab", "up", "-t", "/nonexistent/netlab.yaml", *given],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr == (
        f"netlab: {said} with --watch (the loop that restarts containers and checks the lab)\n")


@pytest.mark.parametrize("output", ["json", "yaml"])
def test_the_watcher_takes_no_data_output(output):
    """`up --watch -o json` printed the watcher's text lines under a promise of JSON: refused in one line (exit 2)
    before the file is read, with what gives up's result as data (of the file given); `--help` says it. On stdout,
    that line as the error document asked for (docs/json.md), no watcher's text."""
    proc = subprocess.run([sys.executable, "-m", "netlab", "up", "-t", "/nonexistent/netlab.yaml", "--watch",
                           "-o", output], capture_output=True, text=True, timeout=60)
    said = (f"--watch writes one text line per action until Ctrl-C: it takes no -o {output} "
            f"(`{netlab_command(f'up -t /nonexistent/netlab.yaml -o {output}')}` gives up's result, then run --watch)")
    assert proc.returncode == 2 and proc.stderr == f"netlab: {said}\n"
    assert yaml.safe_load(proc.stdout) == {"error": said, "exit_code": 2, "file": None, "line": None, "field": None,
                                           "problems": []}
    shown = subprocess.run([sys.executable, "-m", "netlab", "up", "--help"], capture_output=True, text=True,
                           timeout=60, env={**os.environ, "COLUMNS": "200"}).stdout
    assert "Text only: -o json and -o yaml are refused (exit 2)." in " ".join(shown.split())


@pytest.mark.parametrize("named", [["--lab", "ou59w"], []])
def test_the_watchers_refusal_of_json_names_the_lab_and_the_state_folder_as_every_suggestion_does(named, tmp_path):
    """QA out59 4: `up --lab L --watch -o json` suggested `netlab up -o json`, which drops --lab L (a plain `up`
    makes or repairs another lab) and lacks the sudo and NETLAB_STATE_DIR every other suggestion has
    (errors.netlab_command). $NETLAB_LAB, which sudo drops too, is said as --lab."""
    env = {**os.environ, "NETLAB_STATE_DIR": str(tmp_path / "my st")}
    env.pop("NETLAB_LAB", None)
    if named:
        env["NETLAB_LAB"] = "ou59e"  # --lab's value wins over it
    proc = subprocess.run([sys.executable, "-m", "netlab", "up", *named, "--watch", "-o", "json"],
                          capture_output=True, text=True, timeout=60, env=env)
    lab = f" --lab {named[1]}" if named else ""
    want = f"sudo NETLAB_STATE_DIR='{tmp_path}/my st' netlab up{lab} -o json"
    assert proc.returncode == 2 and proc.stderr == (
        f"netlab: --watch writes one text line per action until Ctrl-C: it takes no -o json (`{want}` gives up's "
        "result, then run --watch)\n"), proc.stderr
    env["NETLAB_LAB"] = "ou59e"
    proc = subprocess.run([sys.executable, "-m", "netlab", "up", "--watch", "-o", "json"], capture_output=True,
                          text=True, timeout=60, env=env)
    assert f"(`sudo NETLAB_STATE_DIR='{tmp_path}/my st' netlab up --lab ou59e -o json` gives" in proc.stderr


@pytest.mark.parametrize("args", [
    ["up", "--watch", "--resync", "nan"], ["up", "--watch", "--restart-backoff", "NaN"], ["up", "--wait", "nan"],
    ["down", "--wait", "inf"], ["impair", "a:eth0", "--clear", "--wait", "nan"], ["probe", "--timeout", "nan"],
    ["policy", "table", "--timeout", "nan"], ["trace", "a", "b", "--timeout", "nan"],
    ["capture", "a:eth0", "--timeout", "nan"],
])
def test_a_number_of_seconds_is_never_nan_nor_infinite(args):
    """"nan" passes every comparison a range makes: it was a traceback in the watcher's select(), an endless
    wait for the lab's lock, a probe agent killed "within nan s". Refused by the option (exit 2), before
    anything is read or needed (no root, no lab). A process of its own: before, some of them never ended."""
    proc = subprocess.run([sys.executable, "-m", "netlab", *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "is not a number of seconds" in proc.stderr, proc.stderr


@pytest.mark.parametrize("given", [["-t", "/nonexistent/netlab.yaml"], ["-t", "/nonexistent/netlab.yaml",
                                                                          "--reconfigure"]])
def test_up_of_a_running_lab_by_name_takes_no_file(given):
    """`up --lab NAME` converges a running lab to its saved topology: what a file would add is refused in one
    line (exit 2), before anything is read (--watch watches the lab, --reconfigure re-attaches its pods:
    tests/unit/test_cli_up_lab.py)."""
    proc = subprocess.run([sys.executable, "-m", "netlab", "up", "--lab", "nosuchlab", *given],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr == (
        "netlab: --lab NAME converges a running lab to its own saved topology: it takes no -t FILE (give -t FILE "
        "to apply a file)\n")


def test_debug_is_netlabs_option_only_where_click_reads_it(tmp_path, monkeypatch):
    """`exec POD -- CMD --debug`: the word belongs to CMD; netlab's error stays one line. `netlab --debug ...`
    shows the traceback."""
    from cli_inprocess import run_cli

    monkeypatch.setenv("NETLAB_STATE_DIR", str(tmp_path))
    monkeypatch.setattr("netlab.realize.state_dir.STATE_ROOT", str(tmp_path))
    theirs = run_cli("exec", "--lab", "nolab", "x", "--", "grep", "--debug", "y")
    assert theirs.returncode in (2, 3) and "Traceback" not in theirs.stderr, theirs.stderr
    assert len(theirs.stderr.splitlines()) == 1, theirs.stderr
    ours = run_cli("--debug", "exec", "--lab", "nolab", "x", "--", "grep", "y")
    assert ours.returncode == theirs.returncode and "Traceback (most recent call last)" in ours.stderr, ours.stderr
    assert ours.stderr.splitlines()[-1] == theirs.stderr.strip()  # the traceback, then the same line


def test_debug_keeps_the_errors_exit_code_and_json_document(tmp_path, monkeypatch):
    """--debug adds the traceback: the exit code and -o json's error document stay those of the run without it (a
    pipeline that turns --debug on to see why a step fails still branches the same way)."""
    import json

    from cli_inprocess import run_cli

    monkeypatch.setenv("NETLAB_STATE_DIR", str(tmp_path))
    monkeypatch.setattr("netlab.realize.state_dir.STATE_ROOT", str(tmp_path))
    missing = str(tmp_path / "missing.yaml")
    for args in (("status", "--lab", "nolab", "-o", "json"), ("plan", "-t", missing, "-o", "json")):
        plain, debug = run_cli(*args), run_cli("--debug", *args)
        assert plain.returncode == debug.returncode == 2, (plain, debug)
        assert json.loads(debug.stdout) == json.loads(plain.stdout), debug.stdout
        assert "Traceback (most recent call last)" in debug.stderr and "Traceback" not in plain.stderr


def test_ctrl_c_while_the_program_loads_is_one_line_and_130():
    """A Ctrl-C in the first tens of milliseconds lands in an import (click, pydantic): a traceback, sometimes
    exit 1. The KeyboardInterrupt is raised here where the import of the commands begins."""
    code = ("import builtins\n"
            "real = builtins.__import__\n"
            "def interrupted(name, *args, **kwargs):\n"
            "    if name == 'netlab.cli':\n"
            "        raise KeyboardInterrupt\n"
            "    return real(name, *args, **kwargs)\n"
            "builtins.__import__ = interrupted\n"
            "from netlab.launch import main\n"
            "main()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stderr) == (130, "netlab: interrupted\n")


def test_no_progress_bar_where_standard_error_is_closed(monkeypatch):
    """`netlab trace a nosuch 2>&-`: Python starts with no sys.stderr; the bar asked it whether it was a terminal
    (AttributeError, exit 1 in place of the user error's 2)."""
    from netlab.cli.progress import progress_bar

    monkeypatch.setattr(sys, "stderr", None)
    assert progress_bar("tracing a → b") == (None, None)
