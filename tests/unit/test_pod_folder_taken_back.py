"""A pod's /etc/netns/<lab>-<pod> folder netlab made, that was a symlink for a while and then a real folder again
(QA q53 4): while it was a symlink, sync dropped its files' records and tidy the folder's (its rmdir failed), so
netlab forgot it had made it; once the user put the folder back, with netlab's files in it, every down left it.
Now a real folder of the lab's that holds only netlab's files for this lab is netlab's again: an `up` records it
(sync) and a `down` (services' stop) takes it and its files away. Anything else in it keeps it the user's.
The real CLI: tests/integration/test_pod_folder_symlink_live.py."""

from __future__ import annotations

import os

import pytest
from test_pod_files_left_alone import etc  # noqa: F401 - the fixture
from test_pod_hosts import LAB, State, make_lab

from netlab.services import hosts, lifecycle


def _forgotten(etc):  # noqa: F811
    """A lab whose pod a's folder was a symlink for one sync (its records dropped), then put back as it was."""
    lab = make_lab(services=False)
    st = State()
    st.netns = {f"{LAB}-a": "created", f"{LAB}-b": "created", f"{LAB}-n1": "created"}
    rec = lifecycle._records(st)
    hosts.sync(lab, st, rec)
    a = etc / f"{LAB}-a"
    os.rename(a, etc.parent / "moved")
    os.symlink(etc.parent, a)
    done = hosts.sync(lab, st, rec)
    assert any("is a symlink, not netlab's folder" in line for line in done.problems)
    assert f"{LAB}-a" not in rec["dirs"] and f"{LAB}-a" not in rec["hosts"]  # forgotten
    os.unlink(a)
    os.rename(etc.parent / "moved", a)
    return lab, st, rec, a


@pytest.mark.parametrize("up_first", [False, True])
def test_a_pod_folder_put_back_with_only_netlabs_files_goes_with_down(etc, up_first):  # noqa: F811
    lab, st, rec, a = _forgotten(etc)
    if up_first:  # the next up takes it back: recorded as made, with its file
        assert hosts.sync(lab, st, rec).problems == []
        assert rec["dirs"][f"{LAB}-a"] == "created" and rec["hosts"][f"{LAB}-a"] == "created"
    lifecycle.stop(st, [], everything=True)  # down
    assert not os.path.lexists(a) and not os.path.lexists(etc / f"{LAB}-b")
    assert str(a / "hosts") in st.removed_files


def test_a_pod_folder_put_back_with_a_users_file_in_it_stays_the_users(etc):  # noqa: F811
    lab, st, rec, a = _forgotten(etc)
    (a / "notes").write_text("USER\n")
    hosts.sync(lab, st, rec)
    assert f"{LAB}-a" not in rec["dirs"]
    lifecycle.stop(st, [], everything=True)
    assert sorted(os.listdir(a)) == ["notes"]  # netlab's hosts file went (recorded again by sync), the folder stays
