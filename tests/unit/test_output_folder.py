"""`-w` into a folder that does not exist says so as tcpdump does ("No such file or directory"), not in the words
for a file where the folder should be ("is not a directory"); both are a wrong output path, exit 2, one line,
before any work (capture checks it before root or a lab)."""

from __future__ import annotations

import pytest

from cli_inprocess import run_cli

TOPOLOGY = "name: qo\nnodes:\n  - name: n1\npods:\n  - name: a\n    node: n1\n"


@pytest.mark.parametrize("command", [["graph", "-t", "{topo}", "-o", "svg"], ["capture", "n1:eth0"]])
def test_a_missing_folder_is_no_such_file_and_a_file_is_not_a_directory(tmp_path, command):
    topo = tmp_path / "t.yaml"
    topo.write_text(TOPOLOGY)
    (tmp_path / "plain").write_text("")
    args = [a.format(topo=topo) for a in command]
    for where, says in ((tmp_path / "nodir" / "x.out", f"cannot write {tmp_path}/nodir/x.out: No such file or directory"),
                        (tmp_path / "plain" / "x.out", f"cannot write {tmp_path}/plain/x.out: {tmp_path}/plain is not "
                                                       "a directory"),
                        (tmp_path / "plain" / "sub" / "x.out", f"cannot write {tmp_path}/plain/sub/x.out: Not a "
                                                               "directory")):
        proc = run_cli(*args, "-w", str(where))
        assert (proc.returncode, proc.stderr) == (2, f"netlab: {says}\n")
    assert not (tmp_path / "nodir").exists()
