"""The Service variables each container started with, kept once per distinct set in the lab's state.

The kubelet gives a container the variables of every Service of its pod's namespace (model/service_env.py), about
seven per one-port Service, and a running container keeps those it started with: ``netlab exec -c`` gives them
(api/exec.py). Every pod of a namespace started by one ``up`` gets the same set: 1,000 Services in one namespace
are ~250 KB per container, which a copy in each run's record would make a state file of 100+ MB for 500 pods,
parsed and written by every command. So each run's record names its set by a digest of its content
(``service_env``: 16 hex digits), and the workload record keeps each set once (``service_envs``: digest ->
variables).

A set no record names goes at the end of each start (:func:`collect`), not as a record goes: a rollback puts back
the records its run's stop dropped (again.py), and the sets they name with them (lifecycle.running keeps those).
A record of the netlab that kept the variables in each record (a dict under ``service_env``) is read as it is,
its set kept once at the next start; a record of a netlab before it has none (exec -c: the Services as they are
now). So has one whose set is not there (a state edited by hand): never refused for it.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from netlab.model.lab import Lab, PodInfo

KEY = "service_envs"  # in the workload record: digest -> the variables
FIELD = "service_env"  # in a run's record: the digest (a dict: a record of the netlab that copied them there)


def digest(env: dict[str, str]) -> str:
    """The name of a set of variables: the first 16 hex digits of the SHA-256 of its sorted JSON."""
    return hashlib.sha256(json.dumps(env, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


class Starting:
    """The sets of the containers one start starts, each kept in the workload record ``rec`` as it is first asked
    for: the pods of one namespace (with the same enableServiceLinks) share one, worked out once."""

    def __init__(self, lab: Lab, rec: dict) -> None:
        self.lab, self.rec = lab, rec
        self.known: dict[tuple[str, bool], tuple[str, dict[str, str]]] = {}

    def key_for(self, pod: PodInfo) -> str:
        """The digest naming the variables a container of ``pod`` starts with now, kept in the record."""
        from netlab.workload.containers import service_env

        which = (pod.spec.namespace, pod.spec.enable_service_links)
        if which not in self.known:
            env = service_env(self.lab, pod)
            self.known[which] = (digest(env), env)
        key, env = self.known[which]
        self.rec.setdefault(KEY, {})[key] = env
        return key


def started_with(rec: dict | None, crec: dict) -> dict[str, str] | None:
    """The Service variables the run of ``crec`` started with, from the workload record ``rec``; None when they
    are not known (an older netlab's record, a set that is not there)."""
    value = crec.get(FIELD)
    if isinstance(value, str):
        sets = rec.get(KEY) if isinstance(rec, dict) else None
        value = sets.get(value) if isinstance(sets, dict) else None
    return value if isinstance(value, dict) else None


def collect(rec: dict) -> None:
    """Each set once in the workload record ``rec``: a record's own copy (the netlab before) moved into the sets,
    the sets no record names dropped."""
    sets = rec.get(KEY) if isinstance(rec.get(KEY), dict) else {}
    named: dict[str, dict[str, str]] = {}
    for prec in rec.get("pods", {}).values():
        for crec in (prec.get("containers") or {}).values() if isinstance(prec, dict) else ():
            value = crec.get(FIELD) if isinstance(crec, dict) else None
            if isinstance(value, dict):
                crec[FIELD] = key = digest(value)
                named[key] = value
            elif isinstance(value, str) and value in sets:
                named[value] = sets[value]
    if named:
        rec[KEY] = named
    else:
        rec.pop(KEY, None)
