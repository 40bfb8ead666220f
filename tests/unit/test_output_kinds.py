"""An existing file a user names for an output (graph -w, trace -w/--pcap, capture -w, probe --junit) is replaced
only when it is empty or already holds that command's kind of output; anything else is left as it was, in one line
naming the file and --force (a QA tester ran `sudo netlab graph -w /etc/passwd` by accident, and root's users were
a Mermaid picture). --force replaces the file named, never one a symlink at that name leads to."""

from __future__ import annotations

import json
import os

import pytest
from cli_inprocess import run_cli

from netlab import graph, outfile, outkinds
from netlab.errors import UsageError
from netlab.model.lab import resolve
from netlab.model.load import load_topology

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: root's trust rule for symlinks")
PASSWD = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
TOPO = "topologies/default-2node.yaml"

COMMANDS = {
    "graph -w": (["graph", "-t", TOPO, "-o", "dot", "-w", "{out}"], outkinds.GRAPH),
    "graph svg": (["graph", "-t", TOPO, "-o", "svg", "-w", "{out}"], outkinds.GRAPH),
    "probe --junit": (["probe", "--lab", "sy00none", "--junit", "{out}"], outkinds.JUNIT),
    "trace --pcap": (["trace", "--lab", "sy00none", "a", "b", "--pcap", "{out}"], outkinds.PCAP),
    "trace -w": (["trace", "--lab", "sy00none", "a", "b", "-o", "svg", "-w", "{out}"], outkinds.TRACE),
    "capture -w": (["capture", "--lab", "sy00none", "a:eth0", "-w", "{out}"], outkinds.PCAP),
}


@pytest.mark.parametrize("command,kind", COMMANDS.values(), ids=COMMANDS.keys())
def test_a_file_of_another_kind_is_left_as_it_is_in_one_line_naming_it_and_force(tmp_path, command, kind):
    out = tmp_path / "passwd"
    out.write_text(PASSWD)
    proc = run_cli(*[a.format(out=out) for a in command])
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert proc.stderr.splitlines() == [
        f"netlab: cannot write {out}: it is a file of {len(PASSWD)} bytes that is not {kind.words}; netlab writes "
        "nothing there: give --force to replace it, or remove it first"], proc.stderr
    assert out.read_text() == PASSWD


def _lab():
    return resolve(load_topology(TOPO))


