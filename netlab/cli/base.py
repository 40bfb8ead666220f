"""The click group: its commands, each module loaded when one of its commands runs, and what commands share."""

from __future__ import annotations

import gc
import importlib
import os
import sys
from typing import Any

import click

from netlab import __version__
from netlab.cli import endings
from netlab.errors import EnvironmentNotReady, python_words

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


# Every command and the module that defines it, in the order of `netlab --help`. A command's
# module is imported when the command runs (or --help lists it), so `netlab validate` does
# not load the netlink, probe and trace code that only `up` or `trace` need. A module keeps at
# its top only what its options need; the modules its commands use are its LOADS, imported when
# one of them runs (Command.invoke): `netlab --help` and tab completion load none of them.
COMMANDS = {
    "validate": "netlab.cli.topology", "plan": "netlab.cli.topology",
    "up": "netlab.cli.lab", "down": "netlab.cli.lab", "status": "netlab.cli.lab", "list": "netlab.cli.labs",
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
            with python_words(False):  # what the Lab methods it calls meet names its way out as a command
                return super().invoke(ctx)  # type: ignore[misc]
        except KeyboardInterrupt as exc:
            raise endings.as_error(exc) from exc
        except BrokenPipeError:
            if not endings.reader_gone():
                raise
            raise SystemExit(endings.reader_went_away()) from None


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
            raise endings.as_error(exc) from exc

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
    (rolled back), 130 interrupted by Ctrl-C, 143 by SIGTERM, 129 by SIGHUP, 141 the reader
    of the output or of the errors went away (`| head -1`).

    Labs keep their state in /run/netlab, or in the folder NETLAB_STATE_DIR
    names (a folder of your own: each test run, each user). sudo drops the
    environment, so give the variable after sudo:
    `sudo NETLAB_STATE_DIR=/tmp/st netlab up` (`export` before sudo is lost).
    Every command's -o json (and yaml) is the document docs/json.md describes.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def attached(lab_name: str | None, topology: str | None) -> Any:
    """The running lab a command acts on, as an api.Lab (netlab.api.lab.internal_attach: the CLI's words)."""
    from netlab.api.lab import internal_attach

    return internal_attach(lab_name, topology)


def require_root(capabilities: bool = True) -> None:
    """Commands that touch the kernel need root, with CAP_SYS_ADMIN and CAP_NET_ADMIN (kernel/caps.py); checked once,
    up front, before anything is changed (root without them, in an unprivileged container, failed halfway: a
    ``down`` had stopped the lab's containers before its first setns was refused). CAP_SYS_PTRACE is asked for by
    the commands that read other processes' namespaces (:func:`require_processes`). ``capabilities``: False for the
    doctor, which says it as its own first check."""
    if os.geteuid() != 0:
        raise EnvironmentNotReady("this command changes or reads network namespaces and needs root; run it with sudo")
    if capabilities:
        _require_caps({})


def require_processes() -> None:
    """After :func:`require_root`, for a command that reads other processes' namespaces before or while it changes
    the lab (up's repair and rollback, down's sweep of every process, quiz, whose answer is an up, and break of a
    scenario that stops a pod's containers: catalogue.Scenario.processes): CAP_SYS_PTRACE too, refused up front in
    the doctor's words (without it `status` took kube-dns's dnsmasq for exited and `down` left it running). `list`,
    `exec`, `probe` ... read none, and
    `status`, `get`, `logs` and `exec -c` only the lab's recorded containers: one they may not read says so
    (processes.CannotTell), never "exited". Not root: require_root said so."""
    from netlab.kernel import caps

    if os.geteuid() == 0:
        _require_caps(caps.PROCESSES)


def require_packets() -> None:
    """After :func:`require_root`, for a command that sends or captures packets (probe, trace, capture, quiz, whose
    answer is a trace): CAP_NET_RAW too, refused up front in the doctor's words (without it the probe agent failed
    with "PermissionError", and trace and capture told root to use sudo). Not root: require_root said so."""
    from netlab.kernel import caps

    if os.geteuid() == 0:
        _require_caps(caps.PACKETS)


def _require_caps(more: dict[str, int]) -> None:
    from netlab.kernel import caps

    # The doctor's line, as `up` says the doctor's; loaded only to refuse: its checks load the topology's models,
    # which a root command with the capabilities loads later or never (probe forks its agent before: probe/early.py)
    if caps.refused(more):
        from netlab.doctor_host import require_capabilities

        require_capabilities(more)

