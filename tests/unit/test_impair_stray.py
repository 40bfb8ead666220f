"""A root qdisc someone added on a planned interface (impair/stray.py): found in a snapshot, said as the cause of
the txqueuelen the kernel gave the device, and left alone on an impaired interface or the kernel's own root."""

from __future__ import annotations

import struct

from netlab.impair import stray
from netlab.kernel import netlink, rtnl, tc
from netlab.kernel.base import Snapshot
from netlab.kernel.rtnl_parse import LinkMsg, added_ingress_qdisc, added_root_qdisc, count_filters, filter_kind
from netlab.plan.resources import VethPeer
from netlab.realize.diff import Drift


def body(index: int, handle: int, kind: str, options: bytes = b"") -> bytes:
    return tc.qdisc_replace(index, tc.TC_H_ROOT, handle, kind, options)[16:]


def snap(**roots: bytes) -> Snapshot:
    link = LinkMsg(index=2, name="eth0", kind="veth", up=True, mtu=1450, mac="aa:bb:cc:dd:ee:ff", master=None,
                   peer=5, peer_netnsid=0, alias=None, group=0, txqlen=1000)
    out = Snapshot(netns="l-p", links={"eth0": link})
    for _, b in roots.items():
        found = added_root_qdisc(netlink.Msg(tc.RTM_NEWQDISC, 0, 0, b))
        if found is not None:
            out.root_qdiscs[found[0]] = found[1]
    return out


EYE = VethPeer(netns="l-p", name="eth0", mtu=1450, mac="aa:bb:cc:dd:ee:ff", txqlen=0)


def test_a_tbf_added_is_found_and_said_as_the_cause_of_the_txqlen():
    s = snap(root=body(2, 0x80010000, "tbf", tc.tbf_options(8000)))
    (found,) = stray.found("l-p", s, [EYE], set())
    assert found[:2] == (EYE, "tbf rate 8kbit")
    txq = Drift("different", EYE, "txqlen 1000 (want 0)", live=EYE)
    (line,) = stray.merged([txq], [found])
    assert str(line) == ("different: link eth0 in l-p (root qdisc tbf rate 8kbit added (want the kernel's noqueue), "
                         "which made the kernel set txqlen 1000; txqlen 1000 (want 0))")


def test_the_kernels_own_root_and_an_impaired_interface_are_not_drift():
    assert stray.found("l-p", snap(root=body(2, 0, "noqueue")), [EYE], set()) == []
    s = snap(root=body(2, 0x10000, "tbf", tc.tbf_options(8000)))
    assert stray.found("l-p", s, [EYE], {("l-p", "eth0")}) == []
    assert stray.qdisc_words(s.root_qdiscs[2]) == "tbf rate 8kbit"
    assert stray.qdisc_words(body(2, 0x10000, "htb")) == "htb"


def test_an_ingress_or_clsact_qdisc_is_found_even_on_an_impaired_interface_and_said_with_its_filters():
    ingress = netlink.Msg(tc.RTM_NEWQDISC, 0, 0, tc.ingress_add(2)[16:])
    assert added_ingress_qdisc(ingress) == (2, "ingress") and added_root_qdisc(ingress) is None
    assert added_ingress_qdisc(netlink.Msg(tc.RTM_NEWQDISC, 0, 0, body(2, 0x10000, "htb"))) is None
    s = snap()
    s.ingress_qdiscs[2] = ("clsact", 1)
    (found,) = stray.found("l-p", s, [EYE], {("l-p", "eth0")})
    assert found == stray.Stray(EYE, "clsact qdisc with 1 filter", 1000, ingress=True)
    (line,) = stray.merged([Drift("different", EYE, "txqlen 1000 (want 0)", live=EYE)], [found])
    assert str(line) == ("different: link eth0 in l-p (clsact qdisc with 1 filter added (want none: its filters act "
                         "on what eth0 takes in and what it sends), which made the kernel set txqlen 1000; txqlen "
                         "1000 (want 0))")  # clsact: ingress and egress (QA fx61a 2)
    s.ingress_qdiscs[2] = ("ingress", 1)
    (line,) = stray.merged([], stray.found("l-p", s, [EYE], {("l-p", "eth0")}))
    assert "its filters act on what eth0 takes in)" in str(line)


def test_a_filter_dumps_entries_that_hold_no_match_are_not_counted():
    def entry(handle: int, kind: str) -> netlink.Msg:
        return netlink.Msg(44, 0, 0, rtnl.TCMSG.pack(0, 2, handle, 0xFFFFFFF2, 0) + netlink.string(1, kind))
    assert [filter_kind(entry(h, k)) for h, k in ((0, "u32"), (0x80000000, "u32"), (0x80000800, "u32"),
                                                     (0, "bpf"), (1, "bpf"))] == [None, None, "u32", None, "bpf"]


