"""A conflist field the bridge plugin found here does not read (cni/fields.py: its binary has no json tag for it).
`validate` said nothing of it (the doctor and `up` warn): the binary is a file anyone may read, so validate notes
it too, at network.cni.conflist (-o json's note_places). The words said "Debian 12's is 1.1.1" whatever the
machine: they name the version of Debian's package that installed the plugin (dpkg's file list and status, read),
or say the build lacks the field. preserveDefaultVlan (false: the default VLAN off a pod's port beside its vlan)
came with vlanTrunk in v1.3.0, and 1.1.1 has no tag for it either: said the same way, when it asks for something."""

from __future__ import annotations

import json

import pytest

from cli_inprocess import run_cli
from test_doctor import PLUGIN, fake_plugins

from netlab.cni import fields
from netlab.model.lab import resolve
from netlab.model.load import load_topology

TRUNK = {"type": "bridge", "vlanTrunk": [{"minID": 10, "maxID": 20}], "ipam": {"type": "host-local"}}


def topology(tmp_path, plugins) -> str:
    fake_plugins(tmp_path / "bin", ("loopback", "host-local", "bridge"), PLUGIN)  # VERSION only: no json tags
    (tmp_path / "n.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "n", "plugins": plugins}))
    (tmp_path / "t.yaml").write_text("name: cn\nnetwork:\n  cni: {conflist: n.conflist, binDir: bin}\n"
                                     "nodes: [{name: n1}]\npods: [{name: a, node: n1}]\n")
    return str(tmp_path / "t.yaml")


def words(tmp_path, field: str, found: str, effect: str) -> str:
    return (f"the bridge plugin {tmp_path / 'bin' / 'bridge'} reads no {field} (added in containernetworking-plugins "
            f"v1.3.0; {found}): the {field} of {tmp_path / 'n.conflist'} has no effect, {effect}")


TRUNK_EFFECT = "its pods' ports get no VLANs and the bridge no VLAN filtering"
OLDER = 'its binary has no json:"vlanTrunk" tag: an older build'


def test_validate_notes_a_field_the_plugin_here_does_not_read(tmp_path):
    path = topology(tmp_path, [TRUNK])
    run = run_cli("validate", "-t", path)
    assert run.returncode == 0, run.stderr
    said = words(tmp_path, "vlanTrunk", OLDER, TRUNK_EFFECT)
    assert [line for line in run.stderr.splitlines() if "vlanTrunk" in line] == [
        f"netlab: note: {path}:3: network.cni.conflist: {said}"], run.stderr
    js = json.loads(run_cli("validate", "-t", path, "-o", "json").stdout)
    assert [n for n in js["note_places"] if "vlanTrunk" in n["message"]] == [
        {"file": path, "line": 3, "field": "network.cni.conflist", "message": said}]


def test_the_words_name_the_debian_package_that_installed_the_plugin(tmp_path, monkeypatch):
    dpkg = tmp_path / "dpkg"
    (dpkg / "info").mkdir(parents=True)
    lab = resolve(load_topology(topology(tmp_path, [TRUNK])))
    (dpkg / "info" / "containernetworking-plugins.list").write_text(f"/usr/lib/cni\n{tmp_path / 'bin' / 'bridge'}\n")
    (dpkg / "status").write_text("Package: other\nStatus: install ok installed\nVersion: 1\n\n"
                                 "Package: containernetworking-plugins\nStatus: install ok installed\n"
                                 "Architecture: amd64\nVersion: 1.1.1+ds1-3+b5\nDescription: plugins\n more\n")
    monkeypatch.setattr(fields, "DPKG", str(dpkg))
    assert fields.unread_fields(lab) == [
        words(tmp_path, "vlanTrunk", "it is Debian's containernetworking-plugins 1.1.1+ds1-3+b5", TRUNK_EFFECT)]
    (dpkg / "info" / "containernetworking-plugins.list").write_text("/usr/lib/cni/bridge\n")  # another bridge's
    assert fields.unread_fields(lab) == [words(tmp_path, "vlanTrunk", OLDER, TRUNK_EFFECT)]


KEEPS = "its pods' ports keep the bridge's default VLAN 1 (untagged) beside their vlan 100"
PLAIN = ("with vlanTrunk unread too the bridge filters no VLANs: its pods' ports carry every frame untagged, as a "
         "plain bridge's do")


@pytest.mark.parametrize("plugin, said", [
    ({"type": "bridge", "vlan": 100, "preserveDefaultVlan": False}, KEEPS),
    ({**TRUNK, "preserveDefaultVlan": False}, PLAIN),  # it said "beside their vlan": there is none
    ({**TRUNK, "vlan": 100, "preserveDefaultVlan": False}, KEEPS),
    ({"type": "bridge", "vlan": 100, "preserveDefaultVlan": True}, None),  # what an older bridge does anyway
    ({"type": "bridge", "preserveDefaultVlan": False}, None),  # no VLAN on the port: it changes nothing
])
def test_preserve_default_vlan_false_is_said_where_the_plugin_does_not_read_it(tmp_path, plugin, said):
    lab = resolve(load_topology(topology(tmp_path, [{**plugin, "ipam": {"type": "host-local"}}])))
    got = [line for line in fields.unread_fields(lab) if "preserveDefaultVlan" in line]
    assert got == ([words(tmp_path, "preserveDefaultVlan", 'its binary has no json:"preserveDefaultVlan" tag: an '
                          "older build", said)] if said else [])


REFUSED = ("; a bridge plugin that reads vlanTrunk (upstream v1.3.0 and later) refuses it beside a vlan (\"cannot set "
           "vlan and vlanTrunk at the same time\"): keep one of them")
VLAN_ALONE = ("its pods' ports get their vlan 100 alone (untagged, the bridge filtering VLANs), none of the trunk's "
              "tagged VLANs")


@pytest.mark.parametrize("plugin, said", [
    (TRUNK, TRUNK_EFFECT),
    # Debian's 1.1.1 still reads vlan, and turns VLAN filtering on for it: it said "no VLANs and no filtering"
    ({**TRUNK, "vlan": 100}, VLAN_ALONE + REFUSED),
    ({**TRUNK, "vlan": 100, "vlanTrunk": []}, VLAN_ALONE),  # an empty trunk: upstream takes it beside a vlan
])
def test_vlan_trunk_words_say_what_the_plugin_makes_of_this_config(tmp_path, plugin, said):
    lab = resolve(load_topology(topology(tmp_path, [plugin])))
    assert [line for line in fields.unread_fields(lab) if "vlanTrunk (" in line] == [
        words(tmp_path, "vlanTrunk", OLDER, said)]
