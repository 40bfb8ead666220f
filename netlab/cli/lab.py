"""Lab lifecycle commands: up, down, status (they touch the kernel: root only; list: cli/labs.py)."""

from __future__ import annotations

import os
import re
import shlex
from typing import TYPE_CHECKING, Sequence

import click
from click.core import ParameterSource

from netlab import api
from netlab.api.jsonio import to_json
from netlab.cli import endings
from netlab.cli.base import attached, cli, require_processes, require_root
from netlab.cli.options import TOPOLOGY_FILE, TOPOLOGY_HELP, WAIT_OPTION, Seconds, lab_from_env, lab_options
from netlab.cli.output import FORMAT_KEY, exit_if_failed, output_option, note, print_json, warn
from netlab.cli.complete import complete_labs
from netlab.cli.progress import progress_bar
from netlab.cli.style import plural
from netlab.errors import (ChecksFailed, NetlabError, command_path, down_command, from_file_way,
                           netlab_command)

if TYPE_CHECKING:
    from netlab.api.results import StoppedProcess
    from netlab.api.topology import Loaded

# No LOADS (cli.base.COMMANDS): `status` starts its kernel readers (lab/readahead.py) before it loads
# the API, and the other commands reach it through netlab.api's names.


@cli.command()
@click.option("-t", "--topology", metavar="FILE", type=TOPOLOGY_FILE, help=TOPOLOGY_HELP)
@click.option("--lab", "lab_name", metavar="NAME", envvar="NETLAB_LAB", show_envvar=True, callback=lab_from_env,
              shell_complete=complete_labs,
              help="Instead of a file: converge the running lab NAME to its saved topology, what `status` "
                   "compares with (its file as last applied, with the impairments set since); also a lab made "
                   "from a dict or the built-in default. A NAME that is not up is refused, except 'demo': the "
                   "built-in default lab is made. Default: $NETLAB_LAB (with neither: see above).")
@WAIT_OPTION
@click.option("--reconfigure", is_flag=True,
              help="With -t FILE: replace a running lab of the same name that was brought up from another file. "
                   "With -t FILE or --lab NAME: re-attach the CNI pods attached with another config than the "
                   "conflist has now (DEL with theirs, then ADD); --lab NAME does it in the running lab as its "
                   "saved topology is (its file as last applied, the impairments set since: an edit of its file "
                   "since is not applied). Either way the lab moves to the iptables backend and the CNI plugin "
                   "folders the machine has now, as a new lab would. Not with --watch: replace the lab first, then "
                   "watch it.")
@click.option("--watch", is_flag=True,
              help="Then keep the lab converged until Ctrl-C, SIGTERM or SIGHUP (exit 0): re-apply the file when it "
                   "changes (a running lab picked by --lab, $NETLAB_LAB or as the only one up: its saved "
                   "topology, no file), repair drift as the kernel reports it, restart exited containers by their "
                   "pod's restartPolicy; one line per action. The lab stays up. One watcher per lab: a second is "
                   "refused. Text only: -o json and -o yaml are refused (exit 2). Not with --reconfigure (exit 2): "
                   "`up -t FILE --reconfigure` first, then `up -t FILE --watch`.")
@click.option("--restart-backoff", type=Seconds(min=0, min_open=True), default=10.0, show_default=True,
              metavar="SECONDS",
              help="With --watch: the first back-off between restarts of a crashing container (and between "
                   "retries of a failed repair), doubling up to 5 minutes, as the kubelet's.")
@click.option("--resync", type=Seconds(min=0, min_open=True), default=10.0, show_default=True, metavar="SECONDS",
              help="With --watch: how often a full status runs besides the kernel's notifications.")
