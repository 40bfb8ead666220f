"""The click group, shared options and the error boundary."""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import math
import os
import select
import signal
import sys
from typing import Any, Callable, ContextManager, Sequence, TextIO

import click
from click.core import ParameterSource

from netlab import __version__, signals
from netlab.cli import jsonout
from netlab.errors import (DISK_FULL, EXIT_ENVIRONMENT, ChecksFailed, EnvironmentNotReady, NetlabError, TopologyError,
                           UsageError, display_path, output_unwritable)

TOPOLOGY_HELP = "Topology file. Default: the built-in two-node Flannel lab 'demo'."
# The type of every -t FILE: it checks nothing (the loader says what is wrong with the path on one line,
# exit 2, for every command alike: no such file, a directory, a FIFO) and lets the shell complete paths.
TOPOLOGY_FILE = click.Path(readable=False)
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


# Every command and the module that defines it, in the order of `netlab --help`. A command's
# module is imported when the command runs (or --help lists it), so `netlab validate` does
# not load the netlink, probe and trace code that only `up` or `trace` need. A module keeps at
# its top only what its options need; the modules its commands use are its LOADS, imported when
# one of them runs (Command.invoke): `netlab --help` and tab completion load none of them.
COMMANDS = {
    "validate": "netlab.cli.topology", "plan": "netlab.cli.topology",
    "up": "netlab.cli.lab", "down": "netlab.cli.lab", "status": "netlab.cli.lab", "list": "netlab.cli.lab",
    "get": "netlab.cli.get",
    "exec": "netlab.cli.workload", "logs": "netlab.cli.workload",
    "impair": "netlab.cli.impair",
    "probe": "netlab.cli.probe",
    "trace": "netlab.cli.trace", "capture": "netlab.cli.trace", "inspect": "netlab.cli.trace",
    "graph": "netlab.cli.graph",
    "policy": "netlab.cli.policy",
    "break": "netlab.cli.breaks", "quiz": "netlab.cli.breaks",
    "doctor": "netlab.cli.doctor",
    "completion": "netlab.cli.completion",
    "cni": "netlab.cli.cni",
}


def load_for(command: click.Command) -> None:
    """Before ``command`` runs: import the modules its module names in ``LOADS``, then
    :func:`collect_from_here`; a module whose ``LOADS_ITSELF`` is true imports them in its command
    and calls :func:`collect_from_here` there itself."""
    module = sys.modules.get(getattr(command.callback, "__module__", "") or "")
    if getattr(module, "LOADS_ITSELF", False):
        return
    for name in getattr(module, "LOADS", ()):
        importlib.import_module(name)
    collect_from_here()


class _LoadsFirst:
    """Its module's LOADS are imported when it runs, not when --help lists it."""

    def invoke(self, ctx: click.Context) -> Any:
        load_for(self)  # type: ignore[arg-type]  # mixed into click.Command and click.Group only
        try:
            return super().invoke(ctx)  # type: ignore[misc]
        except KeyboardInterrupt as exc:
            raise _said(exc) from exc
        except BrokenPipeError:
            if not _reader_gone():
                raise
            raise SystemExit(_reader_went_away()) from None


def _said(exc: KeyboardInterrupt) -> NetlabError:
    """A stop signal that ends a command, as :func:`main` says it: one line, exit 128 + the signal. click would
    turn it into its Abort after an empty line on stderr (a terminal's ``^C`` closed), and lose the line of
    netlab's Interrupted (a signal during up, rolled back) that says what became of the lab."""
    signals.ending()  # the command is over: a second signal must not cut its line short
    said = NetlabError(str(exc) if exc.args else "interrupted")
    said.exit_code = signals.exit_code(exc)
    return said


def _stop_line(exc: BaseException) -> str:
    """The one line a stop signal ends a command with (after :func:`_end_caret`)."""
    signals.ending()
    _end_caret(exc)
    return f"netlab: {exc if exc.args else 'interrupted'}"


