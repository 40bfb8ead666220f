"""A chained plugin whose CHECK fails on its own fresh ADD (QA cnicheck 1), with Debian's bridge and host-local
before it (root, real namespaces): ``qcheck``, written into the test's tmp_path, passes its prevResult on at ADD and
answers every CHECK with exit 1 and ``{"code": 13, ...}``.

Before, ``up`` DELed and ADDed both pods each time it ran and exited 0 ("re-attached pod a through CNI (CHECK
said ...)"), status still failing, and ``up --watch`` did so every resync, forever (80 ADDs in 40 s), each with a
new veth and MAC. Now the first ``up`` that re-attaches runs CHECK once after the ADD and says so naming the
plugin, exit 1 (as status; nothing rolled back); the pods keep that attachment (traffic flows), and neither a
later ``up`` nor the watcher ADDs them again: the watcher's repair of them fails and backs off, while a route
deleted on a node is repaired at once (review cnicheck2 1: it waited for that back-off, 23.6 s, and each later round
said the pods' failure again as a new one, with the first round's events). The ADDs are counted in the lab's CNI
call log."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from helpers import ip, ip_json, netlab
from netlab.cni.changed import AGAIN, FIRST
from netlab.feature import fresh_check_fix
from watching import Watcher

pytestmark = pytest.mark.root

STATE = os.environ.get("NETLAB_STATE_DIR") or "/run/netlab"

QCHECK = """#!/usr/bin/python3
import json, os, sys
conf = json.load(sys.stdin)
cmd = os.environ["CNI_COMMAND"]
if cmd == "VERSION":
    print(json.dumps({{"cniVersion": "1.0.0", "supportedVersions": ["0.4.0", "1.0.0"]}}))
elif cmd == "ADD":
    print(json.dumps(conf["prevResult"]))
elif cmd == "CHECK" and os.path.exists({broken!r}):
    print(json.dumps({{"cniVersion": "1.0.0", "code": 13, "msg": "qcheck always fails"}}))
    sys.exit(1)
"""

CONFLIST = {"cniVersion": "1.0.0", "name": "ccchk", "plugins": [
    {"type": "bridge", "bridge": "ccbr0", "isGateway": True, "isDefaultGateway": True,
     "ipam": {"type": "host-local"}, "capabilities": {"ips": True, "ipRanges": True}},
    {"type": "qcheck"}]}

SAID = "pod a: CNI plugin qcheck's CHECK fails on its own fresh ADD: failed (exit 1): qcheck always fails [code 13]"


def _adds(lab: str) -> int:
    calls = [json.loads(line) for line in Path(STATE, lab, "cni", "calls.jsonl").read_text().splitlines()]
    return sum(1 for c in calls if (c["plugin"], c["command"]) == ("qcheck", "ADD"))


def _eth0(lab: str, pod: str) -> tuple[str, list[str]]:
    out = subprocess.run(["ip", "-n", f"{lab}-{pod}", "-j", "addr", "show", "eth0"], check=True,
                         capture_output=True, text=True).stdout
    [link] = json.loads(out)
    return link["address"], [a["local"] for a in link["addr_info"] if a["family"] == "inet"]


def _probed(lab: str) -> None:
    out = json.loads(netlab("probe", "--lab", lab, "--no-services", "-o", "json").stdout)
    assert out["ok"] and any((p["source"], p["destination"], p["protocol"]) == ("a", "b", "icmp")
                             for p in out["probes"]), out


def _route_repaired(watcher: Watcher, lab: str) -> str:
    """Node n1's route to n2's pods deleted by hand: the watcher's line that repaired it (the route is back)."""
    after = len(watcher.lines)
    ip("route", "del", "10.244.1.0/24", netns=f"{lab}-n1")
    line = watcher.wait_for_line(f"route 10.244.1.0/24 via 192.168.122.3 dev eth0 in {lab}-n1", timeout=60,
                                 after=after)
    assert "10.244.1.0/24" in [r["dst"] for r in ip_json("route", netns=f"{lab}-n1")], line
    return line


