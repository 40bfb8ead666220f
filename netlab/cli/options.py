"""The options several commands share: -t FILE, --lab NAME, --wait SECONDS, comma-separated lists."""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import click
from click.core import ParameterSource

TOPOLOGY_HELP = "Topology file. Default: the built-in two-node Flannel lab 'demo'."
# The type of every -t FILE: it checks nothing (the loader says what is wrong with the path on one line,
# exit 2, for every command alike: no such file, a directory, a FIFO) and lets the shell complete paths.
class TopologyPath(click.Path):
    """A topology file's path as given: an empty one (``-t ''``, ``-t "$UNSET"``) names no file, said so, where it
    was ``: no such file; check the path`` with no file name before the colon."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value == "":  # one line, as a file's problems are (click's fail is a usage block)
            from netlab.errors import UsageError

            raise UsageError(f"{'/'.join(param.opts) if param else '-t'}: the topology file's path is empty; "
                             "give a topology file")
        return super().convert(value, param, ctx)


TOPOLOGY_FILE = TopologyPath(readable=False)


def lab_from_env(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """$NETLAB_LAB is the default of --lab; a -t FILE on the command line picks the lab instead. A name from
    the variable is marked so, and what is wrong with it names $NETLAB_LAB, not --lab."""
    if value is not None and ctx.get_parameter_source(param.name or "") == ParameterSource.ENVIRONMENT:
        if ctx.params.get("topology") is not None or not value.strip():
            return None
        from netlab.realize.lab_name import EnvLabName

        return EnvLabName(value.strip())
    return value


def _typed(ctx: click.Context) -> dict[str, Any]:
    """The --lab / -t of ``ctx``'s command as typed on the command line (not from $NETLAB_LAB)."""
    return {k: ctx.params.get(k) for k in ("lab_name", "topology")
            if ctx.get_parameter_source(k) == ParameterSource.COMMANDLINE}


def _said(given: dict[str, Any]) -> str:
    return " ".join(f"{'--lab' if k == 'lab_name' else '-t'} {v}" for k, v in given.items())


def from_group(ctx: click.Context, lab_name: str | None, topology: str | None) -> tuple[str | None, str | None]:
    """A subcommand's lab: its own --lab / -t typed, else its group's typed before the subcommand's name
    (`netlab quiz --lab L answer X` answers L), else $NETLAB_LAB. Named both ways and differently: refused."""
    group = ctx.parent
    if group is None or not any(p.name == "lab_name" for p in group.command.params):
        return lab_name, topology
    above, here = _typed(group), _typed(ctx)
    if not above:
        return lab_name, topology
    if here and here != above:
        from netlab.errors import UsageError

        raise UsageError(f"the lab is named twice: `{group.info_name} {_said(above)}` and `{ctx.info_name} "
                         f"{_said(here)}`; name it once")
    return above.get("lab_name"), above.get("topology")


def lab_options(func: Callable) -> Callable:
    """--lab NAME / -t FILE: which running lab a command acts on ($NETLAB_LAB when neither is given). A subcommand
    of a group with these options takes the group's too (:func:`from_group`)."""
    import functools

    from netlab.cli.complete import complete_labs

    inner = func

    @functools.wraps(inner)
    def func(*args: Any, **kwargs: Any) -> Any:
        kwargs["lab_name"], kwargs["topology"] = from_group(click.get_current_context(), kwargs.get("lab_name"),
                                                            kwargs.get("topology"))
        return inner(*args, **kwargs)

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
