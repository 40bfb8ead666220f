"""The lab's echo server of an older netlab, told by ``status`` and replaced by ``up``.

A lab left up across an upgrade of netlab keeps the echo server (echoserver.py) the older netlab started: its
pods' echo containers are its threads, and it goes on serving them, but it does not know the questions this
netlab added since (kube-proxy's health checks on every node, 10256 among them; a listener lost): asked them, it
answers ``? unknown request``, and ``status`` would say the checks are not served, for good, as ``up`` only asks
again. So both first ask it which control protocol it speaks (echocontrol.PROTOCOL; a server older than the
question does not know it: echocontrol.UNVERSIONED) and, when it is not this netlab's:

- ``status`` says so in one line, and that ``up`` replaces it (health.drift: kube-proxy's health checks, which
  it does not know, are not asked of it);
- ``up`` replaces it, as a node's upgrade of a DaemonSet replaces its pod: the new server's interpreter is
  loaded while the old one still serves, the old one is stopped, and the new one serves at once every echo
  container the old one served, in the same pods (their namespaces, hostnames and ports), writing on in the same
  logs (a line says why the container's listening line comes again). The containers' programs did not exit:
  netlab's own runtime under them was upgraded, as a containerd restarted under its running containers, so their
  restarts are not counted and their logs not rotated. How the containers the old server knew exited (a command
  container it held, an echo container it stopped) is asked of it first and handed to the new one (``remember``),
  so ``get pods`` and ``status`` tell it as before. The rest of ``up`` then goes to the new server as always:
  kube-proxy's health checks (health.start), the running command containers' pidfds (exits.hold_commands).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from netlab.feature import StartResult
from netlab.kernel import processes as proc
from netlab.workload import launch
from netlab.workload.echocontrol import PROTOCOL
from netlab.workload.tasks import proc_of, task_in

if TYPE_CHECKING:
    from netlab.model.lab import Lab, PodInfo


@dataclass(frozen=True)
class Outdated:
    """The lab's running echo server, which speaks another control protocol than this netlab's."""

    pid: int
    protocol: int

    @property
    def which(self) -> str:
        return "an older" if self.protocol < PROTOCOL else "a newer"

    def words(self) -> str:
        return (f"the lab's echo server (pid {self.pid}) was started by {self.which} netlab (control protocol "
                f"{self.protocol}; this netlab's is {PROTOCOL})")


def outdated(lab_name: str) -> Outdated | None:
    """The lab's echo server when it speaks an older protocol than this netlab's; None when it speaks this one or
    a newer one (a newer netlab's server knows this netlab's questions too: replacing it would undo that netlab's
    upgrade, and two installs would replace each other's at every up), or none runs, or it cannot be asked
    (stopped by SIGSTOP, or no answer in time: not known to be another's)."""
    return older(*spoken_by(lab_name))


def older(pid: int | None, spoken: int | None) -> Outdated | None:
    """Server ``pid`` when the protocol it ``spoken`` (spoken_by) is older than this netlab's, else None."""
    return Outdated(pid, spoken) if pid is not None and spoken is not None and spoken < PROTOCOL else None


def spoken_by(lab_name: str) -> tuple[int | None, int | None]:
    """The lab's echo server (None: none) and the protocol it speaks (None: not told, launch.protocol)."""
    pid = launch.server_pid(lab_name)
    return pid, launch.protocol(lab_name) if pid is not None else None


def replace(lab: Lab, rec: dict, present: list[PodInfo], uts: dict[str, str]) -> StartResult:
    """``up``: the lab's echo server of another netlab replaced by this netlab's, serving on every echo container
    the old one served (``rec``: the lab's workload record, each such container's updated to its new thread;
    ``present``: the pods whose namespaces exist; ``uts``: their UTS pins). The caller serves kube-proxy's health
    checks next (health.start)."""
    from netlab.workload.echo_start import echo_specs  # the specs' module, loaded by up alone (not by status)

    done, pods = StartResult(), rec["pods"]
    old = outdated(lab.name)
    if old is None:
        return done
    serving = [(pod, c) for pod in present for c in pod.containers
               if not c.command and _served_by(old.pid, (pods.get(pod.name) or {}).get("containers", {}).get(c.name),
                                               pod.netns)]
    told = _told_exits(lab.name, pods)  # before it goes: what it alone knows
    # Loaded (Python, netlab's server) while the old one still serves: the pods' ports are closed only from its
    # stop to the new one's listening, the time it takes to start a thread in each pod.
    launcher = launch.start_launcher(launch.control_path(lab.name, create=True), launch.server_log(lab.name))
    try:
        if not launch.await_loaded(launcher):  # it ended or is stuck: the old one goes on serving the pods
            launch.abort_launch(launcher)
            done.problems.append(f"echo: {old.words()}, not replaced: this netlab's echo server did not load "
                                 f"within {launch.READY_TIMEOUT:g}s (`up` tries again)")
            return done
        if launch.stop_server(lab.name):  # it still holds the control socket and the pods' ports: it serves on
            launch.abort_launch(launcher)
            done.problems.append(f"echo: {old.words()}, not replaced: it did not stop (`up` tries again)")
            return done
        specs = echo_specs(lab, [(pod, c, uts[pod.name]) for pod, c in serving])
        note = (f"echo: the lab's echo server (pid {old.pid}), {old.which} netlab's, was replaced by this netlab's: "
                "served on")
        for spec in specs:
            spec["note"] = note
        launch.send_specs(launcher, specs)
    except BaseException:
        launch.abort_launch(launcher)
        raise
    done.problems += launch.await_echo(launcher, specs, pods)
    new = launch.server_pid(lab.name)
    if told and new is not None:
        launch.ask(lab.name, {"op": "remember", "items": told}, len(told))
    done.actions.append(f"replaced the lab's echo server of {old.which} netlab (pid {old.pid}, control protocol "
                        f"{old.protocol}) with this netlab's (pid {new if new is not None else 'none'}, protocol "
                        f"{PROTOCOL}), serving on its {len(serving)} echo container{'' if len(serving) == 1 else 's'}")
    return done


def _served_by(server: int, crec: dict | None, netns: str) -> bool:
    """The record names a live thread of process ``server`` in its pod's network namespace."""
    p = proc_of(crec) if isinstance(crec, dict) and "error" not in crec else None
    return p is not None and proc.thread_group(p.pid) == server and task_in(crec or {}, netns) is not None


def _told_exits(lab_name: str, pods: dict) -> list[dict]:
    """How the recorded containers the lab's server knows exited, as it tells them (launch.exits)."""
    ids = sorted(f"{pod}/{c}" for pod, prec in pods.items() for c in (prec or {}).get("containers", {}))
    return [{"id": cid, "pid": pid, "start": start, "status": status}
            for cid, (pid, start, status) in launch.exits(lab_name, ids).items()]
