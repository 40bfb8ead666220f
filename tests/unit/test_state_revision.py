"""A state a newer netlab wrote that this one cannot read is said as a newer netlab's, not as corrupt.

A newer release of the same state format (version 1) adds fields to the records this release knows (a container's
record, the owner's) and to the topology's schema, which this release's strict schema refuses; its unknown records
and top-level keys load (tests/unit/test_state_newer.py). Such a state was "corrupt", as if it were damaged, after a
downgrade or with a watcher left running across an upgrade. Each save now records the state's revision within its
format (state_dir.STATE_REVISION, bumped with every change of the state's or the topology's schema: the digests
below hold it to that); a state of a later revision that this netlab's schema refuses is a newer netlab's
(StateNewer), one of this netlab's revision or an earlier one is still corrupt, and one of a later revision that
this netlab reads loads, as before.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from netlab.model.topology import Topology
from netlab.realize import state
from netlab.realize.state_dir import STATE_REVISION
from netlab.realize.state_schema import StateFile
from test_state_newer import LAB, as_newer, saved

# The digest of the state's and the topology's JSON schemas (descriptions and titles left out) at each revision.
# When test_the_revision_follows_the_schema fails, the schema changed: bump STATE_REVISION (realize/state_dir.py)
# and add the new revision's digest here.
# 2: a CNI record's phase "terminated"; 3: the addresses record's bridge_nodes (the nodes with cni0)
# 4: a container record's records_file and records_log (the cluster DNS records dnsmasq read at netlab's hand)
# 5: extra.converging (an up of a running lab at work: realize/converging.py)
# 6: a run-time impairment's file (what the lab's file gives the interface: impair --clear drops the record)
# 7: a CNI record's unchecked (no CHECK ran since the pod's ADD: cni/first_check.py)
DIGESTS = {1: "91fc3e18fa230add", 2: "e3788526ad5a7920", 3: "3a0a083ca00be89f", 4: "b0b3ed041fac362c",
           5: "6b57eccb0ef96842", 6: "70ecdc97c66d0f91", 7: "326c6cc1c9b4317e"}


def schema_digest() -> str:
    def bare(node):
        if isinstance(node, dict):
            return {k: bare(v) for k, v in node.items() if k not in ("description", "title")}
        if isinstance(node, list):
            return [bare(v) for v in node]
        return node
    both = [bare(StateFile.model_json_schema()), bare(Topology.model_json_schema(by_alias=True))]
    return hashlib.sha256(json.dumps(both, sort_keys=True).encode()).hexdigest()[:16]


def test_the_revision_follows_the_schema():
    assert max(DIGESTS) == STATE_REVISION and DIGESTS[STATE_REVISION] == schema_digest(), \
        f"the state's or the topology's schema changed: STATE_REVISION {STATE_REVISION + 1}, digest {schema_digest()}"


def test_each_save_records_its_revision(state_root):
    saved(state_root)
    assert json.loads((state_root / LAB / "state.json").read_text())["revision"] == STATE_REVISION


def newer_field(data: dict) -> None:
    data["revision"] = STATE_REVISION + 1
    data["extra"]["down_failed"] = {"pid": 4242, "error": "netlab down: interrupted", "signal": 15}


def newer_topology_field(data: dict) -> None:
    data["revision"] = STATE_REVISION + 1
    data["topology"]["gateways"] = [{"name": "gw"}]


@pytest.mark.parametrize("edit,said", [
    (newer_field, "extra.down_failed.signal: Extra inputs are not permitted"),
    (newer_topology_field, "topology: gateways: "),
], ids=["record-field", "topology-field"])
def test_a_later_revision_this_netlab_cannot_read_is_a_newer_netlabs(state_root, edit, said):
    saved(state_root)
    as_newer(state_root, edit)
    with pytest.raises(state.StateNewer) as info:
        state.load_state(LAB)
    text = str(info.value)
    assert text.startswith(f"lab {LAB}: its state file {state_root / LAB / 'state.json'} was written by a newer "
                           f"netlab (state format 1, revision {STATE_REVISION + 1}; this netlab reads state format "
                           f"1 up to revision {STATE_REVISION}, not {said}"), text
    assert "): act on the lab with that netlab, or take it down anyway with " in text
    assert "\n" not in text and "corrupt" not in text and f"netlab down --lab {LAB} --force" in text


@pytest.mark.parametrize("revision", [STATE_REVISION, None], ids=["same", "none"])
def test_a_field_this_netlab_does_not_know_in_its_own_revision_is_still_corrupt(state_root, revision):
    saved(state_root)

    def edit(data):
        newer_field(data)
        if revision is None:
            del data["revision"]
        else:
            data["revision"] = revision
    as_newer(state_root, edit)
    with pytest.raises(state.StateCorrupt) as info:
        state.load_state(LAB)
    assert "is corrupt (extra.down_failed.signal: Extra inputs are not permitted)" in str(info.value)
    assert not isinstance(info.value, state.StateNewer)


def test_a_later_revision_this_netlab_reads_loads_and_is_saved_as_this_netlabs(state_root):
    saved(state_root)
    as_newer(state_root, lambda d: d.update(revision=STATE_REVISION + 1))
    back = state.load_state(LAB)
    assert back is not None and back.unknown == {}
    back.save()
    assert json.loads((state_root / LAB / "state.json").read_text())["revision"] == STATE_REVISION


@pytest.mark.parametrize("revision", [0, "2", True, 1.0])
def test_a_revision_that_is_no_positive_integer_is_corrupt(state_root, revision):
    saved(state_root)
    as_newer(state_root, lambda d: d.update(revision=revision))
    with pytest.raises(state.StateCorrupt, match=r"is corrupt \(revision: "):
        state.load_state(LAB)


def test_list_shows_a_newer_netlabs_state_as_newer_not_corrupt(state_root):
    """`list` (text, JSON, the API's rows) showed a state a newer netlab wrote as phase `corrupt`, its line saying
    "newer": a phase of its own now, `newer`, whose way out is that netlab (or `down --force`); a damaged state is
    `corrupt` still."""
    from cli_inprocess import run_cli

    from netlab.api.running import labs

    saved(state_root)
    as_newer(state_root, newer_field)
    [row] = labs()
    assert (row.lab, row.phase) == (LAB, "newer") and "was written by a newer netlab" in row.error, row
    listed = run_cli("list", "-o", "json")
    assert listed.returncode == 0 and [r["phase"] for r in json.loads(listed.stdout)] == ["newer"], listed
    text = run_cli("list")
    assert text.stdout.splitlines()[-1].split()[:2] == [LAB, "newer"], text.stdout
    assert "was written by a newer netlab" in text.stderr, text.stderr
    saved(state_root)
    as_newer(state_root, lambda data: data.update(version=2))  # a later format: a newer netlab's too
    assert [row.phase for row in labs()] == ["newer"]
    (state_root / LAB / "state.json").write_text("{")  # damaged: corrupt, as before
    assert [row.phase for row in labs()] == ["corrupt"]