def test_a_u32_node_both_of_clsacts_dumps_list_is_counted_once():
    """u32's hash tables are the qdisc's, shared by clsact's ingress and egress blocks: with one u32 filter on
    each side, each parent's dump lists both nodes (and both tables). Two filters, not four (QA fx61a 2); a bpf
    filter of each side with the same handle is two."""
    def entry(handle: int, kind: str, parent: int, prio: int = 0xC000) -> netlink.Msg:
        return netlink.Msg(44, 0, 0, rtnl.TCMSG.pack(0, 2, handle, parent, prio << 16 | 0x0300)
                           + netlink.string(1, kind))
    def side(parent: int) -> list[netlink.Msg]:
        return [entry(0, "u32", parent), entry(0x80000000, "u32", parent), entry(0x80000800, "u32", parent),
                entry(0x80100000, "u32", parent), entry(0x80100800, "u32", parent)]
    assert count_filters([side(0xFFFFFFF2), side(0xFFFFFFF3)]) == 2
    assert count_filters([side(0xFFFFFFF2)]) == 2
    bpf = [[entry(0, "bpf", p, 1), entry(1, "bpf", p, 1)] for p in (0xFFFFFFF2, 0xFFFFFFF3)]
    assert count_filters(bpf) == 2


def test_an_ingress_qdisc_already_gone_as_up_removes_it_is_said_gone(monkeypatch):
    s = stray.Stray(EYE, "ingress qdisc with 1 filter", 0, ingress=True)
    monkeypatch.setattr(tc, "delete_ingress", lambda ns, dev: False)  # the kernel's ENOENT
    done, problem = stray.ingress_qdisc_del("l-p", s)
    assert (done, problem) == (False, None)
    assert stray.removed_words("l-p", s, done) == ("the ingress qdisc with 1 filter of eth0 in l-p was already gone when "
                                               "up came to remove it (none of the lab's: nothing acts on what eth0 "
                                               "takes in again)")


def test_a_hand_made_qdiscs_command_is_the_add_that_makes_it_again_as_every_resources_is():
    """up deletes it (its op's verb); its command(), as every other resource's, is what makes it: the rollback's add
    (before, the `tc qdisc del` of it)."""
    tbf = body(2, 0x80010000, "tbf", tc.tbf_options(8000))
    op = stray.root_qdisc_del("l-p", stray.Stray(EYE, stray.qdisc_words(tbf), 1000, tbf))
    assert op.verb == "del" and op.inverse() is not None and op.inverse().verb == "add"
    assert op.res.command() == "tc -n l-p qdisc add dev eth0 root handle 8001: tbf rate 8000bit burst 3200b limit 3250b"
    netem = body(2, 0x10000, "netem", tc.netem_options(30000, 5000))
    op = stray.root_qdisc_del("l-p", stray.Stray(EYE, stray.qdisc_words(netem), 1000, netem))
    assert op.res.command() == "tc -n l-p qdisc add dev eth0 root handle 1: netem delay 30000us 5000us"
    op = stray.root_qdisc_del("l-p", stray.Stray(EYE, "htb", 1000, body(2, 0x10000, "htb")))
    assert op.res.command() == "tc -n l-p qdisc add dev eth0 root handle 1: htb"


# --- what hangs under a hand's root qdisc: said at its removal, and by the rollback that adds it again alone ---

def test_what_hangs_under_a_root_qdisc_is_counted_from_the_dumps():
    """An htb's classes (not an ingress or clsact's pseudo-classes), the qdiscs added under them (not the root,
    not ingress, not a class's default leaf, which has no handle), and where their filters may hang."""
    from netlab.kernel.rtnl_parse import tc_parents

    def msg(mtype: int, index: int, handle: int, parent: int) -> netlink.Msg:
        return netlink.Msg(mtype, 0, 0, rtnl.TCMSG.pack(0, index, handle, parent, 0))
    root = msg(36, 2, 0x10000, rtnl.TC_H_ROOT)
    classes = [msg(40, 2, 0x10010, 0x10000), msg(40, 2, 0x10020, 0x10000), msg(40, 2, 0xFFFFFFF2, 0xFFFF0000)]
    qdiscs = [root, msg(36, 2, 0x100000, 0x10010), msg(36, 2, 0, 0x10020), msg(36, 2, 0xFFFF0000, rtnl.TC_H_INGRESS),
              msg(36, 3, 0x200000, 0x10010)]
    assert tc_parents(2, root.body, classes, qdiscs) == (2, 1, [0x10000, 0x10010, 0x10020, 0x100000])


