"""``netlab get pods|nodes|services``: what a running lab holds, the way ``kubectl get`` shows a cluster."""

from __future__ import annotations

import shlex
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import click

from netlab.api.jsonio import to_json
from netlab.cli.base import attached, cli, require_root
from netlab.cli.options import lab_options
from netlab.cli.output import output_option, print_json
from netlab.cli.complete import complete_kind_names
from netlab.cli.style import highlight, table
from netlab.errors import EXIT_CHECKS_FAILED, UsageError, command_typed, netlab_command

if TYPE_CHECKING:
    from netlab.api.results import ContainerInfo, NodeInfo, PodInfo, ServiceInfo

# What the commands use, imported when one runs (cli.base.load_for), not for --help.
LOADS = ("netlab.api.lab", "netlab.api.results")

KINDS = {"pods": "pods", "pod": "pods", "po": "pods", "nodes": "nodes", "node": "nodes", "no": "nodes",
         "services": "services", "service": "services", "svc": "services"}


class Kinds(click.Choice):
    """The kinds, and for a typo (`get pdos`) the closest one, as netlab says a mistyped command's."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as exc:
            import difflib

            close = difflib.get_close_matches(str(value), ["pods", "nodes", "services", *KINDS], n=1)
            if not close:
                raise
            self.fail(f"{exc.message} Did you mean {close[0]!r}?", param, ctx)


def _no_namespace_option(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """kubectl's -A and -n NAMESPACE, which a kubectl user types: netlab's get lists every namespace already."""
    if value in (None, False) or ctx.resilient_parsing:
        return
    long = "--all-namespaces" if param.name == "all_namespaces" else "--namespace"
    typed = next((w for w in command_typed() or () if w.startswith(long)), None)
    flag = long if typed else "-A" if param.name == "all_namespaces" else "-n"  # as the user typed it
    if param.name == "all_namespaces":
        raise UsageError(f"get lists every Kubernetes namespace already, as kubectl get -A does: drop {flag}")
    raise UsageError(f"get takes no {flag}: it lists every Kubernetes namespace; name one's objects as NAMESPACE/NAME "
                     f"(`{netlab_command(f'get pods {shlex.quote(str(value))}/NAME')}`), or drop {flag}")


@cli.command("get")
@lab_options
@click.argument("kind", metavar="pods|nodes|services", type=Kinds(sorted(KINDS)),
                callback=lambda c, p, v: KINDS[v])
@click.argument("names", nargs=-1, shell_complete=complete_kind_names)
@click.option("-l", "--selector", metavar="SELECTOR",
              help="Pods whose labels match, as kubectl's: app=web, tier!=db, 'env in (a,b)', app, !app; "
                   "comma-separated requirements must all hold.")
@output_option("text", "wide", "json")
@click.option("-A", "--all-namespaces", "all_namespaces", is_flag=True, hidden=True, expose_value=False,
              callback=_no_namespace_option)
@click.option("-n", "--namespace", "namespace", hidden=True, expose_value=False, callback=_no_namespace_option)
def get(lab_name: str | None, topology: str | None, kind: str, names: tuple[str, ...], selector: str | None,
        output: str) -> None:
    """List the pods, nodes or Services of a running lab (NAMES: only those, each NAME or NAMESPACE/NAME).

    A Service is NAMESPACE/NAME, as in Kubernetes: NAME picks every Service of
    that name, x/web only the one of namespace x (pods: x/a is pod a if it is
    in namespace x). A NAME the lab does not have is said on stderr, one line
    each, after the others are printed (-o json/yaml: the same document, of
    those found), and the exit code is 1, as kubectl's NotFound. Every
    namespace is listed, as kubectl get -A lists them, and when two rows
    share a name the table begins with kubectl -A's NAMESPACE column (-o wide
    always begins with it, as kubectl get -A -o wide).

    \b
    pods      NAME, READY (running containers/all), STATUS, RESTARTS, AGE (since up
              first made the pod: a sandbox made again keeps it, as the pod
              object keeps its creationTimestamp), NODE, IP; -o wide begins with the Kubernetes
              NAMESPACE and adds the network namespace (NETNS), each container with
              its state, and the labels. STATUS is kubectl's word: Running;
              Completed (every container that exited, exit code 0) or Error
              (on Linux 6.15 and later: the kernel keeps the code; before,
              ContainerStatusUnknown; an echo container that was stopped, as
              `break endpoint-pod-down` does: Error, exit code 143, as a
              container the kubelet stops with SIGTERM); StartError (a
              command that could not start, a Never pod's; RunContainerError
              where its restartPolicy starts it again; -o json gives the
              reason as start_error); CrashLoopBackOff (one that
              exited waits out the back-off of a running `up --watch` before
              it is restarted; -o json gives its waiting_reason and
              back_off_until); NotReady (one
              completed, another runs);
              ContainerCreating (not started yet); SandboxChanged (its
              network namespace was deleted under it: its containers run on
              in the old one, READY 0/N; up makes it again); ContainerCreating with
              IP <none> also for a pod whose CNI re-attach was cut short
              after its DEL (no eth0; up ADDs it again)
    nodes     NAME, IP, POD-CIDR, PODS, AGE (of its network namespace); -o wide
              adds the network namespace (NETNS), cni0's address (CNI0; <none: no
              pod yet> on a node no pod ran on: the bridge plugin makes cni0 at
              its first pod; with a conflist, on a node with no pod: its
              plugins make their side at its first pod) and the VXLAN
              device's, flannel.<VNI> (VTEP;
              <none: host-gw> in host-gw mode)
    services  NAME, TYPE, CLUSTER-IP, EXTERNAL-IP, PORT(S), ENDPOINTS; -o wide begins
              with the Kubernetes NAMESPACE and adds the selector and the DNS name, then
              the external traffic policy (Local: with its health check
              nodePort) and the internal one; -o json gives each port's
              endpoints as objects: pod, node, ip, port (the target port)

    \b
      sudo netlab get pods -o wide
      sudo netlab get pods -l app=web -o json
      sudo netlab get svc
      sudo netlab get svc kube-system/kube-dns -o wide    # lab of topologies/services.yaml
    """
    require_root()
    lab = attached(lab_name, topology)
    items: tuple[Any, ...]
    if kind == "pods":
        items = lab.pods(selector)
    elif selector:
        raise UsageError(f"-l selects pods by their labels; a topology's {kind} carry no labels")
    else:
        items = lab.nodes() if kind == "nodes" else lab.services()
    missing: list[str] = []
    if names:
        items, missing = select(items, names, kind, lab.name, selector)
    _show(kind, items, output, lab.name, selector, missing)
    if kind == "nodes" and output != "json":  # on stderr, as the cluster DNS line: the table stays rows
        from netlab.api.running import backend_moved

        moved = backend_moved(lab.state())
        if moved:
            click.echo(f"netlab: {moved}", err=True)
    # As kubectl's `Error from server (NotFound)`: what was found is printed, then one line per NAME that is not
    # there, and exit 1.
    for line in missing:
        click.echo(f"netlab: {line}", err=True)
    if missing:
        raise SystemExit(EXIT_CHECKS_FAILED)


def _show(kind: str, items: tuple[Any, ...], output: str, lab: str, selector: str | None, missing: list[str]) -> None:
    """The items found, in the format asked for; -o json/yaml the same document whatever was found, with
    ``problems``: the line of each NAME not found (said on stderr too; `get pods nope -o json` was `items: []` and
    exit 1 with the reason on stderr alone: QA docs58 4). Its lines say so: no "no pods in lab" before them."""
    if output == "json":
        print_json({"lab": lab, "kind": kind, "items": [to_json(i) for i in items], "problems": missing})
        return
    if not items:  # on stderr, as kubectl's "No resources found": a script reading rows gets none, not a sentence
        if not missing:
            click.echo(f"netlab: no {kind} in lab {lab}" + (f" match {selector!r}" if selector else ""), err=True)
        return
    headers, rows = rows_of(kind, items, output == "wide")
    click.echo(highlight(table(headers, rows)), nl=False)
    added = [ref(i, items) for i in items if getattr(i, "added", False)]
    if added:  # on stderr: the table stays one name per row for scripts
        click.echo(f"({', '.join(added)}: the cluster DNS netlab adds to a lab with Services; "
                   "not in the topology file)", err=True)


def ref(item: Any, items: tuple[Any, ...]) -> str:
    """How to name ``item`` among ``items``: NAME, or NAMESPACE/NAME when another has that name (web in x and y)."""
    namespace = getattr(item, "namespace", None)
    twins = sum(1 for i in items if i.name == item.name)
    return f"{namespace}/{item.name}" if namespace and twins > 1 else item.name


def select(items: tuple[Any, ...], names: tuple[str, ...], kind: str, lab: str,
           selector: str | None = None) -> tuple[tuple[Any, ...], list[str]]:
    """The items NAMES pick, in the lab's order, each once: NAME every item of that name, NAMESPACE/NAME the one
    of that Kubernetes namespace (nodes have none); and for each NAME that picks nothing, the line that says so
    (its kind, the namespace looked in, and the names there are)."""
    picked: set[int] = set()
    missing = []
    singular = kind[:-1]
    for want in dict.fromkeys(names):
        namespace, _, name = want.rpartition("/") if kind != "nodes" else ("", "", want)
        found = [i for i, item in enumerate(items)
                 if item.name == name and (not namespace or getattr(item, "namespace", None) == namespace)]
        picked.update(found)
        if found:
            continue
        where = f" in namespace {namespace!r}" if namespace else " in any namespace" if kind != "nodes" else ""
        matching = f" that matches -l {selector!r}" if selector else ""
        known = ", ".join(ref(i, items) for i in items) or "none"
        missing.append(f"lab {lab} has no {singular} {name!r}{where}{matching} "
                       f"({kind}{' that match' if selector else ''}: {known})")
    return tuple(item for i, item in enumerate(items) if i in picked), missing


def rows_of(kind: str, items: tuple[Any, ...], wide: bool) -> tuple[list[str], list[list[str]]]:
    """The table of ``items``: the kind's columns, and first kubectl -A's NAMESPACE when a name repeats (Services
    web in x and in y), and always in -o wide (as kubectl get -A -o wide; nodes have no namespace)."""
    headers, rows = {"pods": _pods, "nodes": _nodes, "services": _services}[kind](items, wide)
    if kind != "nodes" and (wide or len({i.name for i in items}) < len(items)):
        headers = ["namespace", *headers]
        rows = [[item.namespace, *row] for item, row in zip(items, rows)]
    return headers, rows


def _pods(pods: tuple[PodInfo, ...], wide: bool) -> tuple[list[str], list[list[str]]]:
    headers = ["name", "ready", "status", "restarts", "age", "node", "ip"]
    if wide:
        headers += ["netns", "containers", "labels"]
    rows = []
    now = time.time()
    for p in pods:
        row = [p.name, p.ready, p.status, str(p.restarts), age(p.created, now), p.node, p.ip or "<none>"]
        if wide:
            row += [p.netns or "<none>", " ".join(_container_column(c) for c in p.containers),
                    ",".join(f"{k}={v}" for k, v in p.labels.items()) or "<none>"]
        rows.append(row)
    return headers, rows


def _container_column(c: ContainerInfo) -> str:
    """``main:running``; an exited container with its code: ``job:exited(3)``."""
    code = f"({c.exit_code})" if c.state == "exited" and c.exit_code is not None else ""
    return f"{c.name}:{c.state}{code}"


def age(created: str | None, now: float) -> str:
    """kubectl's AGE: how long ago ``created`` (RFC 3339 UTC) was, to two or three figures ("45s", "3m20s",
    "12m", "5h7m", "2d3h"), as apimachinery's HumanDuration words it; "<unknown>" without a time."""
    if created is None:
        return "<unknown>"
    seconds = int(now - datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())
    if seconds < -1:
        return "<invalid>"
    if seconds < 120:
        return f"{max(seconds, 0)}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if hours < 24 * 365 * 2:
        return f"{days}d"
    years = days // 365
    if hours < 24 * 365 * 8 and days % 365:
        return f"{years}y{days % 365}d"
    return f"{years}y"


