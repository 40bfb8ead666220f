"""The agent's observations cross its pipe (netlab/kernel/child.py) as their values (probe/tasks.Observation)."""

from __future__ import annotations

import pickle

from netlab.probe.tasks import Observation


def test_an_observation_crosses_the_agents_pipe_as_its_values_and_comes_back_equal():
    """The agent's answer (2,500 observations at 50 pods) is pickled by a worker, then by the agent, after the probing
    and in series with the run: each observation goes as the tuple of its fields' values (half the time to load),
    and comes back equal; one with an attribute of its own keeps it."""
    plain = Observation(outcome="reply", rtt=0.0012, local="10.244.0.2", ttl=64, reply_from="10.244.0.3",
                        dns={"rcode": "NOERROR", "a": ["10.96.0.10"]})
    assert plain.__reduce__() == (Observation, ("reply", "", 0.0012, "10.244.0.2", None, None, None, "10.244.0.3", 64,
                                                {"rcode": "NOERROR", "a": ["10.96.0.10"]}))
    extra = Observation(outcome="timeout")
    extra.note = "late"  # type: ignore[attr-defined]
    for obs in (plain, Observation(), extra):
        back = pickle.loads(pickle.dumps({7: obs}))[7]
        assert back == obs and back.__dict__ == obs.__dict__ and type(back) is Observation
