"""Every output file a user names (graph -w, probe --junit, trace --pcap/-w, capture -w, the pcap writers, the
test artifacts) goes through netlab.outfile: a symlink another user planted, one in a folder others can write,
a hard link, a FIFO nothing reads, another user's file in a sticky folder are refused in one line (exit 2)
and the file they lead to is left as it was; netlab's own and root's symlinks in a folder only they can write
are followed (found by a QA pass: root wrote pcaps, SVGs and JUnit XML through nobody's link)."""

from __future__ import annotations

import os
import pwd

import pytest
from cli_inprocess import run_cli

from netlab import outfile
from netlab.errors import UsageError

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: another user's symlinks")
NOBODY = pwd.getpwnam("nobody").pw_uid if os.geteuid() == 0 else 65534


@pytest.fixture
def decoy(tmp_path):
    """A root-only file the output must never reach, and a folder of user nobody's."""
    os.chmod(tmp_path, 0o755)
    path = tmp_path / "decoy"
    path.write_text("orig\n")
    os.chmod(path, 0o600)
    nobw = tmp_path / "nobw"
    nobw.mkdir(mode=0o755)
    if os.geteuid() == 0:
        os.chown(nobw, NOBODY, NOBODY)
    return path


def _untouched(decoy) -> None:
    assert decoy.read_text() == "orig\n"
    assert oct(decoy.stat().st_mode & 0o777) == "0o600"


def _nobodys_link(at, decoy):
    os.symlink(decoy, at)
    os.lchown(at, NOBODY, NOBODY)
    return str(at)


COMMANDS = {
    "graph -w": ["graph", "-t", "topologies/default-2node.yaml", "-o", "dot", "-w", "{out}"],
    "graph svg": ["graph", "-t", "topologies/default-2node.yaml", "-o", "svg", "-w", "{out}"],
    "probe --junit": ["probe", "--lab", "sy00none", "--junit", "{out}"],
    "trace --pcap": ["trace", "--lab", "sy00none", "a", "b", "--pcap", "{out}"],
    "trace -w": ["trace", "--lab", "sy00none", "a", "b", "-o", "svg", "-w", "{out}"],
    "capture -w": ["capture", "--lab", "sy00none", "a:eth0", "-w", "{out}"],
}


@root_only
@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
@pytest.mark.parametrize("where", ["nobodys link", "root's link in nobody's folder"])
def test_no_output_option_writes_through_a_link_someone_else_could_plant(tmp_path, decoy, command, where):
    if where == "nobodys link":
        out = _nobodys_link(tmp_path / "out.pcap", decoy)
    else:
        out = str(tmp_path / "nobw" / "out.pcap")
        os.symlink(decoy, out)  # root's own link, but nobody may replace it
    proc = run_cli(*[a.format(out=out) for a in command])
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"netlab: cannot write {out}: it is a symlink"), proc.stderr
    assert "netlab writes nothing there" in lines[0]
    _untouched(decoy)


@root_only
def test_the_writers_themselves_refuse_a_planted_link(tmp_path, decoy):
    """Past the check before any work (a link planted while a capture ran): the writers judge the name again."""
    from netlab.trace.capture import write_pcap, write_pcapng

    out = _nobodys_link(tmp_path / "late.pcap", decoy)
    for write in (lambda: outfile.write_output(out, b"x"), lambda: write_pcap(out, []),
                  lambda: write_pcapng(out, [])):
        with pytest.raises(UsageError, match="symlink owned by nobody, not by you or root"):
            write()
    _untouched(decoy)


@root_only
def test_another_users_file_in_a_sticky_folder_is_not_truncated(tmp_path):
    sticky = tmp_path / "tmp"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    theirs = sticky / "x.pcap"
    theirs.write_text("nobody's\n")
    os.chown(theirs, NOBODY, NOBODY)
    with pytest.raises(UsageError, match="it is nobody's file in .*, a sticky folder others can write"):
        outfile.check(str(theirs))
    with pytest.raises(UsageError):
        outfile.write_output(str(theirs), b"x")
    assert theirs.read_text() == "nobody's\n"
    mine = sticky / "mine.pcap"
    outfile.write_output(str(mine), b"new")  # a new file there, and one's own, are written
    outfile.write_output(str(mine), b"2")
    assert mine.read_bytes() == b"2"


def test_a_hard_link_a_fifo_and_a_block_device_are_refused_not_written(tmp_path):
    target = tmp_path / "state.sum"
    target.write_text("keep\n")
    os.link(target, tmp_path / "hl")
    with pytest.raises(UsageError, match="it has 2 hard links"):
        outfile.check(str(tmp_path / "hl"))
    with pytest.raises(UsageError, match="it has 2 hard links"):
        outfile.write_output(str(tmp_path / "hl"), b"x")
    assert target.read_text() == "keep\n"
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UsageError, match="it is a FIFO that nothing reads"):  # said, not waited for
        outfile.write_output(str(tmp_path / "fifo"), b"x")
    if os.path.exists("/dev/loop0"):
        with pytest.raises(UsageError, match="it is a block device"):
            outfile.check("/dev/loop0")


