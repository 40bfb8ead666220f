"""A running lab's namespace unmounted by hand, on a real lab (root).

``umount /run/netns/<lab>-<pod>`` is the first half of ``ip netns del``: the name no longer holds the namespace,
and the empty file stays. Every command says it as a deleted namespace that ``up`` makes again, in one line
(``exec`` was a traceback: setns's EINVAL on the empty file), and ``up`` does make it again (it refused, exit 3,
until the user removed the file by hand): the name is one the lab's state lists."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess

import pytest

from helpers import ip, ip_json, netlab, unique_lab
from netlab.errors import netlab_command
from netlab.kernel import netns as nsmod

pytestmark = pytest.mark.root


def small_lab(labs, prefix: str) -> tuple[str, str]:
    lab = labs.name(prefix)
    path, _ = labs.up(f"name: {lab}\nnetwork: {{mode: host-gw}}\nnodes: [{{name: n1}}, {{name: n2}}]\n"
                      "pods: [{name: a, node: n1, ip: 10.244.0.2}, {name: b, node: n2, ip: 10.244.1.2}]\n")
    return lab, path


def unmount(netns: str) -> None:
    subprocess.run(["umount", f"/run/netns/{netns}"], check=True)
    path = nsmod.netns_path(netns)
    assert os.path.isfile(path) and os.path.getsize(path) == 0 and not nsmod.is_netns_mount(netns)


def test_exec_into_an_unmounted_pod_namespace_is_one_line_naming_the_repair(labs):
    lab, path = small_lab(labs, "umx")
    unmount(f"{lab}-a")
    proc = netlab("exec", "--lab", lab, "a", "--", "true", check=False)
    assert proc.returncode == 2, proc.stderr  # as inspect and trace say the same namespace (NetnsGone)
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr == (f"netlab: namespace {lab}-a was deleted while lab {lab} is up; "
                           f"`{netlab_command(f'up -t {shlex.quote(path)}')}` makes it again\n")
    inspected = netlab("inspect", "--lab", lab, "a", check=False)
    assert inspected.returncode == 2 and inspected.stderr == proc.stderr, inspected.stderr
    # Nothing changed: the file is still there, empty, and the other pod still runs commands.
    assert os.path.getsize(nsmod.netns_path(f"{lab}-a")) == 0
    assert netlab("exec", "--lab", lab, "b", "--", "hostname").stdout.strip() == "b"


def test_up_makes_an_unmounted_namespace_of_the_lab_again(labs):
    lab, path = small_lab(labs, "umu")
    unmount(f"{lab}-a")
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1 and f"missing: namespace {lab}-a" in status.stdout, status.stdout
    assert f"run `{netlab_command(f'up -t {shlex.quote(path)}')}` to repair" in status.stdout
    up = netlab("up", "-t", path, check=False)  # what status says to run
    assert up.returncode == 0, up.stderr
    assert "1 namespace created" in up.stdout, up.stdout
    assert netlab("status", "--lab", lab, check=False).returncode == 0
    # The kernel's view: the name holds a namespace again, with the pod's address on its eth0.
    assert f"{lab}-a" in ip("netns", "list").stdout.split()
    assert nsmod.is_netns_mount(f"{lab}-a")
    (eth0,) = ip_json("addr", "show", "dev", "eth0", netns=f"{lab}-a")
    assert [a["local"] for a in eth0["addr_info"] if a["family"] == "inet"] == ["10.244.0.2"]
    # Real traffic, to the echo container started again in the new namespace, across nodes.
    got = subprocess.run(["ip", "netns", "exec", f"{lab}-b", "curl", "-s", "-m", "5", "http://10.244.0.2:8080/"],
                         capture_output=True, text=True, timeout=20)
    reply = json.loads(got.stdout)
    assert reply["pod"] == "a" and reply["client"].startswith("10.244.1.2:"), got
    assert netlab("exec", "--lab", lab, "a", "--", "hostname").stdout.strip() == "a"


def test_up_leaves_an_empty_file_the_lab_does_not_list_alone(labs):
    """A placeholder under a name the lab would make, before it is up, is not the lab's: refused, kept."""
    lab = labs.name("umn")
    stray = nsmod.netns_path(f"{lab}-a")
    nsmod.ensure_netns_dir()
    os.close(os.open(stray, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    try:
        _, up = labs.up(f"name: {lab}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1}}]\n", check=False)
        assert up.returncode == 3 and "already exists as an empty placeholder" in up.stderr, up.stderr
        assert os.path.isfile(stray) and os.path.getsize(stray) == 0
        assert not any(name.startswith(lab + "-") for name in ip("netns", "list").stdout.split() if name != f"{lab}-a")
    finally:
        os.unlink(stray)


def test_status_of_a_deleted_pod_namespace_does_not_place_the_veths_peer_in_it(labs):
    """`ip netns delete` of a pod's namespace while its container runs: the namespace lives on, unnamed, and the
    node's veth keeps its peer there (the kernel: a link-netnsid). Status says that the peer is not eth0 in the
    deleted namespace, which is missing; it said `its peer eth0 in LAB-a is not its pair`, a namespace gone."""
    lab, path = small_lab(labs, "nqd")
    ip("netns", "delete", f"{lab}-a")
    status = netlab("status", "--lab", lab, check=False)
    assert status.returncode == 1, status.stdout
    (line,) = [s.strip() for s in status.stdout.splitlines() if s.strip().startswith("different: link veth")]
    veth = line.split()[2]
    assert line == (f"different: link {veth} in {lab}-n1 (its peer is not eth0 in {lab}-a: "
                    f"namespace {lab}-a is missing)"), status.stdout
    assert f"missing: namespace {lab}-a" in status.stdout and "is not its pair" not in status.stdout
    (link,) = ip_json("link", "show", "dev", veth, netns=f"{lab}-n1")  # its peer lives on, in another namespace
    assert "link_netnsid" in link and f"{lab}-a" not in ip("netns", "list").stdout.split(), link
    assert netlab("up", "-t", path, check=False).returncode == 0
    assert netlab("status", "--lab", lab, check=False).returncode == 0


def test_placeholders_of_a_run_are_links_of_one_file(labs):
    """The names a run claims in /run/netns are hard links of one empty file (kernel/netns.Placeholders): under
    each namespace's mount, the same inode. ``ip netns list`` shows the lab's names and nothing else of it."""
    lab, _ = small_lab(labs, "uml")
    names = [f"{lab}-{n}" for n in ("n1", "n2", "a", "b")]
    assert sorted(n for n in ip("netns", "list").stdout.split() if n.startswith(lab)) == sorted(
        names + [f"{lab}-underlay"])
    for netns in names:
        unmount(netns)
    files = [os.stat(nsmod.netns_path(netns)) for netns in names]
    assert len({(st.st_dev, st.st_ino) for st in files}) == 1, files
    assert all(st.st_nlink >= len(names) for st in files), files


def test_a_placeholder_file_whose_links_all_went_is_not_linked_again():
    """Once a rollback removed every link of the run's file, it can never be linked again (ENOENT): the next
    claims make new files, and the first of them stops trying the link."""
    name = unique_lab("uml")
    paths = [nsmod.netns_path(f"{name}-{i}") for i in range(3)]
    nsmod.ensure_netns_dir()
    places = nsmod.Placeholders()
    try:
        if places.file is None:
            pytest.skip("this file system makes no O_TMPFILE file")
        places.claim(f"{name}-0")
        os.unlink(paths[0])  # its only link: the file has none now
        places.claim(f"{name}-1")
        assert not places.linkable and os.path.exists(paths[1])
        places.claim(f"{name}-2")
        assert os.stat(paths[1]).st_ino != os.stat(paths[2]).st_ino  # each a file of its own
        with pytest.raises(FileExistsError):
            places.claim(f"{name}-2")
    finally:
        places.close()
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
