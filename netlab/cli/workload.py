"""``netlab exec`` and ``netlab logs``: into a pod's namespaces, and what its containers printed."""

from __future__ import annotations

import os
import sys
import time

import click

from netlab.cli.base import cli, lab_options, require_root
from netlab.errors import UsageError
from netlab.realize.state import select_lab
from netlab.workload import lifecycle
from netlab.kernel.netns import netns_path
from netlab.kernel.processes import enter_pod_here


def _names(lab) -> str:
    names = [n.name for n in lab.nodes] + [p.name for p in lab.pods] + [h for h, _ in lab.internet_hosts]
    return ", ".join(names)


@cli.command(name="exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@lab_options
@click.argument("name")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(lab_name: str | None, topology: str | None, name: str, command: tuple[str, ...]) -> None:
    """Run COMMAND inside pod, node or internet host NAME.

    A pod's command joins the pod's network and UTS namespaces, like its
    containers (``netlab exec fedora-1 -- hostname`` prints fedora-1); a node
    or host's joins its network namespace. Files in /etc/netns/<namespace>/
    (resolv.conf, hosts) are bind-mounted over /etc, and /sys shows the
    namespace's devices, as with ``ip netns exec``. The exit code is the
    command's.

    \b
      sudo netlab exec fedora-1 -- ping -c1 10.244.1.3
      sudo netlab exec minikube -- ip route
    """
    require_root()
    if command and command[0] == "--":  # click keeps it once NAME stopped option parsing
        command = command[1:]
    if not command:
        raise UsageError("no command given: netlab exec NAME -- COMMAND [ARGS...]")

    state = select_lab(lab_name, topology)
    lab = state.resolved()
    netns = lab.netns_of(name)
    if netns is None:
        raise UsageError(f"lab {lab.name} has no pod, node or host {name!r} (it has: {_names(lab)})")
    if netns not in state.netns:
        raise UsageError(f"{name} is not part of the running lab {lab.name}; run `sudo netlab up` first")
    uts = None
    if any(p.name == name for p in lab.pods):
        path = lifecycle.uts_path(lab.name, name)
        uts = path if lifecycle.is_uts_mount(path) else None
    try:
        net_fd = os.open(netns_path(netns), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise UsageError(f"namespace {netns} does not exist; is lab {lab.name} up? (`sudo netlab status`)") from None
    uts_fd = os.open(uts, os.O_RDONLY | os.O_CLOEXEC) if uts else None
    sys.stdout.flush()
    sys.stderr.flush()
    enter_pod_here(net_fd, uts_fd, netns)
    try:
        os.execvp(command[0], list(command))
    except FileNotFoundError:
        click.echo(f"netlab: {command[0]}: command not found", err=True)
        raise SystemExit(127)
    except PermissionError:
        click.echo(f"netlab: {command[0]}: permission denied", err=True)
        raise SystemExit(126)


@cli.command()
@lab_options
@click.argument("pod")
@click.option("-c", "--container", help="Container name (default: the pod's only or first container).")
@click.option("--tail", type=int, default=None, metavar="N", help="Only the last N lines.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing what the container writes (Ctrl-C stops).")
def logs(lab_name: str | None, topology: str | None, pod: str, container: str | None, tail: int | None,
         follow: bool) -> None:
    """Print what a container of POD wrote to stdout and stderr."""
    require_root()
    state = select_lab(lab_name, topology)
    lab = state.resolved()
    info = next((p for p in lab.pods if p.name == pod), None)
    if info is None:
        pods = ", ".join(p.name for p in lab.pods) or "none"
        raise UsageError(f"lab {lab.name} has no pod {pod!r} (pods: {pods})")
    names = [c.name for c in info.containers]
    if container is None:
        container = names[0]
        if len(names) > 1:
            click.echo(f"netlab: defaulted container {container!r} out of: {', '.join(names)}", err=True)
    elif container not in names:
        raise UsageError(f"pod {pod} has no container {container!r} (containers: {', '.join(names)})")
    path = lifecycle.log_path(lab.name, pod, container)
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise UsageError(f"no log for {pod}/{container} yet (was it started? `sudo netlab status`)") from None
    out = sys.stdout.buffer
    with fh:
        data = fh.read()
        if tail is not None:
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-tail:]) if tail > 0 else b""
        out.write(data)
        out.flush()
        while follow:
            chunk = fh.read()
            if chunk:
                out.write(chunk)
                out.flush()
            else:
                time.sleep(0.2)
