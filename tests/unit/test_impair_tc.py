"""kernel/tc.py without root: its tbf/netem encoding checked against pyroute2's both ways, rates past 32 bits
(TCA_TBF_RATE64), and the order of its requests against a fake of the kernel's qdisc rules, above all that a
refused change never leaves an interface without the qdisc it had."""

from __future__ import annotations

import contextlib
import errno
import struct

import pytest
from pyroute2.netlink.rtnl.tcmsg import plugins, tcmsg

from netlab.kernel import netlink as nl
from netlab.kernel import rtnl, tc
from netlab.model.impair import RATE_MAX, RATE_MIN, Impairment, rate_bits

NEW, DEL = tc.RTM_NEWQDISC, tc.RTM_DELQDISC
CREATE_REPLACE = nl.NLM_F_CREATE | nl.NLM_F_REPLACE


def pyroute2_message(kind: str, index: int, handle: int, parent: int, **kw) -> bytes:
    """The RTM_NEWQDISC pyroute2's tc encoder makes of ``kind`` and its keywords (what tc.py sent before)."""
    msg = tcmsg()
    msg["index"], msg["handle"], msg["parent"] = index, handle, parent
    msg["attrs"] = [["TCA_KIND", kind], ["TCA_OPTIONS", plugins[kind].get_parameters(kw)]]
    msg.encode()
    return bytes(msg.data[:msg["header"]["length"]])


def options_of(message: bytes) -> bytes:
    return nl.attrs(message[16:], tc.TCMSG.size)[tc.TCA_OPTIONS]


@pytest.mark.parametrize("bits", [RATE_MIN, 512_000, 10_000_000, 1_000_000_000, (2**32 - 1) * 8])
def test_tbf_options_are_pyroute2s_byte_for_byte_below_32_bits(bits):
    ours = tc.qdisc_replace(2, tc.TC_H_ROOT, tc.ROOT_HANDLE, "tbf", tc.tbf_options(bits))
    theirs = pyroute2_message("tbf", 2, tc.ROOT_HANDLE, tc.TC_H_ROOT, rate=f"{bits}bit", burst=tc.burst_bytes(bits),
                              latency="50ms")
    assert options_of(ours) == options_of(theirs)
    parsed = tcmsg(ours)
    parsed.decode()
    assert (parsed["index"], parsed["handle"], parsed["parent"]) == (2, tc.ROOT_HANDLE, tc.TC_H_ROOT)
    assert parsed.get_attr("TCA_KIND") == "tbf" and parsed["header"]["flags"] & CREATE_REPLACE == CREATE_REPLACE
    assert parsed.get_attr("TCA_OPTIONS").get_attr("TCA_TBF_PARMS")["rate"] == bits // 8


def test_netem_options_are_pyroute2s_byte_for_byte():
    ours = tc.netem_options(20_000, 5_000)
    theirs = options_of(pyroute2_message("netem", 2, tc.ROOT_HANDLE, tc.TC_H_ROOT, delay=20_000, jitter=5_000))
    assert ours == theirs


def dumped_tbf(bits: int, pad: bool = True) -> nl.Msg:
    """A root tbf as the kernel dumps it: the rate field saturated past 32 bits and the rate in TCA_TBF_RATE64,
    after a TCA_TBF_PAD that aligns the u64 (nla_put_u64_64bit)."""
    rate = bits // 8
    ours = list(tc.TBF_QOPT.unpack_from(nl.attrs(tc.tbf_options(bits))[tc.TCA_TBF_PARMS]))
    ours[1] = 1  # the kernel reads the link layer (ethernet) from the rate table tc sends
    parms = tc.TBF_QOPT.pack(*ours)
    opts = nl.attr(tc.TCA_TBF_PARMS, parms)
    if rate > tc.U32_MAX:
        opts += (nl.attr(8, b"") if pad else b"") + nl.attr(tc.TCA_TBF_RATE64, struct.pack("=Q", rate))
    body = tc.TCMSG.pack(0, 2, tc.ROOT_HANDLE, tc.TC_H_ROOT, 1) + nl.string(tc.TCA_KIND, "tbf") + \
        nl.attr(tc.TCA_OPTIONS, opts)
    return nl.Msg(NEW, 0, 0, body)


