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

from helpers import NETLAB, anything_of, lab_namespaces, netlab, unique_lab, write_topology
from private_mounts import PrivateMounts

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
    from netlab import Lab
    from netlab.realize import lab_lock, state

    lab = labs.name("ibl")
    path, _ = labs.up(small(lab))
    commands = {"down": ["down", "--lab", lab], "up": ["up", "-t", path]}
    order = [first, "up" if first == "down" else "down"]
    for turn in range(3):
        if turn:
            Lab.up(path)  # up again, whichever won (setup: the race is the CLI's)
        with lab_lock.LabLock(lab, "the test"):
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
            assert Lab(lab).status().ok


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
    from netlab.realize import state_dir

    return os.path.join(state_dir.STATE_ROOT, lab, "state.json")


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
    from netlab import Lab
    from netlab.realize import state_dir

    good_lab = labs.name("ibg")
    labs.up_here(f"name: {good_lab}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1}}]\n",
                 "good.yaml")  # setup: the commands' words on the corrupt labs are the test
    good = open(state_file(good_lab), "rb").read()
    every = corruptions(good, good_lab)  # each kind is checked in-process in tests/unit/test_state_schema.py
    # Each corruption, for a lab of its own (no namespaces: nothing to break for real), all at once: one list
    # shows them all.
    corrupt = {kind: labs.name("ibc") for kind in ("binary", "json-list", "netns-a-list", "unknown-version")}
    try:
        for kind, lab in corrupt.items():
            state_dir.lab_dir(lab)  # made as netlab makes it (marked): a corrupt state in an unmarked folder is no lab's
            with open(state_file(lab), "wb") as fh:
                fh.write(every[kind].replace(good_lab.encode(), lab.encode()))
        for kind, lab in corrupt.items():
            topo = write_topology(tmp_path, f"name: {lab}\nnodes: [{{name: n1}}]\n", f"{lab}.yaml")
            every_command = (["status", "--lab", lab], ["graph", "--lab", lab], ["probe", "--lab", lab],
                             ["up", "-t", topo], ["down", "--lab", lab], ["exec", "--lab", lab, "a", "--", "true"])
            # Every command reads the state through load_state, which refuses each kind alike (StateCorrupt, or
            # StateNewer for a later format: unit-tested per kind): every command for one kind of each. Status's
            # read-ahead parses the file before load_state checks it: that one for every kind.
            for args in (*(every_command if kind in ("binary", "unknown-version") else ()),
                         ["status", "--lab", lab, "read ahead"]):
                ahead = args[-1] == "read ahead"  # the file is read before it is checked (lab/readahead.py)
                proc = netlab(*args[:-1] if ahead else args, check=False,
                              env={"NETLAB_TEST_READ_SHARE": "1"} if ahead else {})
                where = f"{kind}: netlab {' '.join(args)}"
                assert proc.returncode == 3, (where, proc.returncode, proc.stderr)
                assert len(proc.stderr.splitlines()) == 1, (where, proc.stderr)
                # a later format is a newer netlab's, said as such (docs/json.md, "The state file")
                said = "written by a newer netlab (state format 2" if kind == "unknown-version" else "corrupt"
                assert said in proc.stderr and "--force" in proc.stderr, (where, proc.stderr)
                assert "Traceback" not in proc.stderr
        listed = netlab("list", "-o", "json")
        rows = {r["lab"]: r for r in json.loads(listed.stdout)}
        assert rows[good_lab]["phase"] == "up", rows
        # a later format is a newer netlab's, not damage: its own phase (docs/json.md, "The state file")
        assert {kind: rows[lab]["phase"] for kind, lab in corrupt.items()} == {
            kind: "newer" if kind == "unknown-version" else "corrupt" for kind in corrupt}, rows
        text = netlab("list")
        assert good_lab in text.stdout and all(lab in text.stdout for lab in corrupt.values()), text.stdout
        assert "Traceback" not in text.stderr
        for kind, lab in corrupt.items():
            gone = netlab("down", "--lab", lab, "--force")
            assert "Traceback" not in gone.stderr
            assert not os.path.exists(os.path.join(state_dir.STATE_ROOT, lab)), kind
    finally:  # a failed assertion leaves no corrupt lab behind either
        for lab in corrupt.values():
            if os.path.exists(os.path.join(state_dir.STATE_ROOT, lab)):
                netlab("down", "--lab", lab, "--force", check=False)
    assert Lab(good_lab).status().ok  # untouched


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


