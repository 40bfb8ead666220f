"""A lab's state written by a newer netlab (docs/json.md, "The state file"): what this release may ignore is kept.

A newer release of the same state format adds records under ``extra`` (and perhaps top-level keys) that this
release does not know: they load, are never read, and are written back as they were; a watcher's reload of such
a state is no corruption. A known record of the wrong shape, broken JSON, a state of a later format (said as a
newer netlab's) are still refused.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from netlab.api.watch import Watcher
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan.build import build_plan
from netlab.realize import state, state_sum

LAB = "demo"
NEWER = {"version": 3, "leases": {"demo-fedora-1": ["10.244.0.9"]}}  # a record a newer release keeps
STAMP = "fedcba9876543210"  # what checks a state in the newer release: not this one's


def saved(root) -> state.LabState:
    lab = resolve(load_topology(None))
    st = state.LabState(lab=LAB, topology=lab.topo.model_dump(mode="json", by_alias=True, exclude_none=True),
                        netns={n: "created" for n in build_plan(lab).netns}, phase="up")
    st.extra["iptables"] = "nft"
    st.save()
    return st


def as_newer(root, edit) -> bytes:
    """The saved state as a newer netlab rewrites it: ``edit(data)``, its own sum (its stamp) beside it."""
    data = json.loads((root / LAB / "state.json").read_text())
    edit(data)
    raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    (root / LAB / "state.json").write_bytes(raw)
    (root / LAB / state_sum.SUM_FILE).write_text(f"{STAMP} {hashlib.sha256(raw).hexdigest()}\n")
    return raw


def with_records(data: dict) -> None:
    data["extra"]["leases"] = NEWER
    data["writer"] = {"netlab": "9.0"}  # a top-level key of the same format


def test_a_newer_releases_records_load_and_are_written_back_as_they_were(state_root):
    st = saved(state_root)
    as_newer(state_root, with_records)
    back = state.load_state(LAB)  # checked whole: the sum is the newer release's
    assert back is not None and back.extra["leases"] == NEWER and back.extra["iptables"] == "nft"
    assert back.resolved().name == LAB and back.netns == st.netns
    back.phase = "failed"
    back.save()  # this release rewrites the state: the records stay, untouched
    data = json.loads((state_root / LAB / "state.json").read_text())
    assert data["extra"]["leases"] == NEWER and data["writer"] == {"netlab": "9.0"} and data["phase"] == "failed"
    again = state.load_state(LAB)  # now by this release's own sum
    assert again is not None and again.extra["leases"] == NEWER and again.unknown == {"writer": {"netlab": "9.0"}}
    again.save()
    assert json.loads((state_root / LAB / "state.json").read_text()) == data


def test_a_watchers_reload_of_a_newer_releases_state_is_no_corruption(state_root):
    saved(state_root)
    as_newer(state_root, with_records)
    live = Watcher(None, LAB, log=lambda line: None)._live_state()
    assert live is not None and live.extra["leases"] == NEWER


@pytest.mark.parametrize("edit,said", [
    (lambda d: d["extra"].update(iptables="nftables"), "extra.iptables"),  # a known record of the wrong shape
    (lambda d: d["extra"].update(owner={"by": "pytest"}), "extra.owner"),
    (lambda d: d.update(netns=["demo-minikube"]), "netns"),  # a known top-level key of the wrong type
    (lambda d: d.update(version=0), "version"),
    (lambda d: d.update(version="2"), "version"),
], ids=["iptables-text", "owner-partial", "netns-list", "version-0", "version-text"])
def test_a_known_field_of_the_wrong_shape_is_still_corrupt(state_root, edit, said):
    saved(state_root)
    as_newer(state_root, lambda d: (with_records(d), edit(d)))
    with pytest.raises(state.StateCorrupt) as info:
        state.load_state(LAB)
    assert f"is corrupt ({said}" in str(info.value) and not isinstance(info.value, state.StateNewer)


def test_broken_json_is_still_corrupt(state_root):
    saved(state_root)
    raw = as_newer(state_root, with_records)
    (state_root / LAB / "state.json").write_bytes(raw[:-1])
    with pytest.raises(state.StateCorrupt, match=r"is corrupt \(the file: Invalid JSON"):
        state.load_state(LAB)


def test_a_state_of_a_later_format_is_said_to_be_a_newer_netlabs_in_one_line(state_root):
    saved(state_root)
    as_newer(state_root, lambda d: d.update(version=2, netns="a later shape"))
    with pytest.raises(state.StateNewer) as info:
        state.load_state(LAB)
    text = str(info.value)
    assert text.startswith(f"lab {LAB}: its state file {state_root / LAB / 'state.json'} was written by a newer "
                           "netlab (state format 2; this netlab reads state format 1): ")
    assert "\n" not in text and "corrupt" not in text and f"netlab down --lab {LAB} --force" in text
    assert "Lab('demo').down(force=True)" in str(info.value.said_for(api=True))


def test_state_newer_is_a_name_of_netlab_api_as_the_other_errors_are():
    """A program that catches a newer netlab's state imports it where it imports the other errors: netlab.api
    exported StateCorrupt and not StateNewer (AttributeError), so a caller had to reach into netlab.realize."""
    import netlab.api as api

    assert "StateNewer" in api.__all__
    assert api.StateNewer is state.StateNewer and issubclass(api.StateNewer, api.StateCorrupt)
