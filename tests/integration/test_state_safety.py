"""The lab's saved state under attack and under load (issue 9, sections 3 and 4).

- "one proceeds, the other waits" for real ``up`` and ``down`` racing on one lab;
- a corrupt state file (binary, a JSON list, wrong types, another version ...) is
  one line in every command, ``list`` still shows the other labs, and
  ``down --force`` takes the lab down by the tags on its namespaces, never by
  a path read from the file;
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import time

import pytest

from helpers import NETLAB, lab_namespaces, netlab, write_topology

pytestmark = pytest.mark.root


def small(lab: str) -> str:
    return f"name: {lab}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1}}, {{name: b, node: n1}}]\n"


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(NETLAB + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_line(proc: subprocess.Popen, text: bytes, within: float = 20.0) -> bytes:
    """Read the child's stderr until ``text`` shows up (the child keeps running)."""
    fd = proc.stderr.fileno()
    seen = b""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and text not in seen:
        if select.select([fd], [], [], 0.05)[0]:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            seen += chunk
    assert text in seen, f"never saw {text!r}: {seen!r}"
    return seen


@pytest.mark.parametrize("first", ["down", "up"])
def test_up_and_down_waiting_on_each_other_both_finish(labs, tmp_path, first):
    """Both wait on a lock this test holds, then race for it: whichever wins, neither crashes."""
    from netlab.realize import state

    lab = labs.name("ibl")
    path, _ = labs.up(small(lab))
    commands = {"down": ["down", "--lab", lab], "up": ["up", "-t", path]}
    order = [first, "up" if first == "down" else "down"]
    for _ in range(3):
        netlab("up", "-t", path)
        with state.LabLock(lab, "the test"):
            procs = {}
            for name in order:
                procs[name] = start(*commands[name])
                wait_for_line(procs[name], b"waiting for")
        outs = {name: p.communicate(timeout=120) for name, p in procs.items()}
        for name, p in procs.items():
            assert p.returncode == 0, (name, outs[name][1].decode())
            assert b"Traceback" not in outs[name][1]
        if state.load_state(lab) is None:
            assert lab_namespaces(lab) == []
        else:
            assert netlab("status", "--lab", lab, check=False).returncode == 0


# --- a corrupt state: one line everywhere, and a way down ---------------------------------


def svc_lab(lab: str) -> str:
    """One node, a Service (so pods get /etc/netns/<pod>/resolv.conf), two pods."""
    return f"""name: {lab}
nodes: [{{name: n1}}]
pods:
  - {{name: a, node: n1, labels: {{app: a}}}}
  - {{name: b, node: n1}}
services: [{{name: web, selector: {{app: a}}, ports: [{{port: 80, targetPort: 8080}}]}}]
"""


def state_file(lab: str) -> str:
    from netlab.realize import state

    return os.path.join(state.STATE_ROOT, lab, "state.json")


