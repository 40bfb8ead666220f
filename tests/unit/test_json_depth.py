"""JSON nested deeper than Python's parser goes (``[[[[...`` 100000 deep: RecursionError, not ValueError) is
bad JSON to every reader netlab has, never a traceback (found by a QA pass: ``status`` printed one for such a
state.json while ``get`` and ``down`` said the state was corrupt)."""

from __future__ import annotations

import pytest

from netlab.errors import loads_json
from netlab.realize import state, state_dir

DEEP = b"[" * 100000 + b"]" * 100000
DEEP_MAP = b'{"a":' * 100000 + b"1" + b"}" * 100000


@pytest.mark.parametrize("raw", [DEEP, DEEP_MAP], ids=["arrays", "objects"])
def test_loads_json_says_deep_nesting_is_bad_json(raw):
    with pytest.raises(ValueError, match="nested too deep"):
        loads_json(raw)
    assert loads_json(b'{"a": [1]}') == {"a": [1]}


def _deep_state(lab: str) -> str:
    path = state_dir.state_file(lab, create=True)
    with open(path, "wb") as fh:
        fh.write(DEEP)
    return path


def test_status_reads_a_deep_state_ahead_as_nothing_then_says_it_is_corrupt():
    """status reads the state's namespaces ahead (lab/readahead.saved_netns) before it loads the state: that
    read let the RecursionError through; the load says the state is corrupt (exit 3) as get and down say."""
    from netlab.lab.readahead import saved_netns

    _deep_state("sydeep")
    assert saved_netns("sydeep") == {}
    with pytest.raises(state.StateCorrupt, match="is corrupt .*recursion limit exceeded") as info:
        state.load_state("sydeep")
    assert info.value.exit_code == 3


def test_the_other_readers_take_deep_json_as_bad(tmp_path):
    """The CNI log, an echo server's answer line: what they do with any bad JSON."""
    from netlab.cni.invoke import compact_log, read_log
    from netlab.probe.tasks import Observation
    from netlab.probe.transports import echo_fields

    log = tmp_path / "cni.log"
    log.write_bytes(DEEP + b"\n" + b'{"command": "ADD", "pod": "a"}\n')
    assert read_log(str(log)) == [{"command": "ADD", "pod": "a"}]
    compact_log(str(log), limit=1 << 20)
    obs = Observation()
    echo_fields(obs, DEEP)
    assert obs.answered_by is None