@output_option("text", "json")
def up(topology: str | None, lab_name: str | None, wait: float, reconfigure: bool, watch: bool,
       restart_backoff: float, resync: float, output: str) -> None:
    """Create the lab, or converge a running lab to its topology.

    Namespaces are <lab>-underlay, <lab>-<node>, <lab>-<pod>. Running `up`
    again with the same file changes nothing; with a changed file it adds and
    removes what differs, like a controller reconciling desired and current
    state. Another file whose name: is a running lab's is refused unless
    --reconfigure is given. A failed or interrupted `up` rolls back (exit 4,
    or 130 on Ctrl-C, 143 on SIGTERM, 129 on SIGHUP). A container that could not start leaves the
    lab up, named in a line: exit 1, as `status`. `up --lab NAME` repairs a
    running lab without its file: it converges the lab to the topology
    `status` compares with.

    Which lab, without -t FILE: --lab NAME, else $NETLAB_LAB, else the only
    lab that is up (what `netlab break` broke: plain `up` repairs it), else the
    built-in default lab 'demo' (when no lab is up, or 'demo' is). With several
    labs up, none of them 'demo', plain `up` is refused: `up --lab NAME`
    repairs one, `up --lab demo` makes the built-in lab. --watch watches the
    lab `up` picks so: a running lab picked by name, or the only one up, is
    kept as its saved topology says (no file is re-read). --reconfigure
    with -t FILE applies that file (with neither a file nor a lab named:
    the built-in default); with --lab NAME (or $NETLAB_LAB) it converges
    that running lab to its saved topology and re-attaches the pods whose
    conflist was edited since (`status` names it when the lab's file was
    edited too).

    \b
    Then, for example:
      sudo ip netns exec demo-fedora-1 ping -c1 10.244.1.3    # TTL 62: two routers
      sudo ip -n demo-minikube -d link show flannel.1          # the VXLAN device
      sudo netlab status
    """
    if not watch:  # the watcher's own options: given without it, they would do nothing, unsaid
        ctx = click.get_current_context()
        given = [f"--{name.replace('_', '-')}" for name in ("restart_backoff", "resync")
                 if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT]
        if given:
            raise api.UsageError(f"{' and '.join(given)} {'goes' if len(given) == 1 else 'go'} with --watch (the "
                                 "loop that restarts containers and checks the lab)")
    if watch and output == "json":  # -o json is one document, printed once a command is done; a watch never is
        asked = click.get_current_context().meta.get(FORMAT_KEY, "json")
        # the lab asked for, as every suggestion says a command (sudo, NETLAB_STATE_DIR); $NETLAB_LAB, which sudo
        # drops, as --lab
        given = f" -t {command_path(topology)}" if topology is not None else \
            f" --lab {shlex.quote(lab_name.strip())}" if lab_name else ""
        raise api.UsageError(f"--watch writes one text line per action until Ctrl-C: it takes no -o {asked} "
                             f"(`{netlab_command(f'up{given} -o {asked}')}` gives up's result, then run --watch)")
    try:
        loaded, said, saved = _load_for_up(topology, lab_name, reconfigure)
    except KeyboardInterrupt as exc:
        raise endings.load_stopped(topology, lab_name, exc) from exc
    if said and output != "json":
        click.echo(said)
    if watch:
        _watch(loaded, saved, reconfigure, restart_backoff, resync)
        return
    from netlab.realize.state import state_version

    version = state_version(loaded.lab.name)  # the state file before the run: unchanged, the run did nothing
    try:
        _up(loaded, wait, reconfigure, output)
    except KeyboardInterrupt as exc:
        raise endings.up_stopped(loaded, exc, version) from exc


