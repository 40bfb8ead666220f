"""An nft that cannot answer as JSON (built without ``--with-json``: "Error: JSON support not compiled-in") or that
does not start (its libnftables missing or broken), against the fake machine of test_doctor.py: the doctor fails
the nft line with the fix and ``up`` is refused before any change; a lab's reader (status, up of a running lab)
says an nft read failure in one line, exit 3, not a traceback. The real machine: tests/integration/
test_nft_json_live.py.
"""

from __future__ import annotations

import pytest

from netlab import doctor
from netlab.errors import EXIT_ENVIRONMENT, EnvironmentNotReady
from netlab.kernel import features, libnftables, live_read, nft
from test_doctor import DEFAULT, NFT_MODE, by_name, install_machine

NO_JSON = "Error: JSON support not compiled-in"
# What the dynamic loader says when libnftables.so.1 is an empty file.
BROKEN = ("/usr/sbin/nft: error while loading shared libraries: /lib/x86_64-linux-gnu/libnftables.so.1: "
          "file too short")


@pytest.fixture
def machine(tmp_path, monkeypatch):
    return install_machine(tmp_path, monkeypatch)


def test_the_nft_line_tries_nft_j_in_the_throwaway_namespace(machine):
    line = by_name(doctor.report(NFT_MODE, for_this_lab=True))["nft"].line()
    assert line.startswith("ok    tool nft: /usr/sbin/nft"), line
    assert machine.probes[-1][1]["nft-json"] == ["/usr/sbin/nft", "-j", "list", "tables"]


def test_an_nft_without_json_fails_the_nft_line_and_up_is_refused(machine):
    machine.nft_json = (1, NO_JSON)
    line = by_name(doctor.report(NFT_MODE, for_this_lab=True))["nft"].line()
    assert line.startswith("FAIL  tool nft: /usr/sbin/nft; ") and f"; `nft -j list tables` fails ({NO_JSON}); " \
        "netlab reads a lab's nftables as JSON" in line and line.endswith(f"; fix: {JSON_FIX}"), line
    with pytest.raises(EnvironmentNotReady) as info:
        doctor.require_for(NFT_MODE)
    assert str(info.value).splitlines() == [line] and info.value.exit_code == EXIT_ENVIRONMENT
    # a lab that writes no nft table only warns (iptables mode): it is up's to go on
    assert by_name(doctor.report(DEFAULT, for_this_lab=True))["nft"].status == doctor.WARN
    doctor.require_for(DEFAULT)


def test_a_library_that_cannot_list_as_json_fails_the_nft_line(machine):
    machine.library_json = NO_JSON
    line = by_name(doctor.report(NFT_MODE, for_this_lab=True))["nft"].line()
    assert line.startswith("FAIL  tool nft: ") and f"; libnftables.so.1 cannot list as JSON ({NO_JSON}); " in line \
        and line.endswith(f"; fix: {JSON_FIX}"), line


def test_an_nft_that_does_not_start_is_its_library_not_the_kernel(machine, monkeypatch):
    machine.nft_json = (127, BROKEN)
    real = machine.probe_kernel

    def probe(wanted, commands=None, **kw):
        out = real(wanted, commands, **kw)
        for name in ("nft-kube-proxy", "nf_netdev"):
            if name in (commands or {}):
                out.outputs[name] = (127, BROKEN)
        return out

    monkeypatch.setattr(features, "probe_kernel", probe)
    checks = by_name(doctor.diagnose(NFT_MODE, doctor.needs(NFT_MODE)))
    for name in ("nf_tables", "nf_netdev", "nft"):
        line = checks[name].line()
        assert f"the nft program does not start ({BROKEN})" in line and line.endswith(f"fix: {LIBRARY_FIX}"), line
        assert "CONFIG_NF_TABLES" not in line and "modprobe" not in line, line
    assert checks["nf_tables"].status == checks["nft"].status == doctor.FAIL


class FakeLibrary:
    """libnftables as a build without JSON answers: every command with the JSON flag fails."""


def test_the_librarys_json_is_tried_where_netlab_uses_the_library(monkeypatch):
    asked = []

    def run_command(lib, command, json=False):
        asked.append((command, json))
        return (1, b"", (NO_JSON + "\n").encode())

    monkeypatch.setattr(libnftables, "load", lambda: FakeLibrary())
    monkeypatch.setattr(libnftables, "run_command", run_command)
    monkeypatch.delenv(nft.ENV, raising=False)
    assert nft.library_json_error() == NO_JSON and asked == [("list tables", True)]
    monkeypatch.setenv(nft.ENV, "process")  # netlab runs the program only: the library is not asked
    assert nft.library_json_error() is None and len(asked) == 1
    monkeypatch.delenv(nft.ENV)
    monkeypatch.setattr(libnftables, "run_command", lambda lib, command, json=False: (0, b'{"nftables": []}', b""))
    assert nft.library_json_error() is None
    monkeypatch.setattr(libnftables, "load", lambda: None)  # no library: the program (its own check)
    assert nft.library_json_error() is None


JSON_FIX = "an nft built with JSON support: apt-get install nftables libnftables1 (Debian's and Ubuntu's have it)"
LIBRARY_FIX = "reinstall nft's library: apt-get install --reinstall libnftables1 nftables"


@pytest.mark.parametrize("said, fix", [(NO_JSON, JSON_FIX), (BROKEN, LIBRARY_FIX)])
def test_a_lab_whose_nft_table_cannot_be_read_is_one_line_exit_3(monkeypatch, said, fix):
    """status (and an up of the running lab) read kube-proxy's table with nft -j: its failure is the machine's
    (exit 3), one line with the fix, not a KernelError's traceback."""
    def list_table(netns, family, table):
        raise nft.NftError(f"{netns}: nft -j list table {family} {table} failed: {said}")

    monkeypatch.setattr(nft, "list_table", list_table)
    kernel = live_read.Reading.__new__(live_read.Reading)
    with pytest.raises(EnvironmentNotReady) as info:
        kernel._read_nft("lab-n1", [("ip", "kube-proxy")])
    assert str(info.value) == f"lab-n1: nft -j list table ip kube-proxy failed: {said}; fix: {fix}"
    assert info.value.exit_code == EXIT_ENVIRONMENT and "\n" not in str(info.value)
    assert kernel._read_nft("lab-n1", [("ip", "filter")]) == {}  # iptables-nft's tables are not nft's to read
