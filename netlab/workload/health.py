"""kube-proxy's health checks, served by the lab's echo server in each node's namespace.

kube-proxy on a node answers HTTP on the healthCheckNodePort of every
LoadBalancer Service with ``externalTrafficPolicy: Local``, and on its own
health port, 10256, ``/healthz`` and ``/livez`` (what it answers:
plan/health.py, proxyhealth.py). In a lab the echo server does it for every
node: its listening sockets are opened in the node's network namespace (a
socket keeps the namespace it was opened in; healthserve.py), so ``curl
http://<node IP>:<port>/healthz`` from anywhere in the lab gets kube-proxy's
answer. ``up`` hands the server the whole set each time it starts the
containers (the server keeps a check that stays on its node and port and
changes its answer in place, as kube-proxy's SyncEndpoints does); ``status``
asks the server what it serves. As kube-proxy runs on every node, every lab
with a node has its echo server, for 10256 alone if need be.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from netlab.feature import StartResult
from netlab.kernel import processes as proc
from netlab.workload import echo_upgrade, launch

if TYPE_CHECKING:
    from netlab.model.lab import Lab
    from netlab.plan.health import HealthCheck, ProxyHealth


NO_ANSWER = "the lab's echo server did not answer"
NOT_RUNNING = "the lab's echo server is not running"
OLDER = "the lab's echo server was started by an older netlab, which does not know them; `up` replaces it"


def _checks(lab: Lab) -> list[HealthCheck | ProxyHealth]:
    """kube-proxy's health server on every node, then every node's check of every Service that has one."""
    from netlab.plan.health import health_checks, proxy_health  # the Services' plan, loaded here only when asked

    return [*proxy_health(lab), *health_checks(lab)]


def _server(lab_name: str) -> str | None:
    """Why the lab's echo server cannot be asked (None: it can): none runs, or it is stopped (SIGSTOP: a request
    would wait for it)."""
    pid = launch.server_pid(lab_name)
    if pid is None:
        return NOT_RUNNING
    if proc.proc_state(pid) == "T":
        return f"the lab's echo server is stopped (pid {pid})"
    return None


def start(lab: Lab, rec: dict) -> StartResult:
    """Serve every health check of the lab, and no other: the server is told the whole set, an empty one too
    when it was told some before (``rec["health"]``: how many, in the lab's workload record). A lab without a
    server gets one for its checks alone."""
    done = StartResult()
    checks = _checks(lab)
    if not checks and not rec.get("health"):
        return done  # nothing to serve, nothing served before: the server is not asked
    specs = [c.spec() for c in checks]
    why = _server(lab.name)
    if not checks and why is not None:
        rec.pop("health", None)  # no server: nothing is served
        return done
    if why == NOT_RUNNING:  # a lab whose pods run no echo container (or none): a server for the checks alone
        launcher = launch.launch_echo([], launch.control_path(lab.name, create=True), launch.server_log(lab.name))
        launch.read_launch(launcher, 0)
        why = _server(lab.name)
    if why is not None:  # the lab has checks here (without any, a server that cannot be asked returned above)
        done.problems.append(f"kube-proxy: health checks not served: {why}")
        return done
    answer = launch.ask(lab.name, {"op": "health", "specs": specs}, len(specs))
    if answer is None:
        done.problems.append(f"kube-proxy: health checks not served: {NO_ANSWER}")
        return done
    if answer.unknown:  # a server of an older netlab's, which up replaces (echo_upgrade.py): it serves none
        done.problems.append(f"kube-proxy: health checks not served: {OLDER}")
        return done
    for c in checks:
        if c.key in answer.errors:
            done.problems.append(f"kube-proxy: {c.what()}: cannot listen: {answer.errors[c.key]}")
    if checks:
        rec["health"] = len(checks)
    else:
        rec.pop("health", None)
    return done


def drift(lab: Lab, repair: str | Callable[[], str]) -> list[str]:
    """One line per health check not served, or answering otherwise than kube-proxy would; ``repair``: the `up`
    that repairs the lab (realize.state.repair_up), or what works it out when a line names it. One line for them
    all when the lab's echo server is another netlab's (echo_upgrade.py: it knows not the question)."""
    fix = repair if callable(repair) else lambda: repair
    checks = _checks(lab)
    if not checks:
        return []
    why = _server(lab.name)
    if why is None:
        pid, spoken = echo_upgrade.spoken_by(lab.name)  # asked once: what it speaks, or no answer
        old = echo_upgrade.older(pid, spoken)
        if old is not None:
            return [f"kube-proxy: health checks not served: {old.words()}, which "
                    f"does not know this netlab's questions; `{fix()}` replaces it, its pods' echo containers "
                    "served on"]
        why = NO_ANSWER if pid is not None and spoken is None else None  # not asked again: status would wait twice
    answer = launch.ask(lab.name, {"op": "health?"}, len(checks)) if why is None else None
    if answer is None:
        return [f"kube-proxy: health checks not served: {why or NO_ANSWER}"]
    out = []
    for c in checks:
        got = answer.health.get(c.key)
        if got is None:
            out.append(f"kube-proxy: {c.what()} is not served; `{fix()}` serves it")
        elif got != (c.port, c.status, c.local) and c.local < 0:
            out.append(f"kube-proxy: {c.what()} answers {got[1]} on port {got[0]}, want {c.status} on {c.port}; "
                       f"`{fix()}` sets it")
        elif got != (c.port, c.status, c.local):
            out.append(f"kube-proxy: {c.what()} answers {got[1]} with localEndpoints {got[2]} on port {got[0]}, "
                       f"want {c.status} with {c.local}; `{fix()}` sets it")
    return out
