"""inspect's files section: a node's Flannel files, and now a pod's /etc/resolv.conf and /etc/hosts as its
containers see them (netlab's in /etc/netns/<netns>/, else the host's own), in text and -o json (a pod had no
files key). A section the name does not have is one line and exit 2 (invalid input, README's exit codes) for
files as for cni: `files` of an internet host, `cni` of a builtin lab's pod."""

from __future__ import annotations

import json
import os
import types

import pytest
from cli_inprocess import run_cli

from netlab import api
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.services import netns_files

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MARK = "# netlab svc: "


@pytest.fixture
def svc(monkeypatch, tmp_path):
    """The lab of topologies/services.yaml as attach gives it, its pods' files in a folder of the test's, and the
    kernel's sections read as empty."""
    model = resolve(load_topology(os.path.join(ROOT, "topologies", "services.yaml")))
    monkeypatch.setattr(api.Lab, "model", property(lambda self: model))
    monkeypatch.setattr(api.Lab, "state", lambda self: types.SimpleNamespace(lab="svc"))
    monkeypatch.setattr(api.Lab, "attach", classmethod(lambda cls, name=None: cls("svc")))
    monkeypatch.setattr("netlab.api.exec.exec_target",
                        lambda state, m, name, gone=False: types.SimpleNamespace(netns=f"svc-{name}"))
    monkeypatch.setattr("netlab.trace.inspect.inspect",
                        lambda netns, lab, sections: {"netns": netns, "what": "pod" if "-" in netns else "?"})
    monkeypatch.setattr("netlab.cli.trace.require_root", lambda: None)
    monkeypatch.setattr(api, "selected_name", lambda *a, **k: "svc")
    etc = tmp_path / "etc-netns"
    (etc / "svc-client").mkdir(parents=True)
    (etc / "svc-client" / "resolv.conf").write_text(f"{MARK}cluster DNS\nnameserver 10.96.0.10\noptions ndots:5\n")
    (etc / "svc-client" / "hosts").write_text(f"{MARK}hosts\n10.244.0.3\tclient\n")
    monkeypatch.setattr(netns_files, "ETC_NETNS", str(etc))
    return etc


def test_a_pods_files_in_json_and_text(svc):
    doc = json.loads(run_cli("inspect", "client", "-s", "files", "-o", "json").stdout)
    files = doc["files"]
    assert list(files) == ["/etc/resolv.conf", "/etc/hosts"]
    assert files["/etc/resolv.conf"] == {"kept": f"{svc}/svc-client/resolv.conf",
                                         "content": f"{MARK}cluster DNS\nnameserver 10.96.0.10\noptions ndots:5\n"}
    assert files["/etc/hosts"]["content"].endswith("10.244.0.3\tclient\n")
    text = run_cli("inspect", "client", "-s", "files")
    assert text.returncode == 0 and text.stderr == ""
    assert f"file /etc/resolv.conf   $ sudo cat {svc}/svc-client/resolv.conf\n  {MARK}cluster DNS\n" in text.stdout
    assert "  nameserver 10.96.0.10\n" in text.stdout and "  10.244.0.3\tclient\n" in text.stdout


def test_a_pod_without_netlabs_file_sees_the_hosts_own(svc):
    files = json.loads(run_cli("inspect", "web-1", "-s", "files", "-o", "json").stdout)["files"]
    assert files["/etc/resolv.conf"]["kept"] == "/etc/resolv.conf"
    with open("/etc/resolv.conf", encoding="utf-8", errors="replace") as fh:
        assert files["/etc/resolv.conf"]["content"] == fh.read()
    text = run_cli("inspect", "web-1", "-s", "files").stdout
    assert ("file /etc/resolv.conf (the host's own: netlab wrote none for this pod)   $ sudo cat /etc/resolv.conf"
            in text)


@pytest.mark.parametrize("name,section,says", [
    ("example", "files", "section files shows a node's files (Flannel's subnet.env, the CNI config) or a pod's "
                         "(/etc/resolv.conf, /etc/hosts); example is neither"),
    ("web-1", "cni", "section cni shows a pod's result from its CNI plugins; lab svc attaches its pods with "
                     "netlab's builtin wiring (network.cni: builtin)")])
def test_a_section_the_name_has_not_is_one_line_and_exit_2(svc, name, section, says):
    res = run_cli("inspect", name, "-s", section)
    assert (res.returncode, res.stdout, res.stderr) == (2, "", f"netlab: {says}\n")