def test_ones_own_files_and_links_are_written(tmp_path, decoy):
    """A new name, an existing file (truncated to what is written), a link of the user's own (root's) in a
    folder only they can write, a chain of them, and /dev/null, /dev/stdout (a descriptor's link in /proc)."""
    out = tmp_path / "new.xml"
    outfile.write_output(str(out), b"long text\n")
    outfile.write_output(str(out), b"short")
    assert out.read_bytes() == b"short"
    os.symlink(out, tmp_path / "l1")
    os.symlink("l1", tmp_path / "l2")
    outfile.write_output(str(tmp_path / "l2"), b"through")
    assert out.read_bytes() == b"through" and (tmp_path / "l2").is_symlink()
    os.symlink(tmp_path / "gone", tmp_path / "dangling")
    outfile.write_output(str(tmp_path / "dangling"), b"made")
    assert (tmp_path / "gone").read_bytes() == b"made"
    outfile.write_output("/dev/null", b"x")
    outfile.check("/dev/stdout")
    _untouched(decoy)


@root_only
@pytest.mark.parametrize("where", ["nobodys link as a folder", "a link in nobody's folder as a folder"])
def test_a_link_in_the_folder_part_is_judged_as_one_at_the_name(tmp_path, decoy, where):
    """QA qs2 1: only the last name was judged: /tmp/nobdir/link/f, with nobody's link to root's folder, wrote
    root's 0600 file there (graph -w, capture -w, trace --pcap). Every symlink on the way is judged now."""
    rootdir = tmp_path / "rootdir"
    rootdir.mkdir(mode=0o700)
    target = rootdir / "f"
    target.write_text("orig\n")
    os.chmod(target, 0o600)
    if where == "nobodys link as a folder":
        link = _nobodys_link(tmp_path / "link", rootdir)
    else:
        link = str(tmp_path / "nobw" / "link")
        os.symlink(rootdir, link)  # root's link, in a folder nobody may change
    for write in (lambda: outfile.check(f"{link}/f"), lambda: outfile.write_output(f"{link}/f", b"x"),
                  lambda: outfile.write_output(f"{link}/new", b"x")):
        with pytest.raises(UsageError, match=r"it is a symlink \(through .*link\)"):
            write()
    assert target.read_text() == "orig\n" and sorted(os.listdir(rootdir)) == ["f"]
    proc = run_cli("graph", "-t", "topologies/default-2node.yaml", "-o", "dot", "-w", f"{link}/f")
    assert proc.returncode == 2 and "it is a symlink (through" in proc.stderr, proc.stderr
    assert target.read_text() == "orig\n"


@root_only
def test_root_and_the_invoking_users_links_on_the_way_are_followed(tmp_path, monkeypatch):
    """A link of root's in root's folder, as a folder, is followed; under sudo, the invoking user's own link in
    their own folder is theirs (QA qs2 7: it was refused as 'owned by qs2user, not by you or root')."""
    rootdir = tmp_path / "real"
    rootdir.mkdir()
    os.symlink(rootdir, tmp_path / "mine")
    outfile.write_output(str(tmp_path / "mine" / "out"), b"1")
    assert (rootdir / "out").read_bytes() == b"1"
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    os.chown(home, NOBODY, NOBODY)
    os.symlink(rootdir, home / "link")
    os.lchown(home / "link", NOBODY, NOBODY)
    with pytest.raises(UsageError, match="owned by nobody"):
        outfile.write_output(str(home / "link" / "out2"), b"2")
    monkeypatch.setenv("SUDO_UID", str(NOBODY))  # netlab run by sudo for that user: the user's own link
    outfile.write_output(str(home / "link" / "out2"), b"2")
    assert (rootdir / "out2").read_bytes() == b"2"


@pytest.mark.parametrize("shell", [">>", "> after a header"])
def test_a_descriptor_the_shell_opened_is_written_where_it_stands(tmp_path, shell):
    """QA qr62: ``netlab graph -w /dev/stdout >> log`` cut log: /proc/self/fd/1 was opened again (a new
    description at 0, without the shell's O_APPEND) and truncated. The shell's own descriptor is written at its
    offset (the end, for >>), nothing before it cut; ``{ echo head; netlab ... -w /dev/stdout; } > f`` keeps
    the head as well."""
    log = tmp_path / "log.txt"
    log.write_bytes(b"kept line\n")
    flags = os.O_WRONLY | (os.O_APPEND if shell == ">>" else os.O_TRUNC)
    fd = os.open(log, flags)
    try:
        if shell != ">>":
            os.write(fd, b"head\n")
        outfile.write_output(f"/proc/self/fd/{fd}", b"graph\n")
        outfile.write_output(f"/proc/self/fd/{fd}", b"again\n")
    finally:
        os.close(fd)
    first = b"kept line\n" if shell == ">>" else b"head\n"
    assert log.read_bytes() == first + b"graph\nagain\n"


def test_graph_to_dev_stdout_appended_by_the_shell_keeps_the_log(tmp_path):
    """The command as a user types it: its DOT goes after what log.txt held."""
    import subprocess
    import sys

    log = tmp_path / "log.txt"
    log.write_text("before\n")
    cmd = f"{sys.executable} -m netlab graph -t topologies/default-2node.yaml -o dot -w /dev/stdout >> {log}"
    proc = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    text = log.read_text()
    assert text.startswith("before\ndigraph"), text[:80]
