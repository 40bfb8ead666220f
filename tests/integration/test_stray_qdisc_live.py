"""A root qdisc added by hand on an interface the lab does not impair: `status` names it (the cause of the txqueuelen
the kernel then gives the device), `up` takes it off, and real traffic gets through again.

QA: ``tc qdisc add dev flannel.1 root tbf rate 8kbit ...`` on a node was seen only as "txqlen 1000 (want 0)"; up set
the txqueuelen back and left the 8 kbit/s qdisc, and status said "as planned" while cross-node pings lost 75%.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from helpers import as_planned_here, in_netns, lab_up, netlab, unique_lab, write_topology
from netlab import Lab

pytestmark = pytest.mark.root


def topology(name: str) -> str:
    return f"""\
name: {name}
network: {{mode: vxlan}}
nodes:
  - name: n1
  - name: n2
pods:
  - name: a
    node: n1
  - name: b
    node: n2
  - name: shaped
    node: n2
    impair:
      eth0: {{rate: 20mbit}}
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    name = unique_lab("nd")
    path = write_topology(tmp_path_factory.mktemp("stray"), topology(name))
    with lab_up(path, name, in_process=True):
        yield name, path


def roots(netns: str, dev: str) -> list[dict]:
    out = subprocess.run(["tc", "-j", "-n", netns, "qdisc", "show", "dev", dev], capture_output=True, text=True,
                         check=True).stdout
    return [q for q in json.loads(out) if q.get("root")]


def txqlen(netns: str, dev: str) -> int:
    (link,) = json.loads(subprocess.run(["ip", "-j", "-n", netns, "link", "show", "dev", dev], capture_output=True,
                                        text=True, check=True).stdout)
    return link.get("txqlen", 0)


def loss(lab: str, src: str, dst: str) -> int:
    out = in_netns(f"{lab}-{src}", "ping", "-q", "-n", "-c", "100", "-i", "0.005", "-W", "1", "-s", "200",
                   Lab(lab).pod(dst).ip, timeout=30).stdout
    return int(re.search(r"(\d+)% packet loss", out).group(1))


def test_a_hand_made_qdisc_on_flannel_is_drift_and_up_takes_it_off(lab):
    name, path = lab
    node = f"{name}-n1"
    assert [(q["kind"], q["handle"]) for q in roots(node, "flannel.1")] == [("noqueue", "0:")]  # the kernel's
    assert loss(name, "a", "b") == 0
    subprocess.run(["tc", "-n", node, "qdisc", "add", "dev", "flannel.1", "root", "tbf", "rate", "8kbit", "burst",
                    "1600", "latency", "1ms"], check=True)
    assert txqlen(node, "flannel.1") == 1000  # the kernel's doing, for a qdisc on a txqueuelen-0 device
    assert loss(name, "a", "b") > 30
    drift = netlab("status", "--lab", name, check=False)
    assert drift.returncode == 1, drift.stdout
    line = next(line for line in drift.stdout.splitlines() if "flannel.1" in line)
    assert "root qdisc tbf rate 8kbit" in line and "txqlen 1000" in line, drift.stdout
    as_json = json.loads(netlab("status", "--lab", name, "-o", "json", check=False).stdout)
    assert any("root qdisc tbf rate 8kbit" in d["detail"] for d in as_json["details"]), as_json
    fixed = netlab("up", "-t", path)
    assert f"flannel.1 in {node}" in fixed.stdout and "tbf rate 8kbit" in fixed.stdout, fixed.stdout
    assert [(q["kind"], q["handle"]) for q in roots(node, "flannel.1")] == [("noqueue", "0:")]
    assert txqlen(node, "flannel.1") == 0
    assert loss(name, "a", "b") == 0
    assert as_planned_here(name)


def test_a_hand_made_qdisc_on_a_pods_eth0_is_drift_and_the_impaired_one_stays(lab):
    name, path = lab
    pod = f"{name}-b"
    subprocess.run(["tc", "-n", pod, "qdisc", "add", "dev", "eth0", "root", "handle", "1:", "htb"], check=True)
    drift = netlab("status", "--lab", name, check=False)
    assert drift.returncode == 1
    assert re.search(rf"eth0 in {pod}.*root qdisc htb added", drift.stdout), drift.stdout
    assert "shaped" not in drift.stdout  # its tbf is the topology's
    fixed = netlab("up", "-t", path)
    assert f"eth0 in {pod}" in fixed.stdout, fixed.stdout
    assert [(q["kind"], q["handle"]) for q in roots(pod, "eth0")] == [("noqueue", "0:")]
    assert [q["kind"] for q in roots(f"{name}-shaped", "eth0")] == ["tbf"]
    assert as_planned_here(name)