def test_a_check_failing_its_own_add_fails_up_once_and_the_watcher_backs_off_without_adding(labs, tmp_path):
    broken = tmp_path / "broken"
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "qcheck").write_text(QCHECK.format(broken=str(broken)))
    (tmp_path / "bin" / "qcheck").chmod(0o755)
    (tmp_path / "net.conflist").write_text(json.dumps(CONFLIST))
    lab = labs.name("cc")
    path, _ = labs.up(f"name: {lab}\nnetwork: {{mode: host-gw, cni: {{conflist: ./net.conflist, binDir: ./bin}}}}\n"
                      "nodes: [{name: n1, podCIDR: 10.244.0.0/24}, {name: n2, podCIDR: 10.244.1.0/24}]\npods:\n"
                      "  - {name: a, node: n1}\n  - {name: b, node: n1}\n")
    assert _adds(lab) == 2
    # The watcher of a healthy lab; then qcheck's CHECK starts failing (a plugin upgraded under a running lab).
    watcher = Watcher(None, lab=lab, resync="1", backoff="0.5")
    try:
        broken.write_text("")
        first = watcher.wait_for_line("repair failed: ", timeout=60)
        assert f"repair failed: {SAID}; pod a keeps that attachment" in first and "retry in" in first, first
        assert _adds(lab) == 4  # its first repair re-attached each pod once: then its CHECK failed the fresh ADD
        mac_a, ips_a = _eth0(lab, "a")
        # The lab's own drift is repaired at once, while the pods' hold lasts and after it, twice over: each line
        # says its own event alone, and the pods' known failure is no new one (no line says it again).
        for _ in range(2):
            repaired = _route_repaired(watcher, lab)
            assert "did: replace route 10.244.1.0/24 " in repaired and "repair failed" not in repaired and \
                "fresh ADD" not in repaired, repaired
        assert f"in {lab}-a" not in repaired, repaired  # the re-attach's events were said (by the line after it)
        lines = list(watcher.lines)
    finally:
        assert watcher.stop() == 0, watcher.lines
    assert [line for line in lines if "repair failed" in line] == [first], lines
    assert _adds(lab) == 4, watcher.lines  # (before, 80 ADDs in 40 s)
    assert ips_a and _eth0(lab, "a") == (mac_a, ips_a)  # the same eth0, not a new one per round
    _probed(lab)  # the pods keep that attachment: traffic flows
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1 and "(as right after its own fresh ADD: up does not re-attach the pod for it)" \
        in status.stdout, status.stdout
    again = netlab("up", "-t", path, check=False)
    assert again.returncode == 1 and "CNI plugin qcheck's CHECK fails on its own fresh ADD" in again.stderr, again
    assert _adds(lab) == 4
    # Mended, its CHECK passes: nothing is re-attached, the lab is as planned.
    broken.unlink()
    assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")
    netlab("up", "-t", path)
    assert _adds(lab) == 4


def test_up_twice_fails_the_second_naming_the_plugin_without_re_attaching(labs, tmp_path):
    """QA's own steps: `up -t F` twice, the CHECK failing from the start: the second up re-attached each pod and
    exited 0; then it re-attached it once and failed naming qcheck; now the pod's first CHECK since its ADD fails
    with the pod as that ADD made it (cni/first_check.py): the second up fails naming qcheck at once (exit 1, as
    status: the lab stays up) and ADDs nothing, nor does a third."""
    broken = tmp_path / "broken"
    broken.write_text("")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "qcheck").write_text(QCHECK.format(broken=str(broken)))
    (tmp_path / "bin" / "qcheck").chmod(0o755)
    (tmp_path / "net.conflist").write_text(json.dumps(CONFLIST))
    lab = labs.name("cc")
    text = (f"name: {lab}\nnetwork: {{mode: host-gw, cni: {{conflist: ./net.conflist, binDir: ./bin}}}}\n"
            "nodes: [{name: n1, podCIDR: 10.244.0.0/24}]\npods:\n  - {name: a, node: n1}\n")
    path, _ = labs.up(text)  # no CHECK after a pod's first ADD, as a kubelet runs none
    second = netlab("up", "-t", path, check=False)  # the lab stays up: exit 1, as status says it
    first = SAID.replace(" ADD: ", f" ADD{FIRST}: ")
    assert second.returncode == 1 and f"netlab: {first}; pod a keeps that attachment" in second.stderr, second
    assert "nothing rolled back" not in second.stderr and "rolled back" not in second.stderr, second
    assert _adds(lab) == 1
    third = netlab("up", "-t", path, check=False)
    assert third.returncode == 1 and AGAIN in third.stderr, third
    assert "nothing changed, but not all of it is as asked (below)" in third.stdout, third
    assert _adds(lab) == 1


COUNTING = QCHECK.replace('''    print(json.dumps({{"cniVersion": "1.0.0", "code": 13, "msg": "qcheck always fails"}}))''', '''    n = int(open({count!r}).read() or 0) + 1 if os.path.exists({count!r}) else 1
    open({count!r}, "w").write(str(n))
    print(json.dumps({{"cniVersion": "1.0.0", "code": 13, "msg": "qcheck failure #%d (pid %d)" % (n, os.getpid())}}))''')