# --- a namespace in the way: remove it only when proven stale ---------------------------------


def test_collision_with_another_running_lab_names_that_lab(labs, tmp_path):
    first = labs.name("ibk")
    labs.up(f"name: {first}\nnodes: [{{name: n1}}]\npods: [{{name: q-a, node: n1}}]\n")
    second = first + "-q"  # its pod a is {first}-q-a too
    labs.names.append(second)
    _, proc = labs.up(f"name: {second}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1}}]\n",
                      "second.yaml", check=False)
    assert proc.returncode == 3, proc.stderr  # found before any change: not "apply failed (rolled back)"
    assert f"belongs to lab {first}, which is up" in proc.stderr
    assert "ip netns del" not in proc.stderr and "Traceback" not in proc.stderr
    assert lab_namespaces(second) == [f"{first}-q-a"]  # the first lab's pod, untouched
    assert netlab("status", "--lab", first).returncode == 0


def test_collision_with_a_stale_tagged_namespace_advises_removing_it(labs):
    lab = labs.name("ibs")
    path, _ = labs.up(small(lab))
    os.unlink(state_file(lab))  # the lab's state is lost: its namespaces are stale
    proc = netlab("up", "-t", path, check=False)
    assert proc.returncode == 3
    # The whole lab is stale, not one namespace: `down --force`, as every other command says of it.
    assert "stale" in proc.stderr and f"netlab down --lab {lab} --force" in proc.stderr, proc.stderr
    assert "ip netns del" not in proc.stderr
    assert len(lab_namespaces(lab)) == 4
    netlab("down", "--lab", lab, "--force")
    assert lab_namespaces(lab) == []


def test_collision_with_an_empty_placeholder_advises_removing_it(labs):
    lab = labs.name("ibp")
    placeholder = f"/run/netns/{lab}-n1"
    os.makedirs("/run/netns", exist_ok=True)
    open(placeholder, "x").close()
    try:
        _, proc = labs.up(small(lab), check=False)
        assert proc.returncode == 3
        assert "empty placeholder" in proc.stderr and f"ip netns del {lab}-n1" in proc.stderr, proc.stderr
        assert lab_namespaces(lab) == [f"{lab}-n1"]
    finally:
        os.unlink(placeholder)


# --- state writes on a full or read-only disk --------------------------------------------------