def _end_caret(exc: BaseException) -> None:
    """A Ctrl-C typed on a terminal left its ``^C`` echoed there (the tty's echoctl) with no newline: on a
    terminal netlab's line starts on a line of its own; in a pipe or a file (a script, CI) nothing comes
    before it."""
    if signals.exit_code(exc) == 128 + signal.SIGINT and sys.stderr is not None and sys.stderr.isatty():
        click.echo("", err=True)


def _reader_gone() -> bool:
    """Standard output or standard error is a pipe whose reader has closed it (the kernel flags its write end
    with POLLERR): `netlab break --list | head -1`, or an error said to `2>&1 | head -1`."""
    return bool(_gone_fds())


def _gone_fds() -> list[int]:
    """Which of standard output (1) and standard error (2) lead to a pipe with no reader."""
    gone = []
    for stream in (sys.stdout, sys.stderr):
        try:
            poller = select.poll()
            poller.register(stream.fileno(), 0)
            if any(event & select.POLLERR for _fd, event in poller.poll(0)):
                gone.append(stream.fileno())
        except (AttributeError, OSError, ValueError):
            continue
    return gone


def _reader_went_away() -> int:
    """End quietly with the status of a program that SIGPIPE killed, as cat and ls end there (click would say
    1, Python's traceback 1), whether the output's reader or the errors' went away: a pipe with no reader is
    pointed at /dev/null, so that Python's flush at exit does not fail again."""
    for fd in _gone_fds():
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
    return 128 + signal.SIGPIPE


class Command(_LoadsFirst, click.Command):
    """A netlab command."""


class SubGroup(_LoadsFirst, click.Group):
    """A command with subcommands (``policy``, ``cni``, ``quiz``)."""

    command_class = Command


SubGroup.group_class = SubGroup


class Group(click.Group):
    """The commands of COMMANDS, in that order, each module imported on first use
    (click's "lazily loading subcommands"); the modules register their commands on import."""

    command_class = Command
    group_class = SubGroup

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:  # as click parsed the command's arguments: said as in the command
            raise _said(exc) from exc

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(COMMANDS[cmd_name])
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        """``netlab stauts``: "Did you mean 'status'?", as click says of a mistyped option and of a subgroup's
        command; click looks among the commands loaded so far, which here are none until one runs."""
        name = click.utils.make_str(args[0]) if args else ""
        if name and not name.startswith("-") and not ctx.resilient_parsing and self.get_command(ctx, name) is None:
            import difflib

            close = [repr(c) for c in sorted(difflib.get_close_matches(name, self.list_commands(ctx)))]
            if close:
                ctx.fail(f"No such command {name!r}. " + (f"Did you mean {close[0]}?" if len(close) == 1 else
                                                          f"(Did you mean one of: {', '.join(close)}?)"))
        return super().resolve_command(ctx, args)