def test_its_removal_says_what_went_with_it_in_words():
    assert [stray.under_words(n) for n in ((0, 0, 0), (1, 0, 0), (2, 1, 1), (0, 0, 3), (2, 0, 1))] == [
        "", "1 class", "2 classes, 1 qdisc and 1 filter", "3 filters", "2 classes and 1 filter"]
    s = snap(root=body(2, 0x10000, "htb"))
    s.root_qdisc_under[2] = (2, 1, 1)
    (found,) = stray.found("l-p", s, [EYE], set())
    assert found.under == (2, 1, 1) and stray.root_qdisc_del("l-p", found).res.under == (2, 1, 1)
    assert stray.removed_words("l-p", found) == (
        "removed root qdisc htb from eth0 in l-p (no impairment of the topology's: eth0 has the kernel's noqueue "
        "again; its 2 classes, 1 qdisc and 1 filter went with it; the txqlen 1000 the kernel gave it with the qdisc "
        "is set back to 0)")


def test_an_htb_is_added_again_with_the_version_its_init_takes():
    """htb's dump says tc_htb_glob's version whole (0x30011); htb_init refuses all but its major (3): EINVAL, and a
    rollback left the device without the qdisc it said it put back. Its other options stay as dumped."""
    glob = struct.pack("=IIIII", tc.HTB_VER, 10, 0x10, 0, 0)
    options = netlink.attr(tc.TCA_HTB_INIT, glob) + netlink.attr(5, struct.pack("=I", 1000))
    dumped = body(2, 0x10000, "htb", options)
    sent = tc.qdisc_add_dumped(2, dumped)
    opts = netlink.attrs(netlink.attrs(sent, 16 + rtnl.TCMSG.size)[tc.TCA_OPTIONS])
    assert struct.unpack_from("=IIIII", opts[tc.TCA_HTB_INIT]) == (3, 10, 0x10, 0, 0)
    assert opts[5] == struct.pack("=I", 1000)
    tbf = body(2, 0x10000, "tbf", tc.tbf_options(8000))  # any other kind: as dumped
    assert tc.qdisc_add_dumped(2, tbf)[16 + rtnl.TCMSG.size:] == \
        b"".join(netlink.attr(t, v) for t, v in netlink.attrs(tbf, rtnl.TCMSG.size).items() if t in (1, 2))


class Kernel:
    def __init__(self, s: Snapshot):
        self.s = s

    def netns_mounted(self, ns):
        return True

    def snapshot_many(self, asks):
        return {ns: self.s for ns in asks}


def test_the_rollback_names_what_did_not_come_back_with_the_qdisc():
    from netlab.plan.hand_qdisc import HandQdisc

    b = body(2, 0x10000, "htb")
    q = HandQdisc("l-p", dev="eth0", words="htb", body=b, under=(2, 1, 1))
    back = snap(root=b)  # the qdisc again, nothing under it
    assert stray.put_back_alone(Kernel(back), [q]) == [
        "the 2 classes, 1 qdisc and 1 filter under root qdisc htb of eth0 in l-p, which went with it (the rollback "
        "added the qdisc again alone)"]
    back.root_qdisc_under[2] = (2, 0, 0)  # a prio's own classes come back with it
    assert stray.put_back_alone(Kernel(back), [q]) == [
        "the 1 qdisc and 1 filter under root qdisc htb of eth0 in l-p, which went with it (the rollback added the "
        "qdisc again alone)"]
    back.root_qdisc_under[2] = (2, 1, 1)
    assert stray.put_back_alone(Kernel(back), [q]) == []
    assert stray.put_back_alone(Kernel(snap()), [q]) == [  # the kernel refused it: the noqueue
        "root qdisc htb of eth0 in l-p and the 2 classes, 1 qdisc and 1 filter under it, which the kernel would not "
        "take again as its dump gave it"]


def test_a_qdisc_put_back_on_a_link_made_again_is_told_by_its_handle_not_the_old_index():
    """The run made the device again (another ifindex); the rollback adds the qdisc by the device's name, so it is
    back: the line said the kernel would not take it again (rev62)."""
    from netlab.plan.hand_qdisc import HandQdisc

    q = HandQdisc("l-p", dev="eth0", words="htb", body=body(7, 0x10000, "htb"), under=(1, 0, 0))
    assert stray.put_back_alone(Kernel(snap(root=body(2, 0x10000, "htb"))), [q]) == [
        "the 1 class under root qdisc htb of eth0 in l-p, which went with it (the rollback added the qdisc again alone)"]