@pytest.mark.parametrize("fmt", graph.FORMATS)
def test_every_picture_graph_writes_is_its_kind_and_is_replaced(tmp_path, fmt):
    data = graph.render(_lab(), fmt)
    assert outkinds.GRAPH.holds(data[:outkinds.HEAD]) and outkinds.TRACE.holds(data[:outkinds.HEAD])
    assert not outkinds.PCAP.holds(data) and not outkinds.JUNIT.holds(data)
    out = tmp_path / "lab.pic"
    out.write_bytes(graph.render(_lab(), "dot" if fmt != "dot" else "mermaid"))  # another picture of netlab's
    proc = run_cli("graph", "-t", TOPO, "-o", fmt, "-w", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == data


def test_an_empty_file_is_written_and_force_replaces_another_kind(tmp_path):
    empty = tmp_path / "made-by-mktemp"
    empty.touch()
    assert run_cli("graph", "-t", TOPO, "-o", "dot", "-w", str(empty)).returncode == 0
    assert empty.read_bytes().startswith(b"digraph netlab {")
    other = tmp_path / "notes.txt"
    other.write_text("my notes\n")
    for flag in ("--force", "-f"):
        other.write_text("my notes\n")
        proc = run_cli("graph", "-t", TOPO, "-o", "dot", flag, "-w", str(other))
        assert proc.returncode == 0, proc.stderr
        assert other.read_bytes().startswith(b"digraph netlab {")
    other.write_text("my notes\n")  # --force was this command's alone: the next one without it refuses again
    assert run_cli("graph", "-t", TOPO, "-o", "dot", "-w", str(other)).returncode == 2
    assert other.read_text() == "my notes\n"


def test_the_trace_kinds_text_json_yaml_are_recognised():
    from netlab.trace.hops import Hop, Walk
    from netlab.trace.render import TraceResult, render_text
    from netlab.trace.verdict import Verdict

    hop = Hop(netns="tt-b", where="pod b", device="eth0", kind="deliver", decision="delivered")
    r = TraceResult(lab="tt", src={"name": "a", "kind": "pod", "ip": "10.244.0.2"},
                    dst={"name": "b", "kind": "pod", "ip": "10.244.0.3"}, proto="icmp", port=None, marker="m",
                    forward=Walk(hops=[hop], outcome="delivered"), reply=None, verdict=Verdict(True, None, None),
                    reply_verdict=None, reply_received=True)
    import yaml

    from netlab.cli import jsonout

    for data in (render_text(r), jsonout.dumps(r.to_json()) + "\n",
                 yaml.safe_dump(json.loads(json.dumps(r.to_json(), default=str)), sort_keys=False)):
        assert outkinds.TRACE.holds(data.encode()[:outkinds.HEAD]), data[:200]
        assert not outkinds.GRAPH.holds(data.encode())
    for other in (PASSWD, "lab: x\nnodes: []\n", '{"lab": 1}', "trace me\n", ""):
        assert not outkinds.TRACE.holds(other.encode()), other


def test_the_pcap_writers_replace_a_capture_and_refuse_anything_else(tmp_path):
    from netlab.trace.capture import write_pcap, write_pcapng
    from netlab.trace.pcap_stream import PcapStream

    cap = tmp_path / "c.pcap"
    with PcapStream(str(cap)):
        pass
    assert outkinds.PCAP.holds(cap.read_bytes())
    write_pcapng(str(cap), [])  # a pcap replaced by a pcapng, and back
    assert cap.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    write_pcap(str(cap), [])
    assert outkinds.PCAP.holds(cap.read_bytes())
    text = tmp_path / "t.pcap"
    text.write_text(PASSWD)
    for write in (lambda: write_pcap(str(text), []), lambda: write_pcapng(str(text), []),
                  lambda: PcapStream(str(text)).__enter__()):
        with pytest.raises(UsageError, match="that is not a pcap or pcapng capture"):
            write()
    assert text.read_text() == PASSWD
    undo = outfile.force(str(text))  # --force, as the CLI sets it for its run
    try:
        write_pcap(str(text), [])
    finally:
        undo()
    assert outkinds.PCAP.holds(text.read_bytes())


def test_a_file_that_changed_kind_after_the_check_is_refused_at_the_write(tmp_path):
    """The writer judges the file it opened, not what the check before the work saw."""
    out = tmp_path / "o.svg"
    outfile.check(str(out), outkinds.GRAPH)
    out.write_text(PASSWD)
    with pytest.raises(UsageError, match="not a picture netlab draws"):
        outfile.write_output(str(out), b"digraph netlab {\n}\n", outkinds.GRAPH)
    assert out.read_text() == PASSWD


@root_only
def test_force_never_replaces_a_file_through_a_symlink(tmp_path):
    """root's own link in a folder only root can write is followed to a file of the kind (or a new one), never
    onto a file of another kind, --force or not: the line names the file it leads to."""
    os.chmod(tmp_path, 0o755)
    target = tmp_path / "passwd"
    target.write_text(PASSWD)
    link = tmp_path / "lab.svg"
    os.symlink(target, link)
    for extra in ([], ["--force"]):
        proc = run_cli("graph", "-t", TOPO, "-o", "dot", *extra, "-w", str(link))
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.splitlines() == [
            f"netlab: cannot write {link}: it is a symlink to {target}, a file of {len(PASSWD)} bytes that is not "
            f"{outkinds.GRAPH.words}; netlab writes nothing there: it points at a file netlab did not write; remove "
            "the link or choose another path"], proc.stderr
        assert f"name {target}" not in proc.stderr  # QA fx62r 5: never steered to `-w /etc/passwd --force`
    assert target.read_text() == PASSWD and link.is_symlink()
    target.write_bytes(graph.render(_lab(), "mermaid"))  # a picture of netlab's: followed, as before
    assert run_cli("graph", "-t", TOPO, "-o", "dot", "-w", str(link)).returncode == 0
    assert target.read_bytes().startswith(b"digraph netlab {") and link.is_symlink()


def test_streams_are_written_whatever_they_are(tmp_path):
    """A character device, standard output: nothing is replaced there."""
    outfile.write_output("/dev/null", b"x", outkinds.GRAPH)
    outfile.check("/dev/stdout", outkinds.GRAPH)


def test_a_users_mermaid_or_png_is_not_taken_for_netlabs(tmp_path):
    """QA fx62r 5: any PNG, and any Mermaid file with a title block, counted as a picture netlab drew. netlab's
    Mermaid carries its marker comment and its PNG a tEXt chunk naming netlab (Graphviz writes none): a user's
    diagram or photo is another kind, left as it is without --force."""
    users_mermaid = b'---\ntitle: "my design"\n---\nflowchart TB\n  a --> b\n'
    users_png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(17) + b"\x00\x00\x00\x00IDAT"
    for kind in (outkinds.GRAPH, outkinds.TRACE):
        assert not kind.holds(users_mermaid) and not kind.holds(users_png)
    for fmt in ("mermaid", "png"):
        assert outkinds.GRAPH.holds(graph.render(_lab(), fmt)[:outkinds.HEAD])
    out = tmp_path / "design.png"
    out.write_bytes(users_png)
    proc = run_cli("graph", "-t", TOPO, "-o", "dot", "-w", str(out))
    assert proc.returncode == 2 and out.read_bytes() == users_png, proc.stderr


def test_a_users_dot_of_a_graph_named_netlab_is_not_taken_for_netlabs_and_an_older_netlabs_picture_is_said(
        tmp_path):
    """closing61's left item: DOT was recognised by `digraph netlab {` alone, which anyone's graph of that name
    starts with. netlab's DOT carries its comment line as its PNG and Mermaid carry their marks; a picture an older
    netlab drew (no mark) is refused with words that say --force replaces it once."""
    users_dot = b"digraph netlab {\n  a -> b;\n}\n"
    for kind in (outkinds.GRAPH, outkinds.TRACE):
        assert not kind.holds(users_dot)
    dot = graph.render(_lab(), "dot")
    assert dot.startswith(b"digraph netlab {\n  // drawn by netlab\n") and outkinds.GRAPH.holds(dot[:outkinds.HEAD])
    out = tmp_path / "lab.dot"
    out.write_bytes(users_dot)
    proc = run_cli("graph", "-t", TOPO, "-o", "dot", "-w", str(out))
    assert proc.returncode == 2 and out.read_bytes() == users_dot, proc.stderr
    assert proc.stderr.strip().endswith("netlab writes nothing there: if an older netlab drew it (its pictures "
                                        "carried no mark of netlab's), give --force to replace it, or remove it "
                                        "first"), proc.stderr
    assert run_cli("graph", "-t", TOPO, "-o", "dot", "--force", "-w", str(out)).returncode == 0
    assert out.read_bytes() == dot
    assert run_cli("graph", "-t", TOPO, "-o", "dot", "-w", str(out)).returncode == 0  # once: it is marked now
    mine = tmp_path / "notes.txt"  # anything else's refusal says nothing of an older netlab
    mine.write_text("my notes\n")
    proc = run_cli("graph", "-t", TOPO, "-o", "dot", "-w", str(mine))
    assert proc.returncode == 2 and "older netlab" not in proc.stderr, proc.stderr
