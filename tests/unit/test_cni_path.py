"""Where the reference chain's plugins are (realize/cni_path.py): Debian's /usr/lib/cni, or the folders
NETLAB_CNI_PATH names (kubeadm's or containerd's /opt/cni/bin), each checked before any plugin in it runs as root;
and `validate` of a valid `cni: reference` file on a machine without them: exit 3 with the fix, not exit 2."""

from __future__ import annotations

import json
import os

import pytest
from cli_inprocess import run_cli
from test_doctor import fake_plugins

from netlab.cni import cached as cni_cached, check as cni_check, conf as cni_conf
from netlab.errors import UsageError
from netlab.realize import cni_path
from netlab.realize.state import LabState

REFERENCE = "name: cp\nnetwork: {cni: reference}\nnodes: [{name: n1}]\npods: [{name: a, node: n1}]\n"


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """A machine whose Debian folder is empty (containernetworking-plugins not installed)."""
    debian = tmp_path / "usr-lib-cni"
    debian.mkdir()
    monkeypatch.setattr(cni_conf, "CNI_BIN_DIR", str(debian))
    monkeypatch.delenv(cni_path.PATH_ENV, raising=False)
    topo = tmp_path / "t.yaml"
    topo.write_text(REFERENCE)
    return topo


def test_validate_of_a_valid_reference_file_on_a_machine_without_plugins_is_the_machines_problem(machine, tmp_path):
    res = run_cli("validate", "-t", str(machine))
    assert res.returncode == 3, res.stdout + res.stderr
    assert res.stderr.startswith(f"{machine}:2: network.cni: plugins 'loopback', 'bridge', 'host-local' not "
                                 f"found in {tmp_path / 'usr-lib-cni'} (or not executable): the topology is valid, "
                                 "this machine lacks them; fix: apt-get install containernetworking-plugins"), \
        res.stderr
    assert "NETLAB_CNI_PATH=DIR" in res.stderr and res.stderr.count("\n") == 1


def test_netlab_cni_path_points_at_another_folder(machine, tmp_path, monkeypatch):
    opt = fake_plugins(tmp_path / "opt-cni-bin")
    opt.chmod(0o755)
    monkeypatch.setenv(cni_path.PATH_ENV, str(opt))
    res = run_cli("validate", "-t", str(machine))
    assert res.returncode == 0 and res.stdout.endswith("ok (lab cp: 1 node, 1 pod, 0 services)\n"), res.stderr
    assert (opt / "asked").read_text().count("VERSION") == 3  # loopback, bridge, host-local: asked there


def test_a_users_own_plugin_missing_is_still_the_files_problem(machine, tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "n.conflist").write_text('{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "mine"}]}')
    fake_plugins(tmp_path / "usr-lib-cni")
    machine.write_text(REFERENCE.replace("reference", "{conflist: n.conflist, binDir: bin}"))
    res = run_cli("validate", "-t", str(machine))
    assert res.returncode == 2 and "plugin 'mine' not found in" in res.stderr, res.stderr


def test_each_folder_is_checked_before_a_plugin_in_it_runs_as_root(tmp_path):
    good = tmp_path / "good"
    good.mkdir(mode=0o755)
    os.symlink(good, tmp_path / "link")
    (tmp_path / "file").write_text("")
    loose = tmp_path / "loose"
    loose.mkdir()
    loose.chmod(0o777)
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, 1000, 1000)
    assert cni_path.checked(f"{good}:{tmp_path / 'link'}") == [str(good)]  # the folder a symlink names, once
    for value, says in (("opt/cni/bin", "'opt/cni/bin' is not an absolute path"),
                        (f"{good}:", "an empty folder name"),
                        (str(tmp_path / "gone"), "no such file or directory"),
                        (str(tmp_path / "file"), "is not a directory"),
                        (str(loose), "is not root's alone (owner uid 0, mode 0777): the plugins in it run as root"),
                        (str(theirs), "is not root's alone (owner uid 1000, mode 0755)")):
        with pytest.raises(UsageError, match="^NETLAB_CNI_PATH=") as info:
            cni_path.checked(value)
        assert says in str(info.value)


