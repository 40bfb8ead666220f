"""``netlab doctor``: is this machine ready for a lab?"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from netlab.cli.base import cli, require_root
from netlab.cli.options import TOPOLOGY_FILE
from netlab.cli.output import output_option, print_json
from netlab.cli.style import highlight
from netlab.errors import EXIT_ENVIRONMENT

if TYPE_CHECKING:
    from netlab.realize.state import LabState

# What the commands use, imported when one runs (cli.base.load_for), not for --help.
LOADS = ("netlab.doctor", "netlab.model.lab", "netlab.model.load")


@cli.command("doctor")
@click.option("-t", "--topology", metavar="FILE", type=TOPOLOGY_FILE,
              help="Check what this topology needs, and size the neighbour-table check with it. "
                   "Default: require everything netlab uses; size with the built-in lab 'demo'.")
@output_option("text", "json")
def doctor_cmd(topology: str | None, output: str) -> None:
    """Check what a lab needs from this machine: one line per check, with the fix.

    \b
    kernel  network namespaces, veth, bridge, vxlan, conntrack, nf_tables
            (and its netdev hooks, for loss), the tc qdiscs tbf/htb/netem,
            sock_diag, the SCTP rules (iptables-restore -p sctp -m sctp):
            each tried for real in a throwaway network namespace that
            vanishes afterwards (no module is loaded, the host's namespace
            is not touched); br_netfilter is read from /proc/sys/net/bridge;
            with -t, what a conflist's plugins make (macvlan, ipvlan,
            vlan, vrf links, sbr's policy rules, a VLAN-filtering bridge,
            bandwidth's ifb, ingress qdisc, u32 filter and mirred
            redirect), tried the same way, each line naming who asks
    tools   iptables-restore (and its backend, nft or legacy), conntrack,
            dnsmasq, nft, tcpdump; the CNI plugins (a lab's chain with -t,
            else Debian's loopback, bridge, host-local, portmap in
            /usr/lib/cni), each found and asked VERSION as libcni asks
    host    root's capabilities (CAP_SYS_ADMIN, CAP_NET_ADMIN, and a user
            namespace owning its net, mnt and uts: else the only line;
            CAP_SYS_PTRACE for up/down/break/quiz, which read other
            processes' namespaces; CAP_NET_RAW for probe/trace/capture; CAP_NET_BIND_SERVICE and
            CAP_SETGID for kube-dns), the open-files limit, neighbour-table
            limits (gc_thresh1/2/3) against the lab's size,
            the entries the table holds now and which probe holds the
            machine's probing turn, links a new namespace is born with
            (fallback tunnels), the IPv4 all/default settings it copies from
            the host where they are not the kernel's (every lab namespace
            sets them back), whether the kernel has IPv6 (lab namespaces
            have it off either way), the kernel's taskstats (how `up --watch`
            learns the exit status of containers it did not start), whether
            a pidfd keeps its process's exit status (Linux 6.15: how command
            containers exited), the state directory (NETLAB_STATE_DIR,
            default /run/netlab): root-only, not a symlink, writable, every
            folder above it root's and writable by root alone (or sticky),
            free space
    lab     with -t, when the lab is up: the iptables backend it was made
            in, if it is not the one NETLAB_IPTABLES now names (its tools,
            iptables-legacy-restore for a legacy lab, are the ones checked)

    Each line is ok, warn (missing, but not needed), FAIL (missing and needed,
    with the fix) or info. Exit 0 when nothing needed is missing, 3 otherwise.
    `netlab up` runs the checks its topology needs before it changes anything.

    \b
    Examples:
      sudo netlab doctor
      sudo netlab doctor -t topologies/services.yaml   # what that lab needs
      sudo netlab doctor -o json                        # checks[]: name, status, fix
    """
    from netlab import doctor
    from netlab.model.lab import resolve
    from netlab.model.load import load_topology

    require_root(capabilities=False)  # the doctor's own first check says it (doctor.diagnose)
    lab = resolve(load_topology(topology))
    running = _running(lab.name) if topology is not None else None
    if running is not None:  # its tools are checked, those status and up run for it (iptables-legacy-*, QA hostenv57 4)
        _act_on_backend(running)
    checks = doctor.report(lab, for_this_lab=topology is not None)
    moved = _backend_moved(running) if running is not None else None
    failed = [c for c in checks if c.status == doctor.FAIL]
    if output == "json":
        # no -t: no lab is involved (the built-in lab only sizes the limits' check): lab null, as `needs` says
        print_json({"ok": not failed, "lab": lab.name if topology else None,
                    "needs": "this lab" if topology else "everything",
                    "checks": [c.to_json() for c in checks], **({"iptables_backend": moved} if moved else {})})
    else:
        for check in checks:
            click.echo(highlight(check.line()))
        if moved:  # not the machine's to fix: the running lab's backend, which it keeps
            click.echo(highlight(f"warn  lab iptables backend: {moved}"))
        counts = {s: sum(c.status == s for c in checks) for s in (doctor.OK, doctor.WARN, doctor.FAIL)}
        what = f"lab {lab.name}" if topology else "every netlab feature"
        warned = counts[doctor.WARN]
        click.echo(f"{counts[doctor.OK]} ok, {warned} warning{'' if warned == 1 else 's'}, {counts[doctor.FAIL]} "
                   f"failed (checked for {what})")
    if failed:
        raise SystemExit(EXIT_ENVIRONMENT)


def _running(name: str) -> LabState | None:
    """The state of lab ``name`` when it is up (None: not up, or its state cannot be read: the doctor checks the
    machine's choices then)."""
    from netlab.errors import NetlabError
    from netlab.realize.state import load_state

    try:
        return load_state(name)
    except (NetlabError, OSError):
        return None


def _act_on_backend(state: LabState) -> None:
    """The doctor's iptables checks on the backend the running lab was made in, which every later command of the lab
    uses (realize/backend.act_on), not the machine's of now; a NETLAB_IPTABLES naming none is the doctor's own line."""
    from netlab.errors import NetlabError
    from netlab.realize import backend

    try:
        backend.act_on(state)
    except NetlabError:
        pass


def _backend_moved(state: LabState) -> str | None:
    """With -t FILE of a running lab made with another iptables backend than the machine's now: the line that
    says so (realize/backend: the lab keeps its own)."""
    from netlab.api.running import backend_moved
    from netlab.errors import NetlabError

    try:
        return backend_moved(state)
    except (NetlabError, OSError):
        return None
