"""``netlab impair``: switch an interface's impairment of a running lab (root only)."""

from __future__ import annotations

import click

from netlab import api
from netlab.api.jsonio import to_json
from netlab.cli.base import cli, require_root
from netlab.cli.options import WAIT_OPTION, lab_options
from netlab.cli.output import exit_if_failed, output_option, print_json, warn
from netlab.cli.complete import complete_impair_interfaces
from netlab.errors import UsageError

# What the commands use, imported when one runs (cli.base.load_for), not for --help.
LOADS = ("netlab.api.impair", "netlab.api.lab")


@cli.command()
@click.argument("target", metavar="[NAME:IFACE]", required=False, shell_complete=complete_impair_interfaces)
@lab_options
@click.option("--rate", metavar="RATE",
              help="Egress rate limit (tbf), tc units in any case: 10mbit, 10Mbit, 512kbit, 1gbit.")
@click.option("--delay", metavar="TIME",
              help="Added delay (netem), tc units in any case: 20ms, 20MS. Refused (exit 3) without sch_netem.")
@click.option("--jitter", metavar="TIME", help="Delay variation (netem), with --delay: 5ms.")
@click.option("--loss", metavar="PCT", help="Random loss: 1%, dropped where the frames arrive (an nftables netdev "
              "rule on the veth's peer; on a bridge's or VXLAN device's egress): silent to the sender.")
@click.option("--clear", is_flag=True, help="Remove the interface's impairment.")
@WAIT_OPTION
@output_option("text", "json")
def impair(target: str | None, lab_name: str | None, topology: str | None, rate: str | None, delay: str | None,
           jitter: str | None, loss: str | None, clear: bool, wait: float, output: str) -> None:
    """Set what an interface's egress suffers, now: rate, delay, jitter, loss; or --clear it; or, with no
    option, show what the lab's interfaces suffer (read from the kernel).

    The options replace the interface's whole impairment (options left out
    are not kept). The change is recorded as the lab's desired state: `status`
    does not call it drift, `status -t FILE` shows it differs from the file,
    and `up -t FILE` puts the file's impairments back. A change the kernel
    refuses leaves the interface and the lab as they were (exit 4). It runs
    an `up` of the lab: a container that could not start is named in a line,
    exit 1, as `up` does (the impairment is set).

    \b
    For example:
      sudo netlab impair fedora-1:eth0 --rate 10mbit --loss 1%
      sudo netlab impair minikube:cni0 --rate 50mbit     # what the node sends to its pods
      sudo netlab impair fedora-1:eth0 --clear
      sudo netlab impair                                 # every impaired interface, as the kernel has it
      sudo netlab impair fedora-1:eth0                   # that one
    """
    from netlab.api import impair as impair_api

    if not any(v is not None for v in (rate, delay, jitter, loss)) and not clear:
        require_root()
        chosen = api.selected_name(lab_name, topology)
        assert chosen is not None
        _show(chosen, impair_api.show(chosen, target), target, output)
        return
    if target is None:
        raise UsageError("name the interface to change: NAME:IFACE, such as fedora-1:eth0")
    name, iface = impair_api.parse_target(target)
    spec = impair_api.options(rate, delay, jitter, loss, clear)
    require_root()
    chosen = api.selected_name(lab_name, topology)
    assert chosen is not None
    result = impair_api.result(impair_api.impair(chosen, name, iface, spec, wait=wait))
    warn(result.warnings)
    if output == "json":
        print_json(to_json(result))  # what Lab.impair returns
        exit_if_failed(result.failed)
        return
    click.echo(f"{result.target} in lab {result.lab}: {result.after} (was {result.before})")
    for line in result.changes:
        click.echo(f"  {line}")
    exit_if_failed(result.failed)  # the up it ran could not start them: the impairment is set, as up's exit 1


def _show(lab: str, shown: list, target: str | None, output: str) -> None:
    """``netlab impair [NAME:IFACE]`` with no option: the impairments the kernel has, in lines or JSON."""
    if output == "json":
        from netlab.api import impair as impair_api

        print_json(to_json(impair_api.view(lab, shown)))  # what Lab.impairments returns
        return
    if not shown:
        click.echo(f"lab {lab}: no interface is impaired")
        return
    click.echo(f"lab {lab}: impairments, as the kernel has them{'' if target else ' (every impaired interface)'}")
    for s in shown:
        click.echo(f"  {s.line()}")
