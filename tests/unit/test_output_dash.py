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
