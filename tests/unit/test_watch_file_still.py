"""`up --watch` applies an included file's change at once only when the kernel said its writer closed it; a change
the stat look alone saw waits until the files have stood still for the write wait (api/watch_file.FileWrites.ready).
A glob's folder deleted and made again is watched anew (its old watch died with it): a policy file written there
in two parts was applied halfway, its first part a no-spec policy (all ingress of its namespace denied). Real
inotify events (no root needed); the clock is the test's."""

from __future__ import annotations

from netlab.api.watch_file import FileWrites, file_id

HEAD = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\n"
SPEC = "spec: {podSelector: {}, ingress: [{}]}\n"


def _watched(tmp_path, include: str):
    topo = tmp_path / "topo.yaml"
    topo.write_text(f"name: w\nnodes: [{{name: n1}}]\ninclude: [{include}]\n")
    now = [100.0]
    writes = FileWrites(lambda: now[0], 2.0)
    writes.watch(str(topo))
    return str(topo), writes, now


def test_a_globs_folder_made_again_is_watched_anew_and_a_file_seen_before_waits_until_it_stands_still(tmp_path):
    (tmp_path / "pol").mkdir()
    path, writes, now = _watched(tmp_path, "pol/*.yaml")
    try:
        applied = file_id(path)
        (tmp_path / "pol").rmdir()
        (tmp_path / "pol").mkdir()
        half = tmp_path / "pol" / "np.yaml"
        fh = open(half, "w")  # written before the new folder is watched: no event tells of it
        fh.write(HEAD)
        fh.flush()
        seen = file_id(path)
        assert not writes.ready(applied, seen)  # the first half: not applied
        fh.write(SPEC)  # the rest, the new folder watched now: its events say the writer is at work, then done
        fh.close()
        assert writes.read() is True
        whole = file_id(path)
        assert writes.ready(applied, whole)  # closed by its writer: applied at once
        applied = whole
        # Written whole before a look that watches anew: no event said it closed, so it waits until it stood still.
        (tmp_path / "pol" / "np.yaml").unlink()
        (tmp_path / "pol").rmdir()
        (tmp_path / "pol").mkdir()
        (tmp_path / "pol" / "np.yaml").write_text(HEAD + SPEC)
        seen = file_id(path)
        assert not writes.ready(applied, seen)
        now[0] += 1.9
        assert not writes.ready(applied, seen)
        now[0] += 0.1
        assert writes.ready(applied, seen)
    finally:
        writes.close()


def test_a_file_under_a_globs_wildcard_folder_is_applied_once_it_stood_still(tmp_path):
    """``*/np.yaml`` is watched in the folder before the wildcard: its files' writes are seen by the stat look
    alone, so a change waits until it stood still the write wait; one that changes again waits anew."""
    (tmp_path / "ns1").mkdir()
    path, writes, now = _watched(tmp_path, "'*/np.yaml'")
    try:
        applied = file_id(path)
        (tmp_path / "ns1" / "np.yaml").write_text(HEAD)
        first = file_id(path)
        assert first != applied and not writes.ready(applied, first)
        now[0] += 1.5
        (tmp_path / "ns1" / "np.yaml").write_text(HEAD + SPEC)  # the writer's second part
        second = file_id(path)
        assert not writes.ready(applied, second)
        now[0] += 1.5
        assert not writes.ready(applied, second)  # 1.5 s still: not yet
        now[0] += 0.5
        assert writes.ready(applied, second)
    finally:
        writes.close()


def test_a_writer_still_writing_after_the_wait_is_waited_for_until_it_stops(tmp_path):
    """The wait for an open write ends after 2 s; a writer that keeps writing past it changes the file, which is
    applied only once it stood still (it was read halfway at the wait's end)."""
    (tmp_path / "pol").mkdir()
    path, writes, now = _watched(tmp_path, "pol/*.yaml")
    try:
        applied = file_id(path)
        fh = open(tmp_path / "pol" / "np.yaml", "w")
        fh.write(HEAD)
        fh.flush()
        assert not writes.ready(applied, file_id(path))
        for _ in range(3):  # written again each second, never closed
            now[0] += 1.0
            fh.write("# more\n")
            fh.flush()
            assert not writes.ready(applied, file_id(path))
        now[0] += 2.0  # stood still the wait, still open: read as it is
        assert writes.ready(applied, file_id(path))
        fh.close()
    finally:
        writes.close()