class Tmpfs:
    """A tmpfs of a given size on a private directory, used as NETLAB_STATE_DIR, mounted in the test's own mount
    namespace (private_mounts.py: a killed run leaves no mount on the host), where :meth:`netlab` runs the CLI.
    ``seen`` is its path as this process reaches it.

    ``read_only()`` gives a read-only view of it (a bind mount) for the CLI,
    while the lab's containers keep their logs open on the writable one.
    """

    def __init__(self, ns: PrivateMounts, where, size: str):
        self.ns = ns
        self.mounts: list[str] = []
        self.path = self._mount(str(where), ["-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs"])
        self.seen = ns.seen(self.path)
        self.env = {"NETLAB_STATE_DIR": self.path}
        self.netlab = ns.netlab  # the CLI, in the namespace of the mounts

    def _mount(self, path: str, args: list[str]) -> str:
        os.makedirs(path, mode=0o700, exist_ok=True)
        self.ns.run("mount", *args, path)
        self.mounts.append(path)
        return path

    def read_only(self) -> dict:
        view = self._mount(f"{self.path}-ro{len(self.mounts)}", ["--rbind", self.path])  # with the UTS pins
        self.ns.run("mount", "-o", "remount,bind,ro", view)
        return {"NETLAB_STATE_DIR": view}

    def fill(self) -> str:
        """Take every free byte (a full disk); returns the filler's path (as this process reaches it)."""
        filler = os.path.join(self.seen, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        return filler

    def unmount(self, views_only: bool = False) -> None:
        """Unmount (exactly the mounts made here, newest first, in the test's namespace); views only: the tmpfs
        stays."""
        for path in reversed(self.mounts[1:] if views_only else self.mounts):
            if subprocess.run(self.ns.argv(["umount", "-R", path]), capture_output=True).returncode != 0:
                self.ns.run("umount", "-R", "-l", path)
            self.mounts.remove(path)


@pytest.fixture
def tmpfs(tmp_path, labs):
    mounts: list[Tmpfs] = []
    spaces: list[PrivateMounts] = []

    def make(size: str) -> Tmpfs:
        if not spaces:  # made at the first: what the test brought up before is in it (its labs' UTS pins)
            spaces.append(PrivateMounts(str(tmp_path)))
        fs = Tmpfs(spaces[0], tmp_path / f"state{len(mounts)}", size)
        mounts.append(fs)
        return fs

    yield make
    try:
        for fs in mounts:
            for lab in labs.names:  # before the labs fixture looks in the default state directory
                if anything_of(lab, fs.seen):
                    fs.netlab("down", "--lab", lab, "--force", check=False, env=fs.env)
            fs.unmount()
    finally:
        for ns in spaces:
            ns.close()


def test_a_full_disk_fails_up_cleanly_at_every_point(labs, tmpfs, tmp_path):
    """From a disk too small for the first state write to one big enough: up either works
    (and status/down work after it) or exits 3, rolled back, with nothing left. The sweep ends at the
    first disk where up, status and down all went through whole: a bigger one only has more room."""
    lab = labs.name("ibd")
    path = write_topology(tmp_path, small(lab))
    outcomes = []
    # Up to 16 pages: the state, the uts pins, and each node's two Flannel files (a tmpfs page each).
    for pages in range(1, 17):
        fs = tmpfs(f"{pages * 4}k")
        proc = fs.netlab("up", "-t", path, check=False, env=fs.env)
        assert "Traceback" not in proc.stderr, (pages, proc.stderr)
        if proc.returncode == 0:
            outcomes.append("up")
            # The state is whole. (A container whose log cannot be written on the full disk is
            # reported as not started, like any container that fails: that is not a state write.)
            rows = json.loads(fs.netlab("list", "-o", "json", env=fs.env).stdout)
            assert [(r["lab"], r["phase"]) for r in rows if r["phase"] != "elsewhere"] == [(lab, "up")], (pages, rows)
            status = fs.netlab("status", "--lab", lab, check=False, env=fs.env)
            drift = [line for line in status.stdout.splitlines()[1:-1] if "containers:" not in line]
            assert status.returncode in (0, 1) and not drift, (pages, status.stdout, status.stderr)
            down = fs.netlab("down", "--lab", lab, check=False, env=fs.env)
            assert down.returncode == 0 and "Traceback" not in down.stderr, (pages, down.stderr)
            assert lab_namespaces(lab) == []
            if status.returncode == 0:  # everything fitted, the containers' logs too
                break
        else:
            # A full disk is the machine's (exit 3, as the doctor's free-space check), rolled back or not: it was 4
            assert proc.returncode == 3, (pages, proc.returncode, proc.stderr)
            assert "No space left on device" in proc.stderr, (pages, proc.stderr)
            # Nothing left to take down (`down` of a lab that is not up on a full disk: the last test here).
            assert lab_namespaces(lab) == [], (pages, proc.stderr)
            assert os.listdir(fs.seen) == [], (pages, os.listdir(fs.seen))
            outcomes.append("rolled back" if "rolled back" in proc.stderr else "refused")
    # The sweep went through all three: no room at all, room to start, room for everything.
    assert {"refused", "rolled back", "up"} <= set(outcomes), outcomes


def test_every_output_file_on_a_full_disk_is_exit_3(labs, tmpfs):
    """The same fault, the same exit code: a pcap on a full disk was 3, a picture, a report or a graph 2."""
    lab = labs.name("ibo")
    labs.up(small(lab))
    fs = tmpfs("64k")
    fs.fill()
    out = fs.path
    for args in (["trace", "--lab", lab, "a", "b", "--pcap", f"{out}/t.pcapng"],
                 ["trace", "--lab", lab, "a", "b", "-o", "svg", "-w", f"{out}/t.svg"],
                 ["probe", "--lab", lab, "--junit", f"{out}/p.xml"],
                 ["graph", "--lab", lab, "-w", f"{out}/g.mmd"]):
        proc = fs.netlab(*args, check=False, timeout=120)
        assert proc.returncode == 3, (args, proc.returncode, proc.stderr)
        assert proc.stderr.splitlines()[-1].startswith(f"netlab: cannot write {out}/"), (args, proc.stderr)
        assert "No space left on device" in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)


