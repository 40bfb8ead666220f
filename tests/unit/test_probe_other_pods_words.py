"""``lab.probe(topology)`` of a topology whose pods are not the running lab's is refused (a pod it adds would be
judged at another pod's address: a false pass). QA q22 3: the Python call's UsageError said it in the CLI's words
(`probe -t FILE ...; `sudo netlab status -t FILE` shows what `up -t FILE` would change`)."""

from __future__ import annotations

import types

import pytest

from netlab import api
from netlab.api.internals import same_pods
from netlab.errors import UsageError, netlab_command

A, C = types.SimpleNamespace(name="a", ip="10.244.0.4"), types.SimpleNamespace(name="c", ip="10.244.0.5")
RUNNING = types.SimpleNamespace(name="pyz1", pods=[A], terminal=())
LOADED = types.SimpleNamespace(origin="<dict>", lab=types.SimpleNamespace(pods=[A, C]))


def test_lab_probe_says_it_in_pythons_words(monkeypatch):
    monkeypatch.setattr(api.Lab, "state", lambda self: types.SimpleNamespace(phase="up"))  # no up killed halfway
    monkeypatch.setattr(api.Lab, "_served", lambda self, state=None: RUNNING)
    monkeypatch.setattr(api.Lab, "_loaded_for", lambda self, topology: LOADED)
    with pytest.raises(UsageError) as info:
        api.Lab("pyz1").probe({"name": "pyz1", "nodes": [{"name": "n1"}]})
    said = str(info.value)
    assert said == ("<dict>: pod c (10.244.0.5) is not in the lab pyz1 that is up: lab.probe(topology) checks a "
                    "topology's expectations on the lab as it is; `Lab('pyz1').status(topology)` shows what bringing "
                    "it up would change"), said
    assert "sudo" not in said and "-t FILE" not in said


def test_the_cli_says_its_commands():
    with pytest.raises(UsageError) as info:
        same_pods(LOADED, RUNNING)  # netlab probe -t FILE's
    assert str(info.value).endswith(": probe -t FILE checks a file's expectations on the lab as it is; "
                                    f"`{netlab_command('status -t FILE')}` shows what `up -t FILE` would change")