def test_a_lab_keeps_the_folders_it_was_made_with(tmp_path, monkeypatch):
    opt = tmp_path / "opt"
    opt.mkdir(mode=0o755)
    monkeypatch.setenv(cni_path.PATH_ENV, str(opt))
    state = LabState(lab="cp", topology={"network": {"cni": "reference"}})
    cni_path.choose(state, "reference", fresh=True, reconfigure=False)
    assert state.extra["cni_path"] == [str(opt)]
    monkeypatch.delenv(cni_path.PATH_ENV)  # a later command, without the setting: status' CHECK, down's DEL
    cni_path.act_on(state)
    assert cni_path.plugin_dirs() == [str(opt)] and cni_cached.bin_dirs_of(state) == [str(opt)]
    cni_path.choose(state, "reference", fresh=False, reconfigure=False)
    assert state.extra["cni_path"] == [str(opt)]
    cni_path.choose(state, "reference", fresh=False, reconfigure=True)  # --reconfigure: the machine's of now
    assert state.extra["cni_path"] == [cni_conf.CNI_BIN_DIR]
    assert cni_check.PACKAGE == "containernetworking-plugins"


@pytest.mark.skipif(os.geteuid() != 0, reason="the rule is root's (model/trust.py)")
@pytest.mark.parametrize("command", ["validate", "doctor"])
def test_a_plugin_someone_else_can_change_is_refused_before_any_plugin_runs(machine, tmp_path, monkeypatch, command):
    """The folder is root's alone, but its bridge is 0777: anyone can replace the program root runs. validate
    and doctor (which `up` runs first) asked every plugin VERSION, as root, without looking at the files."""
    opt = fake_plugins(tmp_path / "opt-cni-bin")
    opt.chmod(0o755)
    (opt / "bridge").chmod(0o777)
    monkeypatch.setenv(cni_path.PATH_ENV, str(opt))
    res = run_cli(command, "-t", str(machine))
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr == (f"netlab: CNI plugin {opt / 'bridge'}: netlab runs as root and would run it as root, but "
                          "it is writable by everyone (mode 777); make it root's (or yours) and writable by no one "
                          "else (chmod go-w), or copy it to a folder of yours\n"), res.stderr
    assert not (opt / "asked").exists()  # no plugin ran: not even the trusted loopback


def test_validate_json_of_a_valid_file_on_a_machine_without_plugins_is_a_document(machine, tmp_path):
    """A machine interface wants a document: `-o json` printed none, only the line on stderr."""
    res = run_cli("validate", "-t", str(machine), "-o", "json")
    assert res.returncode == 3 and res.stderr == "", res.stdout + res.stderr
    got = json.loads(res.stdout)
    assert got["valid"] is True and got["problems"] == [] and got["pods"] == 1
    assert got["machine_missing"] == {
        "plugins": ["loopback", "bridge", "host-local"], "folders": [str(tmp_path / "usr-lib-cni")],
        "fix": "apt-get install containernetworking-plugins (or sudo ./scripts/setup.sh)",
        "message": run_cli("validate", "-t", str(machine)).stderr.rstrip("\n")}


def test_plugins_missing_from_netlab_cni_paths_folder_get_a_fix_that_names_it_not_apt_get(machine, tmp_path,
                                                                                          monkeypatch):
    """QA qr2 6: doctor's fix was `apt-get install containernetworking-plugins`, which fills /usr/lib/cni, where
    netlab then does not look; validate's ended "plugins elsewhere ...: NETLAB_CNI_PATH=DIR", set already."""
    empty = tmp_path / "empty-bin"
    empty.mkdir(mode=0o755)
    monkeypatch.setenv(cni_path.PATH_ENV, str(empty))
    fix = (f"fix: put loopback, bridge, host-local in {empty} (NETLAB_CNI_PATH names it), or point NETLAB_CNI_PATH "
           f"at the folder that has them, or unset it to use {tmp_path / 'usr-lib-cni'}'s")
    res = run_cli("validate", "-t", str(machine))
    assert res.returncode == 3 and res.stderr.endswith(f"this machine lacks them; {fix}\n"), res.stderr
    assert "apt-get" not in res.stderr and "NETLAB_CNI_PATH=DIR" not in res.stderr
    from netlab.model.lab import resolve
    from netlab.model.load import load_topology

    verdict = cni_check.verdict(resolve(load_topology(str(machine))))
    assert not verdict.present and f"fix: {verdict.fix}" == fix, verdict
