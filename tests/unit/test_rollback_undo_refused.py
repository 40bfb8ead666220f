"""A rollback whose take-back of one of the run's changes the kernel refuses says which, in its one line, after
"rolled back" (the fake kernel): the journal's undo returned them and the rollback dropped them, so the line said
"rolled back" of a lab left with the run's change (lf62c: a hand's htb the kernel would not take again came to be
named, by impair/stray.put_back_alone; any other take-back refused was still silent)."""

from __future__ import annotations

import errno

import pytest
from fake_lab import make_lab, status, up

from netlab.errors import ApplyFailed, netlab_command
from netlab.kernel.fake import FakeKernel
from netlab.plan.hand_qdisc import HandQdisc

lab = pytest.fixture(make_lab, name="lab")


def refused(op) -> int | None:
    """The run's last repair (fk-a's arp_ignore, its failure), and the take-back of its ip_forward write."""
    if op.verb == "write" and op.res.kind == "sysctl":
        if op.res.name == "net.ipv4.conf.all.arp_ignore" and op.res.value != "8":
            return errno.EPERM
        if op.res.name == "net.ipv4.ip_forward" and op.res.value == "0":
            return errno.EACCES
    return None


def test_an_undo_the_kernel_refuses_is_named_in_the_rollbacks_line(lab):
    k = FakeKernel()
    up(lab, k)
    k.ns["fk-n1"].sysctls["net.ipv4.ip_forward"] = "0"
    k.ns["fk-a"].sysctls["net.ipv4.conf.all.arp_ignore"] = "8"
    k.fail = refused
    with pytest.raises(ApplyFailed) as got:
        up(lab, k)
    k.fail = lambda op: None
    line = str(got.value)
    assert k.ns["fk-n1"].sysctls["net.ipv4.ip_forward"] == "1"  # the run's write stayed
    assert "\n" not in line and line.count("rolled back") == 1, line
    assert line.endswith("; rolled back, but for write sysctl net.ipv4.ip_forward in fk-n1 (Permission denied), "
                         f"which the kernel would not take back (`{netlab_command('up --lab fk')}` repairs it)"), line
    drift = [str(d) for d in status(lab, k).drift]
    assert not any("ip_forward" in d for d in drift), drift  # as planned: what the line's `up` leaves it
    assert any("arp_ignore" in d for d in drift), drift  # the repair that failed: still to do


def test_each_refused_take_back_is_named_once(lab):
    k = FakeKernel()
    up(lab, k)
    k.ns["fk-n1"].sysctls["net.ipv4.ip_forward"] = "0"
    k.ns["fk-n2"].sysctls["net.ipv4.ip_forward"] = "0"
    k.ns["fk-a"].sysctls["net.ipv4.conf.all.arp_ignore"] = "8"
    k.fail = refused
    with pytest.raises(ApplyFailed) as got:
        up(lab, k)
    line = str(got.value)
    assert line.endswith("; rolled back, but for write sysctl net.ipv4.ip_forward in fk-n2 (Permission denied); "
                         "write sysctl net.ipv4.ip_forward in fk-n1 (Permission denied), which the kernel would not "
                         f"take back (`{netlab_command('up --lab fk')}` repairs it)"), line


def test_a_hand_made_qdisc_the_kernel_would_not_take_again_is_named_once(lab):
    """Its take-back is impair/stray.put_back_alone's to say (with what hung under it): not the undo's too."""
    from test_stray_qdisc_rollback import hand_made_tbf, up as up_idle

    said = 0
    for at in range(1, 10):
        k = FakeKernel()
        up(lab, k)
        hand_made_tbf(k)
        k.fail = lambda op: errno.EINVAL if op.verb == "add" and isinstance(op.res, HandQdisc) else None
        try:
            up_idle(lab, k, fault_at=at)
        except ApplyFailed as exc:
            back = str(exc).partition("; rolled back")[2]  # what the rollback says (the failure may name the qdisc)
            if "tbf" in back:
                said += 1
                assert back.count("tbf") == 1 and "which the kernel would not take back" not in back, back
                assert back.startswith(", but for root qdisc tbf rate 8kbit of eth0 in fk-b, which the kernel would "
                                       "not take again as its dump gave it"), back
            continue
        break
    assert said > 0