def _up(loaded: Loaded, wait: float, reconfigure: bool, output: str) -> None:
    """`up` without --watch: the run, then what it did."""
    from netlab.cli import removed

    before = removed.before_up(loaded.lab.name) if output != "json" else {}  # what a removed namespace was
    bar, progress = progress_bar()
    if bar:
        with bar:
            lab = api.Lab.up_loaded(loaded, progress=progress, wait=wait, reconfigure=reconfigure)
    else:
        lab = api.Lab.up_loaded(loaded, wait=wait, reconfigure=reconfigure)
    result = lab.last_up
    assert result is not None
    warn([w for w in result.warnings if w not in lab._repeated_warnings])  # the JSON keeps them all
    from netlab.probe import budget_said

    budget_said.record(result.lab, getattr(lab, "_budget_warning", None))  # said now, or at the up before
    note(result.notes)  # as validate says them
    if output == "json":
        print_json(to_json(result))
        exit_if_failed(result.failed)
        return
    model = loaded.lab if loaded.lab.cni == "builtin" else lab.model  # pods as their CNI plugins made them
    if not result.changed:
        click.echo(f"lab {model.name} is up and matches its topology; nothing to change" if result.ok else
                   f"lab {model.name} is up; nothing changed, but {_failed_words(result.failed)}")
        exit_if_failed(result.failed)
        return
    parts = []
    if result.created_netns:
        parts.append(plural(len(result.created_netns), "namespace") + " created")
    if result.removed_netns:
        parts.append(plural(len(result.removed_netns), "namespace") + " removed")
    parts += fixed_words(result.fixed)
    click.echo(f"lab {model.name} is up ({', '.join(parts)}): {loaded.counts()}; {network_words(loaded)}")
    # a repair or a change: every action, as -o json lists them (a fresh lab's: only counted, nothing was there)
    said = removed.lines(result.removed_netns, before, result.warnings, result.stopped_processes) \
        + ([] if lab.owned else list(result.fixed))
    if said:
        for line in said[:20]:
            click.echo(f"  {line}")
        if len(said) > 20:
            click.echo(f"  ... and {len(said) - 20} more (`-o json` lists them all)")
    from netlab.model.netpol import ping_pair

    from netlab.cni.terminated import released

    # a pair the lab's NetworkPolicies let ping, if any; none from or to a pod whose sandbox's namespace went
    pair = ping_pair(model if model.cni == "builtin" else model.with_terminal(released(lab.state())))
    if pair is not None:
        click.echo(f"try: sudo ip netns exec {pair[0].netns} ping -c1 {pair[1].ip}")
    exit_if_failed(result.failed)


def _failed_words(failed: list[str]) -> str:
    """What an up that changed nothing could not make as asked: containers that could not start, or what else
    (a pod whose CNI CHECK fails its own fresh ADD), each said below."""
    from netlab.api.watch_lines import failed_key

    if all(failed_key(line) != line for line in failed):
        return f"{plural(len(failed), 'container')} could not start"
    return "not all of it is as asked (below)"


def _load_for_up(topology: str | None, lab_name: str | None, reconfigure: bool) -> tuple[Loaded, str, bool]:
    """What `up` (and `up --watch`) applies: the file -t FILE; the saved topology of the lab that --lab NAME or
    $NETLAB_LAB names (the built-in default when that is its name, 'demo', and it is not up); with neither, the
    built-in default, or the only lab up when that is another (realize.lab_name.plain_up_lab), with a line that
    says so. The last: whether it is a running lab's saved topology (no file to follow)."""
    from netlab.realize.lab_name import LAB_ENV, plain_up_lab
    from netlab.realize.state import load_state, not_up
    from netlab.realize.state_dir import check_lab_name

    if lab_name is None:
        loaded = api.load(topology)
        require_root()
        require_processes()
        if topology is not None or reconfigure:  # --reconfigure: of a file, or the built-in one
            return loaded, "", False
        default = loaded.lab.name
        only = plain_up_lab(default)
        if only is None:
            return loaded, "", False
        # Not the built-in lab plain `up` made before: the lab `netlab break` broke, whose repair it teaches.
        return api.load_running(only), (f"no -t FILE nor --lab: lab {only}, the only lab up, converges to its saved "
                                        f"topology (`{netlab_command(f'up --lab {default}')}` makes the built-in "
                                        "default lab)"
                                        ), True
    from_env = click.get_current_context().get_parameter_source("lab_name") is ParameterSource.ENVIRONMENT
    if topology is not None:  # --reconfigure goes with it: the lab's saved topology, its pods re-attached
        named = (f"--lab NAME (${LAB_ENV}={check_lab_name(lab_name.strip(), '$' + LAB_ENV)})" if from_env
                 else "--lab NAME")
        raise api.UsageError(f"{named} converges a running lab to its own saved topology: it takes no -t FILE "
                             "(give -t FILE to apply a file)")
    lab_name = check_lab_name(lab_name.strip(), "$" + LAB_ENV) if from_env else check_lab_name(lab_name)
    require_root()
    require_processes()
    if load_state(lab_name) is not None:
        return api.load_running(lab_name), "", True
    default = api.load(None)
    if lab_name == default.lab.name:  # `up --lab demo`: the built-in default lab, made as a plain `up` makes it
        return default, "", False
    raise not_up(lab_name, " (named by $NETLAB_LAB)" if from_env else "",
                 f"; `{from_file_way(api=False)}` brings it up from a file")


