"""`netlab probe` starts its agent on the job the lab's last run made, while it loads the topology's models.

The CLI spends ~0.15 s loading pydantic, the topology's models and the plan's
modules before it can make its job (which probes, in which units: job.py),
and then ~0.15 s sending it (50 pods, ICMP, on the 2-core VM). A run of the
same lab with the same options makes the same job as long as the lab is
unchanged, and a job needs none of those modules (tasks.py). So:

- after a run, the CLI keeps its job beside the lab's state
  (:meth:`Early.keep`; not past KEEP_MAX tasks: a bigger run lasts seconds);
- the next run of the CLI reads it before it loads anything else
  (:func:`begin`), and when its key matches (the lab's state file as it is
  now: realize.state.state_version; and the run's options) it takes the machine's
  probing turn, checks the neighbour table has room for the budget the job
  was cut for, starts the egress listeners the job needs and forks the agent
  on it (an agent that loads no model: tasks.py);
- with no such job (a first run), a plain lab's job is worked out from its
  state file (plain.py: no Service, no internet, netlab's own CNI...), cut
  in the probing turn for the room the table has then, and its agent forked
  as early; the run that takes it keeps nothing (the next works it out again);
- once the models are loaded, the run makes its job anew, as always, and
  takes the early agent's observations only when the two jobs are equal
  (:meth:`Early.claim`). Otherwise the early agent is stopped (SIGTERM: it
  sweeps what it made in the neighbour table, as an interrupted agent does)
  and the run sends the job it made;
- a plain lab's run may judge the agent's answer without the models at all
  (plain_report.py: :meth:`Early.collect` reads it); a run that then goes on
  with the models after all (a failure to explain, an odd lab) claims that
  answer, or its error, as it would have claimed the agent.

The turn the early start took is the run's (:meth:`Early.turn`), whether its
agent started or not (less room in the table than the kept job was cut for)
and whether the run takes it or stops it: a run waits for its turn once, says
so once, and its report counts that wait. Left between the two, the turn went
to another run waiting for it, and the run waited, and said so, again.

So what a run judges is always what its own job sent. The kept file is read
only as plain data of a known shape, never larger than FILE_MAX, and every
namespace it names must be one of the lab's (``<lab>-...``, a safe name);
anything amiss (no file, another key, a shape it does not know) means no
early start.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
from dataclasses import fields
from typing import Any, Callable, Iterator

from netlab.errors import EnvironmentNotReady, NetlabError, loads_json
from netlab.kernel.child import Child
from netlab.model.echo_ports import ECHO_DEFAULT_PORT as ECHO_PORT  # matrix.ECHO_PORT (matrix loads the models)
from netlab.model.naming import is_netns
from netlab.probe import listeners, plain, spawn, tasks, turns
from netlab.probe import neighbours as nb
from netlab.probe.neighbours import Entry
from netlab.probe.tasks import Job, Output, Seed, Task, Unit
from netlab.realize.lab_name import selected_name
from netlab.realize.state import state_version
from netlab.realize.state_dir import lab_dir, read_state_file
from netlab.realize.state_sum import trusted

KEEP_FILE = "probe-job.json"
KEEP_VERSION = 1
KEEP_MAX = 20_000  # tasks (50 pods' whole matrix: ~7,500); a bigger run lasts seconds, its start matters little
FILE_MAX = 16 << 20  # bytes read back at most


def options_key(protos: tuple[str, ...], timeout: float, arp: str, services: bool, workers: int) -> dict[str, Any]:
    """A run's options as its kept job records them (runner.run's arguments)."""
    return {"protos": list(protos), "timeout": timeout, "arp": arp, "services": services, "workers": workers}


class Early:
    """A CLI run's early agent, if one started (:attr:`started`), and what the run keeps for the next."""

    def __init__(self, lab: str, state: tuple[int, ...] | None, options: dict[str, Any]):
        """``state``: the lab's state file as the run began (realize.state.state_version), None: no state."""
        self.lab, self.options = lab, options
        self.state = list(state) if state is not None else None  # as the kept file's JSON holds it
        self.job: Job | None = None
        self.hosts: list[tuple[str, str]] = []
        self.waited = 0.0  # s the early start waited for the machine's probing turn
        self.began = 0.0  # time.monotonic() when it began (the run's report counts its time from there)
        self.claimed = False
        self.served = False  # the run probed in the turn the early start took (its agent claimed, or its own job)
        self.busy: EnvironmentNotReady | None = None  # another run held the turn past turns.WAIT: the run's error
        self._child: Child | None = None
        self._turn = contextlib.ExitStack()  # the machine's probing turn, kept for the run
        self._held = False
        self._stack = contextlib.ExitStack()  # the listeners
        self.heard: listeners.Listeners | None = None
        self.plain: plain.PlainLab | None = None  # the plain lab whose job the agent was started on (plain.py)
        self._collected: Collected | None = None  # the agent's answer, read (:meth:`collect`)

    @property
    def started(self) -> bool:
        return self._child is not None

    def collect(self) -> Output:
        """The agent's answer to :attr:`job`, read within its limit, the listeners and the turn then left as a
        claimed agent's are once it answered; kept for :meth:`claim`, or the error reading it raised (and raises
        here): a run that goes on with the models judges that very answer, or says that error in its words."""
        child, self._child = self._child, None
        assert child is not None and self.job is not None
        self.claimed = self.served = True
        try:
            out = child.result(self.job.limit())
        except Exception as exc:
            self._collected = Collected(None, exc)
            raise
        finally:
            self.close()
        self._collected = Collected(out, None)
        return out

    def start(self, job: Job | Callable[[int], Job], hosts: list[tuple[str, str]]) -> None:
        """In the probing turn: the listeners, then the agent. ``job``: a kept one, and nothing starts when the
        table has less room now than the budget it was cut for (with more, the job keeps its own: the run then
        makes its job with it too); or a plain lab's job (plain.py), cut for the room the table has now.
        The turn is kept for the run either way (:meth:`turn`)."""
        self.began = time.monotonic()
        try:
            self.waited = self._turn.enter_context(turns.probing_turn(self.lab))
        except EnvironmentNotReady as exc:  # held past turns.WAIT: the run says so, not waiting as long again
            self.busy = exc
            raise
        self._held = True
        try:
            room = nb.probe_budget()
            if callable(job) and not hosts:
                # A plain lab's (no listener to start first): the agent works it out itself, after the fork, and
                # this run its own copy meanwhile, the one it claims against (~5 ms of 50 pods' not in series)
                made = functools.partial(job, room)
                self._child = spawn.start(made)
                job = made()
            elif callable(job):
                job = job(room)
            elif room < job.budget:
                return  # the run makes its own job, sized in this turn
            self.heard = self._stack.enter_context(listeners.start(hosts, ECHO_PORT, lifetime=job.limit() + 30))
            self.job, self.hosts = job, hosts
            if self._child is None:
                self._child = spawn.start(job)
        except Exception:
            self.stop()  # the turn stays the run's
            raise
        except BaseException:
            self.close()
            raise

    def claim(self, job: Job, hosts: list[tuple[str, str]]) -> Child | Collected | None:
        """The early agent, when it was sent exactly ``job`` with listeners on exactly ``hosts`` (or its answer,
        read already: :meth:`collect`): the caller reads its result, then calls :meth:`close`. Otherwise it is
        stopped (the turn kept for the run's own job, unless collect left it): None."""
        child: Child | Collected | None = self._child if self._collected is None else self._collected
        if child is None or job != self.job or hosts != self.hosts:
            self._collected = None
            self.stop()
            return None
        self._child = self._collected = None
        self.claimed = self.served = True
        return child

    @contextlib.contextmanager
    def turn(self) -> Iterator[float]:
        """The machine's probing turn for the run's own job, and the seconds waited for it: the one the early start
        took (waited for, and said, before the models loaded), else one taken now; left when the block ends."""
        if self.busy is not None:
            raise self.busy
        try:
            if self._held:
                self.served = True
                yield self.waited
            else:
                with turns.probing_turn(self.lab) as waited:
                    yield waited
        finally:
            self.close()

    def stop(self) -> None:
        """Stop an agent nobody claimed (it sweeps its entries in its grace) and the listeners; the turn is kept."""
        child, self._child = self._child, None
        try:
            if child is not None:
                child.interrupt()
                with contextlib.suppress(Exception):
                    child.result(tasks.AGENT_GRACE + 1.0)
        finally:
            self._stack.close()

    def close(self) -> None:
        """:meth:`stop`, and leave the turn."""
        try:
            self.stop()
        finally:
            self._held = False
            self._turn.close()

    def keep(self, job: Job, hosts: list[tuple[str, str]]) -> None:
        """After a run that sent ``job``: keep it for the next (not a job past KEEP_MAX tasks; any old one goes).
        Best effort: a run is not failed for its cache."""
        try:
            path = os.path.join(lab_dir(self.lab, create=False), KEEP_FILE)
            if self.state is None or len(job.tasks) > KEEP_MAX:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                return
            data = json.dumps({"version": KEEP_VERSION, "state": self.state, "options": self.options,
                               "hosts": hosts, "job": job_to_json(job)}, separators=(",", ":")).encode()
            _write(path, data)
        except (OSError, NetlabError, ValueError):
            pass