def collect_from_here() -> None:
    """The command and what it uses are loaded: if the program started with the cycle collector off
    (netlab/launch.py), set aside everything loaded so far (``gc.freeze``) and switch the collector on
    for what the command makes. Where the collector is on (another program, click's test runner),
    nothing changes."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


@click.group(cls=Group, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="netlab")
@click.option("--debug", is_flag=True, help="Show Python tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Real network-namespace labs of the Kubernetes network model.

    A topology (nodes, pods, Services) becomes network namespaces, veth pairs,
    Linux bridges, a Flannel-style VXLAN overlay or host-gw routes, and
    kube-proxy-style iptables rules. Poke at it with ordinary tools
    (``ip netns exec demo-fedora-1 ping 10.244.1.3``), check it with
    ``netlab probe``, and take it down with ``netlab down``.

    \b
    Typical session:
      sudo netlab up                 # the built-in two-node Flannel lab "demo"
      sudo netlab status             # live kernel vs. the plan
      sudo netlab exec fedora-1 -- ping -c1 10.244.1.3
      sudo netlab down

    Exit codes: 0 ok, 1 checks failed (drift, unmet expectations), 2 invalid
    input, 3 environment not ready (not root, missing tool), 4 apply failed
    (rolled back), 130 interrupted by Ctrl-C, 143 by SIGTERM, 141 the reader
    of the output or of the errors went away (`| head -1`).
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def lab_from_env(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """$NETLAB_LAB is the default of --lab; a -t FILE on the command line picks the lab instead. A name from
    the variable is marked so, and what is wrong with it names $NETLAB_LAB, not --lab."""
    if value is not None and ctx.get_parameter_source(param.name or "") == ParameterSource.ENVIRONMENT:
        if ctx.params.get("topology") is not None or not value.strip():
            return None
        from netlab.realize.state import EnvLabName

        return EnvLabName(value.strip())
    return value


def lab_options(func: Callable) -> Callable:
    """--lab NAME / -t FILE: which running lab a command acts on ($NETLAB_LAB when neither is given)."""
    from netlab.cli.complete import complete_labs

    func = click.option("-t", "--topology", "topology", metavar="FILE", type=TOPOLOGY_FILE,
                        help="Topology file of the lab (its name: field picks the lab).")(func)
    func = click.option("--lab", "lab_name", metavar="NAME", envvar="NETLAB_LAB", show_envvar=True,
                        callback=lab_from_env, shell_complete=complete_labs,
                        help="Name of a running lab. Default: $NETLAB_LAB, else the only lab that is up.")(func)
    return func


Callback = Callable[[click.Context, click.Parameter, Any], Any]


def comma_separated(choices: Sequence[str]) -> Callback:
    """A callback for a repeatable option that also takes a comma-separated list (``--proto icmp,udp
    --proto tcp``), each item one of ``choices``: the items in order, once each; () when not given."""

    def split(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
        names = comma_items(value, ", ".join(choices))
        unknown = [n for n in names if n not in choices]
        if unknown:
            raise click.BadParameter(f"{', '.join(unknown)}: want some of {', '.join(choices)}")
        return tuple(dict.fromkeys(names))

    return split


def comma_items(value: tuple[str, ...], wanted: str) -> list[str]:
    """The items of a repeatable, comma-separated option as given. Given but naming nothing (``--proto ''``,
    a shell variable left empty) is refused: it is not "all of them", which is the option left out."""
    names = [n.strip() for v in value for n in v.split(",") if n.strip()]
    if value and not names:
        raise click.BadParameter(f"it names nothing: want some of {wanted}")
    return names


def complete_comma_separated(choices: Sequence[str]) -> Callback:
    """Shell completion for such an option: the choices for the item after the last comma."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
        from click.shell_completion import CompletionItem

        head, comma, last = incomplete.rpartition(",")
        chosen = {c.strip() for c in head.split(",")}  # each item once: `routes,` offers the others
        return [CompletionItem(head + comma + c) for c in choices if c.startswith(last) and c not in chosen]

    return complete


