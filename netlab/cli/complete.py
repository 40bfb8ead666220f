"""Shell completion of lab, pod, node and Service names (``netlab completion bash|zsh|fish``).

Completion runs as the user at the prompt, often not root: the labs' state
(root only) is read when it can be, else the names come from ``/run/netns``,
which anyone may list (``<lab>-underlay`` names a lab, ``<lab>-<name>`` its
pods, nodes and hosts). Service names need the state. A completion never
prints an error: it offers nothing instead.
"""

from __future__ import annotations

import os
from typing import Any

import click
from click.shell_completion import CompletionItem

from netlab.model.naming import NETNS_DIR

UNDERLAY = "-underlay"


def _netns() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_DIR))
    except OSError:
        return []


def lab_names() -> list[str]:
    from netlab.realize.lab_list import known_labs

    try:
        return known_labs()
    except Exception:  # noqa: BLE001 - not root, or no state directory: the namespaces tell
        return [n[: -len(UNDERLAY)] for n in _netns() if n.endswith(UNDERLAY)]


def _chosen_lab(ctx: click.Context) -> str | None:
    """The lab the command line picks so far: --lab, -t FILE, $NETLAB_LAB, or the only lab up."""
    from netlab.api.lab import LAB_ENV

    params = ctx.params
    if params.get("lab_name"):
        return str(params["lab_name"])
    if params.get("topology"):
        from netlab.model.load import load_topology

        return load_topology(params["topology"]).name
    if os.environ.get(LAB_ENV):
        return os.environ[LAB_ENV].strip()
    labs = lab_names()
    return labs[0] if len(labs) == 1 else None


def _model(ctx: click.Context) -> Any:
    """The chosen lab's model (None: no lab chosen, or its state is root's and this is not root)."""
    lab = _chosen_lab(ctx)
    if lab is None:
        return None
    try:
        from netlab.realize.state import running_lab

        return running_lab(lab).resolved()
    except Exception:  # noqa: BLE001 - not root, or no such lab
        return None


def lab_members(ctx: click.Context) -> tuple[list[str], list[str], list[str]]:
    """(pods, nodes and hosts, Services) of the chosen lab."""
    lab = _chosen_lab(ctx)
    if lab is None:
        return [], [], []
    model = _model(ctx)
    if model is None:  # the state is root's: the namespaces tell (no Services)
        prefix = f"{lab}-"
        names = [n[len(prefix):] for n in _netns() if n.startswith(prefix) and n != f"{lab}{UNDERLAY}"]
        return names, [], []
    return ([p.name for p in model.pods], [n.name for n in model.nodes] + [h for h, _ in model.internet_hosts],
            [model.service_ref(s) for s in model.services])  # x/web when y has a web too (get and trace take it)


def interfaces(model: Any) -> dict[str, list[str]]:
    """Each namespace's interfaces as the plan makes them, by the name exec and capture take (pod, node, host,
    underlay): a pod's eth0 (a CNI lab's plugins make it: eth0, the CNI_IFNAME a runtime passes), a node's eth0,
    cni0, flannel.1 (VXLAN mode) and its pods' host-side veths, the underlay's br0 and the veths of the machines
    on it, the gateway's inet0 and eth0, an internet host's eth0; and every namespace's lo."""
    from netlab.plan.build import build_plan
    from netlab.plan.resources import Link, Veth

    by_netns: dict[str, list[str]] = {}
    for r in build_plan(model).resources:
        if isinstance(r, Link):
            by_netns.setdefault(r.netns, []).append(r.name)
        if isinstance(r, Veth):
            by_netns.setdefault(r.peer_netns, []).append(r.peer_name)
    names = ([(p.name, p.netns) for p in model.pods] + [(n.name, n.netns) for n in model.nodes]
             + list(model.internet_hosts) + [("underlay", model.underlay_netns)])
    out = {}
    for name, netns in names:
        links = [link for link in by_netns.get(netns, []) if link != "lo"]
        if not links and any(p.name == name for p in model.pods):
            links = ["eth0"]
        out[name] = list(dict.fromkeys(links)) + ["lo"]
    return out


def _items(words: list[str], incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(w) for w in words if w.startswith(incomplete)]


