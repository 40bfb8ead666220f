"""What a command writes: -o/--output and its data (JSON or YAML), the files a user asks for, warnings, and the
exit of a command whose containers did not start."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any, Callable, ContextManager, Sequence, TextIO

import click

from netlab import outfile
from netlab.cli import jsonout
from netlab.errors import ChecksFailed, UsageError, absolute_output, display_path, output_unwritable
from netlab.outkinds import Kind

FORMAT_KEY = "netlab.output"  # click's ctx.meta: the data format asked for (json or yaml)
# What the error boundary (cli/boundary.py, cli/error_doc.py) reads in the program's ``obj``, once the command has
# ended: the data format asked for, and whether the command wrote its own document (then no error document).
ASKED_KEY = "output"
WRITTEN_KEY = "document_written"


def _program(ctx: click.Context | None) -> dict[str, Any]:
    """The program's ``obj`` (the boundary's dict), or a dict nobody reads (a command invoked otherwise)."""
    obj = ctx.find_root().obj if ctx is not None else None
    return obj if isinstance(obj, dict) else {}


def _data_format(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """-o yaml is -o json written as YAML: the command sees "json" (machine-readable data), and
    print_json writes the format asked for. So every command with -o json has -o yaml."""
    ctx.meta[FORMAT_KEY] = value
    _program(ctx)[ASKED_KEY] = value
    return "json" if value == "yaml" else value


def output_option(*choices: str, default: str = "text") -> Callable:
    """-o/--output; a command that offers json offers yaml too (the same data). Eager: the format is known
    before any other option's check can fail, so that its error is a document too (cli/error_doc.py)."""
    names = list(choices) + (["yaml"] if "json" in choices and "yaml" not in choices else [])
    return click.option("-o", "--output", "output", type=click.Choice(names), default=default, is_eager=True,
                        show_default=True, callback=_data_format,
                        help="Output format; json and yaml: one document, its keys in docs/json.md." if "json" in names
                        else "Output format.")


def format_data(data: Any) -> str:
    """Data as JSON text, or as YAML when the command was given -o yaml (what print_json prints)."""
    ctx = click.get_current_context(silent=True)
    _program(ctx)[WRITTEN_KEY] = True
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
    _program(ctx)[WRITTEN_KEY] = True
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


def force_option(what: str) -> Callable:
    """-f/--force: replace an existing output file whatever it holds (netlab.outfile: without it, a file is
    replaced only when it is empty or holds the same kind of output)."""
    return click.option("-f", "--force", "force", is_flag=True,
                        help=f"Replace {what} even when it holds something else (without --force an existing file is "
                             "replaced only when it is empty or already holds this kind of output; never through a "
                             "symlink).")


def check_output_file(path: str | None, option: str = "", kind: Kind | None = None, force: bool = False) -> None:
    """Fail before doing any work when ``path`` cannot be written: exit 2, one line. ``option``: one whose file
    is written besides the command's own output on stdout (trace --pcap, probe --junit): ``-`` is refused there,
    never a file of that name (a -w whose ``-`` is stdout: :func:`dash_is_stdout`). ``kind``: what an existing
    file must hold to be replaced (netlab/outkinds.py), unless ``force`` (--force: for the command's run)."""
    if path is None:
        return
    if force:
        undo = outfile.force(path)
        ctx = click.get_current_context(silent=True)
        if ctx is not None:
            ctx.call_on_close(undo)
    if option and path == STDOUT:
        raise UsageError(f"{option} -: standard output carries the command's own output; for a file named -, "
                         f"give {option} ./-")
    absolute = absolute_output(path)  # the working directory deleted: one line, before any realpath (QA q50 6)
    from netlab.realize.own_files import check_output_path
    check_output_path(path)  # never over a lab's own files (its state, its namespaces, its pods' files)
    folder = os.path.dirname(absolute)
    if os.path.isdir(path):
        raise UsageError(f"cannot write {display_path(path)}: it is a directory")
    try:  # a missing folder as writing says it (ENOENT: "No such file or directory", as tcpdump -w); a file so
        if not os.path.isdir(folder) and os.stat(folder):
            raise UsageError(f"cannot write {display_path(path)}: {display_path(folder)} is not a directory")
    except OSError as exc:
        raise output_unwritable(path, exc) from None
    if not os.access(folder, os.W_OK):
        raise UsageError(f"cannot write {display_path(path)}: {display_path(folder)} is not writable")
    # never through another user's symlink, over a hard link, a FIFO, another's file in /tmp, a file of another kind
    outfile.check(path, kind)


