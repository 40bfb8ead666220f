"""The probe agent's fork, without the agent's modules in the process that forks it.

The agent (agent.py) and its workers load what only they run: their sockets, the sweep, conntrack's netlink
(untrack.py), the budget, the transports, DNS questions, the worker (~4-5 ms of CPU on the 2-core VM). The
CLI forks its early agent (early.py) before it loads the topology's models, and everything it loads before
that fork is in series with the probing: so the child loads them, after the fork, while the parent goes on
loading the models; the parent, which only reads the agent's result, never does.
"""

from __future__ import annotations

from typing import Callable

from netlab.kernel.child import Child, start_child
from netlab.probe import tasks
from netlab.probe.tasks import Job, Output


def start(job: Job | Callable[[], Job]) -> Child:
    """The agent on ``job`` (or on the one ``job()`` makes, in the child: early.py), in a forked child; its
    :meth:`~netlab.kernel.child.Child.result` within ``job.limit()``. Interrupted (Ctrl-C), or at its time limit,
    it gets SIGTERM and tasks.AGENT_GRACE seconds to sweep what it made in the machine's neighbour table."""
    return start_child(_run_job, (job,), what="the probe agent", grace=tasks.AGENT_GRACE)


def _run_job(job: Job | Callable[[], Job]) -> Output:
    """In the forked child: the agent's modules, its job, then its run (agent.run_job)."""
    from netlab.probe import agent  # the child's own: its cycle collector still off, as the CLI forked it

    return agent.run_job(job() if callable(job) else job)