class Seconds(click.FloatRange):
    """A number of seconds within click's FloatRange bounds, and a real one: "nan" passes every comparison a
    range makes (and then waits forever, or breaks select()), "inf" is no bound."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        seconds = super().convert(value, param, ctx)
        if not math.isfinite(seconds):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        return seconds


WAIT_OPTION = click.option("--wait", type=Seconds(min=0), default=60.0, show_default=True,
                           help="Seconds to wait for another netlab command that holds the lab.")

FORMAT_KEY = "netlab.output"  # click's ctx.meta: the data format asked for (json or yaml)


def _data_format(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """-o yaml is -o json written as YAML: the command sees "json" (machine-readable data), and
    print_json writes the format asked for. So every command with -o json has -o yaml."""
    ctx.meta[FORMAT_KEY] = value
    return "json" if value == "yaml" else value


def output_option(*choices: str, default: str = "text") -> Callable:
    """-o/--output; a command that offers json offers yaml too (the same data)."""
    names = list(choices) + (["yaml"] if "json" in choices and "yaml" not in choices else [])
    return click.option("-o", "--output", "output", type=click.Choice(names), default=default,
                        show_default=True, callback=_data_format, help="Output format.")


def format_data(data: Any) -> str:
    """Data as JSON text, or as YAML when the command was given -o yaml (what print_json prints)."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.meta.get(FORMAT_KEY) == "yaml":
        import yaml

        # Through JSON first: the same values as -o json (addresses as strings, tuples as lists).
        plain = json.loads(json.dumps(data, default=str))
        return yaml.safe_dump(plain, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return jsonout.dumps(data) + "\n"


def print_json(data: Any) -> None:
    """Data as JSON, or as YAML when the command was given -o yaml.

    JSON is written as it is encoded (cli/jsonout.py: json.dumps(indent=2)'s text): a
    500-pod probe's is ~150 MB, and the whole text would take a gigabyte more.
    """
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.meta.get(FORMAT_KEY) == "yaml":
        click.echo(format_data(data), nl=False)
        return
    with _stdout_buffered() as out:
        jsonout.dump(data, out.write)
        out.write("\n")


def _stdout_buffered() -> ContextManager[TextIO]:
    """stdout through a 64 kB buffer of our own: stdout may write every piece through at once
    (PYTHONUNBUFFERED, python -u), and a 500-pod probe's JSON is 22 million pieces. stdout itself
    when it is not a file (click's test runner)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return contextlib.nullcontext(sys.stdout)
    sys.stdout.flush()
    return open(fd, "w", buffering=1 << 16, encoding="utf-8", closefd=False)


def check_output_file(path: str | None) -> None:
    """Fail before doing any work when ``path`` cannot be written: exit 2, one line."""
    if path is None:
        return
    from netlab.realize.own_files import check_output_path
    check_output_path(path)  # never over a lab's own files (its state, its namespaces, its pods' files)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UsageError(f"cannot write {display_path(path)}: it is a directory")
    try:  # a missing folder as writing says it (ENOENT: "No such file or directory", as tcpdump -w); a file so
        if not os.path.isdir(folder) and os.stat(folder):
            raise UsageError(f"cannot write {display_path(path)}: {display_path(folder)} is not a directory")
    except OSError as exc:
        raise output_unwritable(path, exc) from None
    if not os.access(folder, os.W_OK):
        raise UsageError(f"cannot write {display_path(path)}: {display_path(folder)} is not writable")


def write_output_file(path: str, data: bytes) -> None:
    """Write a file the user asked for; an OS error is one line: a full disk exit 3, a folder gone since exit 2."""
    try:
        with open(path, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        raise output_unwritable(path, exc) from None


def warn(lines: Sequence[str]) -> None:
    """A command's warnings, one a line on stderr, whatever -o is: as kubectl writes the API server's warnings.
    -o json/yaml holds them too (``warnings``, down's ``skipped`` and ``problems``); stdout stays the document
    alone, and someone who reads the terminal, not the JSON, is told."""
    for line in lines:
        click.echo(f"netlab: warning: {line}", err=True)


def exit_if_failed(failed: Sequence[str]) -> None:
    """Containers that could not start (UpResult.failed) after a command that ran an ``up`` of the lab (``up``,
    ``impair``): the lab stays up (its network is as planned, and rolling it back would take what works with
    it), each one said in a line, and exit 1 (ChecksFailed), as ``status`` says of the same lab, so that
    ``netlab up && netlab probe`` stops there."""
    for line in failed:
        click.echo(f"netlab: {line}", err=True)
    if failed:
        raise SystemExit(ChecksFailed.exit_code)


def attached(lab_name: str | None, topology: str | None) -> Any:
    """The running lab a command acts on, as an api.Lab (netlab.api.lab.internal_attach: the CLI's words)."""
    from netlab.api.lab import internal_attach

    return internal_attach(lab_name, topology)


def require_root() -> None:
    """Commands that touch the kernel need root; checked once, up front."""
    if os.geteuid() != 0:
        raise EnvironmentNotReady("this command changes or reads network namespaces and needs root; run it with sudo")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the click group, map NetlabError to one line and an exit code."""
    # The group's callback records --debug here as click parsed it: a word of the command that `exec POD -- ...`
    # runs is not netlab's option.
    obj: dict[str, Any] = {}
    try:
        try:
            _run(argv, obj)
        except BrokenPipeError:
            # The reader of the errors went away while netlab said one (`validate -t bad.yaml 2>&1 | head -1`):
            # 141, as for the output's reader, not Python's 1 for the exception it could not print.
            if not _reader_gone():
                raise
            sys.exit(_reader_went_away())
    except KeyboardInterrupt as exc:  # a second stop signal as the first one's line was said (before ending())
        sys.exit(signals.said(exc))


def _run(argv: list[str] | None, obj: dict[str, Any]) -> None:
    """The click group, each error it raises said in words with its exit code."""
    try:
        cli.main(args=argv, prog_name="netlab", standalone_mode=False, obj=obj)
        if sys.stdout is not None:  # None: started with standard output closed (`>&-`)
            sys.stdout.flush()  # what is still buffered: a full disk is said below, not by Python at exit
    except NetlabError as exc:
        # An error that a stop signal caused, or raised once one came, is the signal's line (unless it is one)
        if exc.exit_code < 128 and signals.stop_of(exc) is not None:
            sys.exit(signals.said(exc))
        if obj.get("debug") and not isinstance(exc.__cause__, KeyboardInterrupt):  # a stop signal: its line
            raise
        located = isinstance(exc, TopologyError)  # already FILE[:LINE]: field: message
        if isinstance(exc.__cause__, KeyboardInterrupt):  # a stop signal (netlab's Interrupted says its lab's fate)
            _end_caret(exc.__cause__)
        for line in str(exc).splitlines() or [type(exc).__name__]:
            click.echo(line if located or _located(line) else f"netlab: {line}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort as exc:  # click's word for a KeyboardInterrupt outside a command: SIGTERM's too
        stopped = exc.__context__ if isinstance(exc.__context__, KeyboardInterrupt) else None
        click.echo(_stop_line(stopped or KeyboardInterrupt()), err=True)
        sys.exit(signals.exit_code(stopped or KeyboardInterrupt()))
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if exc.exit_code == 2 else exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (signals.Terminated): 130 or 143
        click.echo(_stop_line(exc), err=True)
        sys.exit(signals.exit_code(exc))
    except PermissionError as exc:
        if signals.stop_of(exc) is not None:
            sys.exit(signals.said(exc))
        if obj.get("debug"):
            raise
        click.echo(f"netlab: permission denied: {exc.filename or exc}; run it with sudo", err=True)
        sys.exit(EXIT_ENVIRONMENT)
    except OSError as exc:
        if signals.stop_of(exc) is not None:
            sys.exit(signals.said(exc))
        if obj.get("debug") or exc.errno not in DISK_FULL:
            raise
        click.echo(f"netlab: {_unwritable(exc)}", err=True)
        sys.exit(EXIT_ENVIRONMENT)
    except Exception as exc:  # a stop signal's exception that Python wrapped (signals.stop_of); else a bug
        sys.exit(signals.said(exc))


def _unwritable(exc: OSError) -> str:
    """A write that a full disk refused, in words (``netlab probe -o json > report.json`` on a full disk).

    Netlab's own files (the lab's state, --junit, -o FILE) say so where they are written, naming the file;
    a write to a descriptor names none: standard output's. What it could not take is dropped (stdout onto
    /dev/null), so that Python's own flush at exit does not fail again with a traceback."""
    if exc.filename:
        return f"cannot write {display_path(exc.filename)}: {exc.strerror}"
    with contextlib.suppress(OSError, AttributeError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return f"cannot write the output: {exc.strerror} (it is cut short)"


def _located(line: str) -> bool:
    """Topology problems already start with FILE:LINE; print them bare."""
    head = line.split(":", 2)
    return len(head) >= 2 and head[1].isdigit()
