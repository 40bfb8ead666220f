"""The previews of an `up -t FILE`, `status -t FILE` and `plan -t FILE`, say what that up does that the kernel
objects do not show, in up's own words: the pods it makes anew (a new namespace, its containers started again),
and the warning it gives when another pod's ip: takes an address a pod holds. They showed an address or a veth
missing here and extra there, and JSON's ``warnings`` was []. No root: the fake kernel, the state in the test's
state directory; the same file's up on the fake kernel says the same."""

from __future__ import annotations

import json
import types

import pytest
from cli_inprocess import run_cli

from netlab import api
from netlab.api import lab as lab_mod
from netlab.kernel.fake import FakeKernel
from netlab.lab import up as lab_up
from netlab.lab.journal import Journal
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.realize.attachments import remade_line
from netlab.realize.state import load_state

TOPO = """name: fkp
nodes:
  - {name: n1, ip: 192.168.122.215, podCIDR: 10.244.0.0/24}
  - {name: n2, ip: 192.168.122.7, podCIDR: 10.244.1.0/24}
pods:
  - {name: a, node: n1}
  - {name: b, node: n2}
"""


@pytest.fixture
def running(state_root, tmp_path):
    """Lab fkp up on the fake kernel (b without ip:, holding the address it got), from its file."""
    path = tmp_path / "fkp.yaml"
    path.write_text(TOPO)
    k = FakeKernel()
    lab_up.up(resolve(load_topology(str(path))), k, features=(), source=str(path), journal=Journal(k))
    state = load_state("fkp")
    assert state is not None
    return k, path, {p.name: str(p.ip) for p in state.resolved().pods}


def edited(tmp_path, text: str):
    """The lab's own file, edited (as a user does before `status -t FILE` and `up -t FILE`)."""
    path = tmp_path / "fkp.yaml"
    path.write_text(text)
    return path


def previews(path, monkeypatch) -> tuple[list[str], list[str], list[str]]:
    """What `status -t FILE -o json` and `plan -t FILE -o json` warn of, and the text plan's stderr lines."""
    differs = types.SimpleNamespace(ok=False, lab="fkp", objects=1, drift=["missing: address"], details=[],
                                    warnings=[], reconfigure=False)
    monkeypatch.setattr(lab_mod.lifecycle, "status", lambda state, kernel: differs)
    status = list(lab_mod.internal_status(api.Lab.attach("fkp"), str(path)).warnings)
    res = run_cli("plan", "-t", str(path), "-o", "json")
    assert res.returncode == 0, res.stderr
    text = run_cli("plan", "-t", str(path)).stderr.splitlines()
    return status, json.loads(res.stdout)["warnings"], text


def test_another_pods_ip_taking_a_held_address_is_previewed_as_up_says_it(running, tmp_path, monkeypatch):
    k, _, ips = running
    path = edited(tmp_path, TOPO + f"  - {{name: c, node: n2, ip: {ips['b']}}}\n")
    status, plan, text = previews(path, monkeypatch)
    done = lab_up.up(resolve(load_topology(str(path)), load_state("fkp").holding()), k, features=(),  # type: ignore
                     source=str(path), journal=Journal(k))
    [taken] = [w for w in done.warnings if "which pod c asks for (ip:)" in w]
    assert taken.startswith(f"pod b held {ips['b']}, which pod c asks for (ip:): it gets ")
    [remade] = [line for line in done.fixed if "made anew" in line]
    why = remade.removesuffix(": made anew in a new namespace (Kubernetes makes a new pod)")
    assert why.startswith(f"pod b changes address from {ips['b']} to ") and why.endswith(f"(another pod's ip: "
                                                                                            f"takes {ips['b']})")
    ahead = remade_line("b", why.removeprefix("pod b "), ahead=True)
    assert ahead == f"{why}: up makes it anew in a new namespace, its containers started again (Kubernetes " \
                    "makes a new pod)"
    assert status == plan == [taken, ahead]
    assert text == [f"netlab: warning: {taken}", f"netlab: warning: {ahead}"]


@pytest.mark.parametrize("was, now, why", [
    ("{name: b, node: n2}", "{name: b, node: n1}", "moves from node n2 to n1"),
    ("{name: b, node: n2}", "{name: b, node: n2, ip: 10.244.1.77}", "changes address from {b} to 10.244.1.77 "
                                                                   "(its file's ip: asks for it)"),
])
def test_a_pod_moved_or_readdressed_is_previewed_as_made_anew(running, tmp_path, monkeypatch, was, now, why):
    k, _, ips = running
    path = edited(tmp_path, TOPO.replace(was, now))
    status, plan, _ = previews(path, monkeypatch)
    why = why.format(b=ips["b"])
    assert status == plan == [remade_line("b", why, ahead=True)]
    done = lab_up.up(resolve(load_topology(str(path)), load_state("fkp").holding()), k, features=(),  # type: ignore
                     source=str(path), journal=Journal(k))
    assert remade_line("b", why) in done.fixed


def test_no_preview_for_the_labs_own_file_or_a_lab_that_is_not_up(running, tmp_path, monkeypatch):
    _, path, _ = running
    assert previews(path, monkeypatch)[:2] == ([], [])
    other = tmp_path / "other.yaml"
    other.write_text(TOPO.replace("name: fkp", "name: fkq"))
    assert json.loads(run_cli("plan", "-t", str(other), "-o", "json").stdout)["warnings"] == []