class Collected:
    """An early agent's answer read already (:meth:`Early.collect`), or the error reading it raised, as a run
    that claims it reads it (Child.result)."""

    def __init__(self, out: Output | None, error: Exception | None):
        self.out, self.error = out, error

    def result(self, timeout: float) -> Output:
        if self.error is not None:
            raise self.error
        assert self.out is not None
        return self.out


def begin(lab_name: str | None, options: dict[str, Any]) -> Early | None:
    """The CLI's run of lab ``lab_name`` (None: ``$NETLAB_LAB``, or the only lab up), before it loads the models: an
    agent started on the kept job when its key matches. None when no lab can be named (several up, none)."""
    try:
        lab = selected_name(lab_name, None, required=False)
        if lab is None:
            return None
        early = Early(lab, state_version(lab), options)
    except (NetlabError, OSError, ValueError):
        return None  # the command finds what is wrong, and says so
    kept = _read(early)
    lab = _plain(early) if kept is None else None  # no kept job: a plain lab's from its state
    try:
        if kept is not None:
            early.start(*kept)
        elif lab is not None:
            early.start(lab.job, [])
            early.plain = lab if early.started else None
    except Exception:  # noqa: BLE001 - the run makes its own job and says what is wrong (start closed all)
        pass
    return early


def _plain(early: Early) -> plain.PlainLab | None:
    """The lab's facts for a plain lab's job (plain.py), from its state file as it is now, when that is byte for
    byte a state this netlab wrote or checked (state_sum.trusted: as a kept job's key, a state a run has read);
    else None."""
    try:
        raw = read_state_file(early.lab)  # the lab name and its directory checked as load_state's are
        if raw is None or not trusted(early.lab, raw) or early.state != _as_kept(state_version(early.lab)):
            return None  # not as this netlab wrote it, or not the file the run's state version names
        return plain.of_state(early.lab, loads_json(raw), early.options)
    except (NetlabError, OSError, ValueError):  # NotRegularFile and bad JSON are ValueErrors
        return None