# cBPF in direct-action mode, `ret #2`: TC_ACT_SHOT for every frame (this kernel has cls_bpf, not gact or matchall)
DROP_ALL = ["bpf", "da", "bytecode", "1,6 0 0 2"]


def qdiscs(netns: str, dev: str) -> list[tuple[str, str]]:
    out = subprocess.run(["tc", "-j", "-n", netns, "qdisc", "show", "dev", dev], capture_output=True, text=True,
                         check=True).stdout
    return [(q["kind"], q["parent"] if "parent" in q else "root") for q in json.loads(out)]


@pytest.mark.parametrize("kind", ["ingress", "clsact"])
def test_an_ingress_qdisc_with_a_drop_filter_is_drift_and_up_takes_it_off(lab, kind):
    """One on the impaired pod's eth0 too: the impairment's tbf is the root, the ingress qdisc is nobody's."""
    name, path = lab
    node, pod = f"{name}-n2", f"{name}-shaped"
    for ns in (node, pod):
        subprocess.run(["tc", "-n", ns, "qdisc", "add", "dev", "flannel.1" if ns == node else "eth0", kind],
                       check=True)
    subprocess.run(["tc", "-n", node, "filter", "add", "dev", "flannel.1", "ingress" if kind == "clsact" else
                    "parent", *([] if kind == "clsact" else ["ffff:"]), *DROP_ALL], check=True)
    # clsact: a u32 filter on each side of the pod's eth0 (no action: all pass): u32's hash tables are the
    # qdisc's, so each side's dump lists both; two filters, not four (QA fx61a 2)
    for side in ("ingress", "egress") if kind == "clsact" else ():
        subprocess.run(["tc", "-n", pod, "filter", "add", "dev", "eth0", side, "protocol", "ip", "u32", "match",
                        "u32", "0", "0"], check=True)  # no action: act_gact may be missing
    pods = "2 filters" if kind == "clsact" else "no filter"
    acts = "takes in and what it sends" if kind == "clsact" else "takes in"
    assert loss(name, "a", "b") == 100  # b's node takes in nothing from the other node
    drift = netlab("status", "--lab", name, check=False)
    assert drift.returncode == 1, drift.stdout
    line = next(line for line in drift.stdout.splitlines() if f"flannel.1 in {node}" in line)
    assert f"{kind} qdisc with 1 filter added (want none: its filters act on what flannel.1 {acts})" in line, line
    line = next(line for line in drift.stdout.splitlines() if f"eth0 in {pod}" in line)
    assert f"{kind} qdisc with {pods} added" in line and "tbf" not in line, drift.stdout
    fixed = netlab("up", "-t", path)
    assert f"removed the {kind} qdisc with 1 filter from flannel.1 in {node}" in fixed.stdout, fixed.stdout
    assert f"removed the {kind} qdisc with {pods} from eth0 in {pod}" in fixed.stdout, fixed.stdout
    assert qdiscs(node, "flannel.1") == [("noqueue", "root")]
    assert [k for k, _ in qdiscs(pod, "eth0")] == ["tbf"]  # the impairment's stays
    assert txqlen(node, "flannel.1") == 0
    assert loss(name, "a", "b") == 0
    assert as_planned_here(name)


def test_a_failed_up_puts_back_the_hand_made_qdisc_with_the_txqlen_it_came_with(lab):
    """The removal is journaled as the txqueuelen's repair is: an up failing at any step after either leaves the
    node as it found it (before, a rollback set txqlen 1000 back with no qdisc: a txqlen drift with no cause)."""
    name, path = lab
    node = f"{name}-n1"
    subprocess.run(["tc", "-n", node, "qdisc", "add", "dev", "flannel.1", "root", "tbf", "rate", "8kbit", "burst",
                    "1600", "latency", "1ms"], check=True)
    before = roots(node, "flannel.1")
    drift = netlab("status", "--lab", name, check=False).stdout
    line = next(line for line in drift.splitlines() if "flannel.1" in line)
    removal_at, last_failed = None, 0
    for at in range(1, 20):
        run = netlab("up", "--lab", name, check=False, env={"NETLAB_FAULT_AT": str(at)})
        if run.returncode == 0:
            break
        assert "rolled back" in run.stderr, run.stderr
        removal_at = removal_at or (at if "(del root qdisc tbf" in run.stderr else None)
        last_failed = at
        assert [(q["kind"], q["handle"], q["options"]) for q in roots(node, "flannel.1")] == \
            [(q["kind"], q["handle"], q["options"]) for q in before], f"fault at {at}"
        assert txqlen(node, "flannel.1") == 1000, f"fault at {at}"
        if removal_at and at > removal_at:  # status names the same drift, and its cause
            assert line in netlab("status", "--lab", name, check=False).stdout.splitlines(), f"fault at {at}"
    else:
        raise AssertionError("up never got past the injected faults")
    assert removal_at is not None and last_failed > removal_at  # failures after the removal were rolled back too
    assert "removed root qdisc tbf rate 8kbit" in run.stdout, run.stdout
    assert [(q["kind"], q["handle"]) for q in roots(node, "flannel.1")] == [("noqueue", "0:")]
    assert txqlen(node, "flannel.1") == 0
    assert loss(name, "a", "b") == 0
    assert as_planned_here(name)


