"""A trace to or from a terminal pod (its containers exited for good: Completed or Error), without root.

`trace` to such a pod ran as for a running one: the kernel of the namespace netlab keeps answered a ping, and
nothing said that Kubernetes tears a Succeeded or Failed pod's sandbox down, so nothing listens there, while probe
and `policy table` leave every flow to or from it out with a note. trace now says it in probe's words, in its text
and its JSON (`notes`, as `policy table`'s), and Lab.trace's result carries it too.
"""

from __future__ import annotations

import json

from netlab.api import results as R
from netlab.api.jsonio import from_json, to_json
from netlab.model.lab import Lab
from netlab.probe.matrix import terminated_note
from netlab.trace.hops import Hop, Walk
from netlab.trace.render import TraceResult, render_text
from netlab.trace.targets import resolve_source, resolve_target, terminated_notes
from netlab.trace.verdict import Verdict
from test_trace_walk import lab_from

TOPO = """name: tt
nodes: [{name: n1}]
pods:
  - {name: cl, node: n1}
  - {name: job, node: n1, restartPolicy: Never, containers: [{name: main, command: ["true"]}]}
"""
STEM = "pod job has terminated (its containers exited for good: Completed or Error)"
SAID = (f"{STEM}: nothing runs in it to answer or send, so nothing listens there (Kubernetes releases a terminated "
        f"pod's sandbox; netlab keeps its namespace, whose kernel this packet met)")


def _lab(terminal: bool) -> Lab:
    lab = lab_from(TOPO)
    return lab.with_terminal(frozenset({"job"})) if terminal else lab


def test_a_terminal_end_is_said_in_probes_words():
    assert terminated_note("job").startswith(STEM + ":")  # probe's note, the same stem
    lab = _lab(True)
    cl, job = resolve_source(lab, "cl"), resolve_target(lab, "job", None, None, resolve_source(lab, "cl"))
    assert terminated_notes(lab, cl, job) == [SAID]
    assert terminated_notes(lab, resolve_source(lab, "job"), resolve_target(lab, "cl", None, None, cl)) == [SAID]
    assert terminated_notes(_lab(False), cl, resolve_target(_lab(False), "job", None, None, cl)) == []


def test_the_note_is_in_the_text_and_the_json_of_cli_and_api():
    hop = Hop(netns="tt-job", where="pod job", device="eth0", kind="deliver", decision="delivered")
    r = TraceResult(lab="tt", src={"name": "cl", "kind": "pod", "ip": "10.244.0.2"},
                    dst={"name": "job", "kind": "pod", "ip": "10.244.0.3"}, proto="icmp", port=None, marker="m",
                    forward=Walk(hops=[hop], outcome="delivered"), reply=None, verdict=Verdict(True, None, None),
                    reply_verdict=None, reply_received=True, notes=[SAID])
    assert f"note: {SAID}" in render_text(r).splitlines()
    cli = json.loads(json.dumps(r.to_json()))
    assert cli["notes"] == [SAID]
    assert to_json(from_json(R.Trace, cli))["notes"] == [SAID]
