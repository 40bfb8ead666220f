"""``netlab exec`` and ``netlab logs``: into a pod's namespaces, and what its containers printed."""

from __future__ import annotations

import contextlib
import os
import select
import sys
from typing import TYPE_CHECKING, Iterator

import click

from netlab import signals
from netlab.cli.base import attached, cli, require_root
from netlab.cli.options import lab_options
from netlab.cli.output import said_first
from netlab.cli.complete import complete_containers, complete_names, complete_pods
from netlab.errors import UsageError

if TYPE_CHECKING:
    from netlab.model.lab import Lab as ModelLab

# What the commands use, imported when one runs (cli.base.load_for), not for --help.
LOADS = ("netlab.api.lab", "netlab.api.exec")

SHELLS = ("/bin/bash", "/bin/sh")


def _shell() -> list[str]:
    """The user's shell when it exists (bash or sh otherwise): interactive on a terminal, else it
    reads commands from standard input (``echo hostname | netlab exec web-1``). As root, a $SHELL someone other
    than root and the invoking user can change (model/trust.py, the rule of a container's command) is passed
    over, in a note line: bash or sh instead."""
    passed = None
    for path in (os.environ.get("SHELL", ""), *SHELLS):
        if path and os.path.isabs(path) and os.access(path, os.X_OK):
            why = _refused(path)
            if why is not None:
                passed = passed or why
                continue
            break
    else:
        path = "/bin/sh"
    if passed is not None:
        click.echo(f"netlab: not your shell {passed}; {path} instead", err=True)
    return [path, "-i"] if _stdin_is_terminal() else [path]


def _refused(program: str) -> str | None:
    """The words that refuse to run ``program`` (a path) as root, or None (not root, or it is trusted)."""
    from netlab.model.trust import program as resolved, refusal

    try:
        _, why = resolved(program)
    except OSError:
        return None  # not there, a loop: the exec says it as a shell would
    return None if why is None else f"{program}: {refusal(why, 'it')}"


def _stdin_is_terminal() -> bool:
    """netlab started with standard input closed (``<&-``) has none at all (sys.stdin None): not a terminal."""
    return sys.stdin is not None and sys.stdin.isatty()