# The lines of a node's rule table restored at once: the lab's iptables table (its backend named when the lab's
# rules are also taken out of the other one), the stale chains that restore deleted, the lab's rules taken out of
# the other backend, an nftables table.
_TABLE_LINES = (re.compile(r"restore iptables(?:-\S+)? (?P<table>\S+) in (?P<ns>\S+)$"),
                re.compile(r"(?P<ns>\S+): deleted stale (?P<table>\S+) chains "),
                re.compile(r"take the lab's (?P<table>\S+) rules.* out of (?P<other>iptables-\S+) in (?P<ns>\S+) "),
                re.compile(r"restore nftables (?P<nft>.+) in (?P<ns>\S+)$"))


def rule_table(line: str) -> tuple[str, ...] | None:
    """The node's rule table a line of up's says it restored (namespace, backend, table), None for another
    object: a restore and the stale chains it deleted are one table."""
    for pattern in _TABLE_LINES:
        m = pattern.match(line)
        if m is not None:
            words = m.groupdict()
            return (words["ns"], words.get("other") or ("nftables" if words.get("nft") else "iptables"),
                    words.get("table") or words["nft"])
    return None


def fixed_words(fixed: list[str]) -> list[str]:
    """up's actions counted by what they were: containers started, files written, rule tables rewritten (a
    node's whole table restored at once: a label or policy change rewrites it, however many rules differ, and the
    stale chains it deletes are of that table), pods attached through CNI for the first time (a new lab's, a new
    pod's: no repair), and the other objects added or repaired."""
    started = sum(1 for line in fixed if line.startswith("started container"))
    restarted = sum(1 for line in fixed if line.startswith("restarted container"))
    written = sum(1 for line in fixed if line.startswith(("wrote ", "rewrote ")))
    restored = [rule_table(line) for line in fixed]
    tables = len({key for key in restored if key is not None})
    pods = sum(1 for line in fixed if line.startswith("removed pod "))  # lab/taken.taken_line's: a name left alone
    nodes = sum(1 for line in fixed if line.startswith("removed node "))
    attached = sum(1 for line in fixed if line.startswith("attached pod "))  # a re-attach is "re-attached pod"
    other = len(fixed) - started - restarted - written - sum(1 for key in restored if key is not None) - pods - nodes \
        - attached
    return ([plural(started, "container") + " started"] if started else []) \
        + ([plural(restarted, "container") + " restarted"] if restarted else []) \
        + ([plural(written, "file") + " written"] if written else []) \
        + ([plural(tables, "rule table") + " rewritten"] if tables else []) \
        + ([plural(pods, "pod") + " removed"] if pods else []) \
        + ([plural(nodes, "node") + " removed"] if nodes else []) \
        + ([plural(attached, "pod") + " attached through CNI"] if attached else []) \
        + ([plural(other, "object") + " added, changed or repaired"] if other else [])


def _watch(loaded: Loaded, saved: bool, reconfigure: bool, backoff: float, resync: float) -> None:
    """Watch the lab ``loaded`` is: its file, the built-in default, or (``saved``) a running lab's saved topology,
    which no file changes (`up -t FILE` and `netlab impair` do: the watcher reads the lab's state each round)."""
    import sys
    import time

    from netlab.api.watch import watch
    from netlab.errors import UsageError
    from netlab.realize.state import up_command

    if reconfigure:  # the file given, replacing the running lab (or a running lab re-attached): then watched
        first = netlab_command(f"up --lab {loaded.lab.name} --reconfigure") if saved else \
            up_command(loaded.source, reconfigure=True)
        raise UsageError(f"--watch {'takes no --reconfigure' if saved else 'applies the file as it is'}: run "
                         f"`{first}` first, then --watch")

    def log(line: str) -> None:
        sys.stdout.write(f"{time.strftime('%H:%M:%S')} {line}\n")
        sys.stdout.flush()

    watch(None if saved else loaded.source, loaded.lab.name, log, backoff_base=backoff, resync=resync, saved=saved)


