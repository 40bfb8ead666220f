"""A pod's ``restartPolicy``: which exited containers are started again, as the kubelet decides it.

The policy is the pod's, for all its containers, as in Kubernetes:
``Always`` (the default) restarts a container whatever its exit status,
``OnFailure`` only after a non-zero one (or a status nobody saw: a container
that exited while nothing held it, on a kernel that keeps no exit status),
``Never`` leaves it exited. A pod whose network namespace died under it (its
sandbox) gets its containers killed; a ``Never`` pod gets no new sandbox to
start them in (kuberuntime's ``computePodActions``), so they stay stopped.

Plain ``up`` and ``up --watch`` decide alike; the watcher adds the kubelet's
back-off (lab/restart.py). A container the policy keeps down after exit 0 is
where its pod is meant to be (kubectl's ``Completed``): ``status`` does not
call it drift, and ``up`` leaves it. One that failed under ``Never`` is said,
as kubectl says ``Error``; ``up`` leaves it too: its pod is done. A container
that could not start at all is tried again by every plain ``up`` (the user
may have fixed what stopped it), whatever the policy.
"""

from __future__ import annotations

import re
from typing import Callable

from netlab.feature import FRESH_ADD_FAILS, fresh_check_fix
from netlab.workload.containers import LOG_BLOCKED
from netlab.workload.tasks import EXITED as EXITED, FAILED_START as FAILED_START, SANDBOX_REMADE


def should_restart(policy: str, exit_code: int | None) -> bool:
    """Whether ``policy`` restarts a container that exited with ``exit_code`` (None: not known)."""
    if policy == "Never":
        return False
    if policy == "OnFailure":
        return exit_code != 0
    return True


def held(policy: str, why: str, alive: bool, exit_code: Callable[[], int | None]) -> str | None:
    """Why ``policy`` keeps a container down that ``up`` would otherwise (re)start for ``why``
    (workload.tasks.why_replace); None: start it. ``alive``: its recorded process still runs (in a
    namespace that is no longer its pod's); ``exit_code`` is asked only when the policy needs it."""
    if why == SANDBOX_REMADE and policy == "Never":
        return "restartPolicy Never"
    if not gone(why, alive):
        return None  # stopped, changed, or running elsewhere: up replaces it, whatever the policy
    if not should_restart(policy, exit_code() if policy == "OnFailure" else None):
        return f"restartPolicy {policy}"
    return None


def gone(why: str, alive: bool) -> bool:
    """The container exited, or could not start, and no process of it runs anywhere: what the policy (and the
    watcher's back-off) judge; anything else ``up`` replaces at once."""
    return why in (EXITED, FAILED_START) and not alive


def completed(policy: str, exit_code: int | None) -> bool:
    """A container that exited 0 and that its pod's policy does not restart: done, as it should be."""
    return exit_code == 0 and not should_restart(policy, exit_code)


# How status says the containers that `up` does not put right by itself (workload.lifecycle.drift's lines).
LEFT_EXITED = "restartPolicy Never: `netlab up` leaves it exited"
# ... and one whose exit code nobody saw (an `up` killed as it started it; a kernel before 6.15): not said failed
LEFT_UNKNOWN = f"{LEFT_EXITED} (completed or failed: its exit code is unknown)"
# What runs a container its pod's policy keeps down again (status's and exec's words)
AGAIN = ("to run it again, change its command or take the pod out of the file and back (`up` each time), or `down` "
         "and `up`")
START_FAILED = "could not start: "


# How status says a namespace of the plan whose name a namespace without this lab's tag holds (an `ip netns del`
# then `ip netns add` of that name, another program's): `up` never touches it and refuses the lab while it is there
# (realize/ownership.owned_message, exit 3), so no `up` is the repair.
HELD_BY_ANOTHER = ("a namespace this lab did not make holds its name: up refuses the lab while it is there; whoever "
                   "made it must remove it first (netlab leaves it alone)")


def held_by_another(line: str) -> bool:
    """A drift line of status saying a namespace netlab did not make holds one of the lab's names."""
    return line.startswith("different: namespace ") and line.endswith(f"({HELD_BY_ANOTHER})")


def moves_a_pod(line: str) -> bool:
    """A drift line of `status -t FILE` saying FILE moves a CNI-attached pod to another node: that file's `up`
    refuses the lab whole (realize/attachments.move_refused), so no `up` of it is the repair (QA q29 #2)."""
    from netlab.realize.attachments import MOVE_WORDS  # here: a lab without plugins loads no model (pydantic)

    return line.startswith("cni: ") and MOVE_WORDS in line


def up_leaves(line: str) -> str | None:
    """Why ``up`` alone does not put this drift line right (None: it does): a Never pod's container that failed
    (or whose exit code is unknown: it may have completed) stays exited, as the kubelet leaves it; one that could
    not start is tried again by each ``up``, which fails the same until its command can run. ``status`` says so
    instead of offering ``up`` as the repair."""
    if held_by_another(line):
        return ("`up` refuses the lab while a namespace it did not make holds one of its names (exit 3): that "
                "namespace's owner must remove it first")
    if line.startswith("cni: ") and moves_a_pod(line):
        return ("`up` refuses a file that moves a pod its CNI plugins attached to another node: the two steps its "
                "line says move it (and their `up` puts the rest right)")
    if line.startswith("cni: ") and line.endswith(FRESH_ADD_FAILS) and not line.startswith("cni: CHECK of pod "):
        # a chain without CHECK (cniVersion before 0.4.0, or disableCheck): netlab's comparison of the pod with the
        # chain's cached result failed; disableCheck, which makes that comparison, is no fix
        return ("the pod differs from its chain's cached ADD result right after its own fresh ADD, and would after "
                "every new ADD too (the chain has no CHECK: netlab holds the pod to the result its plugins printed), "
                "so `up` keeps the pod attached as it is: its plugins' result says what they did not make; fix the "
                "plugin so that its result says what it makes, or let the plugins' CHECK judge the pod instead (a "
                "cniVersion from 0.4.0 on, without disableCheck, if they speak it), then `up --reconfigure`")
    if line.startswith("cni: ") and line.endswith(FRESH_ADD_FAILS):
        return ("a CNI plugin whose CHECK fails right after the pod's own fresh ADD fails it after every new ADD "
                f"too, so `up` keeps the pod attached as it is: {fresh_check_fix(_check_plugin(line))}")
    if not line.startswith("containers: "):
        return None
    if line.endswith(LEFT_UNKNOWN):
        return ("a Never pod's container whose exit code is unknown stays exited: its log tells whether it did its "
                f"work (then nothing is to do); {AGAIN}")
    if line.endswith(LEFT_EXITED):
        return f"a Never pod's container that failed stays exited: {AGAIN}"
    if f" {START_FAILED}" in line and LOG_BLOCKED in line:  # containers.log_blocked: the command is not at fault
        return ("a container whose log is not a file cannot start, and netlab leaves what stands there as it is: "
                "move it away (its line names it), then `up`")
    if f" {START_FAILED}" in line:
        return ("a container that could not start is tried again by each `up`, and fails the same until its "
                "command can run: fix the command (in the file, or the program on this machine), then `up`")
    return None


def _check_plugin(line: str) -> str | None:
    """The plugin whose CHECK failed, as status's line names it (``CNI plugin portmap CHECK: ...``)."""
    m = re.search(r"CNI plugin (\S+) CHECK", line)
    return m.group(1) if m else None
