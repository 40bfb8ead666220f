"""netlab doctor's CNI plugins line, against a directory of fake plugins (shell scripts answering VERSION).

Present, missing, not executable, broken, hung, too old, the directory itself
missing; which plugins each lab is checked for; the JSON shape in every case;
``up``'s refusal (require_for) with the same line; ``netlab validate`` reading
the same answers. The real plugins: tests/integration/test_doctor_live.py.
"""

from __future__ import annotations

import json
import os

import pytest

from test_doctor import DEFAULT, by_name, fake_plugins, install_machine
from netlab import doctor
from netlab.cni import check as cni_check, conf as cni_conf
from netlab.errors import EXIT_ENVIRONMENT, EnvironmentNotReady
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.plan import flannel


SPEAKS = "speak cniVersion 1.0.0"
FIX = "apt-get install containernetworking-plugins (or sudo ./scripts/setup.sh)"
KEYS = {"title", "name", "status", "detail", "fix", "needed", "items"}
ITEM_KEYS = {"name", "path", "state", "cniVersion", "supportedVersions", "error"}


@pytest.fixture
def machine(tmp_path, monkeypatch):
    return install_machine(tmp_path, monkeypatch)


def lab_with(tmp_path, cni: str, conflist: dict | None = None):
    """A one-node lab whose network.cni is ``cni`` (with a conflist: written beside it, plugins in ./bin)."""
    if conflist is not None:
        (tmp_path / "n.conflist").write_text(json.dumps(conflist))
        (tmp_path / "bin").mkdir(exist_ok=True)
    path = tmp_path / "t.yaml"
    path.write_text(f"name: cn\nnetwork:\n  cni: {cni}\nnodes: [{{name: n1}}]\npods: [{{name: a, node: n1}}]\n")
    return resolve(load_topology(str(path)))


def cni_line(lab, for_this_lab: bool = True) -> doctor.Check:
    return by_name(doctor.report(lab, for_this_lab=for_this_lab))["cni-plugins"]


def shape(check: doctor.Check) -> tuple:
    data = json.loads(json.dumps(check.to_json()))
    return set(data), [set(item) for item in data["items"]]


def test_every_plugin_is_asked_version_as_libcni_asks_and_the_line_is_ok(machine):
    check = cni_line(DEFAULT, for_this_lab=False)  # plain `netlab doctor`: Debian's plugins, needed
    assert check.line() == f"ok    tool CNI plugins: loopback, bridge, host-local, portmap in {machine.cni} answer " \
                           f"VERSION and {SPEAKS}"
    assert check.needed and shape(check) == (KEYS, [ITEM_KEYS] * 4)
    assert [(i["name"], i["path"], i["state"], i["supportedVersions"][-1]) for i in check.to_json()["items"]] == [
        (name, str(machine.cni / name), "ok", "1.0.0") for name in cni_check.DEBIAN_PLUGINS]
    # CNI_COMMAND=VERSION, the config's cniVersion on stdin, once per plugin.
    asked = sorted((machine.cni / "asked").read_text().splitlines())
    assert asked == ['VERSION {"cniVersion": "1.0.0"}'] * 4


def test_a_missing_plugin_fails_when_needed_warns_when_not_and_is_not_asked_for_when_unused(machine, tmp_path):
    (machine.cni / "portmap").unlink()
    check = cni_line(DEFAULT, for_this_lab=False)
    assert check.line() == (f"FAIL  tool CNI plugins: plugin 'portmap' not found in {machine.cni} (or not executable); "
                            f"loopback, bridge, host-local in {machine.cni} answer VERSION and {SPEAKS}; fix: {FIX}")
    assert [i["state"] for i in check.to_json()["items"]] == ["ok", "ok", "ok", "missing"]
    assert check.to_json()["items"][3]["path"] is None and shape(check) == (KEYS, [ITEM_KEYS] * 4)
    builtin = cni_line(DEFAULT)  # a lab that attaches its pods itself: advice only
    assert builtin.status == doctor.WARN and not builtin.needed
    assert "; needed only for network.cni: reference or a conflist (pods attached by CNI plugins); fix: " \
           f"{FIX}" in builtin.line()
    reference = cni_line(lab_with(tmp_path, "reference"))  # its chain never runs portmap
    assert reference.line() == f"ok    tool CNI plugins: loopback, bridge, host-local in {machine.cni} answer " \
                               f"VERSION and {SPEAKS}"
    assert reference.needed


def test_a_plugin_that_is_not_executable_is_missing(machine):
    (machine.cni / "bridge").chmod(0o644)
    check = cni_line(DEFAULT, for_this_lab=False)
    assert check.status == doctor.FAIL
    assert f"plugin 'bridge' not found in {machine.cni} (or not executable)" in check.detail


def test_no_plugin_directory_is_one_clear_line(machine, monkeypatch, tmp_path):
    gone = tmp_path / "no-such-dir"
    monkeypatch.setattr(cni_conf, "CNI_BIN_DIR", str(gone))
    check = cni_line(DEFAULT, for_this_lab=False)
    assert check.line() == (f"FAIL  tool CNI plugins: {gone} does not exist: no plugin (loopback, bridge, host-local, "
                            f"portmap); fix: {FIX}")
    assert shape(check) == (KEYS, [ITEM_KEYS] * 4)
    assert {(i["state"], i["path"]) for i in check.to_json()["items"]} == {("missing", None)}