class ExecCommand(click.Command):
    """exec's arguments put in netlab's order first: kubectl's -it, -c CONTAINER, options after NAME
    (cli/exec_args.py)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        from netlab.cli.exec_args import kubectl_forms

        try:
            args = kubectl_forms(args)
        except UsageError:
            if not ctx.resilient_parsing:  # shell completion reads what it can
                raise
        return super().parse_args(ctx, args)


@cli.command(name="exec", cls=ExecCommand,
             context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@lab_options
@click.option("-c", "--container", metavar="CONTAINER", shell_complete=complete_containers,
              help="Run COMMAND with the environment this container of pod NAME starts with (its Service "
                   "variables, POD_NAME ...), as kubectl exec -c; without it, your own.")
@click.argument("name", shell_complete=complete_names)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def exec_(lab_name: str | None, topology: str | None, container: str | None, name: str,
          command: tuple[str, ...]) -> None:
    """Run COMMAND inside pod, node or internet host NAME; without COMMAND, a shell.

    A pod's command joins the pod's network and UTS namespaces, like its
    containers (``netlab exec fedora-1 -- hostname`` prints fedora-1); a
    node's, an internet host's (gateway and lb too) and the underlay's join
    its network and UTS namespaces (``hostname`` prints its name). Files in /etc/netns/<namespace>/ (a pod's
    resolv.conf and the kubelet's hosts file) are bind-mounted over /etc, and
    /sys shows the namespace's devices, as with ``ip netns exec``. The exit
    code is the command's. Without a command it opens your shell ($SHELL,
    else bash or sh) there, like ``kubectl exec -it POD -- sh``; leave it
    with exit. netlab runs as root: a program given by its path (and your
    $SHELL) that someone other than root and you can change (the file, a
    folder above it, a symlink on the way) is refused in one line, exit 2,
    as a container's command is ($SHELL: passed over, in a note line, for
    bash or sh); a bare name is found on your PATH, as sudo finds it,
    unchecked, and a script given to an interpreter (`sh /tmp/x.sh`) is the
    interpreter's to read, unchecked too.

    kubectl's words work: -i/--stdin and --tty (-it, -ti) need nothing, as
    the command always has your standard input and your terminal as they
    are; -c/--container CONTAINER gives it the environment that container
    started with, as kubectl exec -c (a Service added since is not in it;
    a container that does not run has none: exit 3), the containers of a
    pod sharing its namespaces; options may come after
    NAME, before --. -t is netlab's topology file when a NAME follows it,
    else kubectl's terminal (-t web -- sh: pod web). No -n: pod names are
    unique across a lab.

    \b
      sudo netlab exec fedora-1 -- ping -c1 10.244.1.3
      sudo netlab exec minikube -- ip route
      sudo netlab exec fedora-1                # a shell in the pod
      sudo netlab exec -it fedora-1 -c main -- sh    # kubectl's form: its container main
    """
    require_root()
    if command[:1] == ("--",):  # click keeps `--` once NAME stopped option parsing (ExecCommand put it there)
        command = command[1:]
    from netlab.api.exec import cannot_run, container_environment, exec_target
    from netlab.workload.reconfigure import repair_command

    lab = attached(lab_name, topology)
    state = lab.state()
    target = exec_target(state, lab.model, name)
    env = container_environment(state, lab.model, name, container) if container is not None else None
    if target.uts is None:
        # Its pin is gone (unmounted by hand, or a lab up since before its kind had one): the command would run
        # with the host's hostname, unsaid.
        from netlab.workload.node_uts import kind_of
        from netlab.workload.uts import uts_missing

        from netlab.realize.interrupted import taken_down

        words = kind_of(lab.model, name) or f"pod {name}"
        # `down` unmounted the pin (no fault), or one killed halfway did (list's line: `down` finishes it)
        gone = taken_down(lab.name, f"{words}'s namespaces went with it",
                          killed=uts_missing(words))
        if gone is not None:
            raise gone
        click.echo(f"netlab: {words}'s UTS namespace is missing, so `hostname` there is the host's; "
                   f"`{repair_command(lab.name)}` makes it again", err=True)
    argv = list(command) or _shell()
    if not argv[0]:
        raise UsageError("the command is empty: give a program after --")
    if "/" in argv[0] and (why := _refused(os.path.abspath(argv[0]))) is not None:
        raise UsageError(why)  # someone else's program, as a container's command would be refused
    if not command and _stdin_is_terminal():
        click.echo(f"netlab: a shell in {name} (namespace {target.netns} of lab {lab.name}); `exit` leaves it",
                   err=True)
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:  # None: started with it closed (`2>&-`), as the command will be
            stream.flush()
    with target.opened() as enter:
        enter()
        if env is not None:  # the container's, as kubectl exec -c gives it (your terminal's TERM kept)
            term = os.environ.get("TERM")
            os.environ.clear()
            os.environ.update(env, **({"TERM": term} if term else {}))
            from netlab.kernel.spawning import CONTAINER_UMASK

            os.umask(CONTAINER_UMASK)  # and its umask: the runtime's, not your shell's (QA hostenv57 1)
        if not command:
            os.environ["NETLAB_LAB"] = lab.name
            os.environ["NETLAB_NAME"] = name
        # A Ctrl-C or SIGTERM whose exception a finalizer swallowed: the command would run as if none had come, and
        # the program's end, which says it (launch.py), is never reached once the command replaces it
        signals.check()
        # The command starts as a container's process does (`kubectl exec`: the runtime starts it with every
        # signal at its default), as netlab's own containers do: none ignored (`seq 1 1e8 | head -1` said
        # "Broken pipe" where it dies quietly under `ip netns exec`)
        from netlab.kernel import nofile
        from netlab.kernel.spawning import default_signals

        default_signals()
        nofile.as_given()  # as a container's process: the open-files limit netlab was given
        try:
            os.execvp(argv[0], argv)
        except (OSError, ValueError) as exc:  # none, not a program (ENOEXEC), a loop, a name too long, a NUL in it
            code, line = cannot_run(argv[0], exc)
            click.echo(line, err=True)
            raise SystemExit(code) from None


@cli.command()
@lab_options
@click.argument("pod", shell_complete=complete_pods)
@click.option("-c", "--container", shell_complete=complete_containers,
              help="Container name (default: the pod's only or first container).")
@click.option("--tail", type=int, default=None, metavar="N",
              help="Only the last N lines (a negative N: all of them, as kubectl's --tail=-1).")
@click.option("-f", "--follow", is_flag=True,
              help="Keep printing what the container's current run writes, until it ends (at once for a "
                   "container that has exited, after its log), Ctrl-C, or the pod is gone (`netlab down`, or the "
                   "pod taken out of the topology), as `kubectl logs -f`.")
@click.option("-p", "--previous", is_flag=True,
              help="The run before the current one (the container's output before it was last started again).")
def logs(lab_name: str | None, topology: str | None, pod: str, container: str | None, tail: int | None,
         follow: bool, previous: bool) -> None:
    """Print what a container of POD wrote to stdout and stderr in its current run.

    Each run of a container (each time `up` or the watcher starts it) has a
    log of its own, as each container instance of the kubelet: --previous
    prints the one before, as `kubectl logs --previous`.

    Exit 0; 2 when the lab has no such pod or container, or no run before
    (--previous); 3 when the lab's namespaces are gone (`netlab list`'s
    gone: said first, then the log its last run left).

    \b
    Examples:
      sudo netlab logs fedora-1
      sudo netlab logs fedora-1 -c main --tail 20
      sudo netlab logs fedora-1 -f             # until Ctrl-C
      sudo netlab logs fedora-1 --previous     # the run before this one"""
    from netlab.api.exec import end_of, log_file, log_writer, open_log
    from netlab.workload.echo_log import data_start
    from netlab.realize.interrupted import taken_down
    from netlab.realize.state_errors import StateGone

    require_root()
    lab = attached(lab_name, topology)
    model = lab.model
    chosen, path = log_file(model, pod, container, previous)
    # A lab `list` shows gone (its namespaces deleted, its state and logs left): its last run's log is still what
    # a reader asks for, printed after the line the other commands say of it (exit 3, as theirs). One whose `down`
    # (or `up`) was killed halfway, its log or the pod's namespace not there: list's line (`down` finishes it),
    # as exec says it, then the log if it is left (exit 2), not "was it started?"
    from netlab.cni.terminated import released, released_line

    stopped = pod in released(lab.state())  # its sandbox stopped as terminal, its namespace removed: said first
    if stopped:
        click.echo(f"netlab: {released_line(pod, log=True)}", err=True)
    missing = _missing(model, pod, chosen, path, stopped)
    gone = taken_down(lab.name, f"the log of {pod}/{chosen}", read_up=False, killed=missing)
    gone = gone if isinstance(gone, StateGone) or (missing and isinstance(gone, UsageError)) else None
    if gone is not None:
        said_first(str(gone))
    if container is None:
        names = [c.name for c in next(p for p in model.pods if p.name == pod).containers]
        if len(names) > 1:
            click.echo(f"netlab: defaulted container {chosen!r} out of: {', '.join(names)}", err=True)
    writer = log_writer(lab.state(), model, pod, chosen)
    try:
        fh = open_log(path, pod, chosen, lab.name, previous, writer)
    except (StateGone, UsageError):  # no such log of the gone or half-done lab (--previous, never started): said once
        if gone is None:
            raise
        raise SystemExit(gone.exit_code) from None
    follow = follow and not previous  # the run before has ended: nothing more comes
    # The container's end, as kubectl's -f ends with it: a pidfd of its task, taken while the state says it runs
    # (asked again once it is open: the task it names is still the container's, not a pid used again).
    end = end_of(writer) if follow else None
    if end is not None and log_writer(lab.state(), model, pod, chosen).pid != writer.pid:
        os.close(end)
        end = None
    out = sys.stdout.buffer
    with fh, _closing(end):
        data = fh.read()
        if tail is not None and tail >= 0:
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-tail:]) if tail > 0 else b""
        out.write(data)
        out.flush()
        while follow:
            chunk = fh.read()
            if chunk:
                out.write(chunk)
                out.flush()
                continue
            st = os.fstat(fh.fileno())
            if st.st_size < fh.tell():
                fh.seek(data_start(fh.fileno()))  # the log started over (echo_log.py, at its size limit): follow it on
            elif st.st_nlink == 0 or not _same_file(path, st):
                # The log was removed (the lab taken down, or the pod taken out of it), or became the previous
                # one (the container started again, into a new file): this run writes no more, so following
                # ends, as `kubectl logs -f` does when its container ends or its pod is deleted: after what
                # the run wrote last.
                out.write(fh.read())
                out.flush()
                break
            elif end is None or select.select([end], [], [], 0.2)[0]:
                # The container has ended (or had when -f began): what it wrote last, then no more.
                while chunk := fh.read():
                    out.write(chunk)
                out.flush()
                break
    if gone is not None:
        raise SystemExit(gone.exit_code)


def _missing(model: ModelLab, pod: str, container: str, path: str, stopped: bool = False) -> str | None:
    """What of pod ``pod`` a ``down`` killed halfway took away: its container's log, else its network namespace
    (not when ``stopped``: a terminal pod's sandbox, whose namespace up removed); None when both are there."""
    from netlab.model.naming import netns_path

    netns = next(p.netns for p in model.pods if p.name == pod)
    if not os.path.lexists(path):
        return f"the log of {pod}/{container} is not there"
    return None if stopped or os.path.lexists(netns_path(netns)) else f"namespace {netns} is not there"


@contextlib.contextmanager
def _closing(fd: int | None) -> Iterator[None]:
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)


def _same_file(path: str, st: os.stat_result) -> bool:
    """Whether ``path`` still names the file followed (not a new run's log, nor none)."""
    try:
        now = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)
