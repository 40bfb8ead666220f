"""What an `up` removed, in words: the pods and nodes whose network namespaces went (QA qo 3: it said only
"(1 removed)"). The lab's topology before the run names them, read from its state as the run begins."""

from __future__ import annotations

import os
from typing import Any, Sequence

from netlab.errors import NetlabError
from netlab.api.results import StoppedProcess
from netlab.model.lab import DEFAULT_CONTAINER


def before_up(lab: str) -> dict[str, tuple[str, list[str]]]:
    """The running lab's network namespaces, each with what it is (``pod default/client``, ``node n2``) and what
    runs in it (its containers); {} when the lab is not up or its state cannot be read (the words fall back to the
    namespace)."""
    from netlab.realize.state import load_state

    try:
        state = load_state(lab)
    except (NetlabError, OSError):
        return {}
    topo = state.topology if state is not None and isinstance(state.topology, dict) else {}
    workload = state.extra.get("workload") if state is not None else None
    ran = workload.get("pods") if isinstance(workload, dict) else None  # the containers that ran, by pod
    ran = ran if isinstance(ran, dict) else {}
    out: dict[str, tuple[str, list[str]]] = {}
    for node in topo.get("nodes") or []:
        if isinstance(node, dict) and isinstance(node.get("name"), str):
            out[f"{lab}-{node['name']}"] = (f"node {node['name']}", [])
    for pod in topo.get("pods") or []:
        if not (isinstance(pod, dict) and isinstance(pod.get("name"), str)):
            continue
        out[f"{lab}-{pod['name']}"] = (f"pod {pod.get('namespace') or 'default'}/{pod['name']}",
                                      _containers(pod, ran.get(pod["name"])))
    return out


def _containers(pod: dict[str, Any], record: object) -> list[str]:
    """The pod's containers: those its record says ran, else those its topology names (none: the echo server's)."""
    if isinstance(record, dict) and isinstance(record.get("containers"), dict):
        return [str(name) for name in record["containers"]]
    return [c["name"] for c in pod.get("containers") or [{"name": DEFAULT_CONTAINER}]
            if isinstance(c, dict) and isinstance(c.get("name"), str)]


def lines(removed: tuple[str, ...] | list[str], before: dict[str, tuple[str, list[str]]],
          warnings: Sequence[str] = (), stopped: Sequence[StoppedProcess] = ()) -> list[str]:
    """One line per namespace ``up`` removed: ``removed pod default/client (network namespace lab-client,
    container main stopped)``; ``warnings``: the run's, in which the stop named each process it left in a pod's
    network namespace or its UTS pin (kernel/kill.py): that pod's containers are said not all stopped.
    ``stopped``: the processes not the lab's its stops stopped (a user's ``netlab exec``), said on the line of
    the pod or node they were in (``...; also stopped 1 process of yours in the pod: 4242 sleep 1000``), or on
    one of their own for a namespace no such line names (a pod whose name another took, one made again)."""
    from netlab.kernel.kill import is_survivor, others_words, stopped_words  # an up loaded it: the stop's words

    out = []
    for netns in removed:
        yours = others_words(theirs, "it") if (theirs := _of(stopped, netns)) else ""
        if netns not in before:
            out.append(f"removed network namespace {netns}" + (f" ({yours})" if yours else ""))
            continue
        kind, containers = before[netns]
        said = ""
        if containers:
            pod = kind.rpartition("/")[2]
            left = sum(1 for w in warnings if is_survivor(w) and (w.endswith(f" in {netns}")
                                                                  or w.endswith(f"{os.sep}{pod}")))
            said = f", {stopped_words(containers, left)}"
        if theirs:
            said += f"; {others_words(theirs, 'the ' + kind.partition(' ')[0])}"
        out.append(f"removed {kind} (network namespace {netns}{said})")
    for netns in sorted({p.netns for p in stopped} - set(removed)):
        out.append(others_words(_of(stopped, netns), netns))
    return out


def _of(stopped: Sequence[StoppedProcess], netns: str) -> list[tuple[int, str, str]]:
    return [(p.pid, p.command, "") for p in stopped if p.netns == netns]
