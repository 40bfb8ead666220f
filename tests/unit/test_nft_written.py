"""What netlab knows its nftables tables hold between its own transactions (kernel/nftgen.py), and the file that
keeps it from one run to the next (realize/nft_written.py): known only while the namespace is at the generation
netlab's transaction or read left it; a transaction that moved the generation by more than one (someone else
committed meanwhile) makes it unknown; a bad file is nothing known."""

from __future__ import annotations

import json

from netlab.kernel.fake import FakeKernel
from netlab.kernel.nftgen import GEN_WRAP, Stamp, Written
from netlab.realize import nft_written

KP = ("ip", "kube-proxy")
LOSS = ("netdev", "netlab-loss")
A, B = ("chain services", "rule services 0000 a"), ("chain services", "rule services 0000 b")


def test_a_transaction_alone_between_the_reads_is_known_at_the_generation_it_left():
    w = Written()
    w.wrote("n1", Stamp(7, 10), Stamp(7, 11), KP, A, True)
    assert w.listing("n1", Stamp(7, 11), KP) == A
    assert w.listing("n1", Stamp(7, 12), KP) is None  # anything committed since: read it
    assert w.listing("n1", Stamp(8, 11), KP) is None  # another namespace (made again under the name)
    assert w.listing("n1", None, KP) is None and w.listing("n2", Stamp(7, 11), KP) is None


def test_another_commit_between_the_reads_makes_nothing_known():
    w = Written()
    w.read("n1", Stamp(7, 10), {KP: A, LOSS: B})
    w.wrote("n1", Stamp(7, 10), Stamp(7, 12), KP, B, True)
    assert w.listing("n1", Stamp(7, 12), KP) is None and w.listing("n1", Stamp(7, 12), LOSS) is None
    w.wrote("n1", None, Stamp(7, 13), KP, B, True)  # a kernel that tells no generation
    assert w.listing("n1", Stamp(7, 13), KP) is None


def test_the_other_tables_stay_known_only_from_the_generation_they_were_known_at():
    w = Written()
    w.read("n1", Stamp(7, 10), {KP: A, LOSS: B})
    w.wrote("n1", Stamp(7, 10), Stamp(7, 11), KP, B, True)
    assert w.listing("n1", Stamp(7, 11), KP) == B and w.listing("n1", Stamp(7, 11), LOSS) == B
    w.wrote("n1", Stamp(7, 20), Stamp(7, 21), KP, A, True)  # known at 11, not 20: the loss table unknown
    assert w.listing("n1", Stamp(7, 21), KP) == A and w.listing("n1", Stamp(7, 21), LOSS) is None
    w.wrote("n1", Stamp(7, 21), Stamp(7, 22), KP, None, True)  # taken away (or not known)
    assert w.listing("n1", Stamp(7, 22), KP) is None


def test_a_partial_sync_is_known_only_from_the_listing_it_was_worked_out_from():
    """A partial sync changes only the chains that differ from what the table held when it was read: a rule
    someone added to another chain between that read and the sync stays, so the sync's listing is the table's
    only if the namespace was still at the read's generation when the sync began."""
    w = Written()
    w.read("n1", Stamp(7, 10), {KP: A})
    w.wrote("n1", Stamp(7, 11), Stamp(7, 12), KP, B, False)  # someone committed 10 -> 11
    assert w.listing("n1", Stamp(7, 12), KP) is None
    w.read("n1", Stamp(7, 12), {KP: A})
    w.wrote("n1", Stamp(7, 12), Stamp(7, 13), KP, B, False)
    assert w.listing("n1", Stamp(7, 13), KP) == B
    w.wrote("n1", Stamp(7, 20), Stamp(7, 21), KP, A, True)  # the whole table: whatever it held
    assert w.listing("n1", Stamp(7, 21), KP) == A
    fresh = Written()
    fresh.wrote("n1", Stamp(7, 1), Stamp(7, 2), KP, A, False)  # nothing known before: nothing after
    assert fresh.listing("n1", Stamp(7, 2), KP) is None