@pytest.mark.parametrize("ingress", [False, True])
def test_a_qdisc_already_gone_as_up_removes_it_is_told_from_one_it_removed(lab, ingress):
    """The real kernel's ENOENT: a root qdisc's deletion (RTM_DELQDISC where the kernel's own noqueue is, handle 0)
    and an ingress one's, where someone took it off since up read it, were said removed (impair/stray.py). And the
    root qdisc's command, as every resource's, is the `tc qdisc add` that makes it again: run, it does."""
    from netlab.impair import stray
    from netlab.kernel.live import LiveKernel
    from netlab.lab.journal import Journal
    from netlab.plan.resources import Link

    name, _ = lab
    node = f"{name}-n1"
    planned = Link(netns=node, name="flannel.1", mtu=1450, mac="")
    add = ["ingress"] if ingress else ["root", "handle", "8001:", "tbf", "rate", "8kbit", "burst", "1600", "latency",
                                       "1ms"]
    kernel = LiveKernel()
    try:
        subprocess.run(["tc", "-n", node, "qdisc", "add", "dev", "flannel.1", *add], check=True)
        before = roots(node, "flannel.1")
        (found,) = stray.found(node, kernel.snapshot(node), [planned], set())
        op = None if ingress else stray.root_qdisc_del(node, found)

        def remove() -> tuple[bool, str | None]:
            return stray.ingress_qdisc_del(node, found) if ingress else Journal(kernel).attempt(op)

        assert remove() == (True, None)
        assert remove() == (False, None)  # nothing there now: the kernel said ENOENT
        if op is not None:
            assert op.res.command() == f"tc -n {node} qdisc add dev flannel.1 root handle 8001: tbf rate 8000bit " \
                "burst 1600b limit 1601b"
            subprocess.run(op.res.command().split(), check=True)
            assert [(q["kind"], q["handle"], q["options"]) for q in roots(node, "flannel.1")] == \
                [(q["kind"], q["handle"], q["options"]) for q in before]
            subprocess.run(["tc", "-n", node, "qdisc", "del", "dev", "flannel.1", "root"], check=True)
    finally:
        kernel.close()
    assert qdiscs(node, "flannel.1") == [("noqueue", "root")]
    netlab("up", "--lab", name)  # the txqlen the kernel gave flannel.1 with the tbf
    assert as_planned_here(name)


def classes(netns: str, dev: str) -> list[str]:
    """The classes' handles, as `tc class show` prints them (`class htb 1:10 root ...`: this tc has no JSON there)."""
    out = subprocess.run(["tc", "-n", netns, "class", "show", "dev", dev], capture_output=True, text=True,
                         check=True).stdout
    return sorted(line.split()[2] for line in out.splitlines() if line.startswith("class "))


def filters(netns: str, dev: str) -> list[dict]:
    out = subprocess.run(["tc", "-j", "-n", netns, "filter", "show", "dev", dev, "parent", "1:"], capture_output=True,
                         text=True, check=True).stdout
    return [f for f in json.loads(out or "[]") if f.get("options", {}).get("match")]


def htb_tree(netns: str) -> None:
    """htb with two classes, a pfifo under one, and a u32 filter sending one address to the other: what `tc qdisc
    del ... root` takes with the qdisc."""
    tc = ["tc", "-n", netns]
    subprocess.run([*tc, "qdisc", "replace", "dev", "eth0", "root", "handle", "1:", "htb", "default", "10"], check=True)
    for minor, rate in (("10", "100mbit"), ("20", "1mbit")):
        subprocess.run([*tc, "class", "add", "dev", "eth0", "parent", "1:", "classid", f"1:{minor}", "htb", "rate",
                        rate], check=True)
    subprocess.run([*tc, "qdisc", "add", "dev", "eth0", "parent", "1:10", "handle", "10:", "pfifo"], check=True)
    subprocess.run([*tc, "filter", "add", "dev", "eth0", "parent", "1:", "protocol", "ip", "u32", "match", "ip", "dst",
                    "192.0.2.1/32", "flowid", "1:20"], check=True)  # no action: act_gact may be missing


