"""An output option written besides the command's own stdout (trace --pcap, probe --junit) given ``-``: refused,
one line, exit 2, naming ./- for a file of that name. It wrote a file literally named ``-``, where ``-w -`` is
standard output (capture, trace, graph)."""

from __future__ import annotations

import pytest
from cli_inprocess import run_cli


@pytest.mark.parametrize("args", [["trace", "a", "b", "--pcap", "-"], ["probe", "--junit", "-"]])
def test_dash_is_refused_where_stdout_is_the_commands_own(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    result = run_cli(*args)
    option = args[-2]
    assert result.returncode == 2 and result.stdout == "", result
    assert result.stderr.strip() == (f"netlab: {option} -: standard output carries the command's "
                                                      f"own output; for a file named -, give {option} ./-")
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize("existing", [False, True])
@pytest.mark.parametrize("second", ["t.out", "./sub/../t.out", "{tmp}/t.out", "link.out"])
def test_trace_pcap_and_w_naming_one_file_is_refused_before_the_trace(tmp_path, monkeypatch, existing, second):
    """QA fx62r 2: `trace --pcap F -w F` ran the whole trace, then failed (exit 2) writing one over the other and
    lost the text. Refused at the start: one line, exit 2, by the resolved path (a link, ./x/../F, absolute) or the
    same inode, and nothing written."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    if existing:
        (tmp_path / "t.out").write_bytes(b"")
    (tmp_path / "link.out").symlink_to(tmp_path / "t.out")
    result = run_cli("trace", "--lab", "fxrnone", "a", "b", "--pcap", "t.out", "-w",
                     second.format(tmp=tmp_path))
    assert result.returncode == 2 and result.stdout == "", result
    assert result.stderr.count("\n") == 1 and "--pcap and -w name the same file" in result.stderr, result.stderr
    assert (tmp_path / "t.out").exists() == existing
