"""What `up` says of a namespace it would make that exists already (realize/ownership.collision_message): whose it
is, and whether it is proven stale, without root (the namespace's tag and the labs with state are stubbed)."""

from __future__ import annotations

import pytest

from netlab.kernel import netns as nsmod
from netlab.realize import lab_list, ownership, state_dir, tags


@pytest.fixture
def tagged(monkeypatch):
    """Namespace lx-a exists, tagged by netlab for lab lx, which has no state in this state directory."""
    monkeypatch.setattr(nsmod, "exists", lambda name: True)
    monkeypatch.setattr(nsmod, "is_netns_mount", lambda name: True)
    monkeypatch.setattr(ownership, "owner_of", lambda name: (nsmod.lab_hash("lx"), "00000001"))
    monkeypatch.setattr(lab_list, "known_labs", lambda: [])


def test_a_namespace_of_a_lab_without_state_is_stale(tagged, monkeypatch):
    monkeypatch.setattr(state_dir, "STATE_ROOT", state_dir.DEFAULT_STATE_ROOT)
    monkeypatch.delenv("NETLAB_STATE_DIR")  # the default folder: the command names none (errors.netlab_command)
    said = ownership.collision_message("lx-a", "lx")
    # Only `down --force`, as every other command says of a lab whose state was lost: `ip netns del lx-a` would
    # remove one namespace of the lab's and leave the rest, its echo server and dnsmasq running (QA "qc", 10).
    assert said == ("namespace lx-a already exists: it was made by netlab for lab lx in a run that has no state in "
                    "/run/netlab any more; it is stale: take the lab down with `sudo netlab down --lab lx --force` "
                    "(it deletes only namespaces tagged as the lab's, pods' files in /etc/netns whose first line "
                    "says they are the lab's, and the files netlab wrote in the lab's folder) and run up again")
    assert "ip netns del" not in said


def test_a_leftover_of_a_lab_that_is_up_is_removed_alone(tagged, monkeypatch):
    """The lab has a state and this one namespace is not in it: removing that namespace is the way (as before)."""
    monkeypatch.setattr(state_dir, "STATE_ROOT", state_dir.DEFAULT_STATE_ROOT)
    monkeypatch.setattr(lab_list, "known_labs", lambda: ["lx"])
    said = ownership.collision_message("lx-a", "lx")
    assert said.endswith("it is stale: remove it (ip netns del lx-a, or `netlab down --lab lx --force`) and run up "
                         "again")


def test_with_another_state_directory_the_lab_may_be_up_there(tagged, monkeypatch, tmp_path):
    """NETLAB_STATE_DIR set and a tag of an older netlab, which names no state folder: the lab may be up and well,
    its state in the default directory; --force would delete it. Said before any remedy."""
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path))
    said = ownership.collision_message("lx-a", "lx")
    assert "NETLAB_STATE_DIR is set, so it may belong to a lab that is up with another state directory " \
        "(/run/netlab by default): look there first (`netlab list` without NETLAB_STATE_DIR)" in said
    assert said.index("look there first") < said.index("--force")


@pytest.mark.parametrize("lab_state", [False, True], ids=["lost", "leftover"])
def test_with_another_state_directory_a_tag_naming_it_is_this_directory_s(tagged, monkeypatch, tmp_path, lab_state):
    """The tag names this very state folder (every tag of this netlab names its folder): the namespace is of a run
    of this folder, as `list` and `status` say ("its state was lost"); "it may belong to a lab up with another state
    directory: look there first" was untrue (QA qa59m 4)."""
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path))
    monkeypatch.setattr(lab_list, "known_labs", lambda: ["lx"] if lab_state else [])
    monkeypatch.setattr(ownership, "tag_on", lambda name: nsmod.make_tag("lx", "a run", tags.folder_tag()))
    said = ownership.collision_message("lx-a", "lx")
    assert "look there first" not in said and "NETLAB_STATE_DIR is set" not in said, said
    assert f"no state in {tmp_path} any more; it is stale: take the lab down with " in said or lab_state, said
    assert said.endswith("and run up again") and "--force" in said