def test_down_on_a_full_disk_still_removes_the_lab(labs, tmpfs, tmp_path):
    lab = labs.name("ibe")
    path = write_topology(tmp_path, small(lab))
    fs = tmpfs("1m")
    fs.netlab("up", "-t", path, env=fs.env)
    filler = fs.fill()
    rows = json.loads(fs.netlab("list", "-o", "json", env=fs.env).stdout)  # reading needs no space
    assert [(r["lab"], r["phase"]) for r in rows if r["phase"] != "elsewhere"] == [(lab, "up")]
    again = fs.netlab("up", "-t", path, check=False, env=fs.env)  # converging writes nothing new
    assert "Traceback" not in again.stderr
    proc = fs.netlab("down", "--lab", lab, check=False, env=fs.env)
    assert proc.returncode == 0, proc.stderr
    assert lab_namespaces(lab) == []
    assert os.listdir(fs.seen) == ["filler"]
    os.unlink(filler)


def test_a_read_only_state_directory_is_a_clean_exit_3(labs, tmpfs, tmp_path):
    lab = labs.name("ibr")
    path = write_topology(tmp_path, small(lab))
    fs = tmpfs("1m")
    ro = fs.read_only()
    proc = fs.netlab("up", "-t", path, check=False, env=ro)
    assert proc.returncode == 3, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "read-only" in proc.stderr
    assert lab_namespaces(lab) == []
    fs.netlab("up", "-t", path, env=fs.env)
    ro = fs.read_only()  # now, so the view has the lab's UTS pins too
    for args in (["down", "--lab", lab], ["up", "-t", path], ["down", "--lab", lab, "--force"]):
        proc = fs.netlab(*args, check=False, env=ro)
        assert proc.returncode == 3 and "read-only" in proc.stderr, (args, proc.stderr)
        assert len(proc.stderr.splitlines()) == 1
    assert fs.netlab("status", "--lab", lab, check=False, env=ro).returncode == 0
    assert lab in fs.netlab("list", env=ro).stdout
    assert len(lab_namespaces(lab)) == 4
    fs.unmount(views_only=True)  # the view holds the pods' UTS pins too
    fs.netlab("down", "--lab", lab, env=fs.env)


# --- up -t other.yaml with the name of a running lab ------------------------------------------