def test_a_rollback_says_what_hung_under_the_hand_made_qdisc_it_put_back_alone(lab):
    """A rollback adds the removed root qdisc again from its dump (its kind and options): its classes, the qdisc
    under one and its filter went with it and do not come back. The line after "rolled back" says so, naming them,
    and the kernel shows exactly that: htb again, no class, no filter."""
    name, path = lab
    pod = f"{name}-a"
    htb_tree(pod)
    assert classes(pod, "eth0") == ["1:10", "1:20"] and len(filters(pod, "eth0")) == 1
    removal_at = None
    for at in range(1, 20):
        run = netlab("up", "--lab", name, check=False, env={"NETLAB_FAULT_AT": str(at)})
        assert run.returncode == 4, run.stderr  # a fault at or before the removal: nothing of it to put back
        assert "under root qdisc" not in run.stderr and classes(pod, "eth0") == ["1:10", "1:20"], run.stderr
        if "(del root qdisc htb" in run.stderr:
            removal_at = at
            break
    assert removal_at is not None, "up never came to the removal"
    run = netlab("up", "--lab", name, check=False, env={"NETLAB_FAULT_AT": str(removal_at + 1)})
    assert run.returncode == 4 and run.stderr.startswith(f"netlab: injected fault at operation {removal_at + 1} ")
    assert run.stderr.rstrip().endswith(
        f"; rolled back, but for the 2 classes, 1 qdisc and 1 filter under root qdisc htb of eth0 in {pod}, which "
        "went with it (the rollback added the qdisc again alone)"), run.stderr
    assert [(q["kind"], q["handle"]) for q in roots(pod, "eth0")] == [("htb", "1:")]
    assert classes(pod, "eth0") == [] and filters(pod, "eth0") == []  # as the line says
    fixed = netlab("up", "--lab", name)
    assert f"removed root qdisc htb from eth0 in {pod}" in fixed.stdout, fixed.stdout
    assert as_planned_here(name)


def test_a_qdisc_replaced_since_up_read_it_is_left_and_said_changed(lab):
    """QA fx62r 1: up deleted the root qdisc whatever it was then (RTM_DELQDISC with handle 0): one someone put in
    place of the htb up read, between its read and its removal, went, said as the htb ("its 1 class went with it"),
    and a rollback would have put back the htb. The deletion names the handle up read: the kernel refuses another's
    (EINVAL, "Invalid handle"), and up leaves the new qdisc, journals nothing and says it changed since it read it."""
    import os

    from helpers import NETLAB
    name, path = lab
    pod = f"{name}-b"
    tc = ["tc", "-n", pod]
    subprocess.run([*tc, "qdisc", "add", "dev", "eth0", "root", "handle", "1:", "htb", "default", "10"], check=True)
    subprocess.run([*tc, "class", "add", "dev", "eth0", "parent", "1:", "classid", "1:10", "htb", "rate", "5mbit"],
                   check=True)
    try:
        proc = subprocess.Popen([*NETLAB, "up", "--lab", name], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "NETLAB_FAULT_POINT": "repair-read", "NETLAB_FAULT_MODE": "pause"})
        assert proc.stderr is not None and proc.stderr.readline() == "netlab: paused at repair-read (test hook)\n"
        subprocess.run([*tc, "qdisc", "replace", "dev", "eth0", "root", "handle", "7:", "tbf", "rate", "2mbit",
                        "burst", "16k", "latency", "20ms"], check=True)
        out, err = proc.communicate("\n", timeout=120)
        assert proc.returncode == 0, (out, err)
        assert [(q["kind"], q["handle"]) for q in roots(pod, "eth0")] == [("tbf", "7:")], (out, err)  # the user's, left
        assert "removed root qdisc htb" not in out and "went with it" not in out, out
        assert f"root qdisc htb of eth0 in {pod} changed since up read it (another root qdisc is there now): " \
            "left as it is" in out + err, (out, err)
    finally:
        subprocess.run([*tc, "qdisc", "del", "dev", "eth0", "root"], check=False)
    netlab("up", "--lab", name)
    assert as_planned_here(name)
