"""`netlab up --watch` reads its edited file once the save is done (api/watch_file.py): a save that truncates the
file, then writes it (a shell's `>`, `cat > file`, many editors), was read halfway and said "file is empty" (or
not valid), and the next look applied it (QA qw, "Seen once, not defects"). The kernel's inotify events say when
the writer closes the file; a writer that keeps it open is waited for a bounded time (2 s), then the file is read
as it is."""

from __future__ import annotations

import os
import time

import pytest

from helpers import ip_json, lab_namespaces, unique_lab, write_topology
from watching import topology, wait_until, watching

pytestmark = pytest.mark.root

POD_C = "  - name: c\n    node: node-1\n"


def _addresses(netns: str) -> list[str]:
    return [a["local"] for link in ip_json("addr", "show", "dev", "eth0", netns=netns) for a in link["addr_info"]]


def test_a_save_that_truncates_then_writes_is_applied_once_and_never_said_empty(tmp_path):
    name = unique_lab("wfx")
    path = write_topology(tmp_path, topology(name))
    with watching(name) as start:
        watcher = start(path)
        mark = len(watcher.lines)
        with open(path, "w") as fh:  # truncated here: the file is empty while the writer thinks
            time.sleep(1.2)  # two looks of the file's stat at least (FILE_POLL 0.5 s) see it empty
            fh.write(topology(name, POD_C))
        line = watcher.wait_for_line(f"saw: {path} changed; did: created 1 namespace", after=mark, timeout=20)
        assert "started container c/main" in line, line
        assert _addresses(f"{name}-c"), ip_json("addr", netns=f"{name}-c")
        said = watcher.lines[mark:]
        assert not any("not valid" in x or "empty" in x for x in said), "\n".join(said)
        assert sum(f"saw: {path} changed" in x for x in said) == 1, "\n".join(said)
        # An editor's atomic save (a new file renamed over the old one) is read at once, whole.
        mark = len(watcher.lines)
        tmp = tmp_path / ".topo.yaml.swp"
        tmp.write_text(topology(name))
        os.replace(tmp, path)
        wait_until(lambda: f"{name}-c" not in lab_namespaces(name), 20.0)
        line = watcher.wait_for_line(f"saw: {path} changed; did: ", after=mark)
        assert "not valid" not in line and f"removed {name}-c" in line, line


def test_a_writer_that_keeps_the_file_open_half_written_is_waited_for_then_said_not_valid_and_so_is_a_fifo(tmp_path):
    """A writer that never closes the file (or is slow beyond the bound) gets the watcher's existing line: after
    the 2 s wait, once the file stood still 2 s, it is read as it is, and said not valid, once; the lab is kept.
    Its close later applies the whole file. A FIFO put there is said not valid (netlab never blocks reading one)."""
    name = unique_lab("wfx")
    path = write_topology(tmp_path, topology(name))
    whole = topology(name, POD_C)
    half = whole.index("    restartPolicy: Never")  # cut in pod b's map, an unclosed list: the YAML does not parse
    with watching(name) as start:
        watcher = start(path)
        mark = len(watcher.lines)
        with open(path, "w") as fh:
            fh.write(whole[:half] + "    restartPolicy: [")
            fh.flush()
            line = watcher.wait_for_line(f"saw: {path} changed; did: nothing, it is not valid", after=mark,
                                         timeout=20)
            assert "empty" not in line, line  # the half the writer wrote was read, not a truncated file
            assert f"{name}-b" in lab_namespaces(name)  # the lab kept as it was
            fh.seek(0)
            fh.truncate()
            fh.write(whole)
        watcher.wait_for_line(f"saw: {path} changed; did: created 1 namespace", after=mark, timeout=20)
        assert _addresses(f"{name}-c")
        said = watcher.lines[mark:]
        assert sum("not valid" in x for x in said) == 1, "\n".join(said)
        # A FIFO renamed over the file: read at once, without blocking (nobody writes it), and said not valid.
        mark = len(watcher.lines)
        fifo = str(tmp_path / "fifo")
        os.mkfifo(fifo, 0o600)
        os.replace(fifo, path)
        line = watcher.wait_for_line(f"saw: {path} changed; did: nothing, it is not valid", after=mark, timeout=20)
        assert "is not a regular file (a FIFO" in line and f"{name}-c" in lab_namespaces(name), line


def test_a_pods_move_is_said_as_the_watchers_own_work_not_as_a_deletion_it_saw(tmp_path):
    """QA q39 5: an edit moved a pod to another node; the watcher's line read "saw: FILE changed; namespace
    deleted in L-a; did: ...": the deletion is its own apply's (the pod made anew on the other node)."""
    name = unique_lab("ph")
    path = write_topology(tmp_path, topology(name))
    with watching(name) as start:
        watcher = start(path)
        before = os.stat(f"/run/netns/{name}-a").st_ino
        mark = len(watcher.lines)
        tmp = tmp_path / ".topo.yaml.swp"
        tmp.write_text(topology(name).replace("  - name: a\n    node: node-1\n", "  - name: a\n    node: node-2\n"))
        os.replace(tmp, path)
        line = watcher.wait_for_line(f"saw: {path} changed; did: ", after=mark, timeout=30)
        assert "pod a moves from node node-1 to node-2" in line, line
        assert "namespace deleted" not in line, line
        assert os.stat(f"/run/netns/{name}-a").st_ino != before  # made anew: another namespace
        # Its eth0's default route goes through node-2's bridge now (node-2's pod CIDR's gateway, 10.244.1.1).
        routes = ip_json("route", "show", "default", netns=f"{name}-a")
        assert [r.get("gateway") for r in routes] == ["10.244.1.1"], routes