@pytest.mark.parametrize("text", ["8kbit", "10mbit", "34gbit", "34359738368bit", "40gbit", "12.5gbps", "100gbit"])
def test_every_rate_the_model_takes_is_encoded_and_read_back(text):
    """tbf's rate field is 32 bits of bytes a second (34.4 Gbit/s): pyroute2's encoder failed past it ('I'
    format requires 0 <= number <= 4294967295) and `up` rolled back. The rate goes in TCA_TBF_RATE64, as tc
    sends it, and is read back from the kernel's TCA_TBF_RATE64."""
    bits = rate_bits(Impairment(rate=text).rate or "")
    assert RATE_MIN <= bits <= RATE_MAX
    opts = nl.attrs(tc.tbf_options(bits))
    field = tc.TBF_QOPT.unpack_from(opts[tc.TCA_TBF_PARMS])[5]
    if bits // 8 > tc.U32_MAX:
        assert field == tc.U32_MAX and struct.unpack("=Q", opts[tc.TCA_TBF_RATE64]) == (bits // 8,)
    else:
        assert field == bits // 8 and tc.TCA_TBF_RATE64 not in opts
    assert tc.parse_qdisc(dumped_tbf(bits)).rate_bits == bits // 8 * 8
    assert tc.shaping_of([tc.parse_qdisc(dumped_tbf(bits, pad=False))]) == tc.Shaping(rate_bits=bits // 8 * 8)


def test_qdiscs_pyroute2_encodes_are_read_as_it_meant():
    tbf = tc.parse_qdisc(nl.Msg(NEW, 0, 0, pyroute2_message("tbf", 3, tc.CHILD_HANDLE, tc.ROOT_HANDLE + 1,
                                                            rate="20000000bit", burst=25_000, latency="50ms")[16:]))
    assert (tbf.index, tbf.handle, tbf.parent, tbf.kind, tbf.rate_bits) == (
        3, tc.CHILD_HANDLE, tc.ROOT_HANDLE + 1, "tbf", 20_000_000)
    netem = tc.parse_qdisc(nl.Msg(NEW, 0, 0, pyroute2_message("netem", 3, tc.ROOT_HANDLE, tc.TC_H_ROOT,
                                                              delay=20_000, jitter=500)[16:]))
    assert (netem.kind, netem.delay_us, netem.jitter_us) == ("netem", 20_000, 500)
    assert tc.shaping_of([netem, tbf]) == tc.Shaping(rate_bits=20_000_000, delay_us=20_000, jitter_us=500)


# --- the order of requests, against a fake of the kernel's qdisc rules ------------------------------------------


class FakeTcKernel:
    """One namespace's eth0 (index 2) and its qdiscs, changed by the rules of net/sched/sch_api.c's
    tc_modify_qdisc as tc.py uses them; ``refuse(kind, parent)`` gives an errno for a request the kernel
    refuses, before it changes anything (as it checks a qdisc's options before it creates or changes one)."""

    def __init__(self, txqlen: int = 1000):
        self.qdiscs: list[dict] = []  # {"handle", "parent", "kind", "options"}; none at the root: noqueue
        self.txqlen = txqlen
        self.sent: list[tuple[int, int, int, int, str]] = []  # (type, flags, handle, parent, kind)
        self.refuse = lambda kind, parent: 0
        self.next_handle = 0x80010000

    # what netlink.Conn offers
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def dump(self, what: str, msg: bytes) -> list[nl.Msg]:
        mtype = struct.unpack_from("=H", msg, 4)[0]
        if mtype == rtnl.RTM_GETLINK:
            body = rtnl.IFINFO.pack(0, 1, 2, rtnl.IFF_UP, 0) + nl.string(rtnl.IFLA_IFNAME, "eth0") + \
                nl.u32(rtnl.IFLA_TXQLEN, self.txqlen)
            return [nl.Msg(rtnl.RTM_NEWLINK, 0, 0, body)]
        out = [{"handle": 0, "parent": tc.TC_H_ROOT, "kind": "noqueue", "options": b""}] if not self.root() else []
        return [nl.Msg(NEW, 0, 0, tc.TCMSG.pack(0, 2, q["handle"], q["parent"], 1) + nl.string(tc.TCA_KIND, q["kind"])
                       + nl.attr(tc.TCA_OPTIONS, q["options"])) for q in out + self.qdiscs]

    def request(self, what: str, msg: bytes) -> None:
        _len, mtype, flags = struct.unpack_from("=IHH", msg)
        _f, index, handle, parent, _info = tc.TCMSG.unpack_from(msg, 16)
        a = nl.attrs(msg[16:], tc.TCMSG.size)
        kind = nl.get_str(a, tc.TCA_KIND) or ""
        self.sent.append((mtype, flags & ~nl.NLM_F_REQUEST, handle, parent, kind))
        if mtype == rtnl.RTM_NEWLINK:
            self.txqlen = nl.get_u32(nl.attrs(msg[16:], rtnl.IFINFO.size), rtnl.IFLA_TXQLEN)
            return
        there = self.root() if parent == tc.TC_H_ROOT else self.at(parent)
        if mtype == DEL:
            if there is None:
                raise nl.NetlinkError(errno.ENOENT, what)
            self.drop(there)
            return
        code = self.refuse(kind, parent)
        if code:
            raise nl.NetlinkError(code, what)
        if there is not None and (handle == there["handle"] or (
                not handle and not (flags & nl.NLM_F_EXCL) and kind == there["kind"])):
            if kind != there["kind"]:
                raise nl.NetlinkError(errno.EINVAL, what)  # "Invalid qdisc name: must match existing qdisc"
            there["options"] = a[tc.TCA_OPTIONS]  # changed in place
            return
        if there is not None and not flags & nl.NLM_F_REPLACE:
            raise nl.NetlinkError(errno.EEXIST, what)
        if not handle:
            handle, self.next_handle = self.next_handle, self.next_handle + 0x10000
        if there is not None:
            self.drop(there)  # grafted: the old one goes only now, with its children
        self.qdiscs.append({"handle": handle, "parent": parent, "kind": kind, "options": a[tc.TCA_OPTIONS]})
        if self.txqlen == 0:
            self.txqlen = 1000  # qdisc_create gives a txqueuelen-0 device the default

    def root(self) -> dict | None:
        return next((q for q in self.qdiscs if q["parent"] == tc.TC_H_ROOT), None)

    def at(self, parent: int) -> dict | None:
        return next((q for q in self.qdiscs if q["parent"] == parent), None)

    def drop(self, q: dict) -> None:
        self.qdiscs = [c for c in self.qdiscs if c is not q and (c["parent"] & 0xFFFF0000) != q["handle"]]

    def shaping(self) -> tc.Shaping:
        return tc.shaping_of([tc.parse_qdisc(m) for m in self.dump("", tc.qdisc_dump())])

    def deletes(self) -> list[tuple]:
        return [s for s in self.sent if s[0] == DEL]


@pytest.fixture
def kernel(monkeypatch):
    k = FakeTcKernel()
    monkeypatch.setattr(tc.netlink, "Conn", lambda: k)
    monkeypatch.setattr(tc.nsmod, "entered", lambda name: contextlib.nullcontext())
    return k


def test_a_rate_on_the_kernels_default_is_a_root_tbf_1(kernel):
    tc.replace_root("x-n1", "eth0", 50_000_000)
    assert [s[:5] for s in kernel.sent] == [(NEW, CREATE_REPLACE, tc.ROOT_HANDLE, tc.TC_H_ROOT, "tbf")]
    assert kernel.shaping() == tc.Shaping(rate_bits=50_000_000)


def test_another_rate_is_changed_in_place_never_deleted_first(kernel):
    tc.replace_root("x-n1", "eth0", 10_000_000)
    tc.replace_root("x-n1", "eth0", 100_000_000_000)
    assert not kernel.deletes()
    assert kernel.sent[-1] == (NEW, CREATE_REPLACE, tc.ROOT_HANDLE, tc.TC_H_ROOT, "tbf")
    assert kernel.shaping() == tc.Shaping(rate_bits=100_000_000_000)


@pytest.mark.parametrize("before", [(10_000_000, None), (None, 20_000), (5_000_000, 20_000)])
def test_a_refused_change_leaves_the_qdiscs_there(kernel, before):
    """The old replace_root deleted the root qdisc first: a refused add left the interface unshaped."""
    tc.replace_root("x-p1", "eth0", before[0], delay_us=before[1])
    had = kernel.shaping()
    kernel.refuse = lambda kind, parent: errno.EINVAL
    with pytest.raises(tc.TcError, match=r"^set tbf \(rate\) .*eth0 in x-p1: Invalid argument "
                                         r"\(eth0 keeps its qdiscs\)$"):
        tc.replace_root("x-p1", "eth0", 20_000_000)
    assert kernel.shaping() == had and not kernel.deletes()


def test_a_missing_qdisc_kind_is_said_and_changes_nothing(kernel):
    tc.replace_root("x-p1", "eth0", 10_000_000)
    kernel.refuse = lambda kind, parent: errno.ENOENT if kind == "netem" else 0
    with pytest.raises(tc.TcError, match="set netem .*: the kernel lacks this qdisc") as exc:
        tc.replace_root("x-p1", "eth0", 10_000_000, delay_us=20_000)
    assert exc.value.errno == errno.ENOENT and kernel.shaping() == tc.Shaping(rate_bits=10_000_000)


def test_a_delay_with_a_rate_is_netem_with_tbf_under_its_class(kernel):
    kernel.txqlen = 0  # the CNI plugin's veth
    tc.replace_root("x-p1", "eth0", 10_000_000, delay_us=20_000, jitter_us=5_000)
    assert [s[2:] for s in kernel.sent[:2]] == [(tc.ROOT_HANDLE, tc.TC_H_ROOT, "netem"),
                                                (tc.CHILD_HANDLE, tc.ROOT_HANDLE + 1, "tbf")]
    assert kernel.shaping() == tc.Shaping(rate_bits=10_000_000, delay_us=20_000, jitter_us=5_000)
    assert kernel.sent[-1][0] == rtnl.RTM_NEWLINK and kernel.txqlen == 0  # its txqueuelen 0 comes back


def test_another_kind_is_grafted_whole_under_a_handle_the_kernel_picks(kernel):
    tc.replace_root("x-p1", "eth0", 10_000_000)
    tc.replace_root("x-p1", "eth0", 10_000_000, delay_us=20_000)
    netem = kernel.root()
    assert netem["kind"] == "netem" and netem["handle"] == 0x80010000 and not kernel.deletes()
    assert kernel.sent[-1][2:] == (tc.CHILD_HANDLE, 0x80010001, "tbf")  # under the new netem's class
    tc.replace_root("x-p1", "eth0", 10_000_000)  # back to a rate alone: a new root tbf, grafted
    assert kernel.root()["kind"] == "tbf" and len(kernel.qdiscs) == 1 and not kernel.deletes()
    kernel.qdiscs = [{"handle": 0x10000, "parent": tc.TC_H_ROOT, "kind": "htb", "options": b""}]  # by hand
    tc.replace_root("x-p1", "eth0", 10_000_000)
    assert kernel.shaping() == tc.Shaping(rate_bits=10_000_000) and not kernel.deletes()


def test_a_delay_loses_its_rate_with_a_new_netem(kernel):
    tc.replace_root("x-p1", "eth0", 10_000_000, delay_us=20_000)
    tc.replace_root("x-p1", "eth0", None, delay_us=30_000)
    assert kernel.sent[-1][1] & nl.NLM_F_EXCL and kernel.sent[-1][2] == 0  # not the old netem, with its child
    assert kernel.shaping() == tc.Shaping(delay_us=30_000) and len(kernel.qdiscs) == 1


def test_a_second_step_refused_puts_back_what_the_first_changed(kernel):
    tc.replace_root("x-p1", "eth0", 10_000_000)
    kernel.refuse = lambda kind, parent: errno.EINVAL if parent != tc.TC_H_ROOT else 0
    with pytest.raises(tc.TcError, match=r"under netem .*: Invalid argument \(eth0 has its qdiscs as before again\)"):
        tc.replace_root("x-p1", "eth0", 20_000_000, delay_us=20_000)
    assert kernel.shaping() == tc.Shaping(rate_bits=10_000_000)


def test_nothing_wanted_deletes_the_root_and_a_missing_interface_is_one_line(kernel):
    tc.replace_root("x-p1", "eth0", 10_000_000)
    tc.replace_root("x-p1", "eth0", None)
    assert kernel.deletes() == [(DEL, 0, 0, tc.TC_H_ROOT, "")] and kernel.shaping() == tc.Shaping()
    tc.delete_root("x-p1", "eth0")  # only the default there: nothing to do
    with pytest.raises(tc.TcError, match="^eth9 does not exist in x-p1$"):
        tc.replace_root("x-p1", "eth9", 1_000_000)


def test_every_parameter_netlab_sets_is_read_back_and_another_is_named():
    """A burst, a latency (limit), a peakrate, an overhead changed behind netlab's back were not seen: only the
    rate was compared. Each is now named in tc's words; netlab's own tbf and netem have none."""
    def tbf(**change) -> tc.Shaping:
        parms = list(tc.TBF_QOPT.unpack_from(nl.attrs(tc.tbf_options(10_000_000))[tc.TCA_TBF_PARMS]))
        for i, v in change.items():
            parms[int(i[1:])] = v
        body = tc.TCMSG.pack(0, 2, tc.ROOT_HANDLE, tc.TC_H_ROOT, 1) + nl.string(tc.TCA_KIND, "tbf") + \
            nl.attr(tc.TCA_OPTIONS, nl.attr(tc.TCA_TBF_PARMS, tc.TBF_QOPT.pack(*parms)))
        return tc.shaping_of([tc.parse_qdisc(nl.Msg(NEW, 0, 0, body))])

    assert tbf() == tc.Shaping(rate_bits=10_000_000) and tbf(f1=1) == tc.Shaping(rate_bits=10_000_000)
    ticks = tc.TBF_QOPT.unpack_from(nl.attrs(tc.tbf_options(10_000_000))[tc.TCA_TBF_PARMS])[13]
    assert tbf(f13=ticks * 8).off == ("burst 100000b",)
    assert tbf(f12=6_262_500).off == ("limit 6262500b",)
    assert tbf(f2=20, f4=64).off == ("overhead 20", "mpu 64") and tbf(f1=2).off == ("linklayer atm",)
    assert tbf(f11=2_500_000, f14=100).off == ("peakrate 20000000bit",)
    netem = tc.netem_options(20_000)
    assert tc.parse_qdisc(nl.Msg(NEW, 0, 0, tc.TCMSG.pack(0, 2, 1, tc.TC_H_ROOT, 1) + nl.string(tc.TCA_KIND, "netem")
                                 + nl.attr(tc.TCA_OPTIONS, netem))).off == ()
    changed = tc.NETEM_QOPT.pack(*tc.NETEM_QOPT.unpack(netem)[:1], 50, tc.U32_MAX // 20, 0, 0, 0) + \
        nl.attr(3, struct.pack("=II", tc.U32_MAX // 4, 0))
    q = tc.parse_qdisc(nl.Msg(NEW, 0, 0, tc.TCMSG.pack(0, 2, 1, tc.TC_H_ROOT, 1) + nl.string(tc.TCA_KIND, "netem")
                              + nl.attr(tc.TCA_OPTIONS, changed)))
    assert q.off == ("limit 50", "loss 5%", "reorder")


def test_a_netem_with_attributes_netlab_does_not_send_is_replaced_whole(kernel):
    # A change in place would keep the reorder the request leaves out: a new netem is grafted, the tbf under it.
    reorder = tc.netem_options(20_000) + nl.attr(3, struct.pack("=II", tc.U32_MAX // 4, 0))
    kernel.qdiscs = [{"handle": tc.ROOT_HANDLE, "parent": tc.TC_H_ROOT, "kind": "netem", "options": reorder},
                     {"handle": tc.CHILD_HANDLE, "parent": tc.ROOT_HANDLE + 1, "kind": "tbf",
                      "options": tc.tbf_options(10_000_000)}]
    tc.replace_root("ns", "eth0", 10_000_000, 20_000)
    assert kernel.shaping() == tc.Shaping(rate_bits=10_000_000, delay_us=20_000)
    assert not kernel.deletes() and len(kernel.qdiscs) == 2
    (netem,) = [s for s in kernel.sent if s[4] == "netem"]
    assert netem[1] & nl.NLM_F_EXCL and netem[2] == 0  # a new one the kernel grafts, not a change in place


@pytest.mark.parametrize("text, stored", [("333333bit", 333328), ("10.3kbit", 10296), ("333339bit", 333336),
                                          ("10mbit", 10_000_000)])
def test_a_rate_of_no_whole_bytes_is_planned_set_and_read_as_the_kernel_stores_it(text, stored):
    """tc (get_rate64) and the kernel keep a rate in whole bytes a second, rounded down (`tc qdisc add ... tbf
    rate 333333bit` shows 333328bit, burst 3199b): the token bucket was computed from 41666.625 bytes a second,
    read back against 41666, and its burst never matched: status drifted forever and `up --watch` reset the
    qdisc twice a second."""
    from netlab.impair import lifecycle
    from netlab.model.impair import describe

    want = lifecycle.shaping({"rate": text})
    assert want.rate_bits == stored
    parms = tc.TBF_QOPT.unpack_from(nl.attrs(tc.tbf_options(want.rate_bits))[tc.TCA_TBF_PARMS])
    assert parms[5] == stored // 8 and parms[13] == tc._xmittime(stored // 8, tc.burst_bytes(stored))
    have = tc.shaping_of([tc.parse_qdisc(dumped_tbf(want.rate_bits))])
    assert have.off == () and lifecycle.same(have, want), have
    # Where the rate is shown, the rounding is said when there is one.
    rounded = f"rate {text} ({stored}bit: whole bytes a second)"
    assert describe({"rate": text}) == (f"rate {text}" if text == "10mbit" else rounded)