def _as_kept(version: tuple[int, ...] | None) -> list[int] | None:
    return list(version) if version is not None else None


def _read(early: Early) -> tuple[Job, list[tuple[str, str]]] | None:
    """The kept job and its listeners, when the file is there, of a known shape, under this run's key, and
    names only the lab's own namespaces; else None."""
    if early.state is None:
        return None
    try:
        path = os.path.join(lab_dir(early.lab, create=False), KEEP_FILE)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:
            raw = fh.read(FILE_MAX + 1)
        if len(raw) > FILE_MAX:
            return None
        data = loads_json(raw)
        if (data.get("version"), data.get("state"), data.get("options")) != (KEEP_VERSION, early.state,
                                                                            early.options):
            return None
        job = job_from_json(data["job"])
        hosts = [(str(h), str(ns)) for h, ns in data["hosts"]]
    except (OSError, NetlabError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not all(_lab_netns(early.lab, ns) for ns in _namespaces(job, hosts)):
        return None
    return job, hosts


_TASK_FIELDS = tuple(f.name for f in fields(Task))


def job_to_json(job: Job) -> dict[str, Any]:
    """A job as JSON data, a task as the list of its fields' values (2,500 tasks: 2 ms, where ``asdict`` took 38)."""
    return {"tasks": [[getattr(t, name) for name in _TASK_FIELDS] for t in job.tasks],
            "units": [[u.phases, u.entries, u.seed] for u in job.units],
            "home": job.home, "timeout": job.timeout, "budget": job.budget, "workers": job.workers,
            "self_ip": job.self_ip, "route_src": job.route_src, "sweep": job.sweep, "untrack": job.untrack}


def job_from_json(d: dict) -> Job:
    """A job as :func:`job_to_json` wrote it (tuples came back as lists); TypeError, ValueError or KeyError for
    another shape."""
    tasks = []
    for row in d["tasks"]:
        if len(row) != len(_TASK_FIELDS):
            raise ValueError("not a task")
        task = dict(zip(_TASK_FIELDS, row))
        task["behind"] = tuple((str(ip), int(port)) for ip, port in task["behind"])
        tasks.append(Task(**task))
    units = [Unit(phases=[[int(i) for i in ph] for ph in phases], entries=[Entry(*e) for e in entries],
                  seed=[Seed(*s) for s in seed]) for phases, entries, seed in d["units"]]
    return Job(tasks=tasks, units=units, home=str(d["home"]), timeout=float(d["timeout"]), budget=int(d["budget"]),
               workers=int(d["workers"]), self_ip={str(k): str(v) for k, v in d["self_ip"].items()},
               route_src=[(str(a), str(b)) for a, b in d["route_src"]], sweep=[str(n) for n in d["sweep"]],
               untrack=[str(n) for n in d["untrack"]])


def _namespaces(job: Job, hosts: list[tuple[str, str]]) -> set[str]:
    """Every namespace a job would enter."""
    out = {job.home, *job.sweep, *job.untrack, *job.self_ip, *(t.src for t in job.tasks),
           *(ns for ns, _ in job.route_src), *(ns for _, ns in hosts)}
    for unit in job.units:
        out |= {e.netns for e in unit.entries} | {s.netns for s in unit.seed} | {s.peer for s in unit.seed}
    return out


def _lab_netns(lab: str, netns: str) -> bool:
    return isinstance(netns, str) and netns.startswith(f"{lab}-") and is_netns(netns)


def _write(path: str, data: bytes) -> None:
    """The file whole or not at all (a new file renamed over the old one); no fsync: it is only a head start."""
    tmp = f"{path}.tmp.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
