"""Which containers of a pod do not run, as the lab's records say, in a line ``trace`` puts on the hop where a
packet arrived and was refused (or got no answer): nothing listens there because its server's container is down
(``netlab break dns-pod-stopped``, a crash, ``kill -STOP``), and what puts it back.

A container that declares the port is the one said; when none declares it, every container of the pod that does
not run. Its state is ``status``'s (workload/drift.py): never started, could not start, exited (with its exit
code where the lab's echo server saw it), stopped by a signal, running on in the pod's old network namespace.
The way back is ``up`` (``repair``), unless the pod's restartPolicy keeps it down (policy.held).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from netlab.errors import NetlabError
from netlab.kernel.processes import CannotTell
from netlab.workload import exits, policy
from netlab.workload.containers import container_argv
from netlab.workload.tasks import (COMMAND_CHANGED, EXITED, FAILED_START, SANDBOX_REMADE, STOPPED, alive, task_of,
                                   why_replace)
from netlab.workload.uts import uts_path

if TYPE_CHECKING:
    from netlab.model.lab import Lab, PodInfo

RECORD = "workload"  # state.extra key of the containers' records (lifecycle.RECORD)


@dataclass(frozen=True)
class Down:
    who: str  # "pod kube-dns's container dnsmasq" (or containers a, b)
    text: str  # their states, as the lab's records say, and the way back
    restarts: bool  # ``up`` starts them again (no restartPolicy keeps one down)


def line(lab: Lab, netns: str, proto: str, port: int | None, repair: str | Callable[[], str]) -> Down | None:
    """What the lab's records say of the containers of the pod in ``netns`` that do not run: those serving
    ``proto`` ``port`` (all, when none declares it); and whether ``repair`` (the `up` that repairs the lab, or what
    works it out: asked only when the line names it) starts them again. None: they all run (or ``netns`` is no
    pod's, or the lab's state cannot be read, or the containers' processes cannot: root without CAP_SYS_PTRACE,
    where trace says what the packet met, not why nothing listened)."""
    from netlab.realize.state import load_state

    pod = next((p for p in lab.pods if p.netns == netns), None)
    if pod is None:
        return None
    try:
        state = load_state(lab.name)
    except NetlabError:
        return None
    rec = state.extra.get(RECORD) if state is not None else None
    prec = rec.get("pods", {}).get(pod.name) if isinstance(rec, dict) else None
    records = prec.get("containers", {}) if isinstance(prec, dict) else {}
    serving = [c for c in pod.containers
               if any(p.container_port == port and p.protocol.lower() == proto for p in c.ports)]
    said, names, restarts = [], [], True
    for c in serving or pod.containers:
        crec = records.get(c.name) if isinstance(records.get(c.name), dict) else None
        try:
            words, held = _state(lab, pod, c, crec)
        except CannotTell:
            return None
        if words is None:
            continue
        names.append(c.name)
        said.append(f"{c.name} {words}" + (f" ({held} leaves it so)" if held else ""))
        restarts = restarts and held is None
    if not said:
        return None
    whose = f"pod {pod.name}'s container{'s' if len(names) > 1 else ''}"
    it = "them" if len(said) > 1 else "it"
    up = repair if isinstance(repair, str) else repair() if restarts else ""
    way = f"`{up}` restarts {it}" if restarts else f"no `up` restarts {it}"
    return Down(f"{whose} {', '.join(names)}", f"{whose} {'; '.join(said)}, as the lab's records say; {way}",
                restarts)


def _state(lab: Lab, pod: PodInfo, c: Any, crec: dict | None) -> tuple[str | None, str | None]:
    """The container's state in words (None: it runs), and what of its pod's restartPolicy keeps it down."""
    why = why_replace(crec, container_argv(pod, c), pod.netns, uts_path(lab.name, pod.name))
    if why is None or crec is None:
        return ("was never started" if why else None), None
    letter = task_of(crec, pod.netns) if why == COMMAND_CHANGED else None
    if why == COMMAND_CHANGED and letter not in (None, "T"):
        return None, None  # it runs, the old command: not why nothing answers
    if why == FAILED_START:
        return f"could not start ({crec['error']})", None
    if why == SANDBOX_REMADE:
        return "runs on in the pod's old, deleted network namespace", policy.held(
            pod.spec.restart_policy, why, alive(crec), lambda: None)
    if why == STOPPED or letter == "T":
        return f"is stopped (pid {crec.get('pid')}, by SIGSTOP or SIGTSTP)", None
    if why == COMMAND_CHANGED:
        return "exited, and its command changed", None
    cid = f"{pod.name}/{c.name}"
    code = exits.exit_codes(lab.name, {cid: crec}).get(cid)
    how = "exited" if code is None else f"exited with code {code}"
    return f"{how} (pid {crec.get('pid')})", policy.held(pod.spec.restart_policy, EXITED, alive(crec), lambda: code)