def test_up_from_another_file_with_a_running_labs_name_is_refused(labs, tmp_path):
    lab = labs.name("ibu")
    first, _ = labs.up(small(lab), "first.yaml")
    other = write_topology(tmp_path, f"name: {lab}\nnodes: [{{name: n1}}, {{name: n2}}]\npods: [{{name: c, node: n2}}]\n",
                           "other.yaml")
    before = lab_namespaces(lab)
    proc = netlab("up", "-t", other, check=False)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and first in proc.stderr and "--reconfigure" in proc.stderr
    assert lab_namespaces(lab) == before
    assert netlab("status", "--lab", lab).returncode == 0
    again = netlab("up", "-t", first)  # the same file converges as before
    assert "nothing to change" in again.stdout
    netlab("up", "-t", other, "--reconfigure")
    assert lab_namespaces(lab) == sorted(f"{lab}-{n}" for n in ("c", "n1", "n2", "underlay"))
    rows = {r["lab"]: r for r in json.loads(netlab("list", "-o", "json").stdout)}
    assert rows[lab]["source"] == other
    assert netlab("up", "-t", other).returncode == 0  # now it is the lab's file


# --- output files never land on a lab's own files ---------------------------------------------


def test_no_output_file_lands_on_a_labs_own_files(labs, tmp_path):
    """`capture -w /run/netlab/LAB/state.json` wrote a pcap over the lab's state: "corrupt" from then on, until
    `down --force`. Refused (exit 2) before anything is captured, however the path reaches the lab's files: as
    written, through `..` or a symlink, a pod's resolv.conf in /etc/netns, or that folder through a bind mount."""
    lab = labs.name("ibw")
    labs.up(svc_lab(lab))
    state = state_file(lab)
    before = open(state, "rb").read()
    link = tmp_path / "link"
    link.symlink_to(os.path.dirname(state))
    view = tmp_path / "view"
    view.mkdir()
    ns = PrivateMounts(str(tmp_path))  # the bind mount, and the commands that meet it (private_mounts.py)
    resolv = f"/etc/netns/{lab}-a/resolv.conf"
    pod_file = open(resolv).read()
    try:
        ns.run("mount", "--bind", "/etc/netns", str(view))
        for args in (["capture", "--lab", lab, "n1:eth0", "-c", "1", "--timeout", "1", "-w", state],
                     ["capture", "--lab", lab, "n1:eth0", "-c", "1", "--timeout", "1", "-w", "/tmp/.." + state],
                     ["graph", "--lab", lab, "-w", f"{link}/state.json"],
                     ["trace", "--lab", lab, "a", "b", "--pcap", resolv],
                     ["probe", "--lab", lab, "--junit", f"{view}/{lab}-a/resolv.conf"]):
            proc = ns.netlab(*args, check=False)
            assert proc.returncode == 2, (args, proc.returncode, proc.stderr)
            assert len(proc.stderr.splitlines()) == 1 and "it is inside" in proc.stderr, (args, proc.stderr)
    finally:
        ns.close()  # the bind mount goes with the namespace
    assert open(state, "rb").read() == before and open(resolv).read() == pod_file
    assert netlab("status", "--lab", lab).returncode == 0


def test_down_of_a_lab_that_is_not_up_on_a_full_or_read_only_state_folder_has_nothing_to_do(tmpfs):
    """QA q42 5: `down --lab X` (and `--force`) of a lab that is not up exited 3, "cannot use DIR/X: No space left
    on device" (or "cannot write DIR/X: ... read-only file system"): it made the lab's folder for its lock just to
    find no lab. A cleanup script's `down` on a full disk, when a cleanup is wanted, says "not up; nothing to do"."""
    lab = unique_lab("fz")
    fs = tmpfs("1m,nr_inodes=2")  # the folder itself and one more: the lab's folder, not the mark in it
    for env in (fs.env, fs.read_only()):
        for args in ((), ("--force",)):
            r = fs.netlab("down", "--lab", lab, *args, check=False, env=env)
            assert (r.returncode, r.stdout, r.stderr) == (0, f"lab {lab} is not up; nothing to do\n", ""), (env, r)
    assert os.listdir(fs.seen) == []