def corruptions(good: bytes, lab: str) -> dict[str, bytes]:
    data = json.loads(good)

    def edited(**changes) -> bytes:
        new = json.loads(good)
        for key, value in changes.items():
            if "." in key:
                first, second = key.split(".", 1)
                new[first][second] = value
            else:
                new[key] = value
        return json.dumps(new).encode()

    return {
        "binary": b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe" + bytes(range(256)),
        "empty": b"",
        "json-list": b"[1, 2, 3]",
        "json-string": b'"state"',
        "truncated": good[: len(good) // 2],
        "netns-a-list": edited(netns=[f"{lab}-n1"]),
        "run-id-a-number": edited(run_id=5),
        "unknown-version": edited(version=2),
        "unknown-phase": edited(phase="exploded"),
        "plan-of-strings": edited(plan=["veth"]),
        "topology-wrong": edited(topology={"name": lab, "nodes": "many"}),
        "other-lab": edited(lab="someone"),
        "netns-outside-lab": edited(netns={**data["netns"], "victim": "created"}),
        "netns-path": edited(netns={**data["netns"], "../../proc/1/ns/net": "created"}),
        "extra-wrong-type": edited(extra={"workload": {"version": 1, "pods": []}}),
    }


def test_a_corrupt_state_is_one_line_in_every_command_and_list_shows_the_others(labs, tmp_path):
    from netlab.realize import state

    good_lab = labs.name("ibg")
    path, _ = labs.up(f"name: {good_lab}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1}}]\n")
    good = open(state_file(good_lab), "rb").read()
    every = corruptions(good, good_lab)  # each kind is checked in-process in tests/unit/test_state_schema.py
    for kind in ("binary", "json-list", "netns-a-list", "unknown-version"):
        bad = every[kind]
        lab = labs.name("ibc")
        os.mkdir(os.path.join(state.STATE_ROOT, lab), 0o700)
        # The same corruption, for a lab of its own (no namespaces: nothing to break for real).
        with open(state_file(lab), "wb") as fh:
            fh.write(bad.replace(good_lab.encode(), lab.encode()))
        topo = write_topology(tmp_path, f"name: {lab}\nnodes: [{{name: n1}}]\n", f"{lab}.yaml")
        for args in (["status", "--lab", lab], ["graph", "--lab", lab], ["probe", "--lab", lab],
                     ["up", "-t", topo], ["down", "--lab", lab], ["exec", "--lab", lab, "a", "--", "true"]):
            proc = netlab(*args, check=False)
            where = f"{kind}: netlab {' '.join(args)}"
            assert proc.returncode == 3, (where, proc.returncode, proc.stderr)
            assert len(proc.stderr.splitlines()) == 1, (where, proc.stderr)
            assert "corrupt" in proc.stderr and "--force" in proc.stderr, (where, proc.stderr)
            assert "Traceback" not in proc.stderr
        listed = netlab("list", "-o", "json")
        rows = {r["lab"]: r for r in json.loads(listed.stdout)}
        assert rows[good_lab]["phase"] == "up", (kind, rows)
        assert rows[lab]["phase"] == "corrupt", (kind, rows)
        text = netlab("list")
        assert good_lab in text.stdout and lab in text.stdout and "Traceback" not in text.stderr
        gone = netlab("down", "--lab", lab, "--force")
        assert "Traceback" not in gone.stderr
        assert not os.path.exists(os.path.join(state.STATE_ROOT, lab)), kind
    assert netlab("status", "--lab", good_lab).returncode == 0


def test_force_takes_a_lab_with_a_corrupt_state_down_by_its_tags(labs, tmp_path):
    """Namespaces tagged netlab:<lab>:<run id> go; a look-alike without the tag, and a file the
    edited state points at, stay."""
    lab = labs.name("ibf")
    labs.up(svc_lab(lab))
    decoy_ns = f"{lab}-zz"
    subprocess.run(["ip", "netns", "add", decoy_ns], check=True)
    decoy_file = tmp_path / "decoy-resolv.conf"
    decoy_file.write_text("keep me\n")
    resolv = f"/etc/netns/{lab}-b/resolv.conf"
    try:
        assert os.path.isfile(resolv)
        data = json.load(open(state_file(lab)))
        data["extra"]["services"]["resolv"][f"{lab}-b"] = str(decoy_file)
        with open(state_file(lab), "w") as fh:
            json.dump(data, fh)
        refused = netlab("down", "--lab", lab, check=False)
        assert refused.returncode == 3 and "corrupt" in refused.stderr, refused.stderr
        assert decoy_file.read_text() == "keep me\n"
        assert f"{lab}-a" in lab_namespaces(lab)
        forced = netlab("down", "--lab", lab, "--force")
        assert "Traceback" not in forced.stderr
        assert lab_namespaces(lab) == [decoy_ns]
        assert decoy_file.read_text() == "keep me\n"
        assert not os.path.exists(resolv) and not os.path.exists(os.path.dirname(resolv))
        assert not os.path.exists(os.path.dirname(state_file(lab)))
        again = netlab("down", "--lab", lab, "--force")
        assert "not up" in again.stdout
    finally:
        subprocess.run(["ip", "netns", "del", decoy_ns], check=True)


def test_force_without_any_state_finds_the_tagged_namespaces(labs):
    lab = labs.name("ibn")
    labs.up(small(lab))
    os.unlink(state_file(lab))  # lost (the pods' UTS namespaces are still pinned in its directory)
    assert netlab("down", "--lab", lab).stdout.startswith(f"lab {lab} is not up")
    assert lab_namespaces(lab) != []
    out = netlab("down", "--lab", lab, "--force")
    assert lab_namespaces(lab) == [], out.stderr


# --- a namespace in the way: remove it only when proven stale ---------------------------------


def test_collision_with_another_running_lab_names_that_lab(labs, tmp_path):
    first = labs.name("ibk")
    labs.up(f"name: {first}\nnodes: [{{name: n1}}]\npods: [{{name: q-a, node: n1}}]\n")
    second = first + "-q"  # its pod a is {first}-q-a too
    labs.names.append(second)
    _, proc = labs.up(f"name: {second}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1}}]\n",
                      "second.yaml", check=False)
    assert proc.returncode == 4, proc.stderr
    assert f"belongs to lab {first}, which is up" in proc.stderr
    assert "ip netns del" not in proc.stderr and "Traceback" not in proc.stderr
    assert lab_namespaces(second) == [f"{first}-q-a"]  # the first lab's pod, untouched
    assert netlab("status", "--lab", first).returncode == 0


def test_collision_with_a_stale_tagged_namespace_advises_removing_it(labs):
    lab = labs.name("ibs")
    path, _ = labs.up(small(lab))
    os.unlink(state_file(lab))  # the lab's state is lost: its namespaces are stale
    proc = netlab("up", "-t", path, check=False)
    assert proc.returncode == 4
    assert "stale" in proc.stderr and f"ip netns del {lab}-underlay" in proc.stderr, proc.stderr
    assert len(lab_namespaces(lab)) == 4
    netlab("down", "--lab", lab, "--force")


def test_collision_with_an_empty_placeholder_advises_removing_it(labs):
    lab = labs.name("ibp")
    placeholder = f"/run/netns/{lab}-n1"
    os.makedirs("/run/netns", exist_ok=True)
    open(placeholder, "x").close()
    try:
        _, proc = labs.up(small(lab), check=False)
        assert proc.returncode == 4
        assert "empty placeholder" in proc.stderr and f"ip netns del {lab}-n1" in proc.stderr, proc.stderr
        assert lab_namespaces(lab) == [f"{lab}-n1"]
    finally:
        os.unlink(placeholder)