STDOUT = "-"  # -w -: standard output, as tcpdump's -w -


def check_distinct(first: str | None, first_option: str, second: str | None, second_option: str) -> None:
    """Two output options naming one file (``trace --pcap F -w F``): refused before any work, exit 2, one line
    (one written over the other at the end lost the run's output). The same by their resolved paths (a link,
    ``./x/../F``) or, both there, the same inode (a hard link, a bind mount)."""
    if first is None or second is None or STDOUT in (first, second):
        return
    try:
        same = os.path.realpath(first) == os.path.realpath(second) or os.path.samefile(first, second)
    except OSError:  # one not there (yet): their resolved paths differ, so the files do
        same = False
    if same:
        raise UsageError(f"{first_option} and {second_option} name the same file ({display_path(first)}); give "
                         "each its own")


def dash_is_stdout(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A -w of a command that writes to standard output without it (trace, graph): ``-w -`` is that, as
    tcpdump's -w - (not a file named "-"; ``-w ./-`` is one)."""
    return None if value == STDOUT else value


def check_pcap_file(path: str | None, output: str, force: bool = False) -> None:
    """capture's -w: ``-`` is standard output, as tcpdump's -w -, for a pipe or a file (``-w - | tshark -r -``);
    a terminal would be garbled by the binary pcap, and -o json writes there too: each refused, exit 2."""
    from netlab.outkinds import PCAP

    if path != STDOUT:
        check_output_file(path, kind=PCAP, force=force)
    elif output == "json":
        raise UsageError("-w - and -o json would both write to standard output; write the pcap with -w FILE.pcap")
    elif sys.stdout.isatty():
        raise UsageError("a pcap is binary and would garble the terminal; pipe it (-w - | tshark -r -) or write "
                         "it with -w FILE.pcap")


def pcap_written(path: str, n: str, where: str, vxlan_port: int) -> str:
    """capture's line once its pcap is written, with the command that reads it."""
    from netlab.errors import command_path

    if path == STDOUT:
        return (f"wrote {n} from {where} to standard output; read it at the pipe's other end: "
                f"... | tshark -r - -d udp.port=={vxlan_port},vxlan")
    return (f"wrote {n} from {where} to {display_path(path)}; read it with: tshark -r {command_path(path)} "
            f"-d udp.port=={vxlan_port},vxlan")


def write_output_file(path: str, data: bytes, kind: Kind | None = None) -> None:
    """Write a file the user asked for (netlab.outfile's rules); an OS error is one line: a full disk exit 3, a
    folder gone since exit 2."""
    outfile.write_output(path, data, kind)


def warn(lines: Sequence[str]) -> None:
    """A command's warnings, one a line on stderr, whatever -o is: as kubectl writes the API server's warnings.
    -o json/yaml holds them too (``warnings``, down's ``skipped`` and ``problems``); stdout stays the document
    alone, and someone who reads the terminal, not the JSON, is told."""
    for line in lines:
        click.echo(f"netlab: warning: {line}", err=True)


def note(lines: Sequence[str]) -> None:
    """What is valid and probably not meant (validate's notes, up's), one a line on stderr, whatever -o is, as
    :func:`warn` says warnings."""
    for line in lines:
        click.echo(f"netlab: note: {line}", err=True)


def said_first(line: str) -> None:
    """The line of a lab whose ``up`` or ``down`` was killed halfway (list's), on stderr before anything else the
    command says (status, probe, trace, policy table), whatever -o is: its JSON carries it as ``error``."""
    click.echo(f"netlab: {line}", err=True)


def exit_if_failed(failed: Sequence[str]) -> None:
    """Containers that could not start (UpResult.failed) after a command that ran an ``up`` of the lab (``up``,
    ``impair``): the lab stays up (its network is as planned, and rolling it back would take what works with
    it), each one said in a line, and exit 1 (ChecksFailed), as ``status`` says of the same lab, so that
    ``netlab up && netlab probe`` stops there."""
    for line in failed:
        click.echo(f"netlab: {line}", err=True)
    if failed:
        raise SystemExit(ChecksFailed.exit_code)