def network_words(loaded: Loaded) -> str:
    """How pods on different nodes reach each other, in the words of the lab's mode."""
    lab = loaded.lab
    if lab.mode == "vxlan":
        vx = lab.topo.network.vxlan
        return f"VXLAN overlay (flannel.{vx.vni}, UDP {vx.port})"
    return "host-gw routing (no overlay: each node routes the others' pod CIDRs via their node IPs)"


@cli.command()
@lab_options
@WAIT_OPTION
@click.option("--force", is_flag=True,
              help="Also when the lab's state file is corrupt or lost: delete every namespace <lab>-* whose tag "
                   "names the lab (net.ipv4.conf.all.tag its name's hash, any run id), and the pods' files in "
                   "/etc/netns/<lab>-*/ "
                   "whose first line is netlab's for the lab. Untagged namespaces are never touched.")
@output_option("text", "json")
def down(lab_name: str | None, topology: str | None, wait: float, force: bool, output: str) -> None:
    """Delete everything the lab made: its processes, links and namespaces.

    Works without the topology file (`--lab NAME`), after a crash, and when
    run twice. Only what the lab's saved state proves it created is deleted;
    with --force, what the namespaces' own netlab tags prove. Ctrl-C or
    SIGTERM once it has begun to delete waits for the lab to be down (exit 130 or
    143); before that (waiting for the lab, reading its state) it ends at once.

    Exit 0 when the lab is down (what could not be undone, a CNI plugin's
    failed DEL, is a warning), also one that was not up; 3 when its state
    file is corrupt or lost (--force takes it down), it is up with another
    state folder, or its state file could not be removed.

    \b
    Examples:
      sudo netlab down
      sudo netlab down --lab demo
      sudo netlab down --lab demo --force     # its state file corrupt or lost
    """
    from netlab.realize.lab_name import down_lab_name

    require_root()
    require_processes()
    lab_name = down_lab_name(lab_name, topology)  # as every command picks it, but a lone gone lab: forgotten
    if lab_name is None:
        if output == "json":
            print_json({"lab": None, "was_up": False, "removed_netns": [], "skipped": [], "problems": [],
                        "removed_pod_files": [], "stopped_processes": []})
        else:
            click.echo("no lab is up; nothing to do")
        return
    from netlab.cni.terminated import released_namespaces

    released = frozenset(released_namespaces(lab_name).values())  # before down forgets them
    bar, progress = progress_bar()
    try:
        if bar:
            with bar:
                result = api.Lab(lab_name).down(wait=wait, progress=progress, force=force)
        else:
            result = api.Lab(lab_name).down(wait=wait, force=force)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: once down has begun, it waited for the lab to be down
        raise _stopped(lab_name, exc) from None
    warn((*result.skipped, *result.problems))
    if output == "json":
        print_json(to_json(result))
        return
    if not result.was_up:
        click.echo(f"lab {lab_name} is not up; nothing to do")
    else:
        # the files of the namespaces removed went with them, as said; those of none left (down --force) are named
        # (nor those of a terminal pod whose namespace up removed with its stopped sandbox: a pod of the lab's)
        alone = [path for path in result.removed_pod_files
                 if os.path.basename(os.path.dirname(path)) not in {*result.removed_netns, *released}]
        click.echo(f"lab {lab_name} is down ({plural(len(result.removed_netns), 'namespace')} removed"
                   f"{pod_files_words(alone)}{stopped_words(result.stopped_processes)})")


