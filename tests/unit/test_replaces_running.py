"""A dict lab and the built-in default lab of one name do not silently replace each other (no root: the
decision alone). The state keeps no file for either, and ``replaces`` took them for the same source."""

from __future__ import annotations

import pytest

from netlab.api.topology import load
from netlab.api.views import refuse_replacing, replaces_running
from netlab.errors import UsageError, netlab_command
from netlab.realize.state import LabState

NAME = "qf-rep"
A_DICT = {"name": NAME, "nodes": [{"name": "n1"}]}


def running(topology: object) -> LabState:
    """The state `up` saves for a lab brought up from ``topology`` (a dict or None: no file)."""
    loaded = load(topology, NAME)  # type: ignore[arg-type]
    return LabState(lab=NAME, topology=loaded.lab.topo.model_dump(mode="json", by_alias=True, exclude_none=True),
                    source=loaded.source, phase="up")


@pytest.mark.parametrize("was,now,replaced", [
    (None, A_DICT, True),  # a dict over the default lab
    (A_DICT, None, True),  # the default over a dict lab
    (None, None, False),  # the default again: converged
    (A_DICT, A_DICT, False),  # the same dict again: converged
    # QA pt63 2: another dict of the name (another program's, or its pods edited) reshaped the running lab: pod b
    # of the lab another program uses was deleted. Refused, as another file is (reconfigure=True replaces it).
    (A_DICT, {**A_DICT, "nodes": [{"name": "n1"}, {"name": "n2"}]}, True),
    ({**A_DICT, "pods": [{"name": "a", "node": "n1"}, {"name": "b", "node": "n1"}]},
     {**A_DICT, "pods": [{"name": "a", "node": "n1"}]}, True),
])
def test_the_default_and_a_dict_replace_each_other_but_not_themselves(was, now, replaced):
    assert replaces_running(load(now, NAME), running(was)) is replaced


def test_the_same_dict_over_its_lab_impaired_since_converges_it():
    """`netlab impair` writes its impairments into the saved topology: still the dict the lab was brought up from."""
    state = running(A_DICT)
    state.topology["nodes"][0]["impair"] = {"eth0": {"delay": "10ms"}}
    assert not replaces_running(load(A_DICT, NAME), state)


def test_another_dict_is_refused_in_the_callers_words():
    with pytest.raises(UsageError) as api:
        refuse_replacing(load({**A_DICT, "nodes": [{"name": "n2"}]}, NAME), running(A_DICT))
    assert str(api.value) == (f"lab {NAME} is up from a dict, and another dict has the same name: it would "
                              "replace that lab; give it another name (name=...), or pass reconfigure=True to "
                              "replace the running lab")


def test_a_dict_that_is_the_default_topology_is_the_default_lab():
    default = running(None).topology
    assert not replaces_running(load(default, NAME), running(None))


def test_the_refusal_says_where_each_came_from_in_the_callers_words():
    with pytest.raises(UsageError) as api:
        refuse_replacing(load(A_DICT, NAME), running(None))
    assert str(api.value) == (f"lab {NAME} is up from the built-in default, and a dict has the same name: it would "
                              "replace that lab; give it another name (name=...), or pass reconfigure=True to "
                              "replace the running lab")
    with pytest.raises(UsageError) as cli:
        refuse_replacing(load(None, NAME), running(A_DICT), cli=True)
    assert str(cli.value) == (f"lab {NAME} is up from a dict, and the built-in default has the same name: it would "
                              "replace that lab; rename it, or replace the running lab with "
                              f"`{netlab_command('up --reconfigure')}`")
