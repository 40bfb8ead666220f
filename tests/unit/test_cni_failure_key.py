"""cni.changed.failure_key: a pod's check_fails mark matches its CHECK's failure with the numbers that change from
one call to the next dropped (a counter, a time, a pid, a request id: those made every up re-attach the pod again).
It dropped every number, so "MTU 1400" and "MTU 1450" were one failure: a pod marked for the first (its CHECK fails
on its own fresh ADD) was not re-attached when its MTU later drifted to another value. A number that is the value
of a named setting (MTU, VLAN, VNI, port, table, metric, queue length) is the failure's, as an address is."""

from __future__ import annotations

import pytest

from netlab.cni.changed import failure_key


@pytest.mark.parametrize("one, other", [
    ("bridge: eth0 has MTU 1400, not the configured one", "bridge: eth0 has MTU 1450, not the configured one"),
    ("tuning: mtu=1400 on eth0", "tuning: mtu=1450 on eth0"),
    ("tuning: eth0's MTU is 1400", "tuning: eth0's MTU is 1450"),
    ("bridge: vlan 100 missing on the port", "bridge: vlan 200 missing on the port"),
    ("vxlan: VNI: 1 expected", "vxlan: VNI: 2 expected"),
    ("portmap: hostPort port 8080 not mapped", "portmap: hostPort port 8081 not mapped"),
    ("route: table 100 has no default", "route: table 101 has no default"),
])
def test_a_meaningful_number_makes_another_failure(one, other):
    assert failure_key(one) != failure_key(other)


@pytest.mark.parametrize("one, other", [
    ("check #3 failed at 08:10:53 (pid 402)", "check #4 failed at 08:10:54 (pid 403)"),
    ("MTU 1400: check #3 failed", "MTU 1400: check #4 failed"),  # the setting kept, the counter still dropped
    ("request 0123456789abcdef timed out", "request fedcba9876543210 timed out"),
    # A Go panic's stack (Debian's bandwidth CHECK): its pointers changed, and each up re-attached other pods (qa54)
    ("panic: nil map\ngoroutine 1 [running]:\nmain.cmdCheck(0xc00009e7e0)\n\t/build/main.go:239 +0x1d4",
     "panic: nil map\ngoroutine 1 [running]:\nmain.cmdCheck(0xc000112a20)\n\t/build/main.go:239 +0x1d4"),
])
def test_numbers_that_change_from_call_to_call_are_one_failure(one, other):
    assert failure_key(one) == failure_key(other)
