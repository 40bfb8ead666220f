"""A container's recorded task against the pod's namespaces (workload/tasks.py), the kernel's answers faked.

An inode number of a namespace is reused once its namespace is freed: a pod's
network namespace deleted under a container that had left it for one of its
own (``unshare --net``) is freed at once, and the one ``up`` makes again may
get its number. The pin's change time tells them apart (processes.ns_birth);
test_workload.py's live test meets the case only when the kernel happens to
hand the number out again.
"""

from __future__ import annotations

import pytest

from netlab.kernel import processes as proc
from netlab.workload import tasks

POD_NS = "lab-own"
UTS = "/run/netlab/lab/uts/own"
FIRST = (4, 4026532300, 1796123767472362097)  # the pod's namespace when the container started


@pytest.fixture
def kernel(monkeypatch):
    """The container (pid 77) lives in a namespace of its own (inode 4026532399), in the pod's UTS."""
    facts = {"pod": FIRST}
    monkeypatch.setattr(proc, "ns_birth", lambda path: facts["pod"] if path.endswith(POD_NS) else None)
    monkeypatch.setattr(proc, "task_state", lambda p: "S")
    uts_ident = (4, 4026532000)
    monkeypatch.setattr(proc, "ns_identity", lambda path: {
        f"/run/netns/{POD_NS}": facts["pod"][:2], "/proc/77/ns/net": (4, 4026532399),
        UTS: uts_ident, "/proc/77/ns/uts": uts_ident}.get(path))
    return facts


def record(net) -> dict:
    return {"pid": 77, "start": 5, "argv": ["unshare", "--net", "sleep", "infinity"], "net": list(net)}


def test_a_container_in_its_own_namespace_runs_as_specified_while_the_pods_is_the_same(kernel):
    crec = record(FIRST)
    assert tasks.in_own_netns(crec, POD_NS) == "S"
    assert not tasks.in_old_sandbox(crec, UTS, POD_NS)
    assert tasks.why_replace(crec, crec["argv"], POD_NS, UTS) is None


def test_the_pods_namespace_made_again_with_the_old_inode_number_is_told_by_its_pin(kernel):
    kernel["pod"] = FIRST[:2] + (FIRST[2] + 1_000_000,)  # the number handed out again, a new pin
    crec = record(FIRST)
    assert tasks.in_own_netns(crec, POD_NS) is None
    assert tasks.in_old_sandbox(crec, UTS, POD_NS)
    assert tasks.why_replace(crec, crec["argv"], POD_NS, UTS) == tasks.SANDBOX_REMADE


def test_a_record_of_an_older_netlab_compares_the_inode_alone(kernel):
    crec = record(FIRST[:2])
    assert tasks.why_replace(crec, crec["argv"], POD_NS, UTS) is None
    kernel["pod"] = (4, 4026532301, 1)
    assert tasks.why_replace(crec, crec["argv"], POD_NS, UTS) == tasks.SANDBOX_REMADE