def test_a_check_whose_msg_counts_its_calls_is_re_attached_once_not_by_every_up(labs, tmp_path):
    """qcheck's CHECK says a new number at each call (a counter and its pid): the mark up keeps of the failure right
    after the pod's fresh ADD never matched it again, so every `up` DELed and ADDed the pod anew (exit 1 each time,
    the lease, veth and MAC new). Its numbers aside it is the same failure: the second up marks it (the pod's first
    CHECK since its ADD, the pod as that ADD made it) and later ones say it as found before, and none ADDs."""
    broken = tmp_path / "broken"
    broken.write_text("")
    assert "qcheck failure #%d" in COUNTING
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "qcheck").write_text(COUNTING.format(broken=str(broken), count=str(tmp_path / "count")))
    (tmp_path / "bin" / "qcheck").chmod(0o755)
    (tmp_path / "net.conflist").write_text(json.dumps(CONFLIST))
    lab = labs.name("cc")
    path, _ = labs.up(f"name: {lab}\nnetwork: {{mode: host-gw, cni: {{conflist: ./net.conflist, binDir: ./bin}}}}\n"
                      "nodes: [{name: n1, podCIDR: 10.244.0.0/24}]\npods:\n  - {name: a, node: n1}\n")
    second = netlab("up", "-t", path, check=False)  # CHECK #1 fails the pod as its ADD made it: marked
    assert second.returncode == 1 and f"CNI plugin qcheck's CHECK fails on its own fresh ADD{FIRST}: failed (exit " \
        "1): qcheck failure #1 (pid " in second.stderr, second
    assert _adds(lab) == 1
    mac = _eth0(lab, "a")
    for n in (2, 3):
        again = netlab("up", "-t", path, check=False)
        assert again.returncode == 1 and AGAIN in again.stderr and f"qcheck failure #{n} (pid " in again.stderr, again
        assert _adds(lab) == 1 and _eth0(lab, "a") == mac  # (before: one more ADD, a new eth0, every up)
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1 and "(as right after its own fresh ADD: up does not re-attach the pod for it)" \
        in status.stdout, status.stdout


OTHER = QCHECK.replace('"msg": "qcheck always fails"', '"msg": "qcheck always fails" if not os.path.exists({other!r}) '
                       'else "qcheck: route 10.96.0.0/12 is missing"')


def test_the_watchers_own_first_up_holds_back_the_pods_its_check_fails_from_that_round(labs, tmp_path):
    """`up --watch` of a lab whose pods' chain no longer matches them: its own first up re-attached each pod and their
    CHECK failed that fresh ADD. It said so and "watching", but held nothing back: a later failure of another kind
    had the next round re-attach both pods again at once (the hold began only then). Now the first line says the
    hold (retry in ... of pods a, b alone), and within it a round that repairs a route deleted on the node ADDs no
    pod again (the ADDs counted in the lab's CNI call log)."""
    broken, other = tmp_path / "broken", tmp_path / "other"
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "qcheck").write_text(OTHER.format(broken=str(broken), other=str(other)))
    (tmp_path / "bin" / "qcheck").chmod(0o755)
    (tmp_path / "net.conflist").write_text(json.dumps(CONFLIST))
    lab = labs.name("cc")
    labs.up(f"name: {lab}\nnetwork: {{mode: host-gw, cni: {{conflist: ./net.conflist, binDir: ./bin}}}}\n"
            "nodes: [{name: n1, podCIDR: 10.244.0.0/24}, {name: n2, podCIDR: 10.244.1.0/24}]\npods:\n"
            "  - {name: a, node: n1}\n  - {name: b, node: n1}\n")
    # the pods' first CHECK since their ADD passes (else a failing one, the pods as their ADD made them, would be the
    # plugin's own at once: tests/integration/test_cni_first_check_live.py)
    assert netlab("status", "--lab", lab).stdout.endswith("all as planned\n")
    broken.write_text("")  # a plugin upgraded under the lab, before its watcher starts
    watcher = Watcher(None, lab=lab, resync="1", backoff="300")  # a hold of 300 s: the test ends well within it
    try:
        first = watcher.wait_for_line("watching", timeout=60)
        assert f"; repair failed: {SAID}" in first and "retry in 300.0s (of pods a, b alone, for a failure other than " \
            f"this); {fresh_check_fix('qcheck')}; watching" in first, first  # what mends it, as up and status say it: once
        assert first.count('"disableCheck": true') == 1, first
        assert _adds(lab) == 4  # the first up re-attached each pod once
        other.write_text("")  # the pods' chain now fails otherwise: their re-attach waits for their hold
        repaired = _route_repaired(watcher, lab)
        assert "re-attached" not in repaired and "fresh ADD" not in repaired, repaired
        lines = list(watcher.lines)
    finally:
        assert watcher.stop() == 0, watcher.lines
    assert _adds(lab) == 4, lines