def _safe(fn: Any) -> Any:
    def wrapped(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        try:
            return fn(ctx, incomplete)  # type: ignore[no-any-return]
        except Exception:  # noqa: BLE001 - a completion offers nothing rather than an error
            return []

    return wrapped


@_safe
def complete_labs(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    return _items(lab_names(), incomplete)


@_safe
def complete_pods(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    return _items(lab_members(ctx)[0], incomplete)


@_safe
def complete_logged_pods(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    """A pod of the lab, or one taken out of it whose calls its CNI log still holds (``cni log POD``; root)."""
    from netlab.cni.invoke import logged_pods, read_log
    from netlab.cni.lifecycle import log_path

    pods = lab_members(ctx)[0]
    lab = _chosen_lab(ctx)
    try:
        logged = logged_pods(read_log(log_path(lab))) if lab is not None else []
    except (OSError, ValueError):  # not root (the log is root's), or no such lab: the lab's pods
        logged = []
    return _items(pods + [name for name in logged if name not in pods], incomplete)


@_safe
def complete_names(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    """A pod, node, internet host or the underlay (exec, inspect)."""
    pods, others, _ = lab_members(ctx)
    return _items(pods + others + (["underlay"] if _chosen_lab(ctx) else []), incomplete)


@_safe
def complete_sources(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    """A pod, node or internet host (trace's SRC)."""
    pods, others, _ = lab_members(ctx)
    return _items(pods + others, incomplete)


@_safe
def complete_targets(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    """A pod, node, internet host or svc/NAME (trace's DST): from a pod (SRC given), a Service of another
    namespace as svc/NS/NAME, as trace takes it there (a bare name is the pod's own namespace's, as its DNS
    search path resolves it)."""
    pods, others, services = lab_members(ctx)
    model = _model(ctx) if services else None
    src = ctx.params.get("src")
    pod = next((p for p in model.pods if p.name == src), None) if model is not None and src else None
    if pod is not None:
        services = [model.service_ref_from(s, pod.spec.namespace) for s in model.services]
    return _items(pods + others + [f"svc/{s}" for s in services], incomplete)


@_safe
def complete_containers(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    """logs -c: the containers of the pod given (the lab's state is root's: nothing without it)."""
    from netlab.realize.state import running_lab

    # `logs POD -c <TAB>`: click parses the words before an option that awaits its value as leftovers
    lab, pod = _chosen_lab(ctx), ctx.params.get("pod") or next(iter(ctx.args), None)
    if lab is None or not pod:
        return []
    found = [p for p in running_lab(lab).resolved().pods if p.name == pod]
    return _items([c.name for p in found for c in p.containers], incomplete)


@_safe
def complete_kind_names(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    """get's NAMES: the chosen kind's (pods, nodes and internet hosts, or Services), each once."""
    pods, others, services = lab_members(ctx)
    words = {"pods": pods, "nodes": others, "services": services}.get(ctx.params.get("kind") or "", [])
    return _items([w for w in words if w not in (ctx.params.get("names") or ())], incomplete)


@_safe
def complete_interfaces(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    """NAME:IFACE for capture: a pod, node, internet host or the underlay, then the interfaces it has (the
    plan's; without the lab's state, root's: the names its namespaces give, each with the eth0 and lo every one
    of them has)."""
    model = _model(ctx)
    if model is None:
        pods, others, _ = lab_members(ctx)
        return _name_iface({name: ["eth0", "lo"] for name in pods + others}, incomplete)
    return _name_iface(interfaces(model), incomplete)


@_safe
def complete_impair_interfaces(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    """NAME:IFACE for impair: a pod's or node's interfaces that impair takes (a pod's eth0; a node's eth0,
    cni0 and, in VXLAN mode, flannel.1), as netlab.api.impair checks them."""
    from netlab.model.impair import POD_INTERFACES, node_interfaces

    model = _model(ctx)
    if model is None:  # the state is root's: the names its namespaces give (pods and nodes have an eth0)
        pods, others, _ = lab_members(ctx)
        return _name_iface({name: ["eth0"] for name in pods + others}, incomplete)
    node_ifaces = list(node_interfaces(model.mode, model.topo.network.vxlan.vni))
    return _name_iface({**{p.name: list(POD_INTERFACES) for p in model.pods},
                        **{n.name: node_ifaces for n in model.nodes}}, incomplete)


def _name_iface(ifaces: dict[str, list[str]], incomplete: str) -> list[CompletionItem]:
    if ":" in incomplete:
        name = incomplete.split(":", 1)[0]
        return _items([f"{name}:{i}" for i in ifaces.get(name, [])], incomplete)
    return _items([f"{n}:" for n in ifaces], incomplete)