def test_the_generation_wraps_as_the_kernels_u32():
    w = Written()
    w.wrote("n1", Stamp(7, GEN_WRAP - 1), Stamp(7, 0), KP, A, True)
    assert w.listing("n1", Stamp(7, 0), KP) == A


def test_a_read_of_what_is_known_already_is_no_change_to_keep():
    w = Written()
    w.read("n1", Stamp(7, 10), {KP: A})
    changes = w.changes
    w.read("n1", Stamp(7, 10), {KP: A})
    assert w.changes == changes
    w.read("n1", Stamp(7, 11), {KP: A})
    assert w.changes == changes + 1
    w.read("n1", None, {KP: A})
    assert w.listing("n1", Stamp(7, 11), KP) is None


def test_json_round_trip_and_a_bad_entry_left_out():
    w = Written()
    w.read("n1", Stamp(7, 10), {KP: A, LOSS: B})
    w.wrote("n2", Stamp(9, 1), Stamp(9, 2), KP, B, True)
    again = Written()
    again.load_json(json.loads(json.dumps(w.to_json())))
    assert again.to_json() == w.to_json() and again.listing("n1", Stamp(7, 10), LOSS) == B
    data = w.to_json()
    data["n2"]["gen"] = "2"  # not a number
    next(t for t in data["n1"]["tables"] if t[0] == "netdev")[2] = ["ok", 3]  # a line that is no text
    again.load_json(data)
    assert again.listing("n2", Stamp(9, 2), KP) is None
    assert again.listing("n1", Stamp(7, 10), LOSS) is None and again.listing("n1", Stamp(7, 10), KP) == A
    for bad in (None, [], "x", {"n1": []}, {"n1": {"cookie": -1, "gen": 1, "tables": []}}):
        again.load_json(bad)
        assert again.to_json() == {}


def test_the_file_is_kept_in_the_labs_folder_and_never_makes_it(tmp_path, monkeypatch):
    from netlab.realize import state_dir

    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))
    state_dir._checked.clear()
    kernel = FakeKernel()
    with nft_written.kept("nwlab", kernel):
        kernel.nft_written.wrote("nwlab-n1", Stamp(7, 1), Stamp(7, 2), KP, A, True)
    assert not (tmp_path / "state").exists()  # no lab folder: nothing made (a new lab's rollback took it)
    folder = state_dir.lab_dir("nwlab")
    with nft_written.kept("nwlab", kernel):
        kernel.nft_written.wrote("nwlab-n1", Stamp(7, 2), Stamp(7, 3), KP, B, True)
    path = f"{folder}/{nft_written.FILE}"
    assert json.load(open(path))["nwlab-n1"]["gen"] == 3
    other = FakeKernel()
    nft_written.load("nwlab", other)
    assert other.nft_written.listing("nwlab-n1", Stamp(7, 3), KP) == B
    open(path, "w").write("{not json")
    nft_written.load("nwlab", other)
    assert other.nft_written.to_json() == {}
    with nft_written.kept("nwlab", other):
        pass  # nothing learnt: the file is left as it is
    assert open(path).read() == "{not json"
    with nft_written.kept("nwlab", other):
        other.nft_written.read("nwlab-n1", None, {})
        other.nft_written.changes += 1
    import os
    assert not os.path.exists(path)  # nothing known: no file


def test_what_a_partial_sync_leaves_keeps_an_emptied_base_chain_with_its_hook():
    """The listing netlab keeps after a partial sync is the table's: a base chain the plan no longer has (an
    impairment's loss cleared) is emptied with its hook and stays; an emptied regular chain stays as a bare chain; an
    empty regular chain an earlier sync left is deleted before it (`impair --clear` then `up` kept the base chain
    known as gone, and up never deleted it)."""
    from netlab.realize.nftables import after_sync

    base = 'chain loss-b type filter hook ingress device "veth1" priority 0'
    have = ("chain endpoint-x", "chain kept", base, "chain stale", "rule endpoint-x 0000 dnat", "rule kept 0000 a",
            "rule loss-b 0000 drop")
    want = ("chain kept", "rule kept 0000 a")
    assert after_sync(have, want) == ("chain endpoint-x", "chain kept", base, "rule kept 0000 a")