def pod_files_words(paths: Sequence[str]) -> str:
    """What `down --force` says of the pods' files it took from /etc/netns with no namespace of the lab's left
    (their first line named the lab): their folders, the first three and how many more; nothing when none."""
    folders = sorted({os.path.basename(os.path.dirname(path)) for path in paths})
    if not folders:
        return ""
    more = f" and {len(folders) - 3} more" if len(folders) > 3 else ""
    root = os.path.dirname(os.path.dirname(paths[0]))
    return f"; its pods' files in {root} removed: {', '.join(folders[:3])}{more}"


def stopped_words(stopped: Sequence[StoppedProcess]) -> str:
    """What down says of the processes not the lab's that it stopped with the lab's namespaces (a user's `netlab
    exec`, `nsenter`), each with its namespace: ``; also stopped 1 process of yours in its namespaces: 4242 sleep
    1000 in L-b``; nothing when none."""
    from netlab.kernel.kill import others_words

    if not stopped:
        return ""
    return "; " + others_words([(p.pid, p.command, p.netns) for p in stopped], "its namespaces")


def _stopped(lab_name: str, exc: KeyboardInterrupt) -> NetlabError:
    """The line of a `down` a signal stopped, with its exit status (130 SIGINT, 143 SIGTERM): the lab is down
    (the signal came while down ran: it waited for the end, lab/teardown.py), or it had not begun (the signal
    came while down waited for the lab's lock, or loaded), as its state directory says."""
    import os
    import signal

    from netlab import signals
    from netlab.realize.state_dir import lab_dir

    code = signals.exit_code(exc)
    name = signal.Signals(code - 128).name if 128 < code < 128 + signal.NSIG else "a signal"
    left = os.path.lexists(lab_dir(lab_name, create=False))
    said = NetlabError(f"interrupted by {name}; " + (
        f"lab {lab_name} is still up (`{down_command(lab_name)}` takes it down)" if left
        else f"lab {lab_name} is down"))
    said.exit_code = code
    return said


@cli.command()
@lab_options
@output_option("text", "json")
def status(lab_name: str | None, topology: str | None, output: str) -> None:
    """Compare the live kernel with the lab's plan; exit 1 on drift, or when an up or down of the lab ended halfway.

    Lists every missing, extra or different namespace, link, address, route,
    neighbour, FDB entry, sysctl and rule, and containers that exited. A
    table's line says its first differences and how many more; `-o json`
    holds every one (details[].differences).
    `sudo netlab up -t FILE` again (the file the lab came from) repairs the
    drift; the last line says the command, and what it does not repair (a
    Never pod's container that failed stays exited; a container that could
    not start fails the same until its command can run). A container that
    `up --watch` holds back by its back-off (CrashLoopBackOff) is said so,
    with the watcher that restarts it and when. A lab whose `up` (or `down`)
    was killed halfway is said so first, as `netlab list` says it (`-o json`:
    its `error`, and `ok` false), and its last line says what finishes it.

    With -t FILE the lab is the one the file names, and the kernel is compared
    with the file's plan (not the one the lab was brought up with): after
    editing the file, `status -t FILE` shows what `up -t FILE` would change,
    and warns of each pod it would make anew (a new namespace, its
    containers started again) in up's words.

    \b
    Examples:
      sudo netlab status
      sudo netlab status --lab demo -o json    # details[]: every difference
    """
    require_root()  # only the recorded containers are read: CannotTell says it
    from netlab.lab import readahead

    # A big lab's namespaces are read from here on, while the rest of netlab loads (lab/readahead.py): who holds
    # the lab and its state's version are taken first, so that another command's work meanwhile is not drift.
    before = readahead.seen_first(lab_name, topology)
    kernel = readahead.start(lab_name, topology)
    try:
        from netlab.api.lab import internal_status

        lab = attached(lab_name, topology)
        result = internal_status(lab, topology, kernel, before=before)
    finally:
        kernel.close()
    if result.error is not None:  # an up (or down) killed halfway is said first, in list's words
        click.echo(f"netlab: {result.error}", err=True)
    warn(result.warnings)
    if output == "json":
        print_json(to_json(result))
    else:
        from netlab.cli.status_text import say

        say(result, lab_name, topology)
    if not result.ok:
        raise SystemExit(ChecksFailed.exit_code)
