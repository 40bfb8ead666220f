"""A lab's saved topology gives its cluster DNS add-on the dnsmasq command this netlab makes (QA qo, defect 2).

After an upgrade, the saved topology held the add-on's pod with the old release's dnsmasq command: `status --lab`
and `up --lab` compared the container with it ("all as planned", the old command kept) while `status -t FILE` said
"runs an old command" and `up -t FILE` restarted it. Both now compare with the command this netlab would give it.
"""

from __future__ import annotations

import json

import pytest

from netlab.api.topology import load, load_running
from netlab.model.clusterdns import is_addon_pod
from netlab.model.lab import resolve
from netlab.model.load import parse_yaml, validate_source
from netlab.realize.state import ADDRESSES, LabState, load_state
from netlab.realize.state_sum import SUM_FILE
from netlab.workload.containers import container_argv

LAB = "adn"
TOPOLOGY = (f"name: {LAB}\nnodes: [{{name: n1}}]\n"
            "pods: [{name: web, node: n1, labels: {app: web}}, {name: client, node: n1}]\n"
            "services: [{name: web, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}]\n")


def addon_argv(lab) -> list[str]:
    pod = next(p for p in lab.pods if is_addon_pod(p.spec))
    return container_argv(pod, pod.spec.containers[0])


def saved_by_an_older_release(old_command) -> LabState:
    """The lab's state as `up` saves it, its add-on's command the one ``old_command`` makes of this one's."""
    lab = resolve(validate_source(parse_yaml(TOPOLOGY, "t.yaml")))
    state = LabState(lab=LAB, phase="up")
    topo = lab.topo.model_dump(mode="json", by_alias=True, exclude_none=True)
    addon = next(p for p in topo["pods"] if p["name"] == "kube-dns")
    addon["containers"][0]["command"] = old_command(addon["containers"][0]["command"])
    state.topology, state.extra[ADDRESSES] = topo, lab.held().to_json()
    state.save()
    return state


def without_version_txt(argv: list[str]) -> list[str]:  # as releases before the dns-version TXT record made it
    return [a for a in argv if not a.startswith("--txt-record=dns-version.")]


@pytest.mark.parametrize("checked", [False, True])
def test_the_saved_add_ons_command_is_this_netlabs_as_the_files_is(state_root, tmp_path, checked):
    path = tmp_path / "t.yaml"
    path.write_text(TOPOLOGY)
    state = saved_by_an_older_release(without_version_txt)
    if checked:  # a state this netlab did not write (no sum of its own): read through the schema's check
        (state_root / LAB / SUM_FILE).unlink()
    old = next(p for p in state.topology["pods"] if p["name"] == "kube-dns")["containers"][0]["command"]
    from_file = addon_argv(load(str(path)).lab)
    assert from_file != old
    assert addon_argv(state.resolved()) == from_file  # what status --lab and up --lab compare the container with
    assert addon_argv(load_state(LAB).resolved()) == from_file
    assert addon_argv(load_running(LAB).lab) == from_file
    saved = json.loads((state_root / LAB / "state.json").read_text())["topology"]
    assert next(p for p in saved["pods"] if p["name"] == "kube-dns")["containers"][0]["command"] == old  # unwritten


def test_a_dnsmasq_of_the_users_own_in_the_saved_topology_is_kept(state_root):
    mine = ["dnsmasq", "--keep-in-foreground", "--conf-file=/etc/mine.conf"]
    state = saved_by_an_older_release(lambda argv: mine)
    pod = next(p for p in state.resolved().pods if is_addon_pod(p.spec))
    assert list(pod.spec.containers[0].command) == mine