@pytest.mark.parametrize("script,detail,fix", [
    ('#!/bin/sh\ncat >/dev/null\necho "cannot read myself" >&2\necho \'{"code": 999, "msg": "plugin broke"}\'\n'
     "exit 1\n", "plugin bridge: VERSION failed: CNI plugin bridge VERSION: failed (exit 1): plugin broke "
     "[code 999]; stderr: cannot read myself", "apt-get install --reinstall containernetworking-plugins"),
    ("#!/bin/sh\ncat >/dev/null\necho 'usage: bridge'\n",
     "plugin bridge: VERSION failed: CNI plugin bridge VERSION: its output is not JSON: usage: bridge",
     "apt-get install --reinstall containernetworking-plugins"),
    ("#!/bin/sh\ncat >/dev/null\nexec sleep 30\n",
     "plugin bridge: VERSION failed: CNI plugin bridge VERSION: timed out: it ran past the call's deadline, 0.5 s "
     "(NETLAB_CNI_TIMEOUT): netlab killed its process group",
     "apt-get install --reinstall containernetworking-plugins"),
    ('#!/bin/sh\ncat >/dev/null\necho \'{"cniVersion":"0.3.1","supportedVersions":["0.3.0","0.3.1"]}\'\n',
     "plugin bridge does not speak cniVersion 1.0.0 (it speaks 0.3.0, 0.3.1)",
     "a containernetworking-plugins whose plugins speak cniVersion 1.0.0"),
], ids=["error-object", "not-json", "hangs", "too-old"])
def test_a_broken_plugin_fails_with_what_it_said(machine, monkeypatch, script, detail, fix):
    monkeypatch.setattr(cni_check, "VERSION_TIMEOUT", 0.5)
    fake_plugins(machine.cni, ["bridge"], script)
    check = cni_line(DEFAULT, for_this_lab=False)
    assert check.status == doctor.FAIL and check.detail.startswith(detail + "; loopback, host-local, portmap in "), \
        check.detail
    assert check.fix.startswith(fix) and shape(check) == (KEYS, [ITEM_KEYS] * 4)
    (item,) = [i for i in check.to_json()["items"] if i["name"] == "bridge"]
    assert item["state"] == ("unsupported" if "speak" in detail else "broken")
    assert item["path"] == str(machine.cni / "bridge")


def test_a_user_conflist_is_checked_in_its_bin_dir_with_its_own_fix(machine, tmp_path):
    net = {"cniVersion": "0.4.0", "name": "n", "plugins": [{"type": "mine", "ipam": {"type": "host-local"}},
                                                           {"type": "gone"}]}
    lab = lab_with(tmp_path, "{conflist: n.conflist, binDir: bin}", net)
    fake_plugins(tmp_path / "bin", ["mine"])
    check = cni_line(lab)
    assert check.needed and check.line() == (
        f"FAIL  tool CNI plugins: plugin 'gone' not found in {tmp_path / 'bin'}:{machine.cni} (or not executable); "
        f"loopback, host-local in {machine.cni} and mine in {tmp_path / 'bin'} answer VERSION and speak cniVersion "
        f"0.4.0, 1.0.0; fix: put an executable gone that answers VERSION for cniVersion 0.4.0 in {tmp_path / 'bin'} "
        "(network.cni.binDir)")
    # netlab validate reads the same answers, as file:line problems.
    assert cni_check.plugin_problems(lab) == [(("network", "cni", "conflist"), check.detail.split("; ")[0])]
    (tmp_path / "n.conflist").write_text("{not json")
    bad = cni_line(lab)
    assert bad.status == doctor.FAIL and bad.detail.startswith("network.cni.conflist: ")


def test_up_of_a_cni_lab_stops_with_the_doctors_line(machine, tmp_path, monkeypatch):
    lab = lab_with(tmp_path, "reference")
    assert "cni-plugins" in doctor.needs(lab) and "cni-plugins" not in doctor.needs(DEFAULT)
    doctor.require_for(lab)  # all there
    (machine.cni / "host-local").unlink()
    with pytest.raises(EnvironmentNotReady) as info:
        doctor.require_for(lab)
    assert str(info.value) == cni_line(lab).line() and info.value.exit_code == EXIT_ENVIRONMENT == 3
    doctor.require_for(DEFAULT)  # a builtin lab does not ask its plugins
    monkeypatch.setenv(doctor.MISSING_HOOK, "cni-plugins")
    fake_plugins(machine.cni, ["host-local"])
    assert cni_line(lab).line() == (f"FAIL  tool CNI plugins: loopback, bridge, host-local reported missing by "
                                    f"{doctor.MISSING_HOOK} (a test hook); fix: {FIX}")
    assert os.path.exists(machine.cni / "host-local")


def test_debian_plugins_are_what_the_reference_chain_and_flannels_conflist_use(tmp_path):
    lab = lab_with(tmp_path, "reference")
    used = [kind for kind, _ in cni_check.wanted(lab)]
    flannels = [p["type"] for p in json.loads(flannel.cni_conflist())["plugins"] if p["type"] != "flannel"]
    assert list(cni_check.DEBIAN_PLUGINS) == used + flannels == ["loopback", "bridge", "host-local", "portmap"]
    assert set(cni_check.DEBIAN_PLUGINS) <= cni_check.PACKAGE_PLUGINS