def _nodes(nodes: tuple[NodeInfo, ...], wide: bool) -> tuple[list[str], list[list[str]]]:
    headers = ["name", "ip", "pod-cidr", "pods", "age"]
    if wide:
        headers += ["netns", "cni0", "vtep"]  # flannel.<VNI>: flannel.1 only where the VNI is 1
    rows = []
    now = time.time()
    for n in nodes:
        row = [n.name, n.ip, n.pod_cidr, str(len(n.pods)), age(n.created, now)]
        if wide:
            row += [n.netns, n.cni0 or "<none: no pod yet>", n.vtep or "<none: host-gw>"]
        rows.append(row)
    return headers, rows


def _services(services: tuple[ServiceInfo, ...], wide: bool) -> tuple[list[str], list[list[str]]]:
    headers = ["name", "type", "cluster-ip", "external-ip", "port(s)", "endpoints"]
    if wide:
        headers += ["selector", "dns", "external-traffic-policy", "internal-traffic-policy"]
    rows = []
    for s in services:
        ports = ",".join(f"{p.port}{':' + str(p.node_port) if p.node_port else ''}/{p.protocol}" for p in s.ports)
        eps = sorted({f"{e.ip}:{e.port}" for p in s.ports for e in p.endpoints}) + list(s.addresses)
        row = [s.name, s.type, s.cluster_ip, s.external_ip or "<none>", ports or "<none>", ",".join(eps) or "<none>"]
        if wide:
            policy = s.external_traffic_policy or "<none>"
            if s.health_check_node_port:  # kubectl describe's "HealthCheck NodePort"
                policy += f" (health check {s.health_check_node_port}/TCP)"
            row += [",".join(f"{k}={v}" for k, v in s.selector.items()) or "<none>", s.dns, policy,
                    s.internal_traffic_policy]
        rows.append(row)
    return headers, rows
