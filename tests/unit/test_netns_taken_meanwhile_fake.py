"""Two labs whose namespace names collide (lab fk's pod a-p and lab fk-a's pod p both need fk-a-p), up at the same
moment: the other `up` makes the namespace after this one's check found the name free, and this one's create
finds its pin there (EEXIST). Refused as the check refuses it (exit 3, whose it is by its tag), rolled back, the
other lab's namespace untouched (QA q30, defect 1). Against the fake kernel."""

from __future__ import annotations

import os
import shlex

import pytest
from fake_lab import up

from netlab.errors import EXIT_ENVIRONMENT, OwnershipConflict
from netlab.kernel import netns as nsmod
from netlab.kernel.fake import FakeKernel
from netlab.model.lab import resolve
from netlab.model.load import load_topology
from netlab.realize import lab_list, state as state_mod, state_dir

TOPO = """name: fk
nodes:
  - {name: n1, ip: 192.168.122.215, podCIDR: 10.244.0.0/24}
pods:
  - {name: a-p, node: n1, ip: 10.244.0.2}
  - {name: b, node: n1, ip: 10.244.0.3}
"""
OTHER = nsmod.make_tag("fk-a", "run-of-fk-a")


class Raced(FakeKernel):
    """The other lab's `up` makes fk-a-p (tagged as lab fk-a's) just before this one does: after the check."""

    def __init__(self, mounted: bool = True):
        super().__init__()
        self.mounted = mounted

    def create_netns(self, name, tag, sysctls):
        if name == "fk-a-p" and not self.netns_exists(name):
            if self.mounted:
                super().create_netns(name, OTHER, [])
            else:  # its pin claimed, not yet mounted
                self.placeholders.add(name)
        return super().create_netns(name, tag, sysctls)


@pytest.fixture
def lab(tmp_path, monkeypatch):
    monkeypatch.setattr(state_dir, "STATE_ROOT", str(tmp_path / "state"))
    path = tmp_path / "t.yaml"
    path.write_text(TOPO)
    return resolve(load_topology(str(path)))


def machine(monkeypatch, k: FakeKernel, up_labs: list[str]) -> None:
    """The machine's /run/netns is the fake kernel's; the labs with state here are ``up_labs`` and this one."""
    monkeypatch.setattr(nsmod, "is_netns_mount", lambda name: name in k.ns)
    monkeypatch.setattr(nsmod, "exists", lambda name: k.netns_exists(name))
    monkeypatch.setattr(nsmod, "read_tag", k.read_tag)
    monkeypatch.setattr(lab_list, "known_labs", lambda: sorted(up_labs))


def test_a_namespace_another_lab_made_meanwhile_is_refused_as_its(lab, monkeypatch):
    k = Raced()
    machine(monkeypatch, k, ["fk-a"])
    with pytest.raises(OwnershipConflict) as err:
        up(lab, k)
    # under NETLAB_STATE_DIR, the variable after sudo, as every other hint says it (rb61 8)
    sudo = (f"sudo NETLAB_STATE_DIR={shlex.quote(os.environ['NETLAB_STATE_DIR'])} netlab"
            if os.environ.get("NETLAB_STATE_DIR") else "sudo netlab")
    assert str(err.value) == (f"namespace fk-a-p already exists and belongs to lab fk-a, which is up (see `{sudo} "
                              f"list`); rename lab fk, or take fk-a down first (`{sudo} down --lab fk-a`); rolled back")
    assert err.value.exit_code == EXIT_ENVIRONMENT == 3
    # What this run made is gone, the other lab's namespace is as it made it, and the fresh lab left no state
    assert sorted(k.ns) == ["fk-a-p"] and k.read_tag("fk-a-p") == OTHER
    assert state_mod.load_state("fk") is None


def test_a_pin_not_yet_mounted_is_another_process_not_stale(lab, monkeypatch):
    """The other `up` claimed the name and has not mounted it yet: an empty placeholder, never advised removed."""
    k = Raced(mounted=False)
    machine(monkeypatch, k, ["fk-a"])
    with pytest.raises(OwnershipConflict) as err:
        up(lab, k)
    said = str(err.value)
    assert said.startswith("namespace fk-a-p already exists: another process made it meanwhile (the name was free "
                           "when this up checked it); rename lab fk, or run up again once that process is done")
    assert said.endswith("; rolled back") and "ip netns del" not in said and "stale" not in said
    assert err.value.exit_code == 3
    assert not k.ns and k.placeholders == {"fk-a-p"} and state_mod.load_state("fk") is None


def test_a_running_lab_adding_the_pod_keeps_what_it_had(lab, tmp_path, monkeypatch):
    """Lab fk is up without pod a-p; the up that adds it meets fk-a-p made meanwhile: refused, exit 3, the lab as
    its last run left it, and its state does not name the other's namespace."""
    k = Raced()
    machine(monkeypatch, k, ["fk", "fk-a"])
    path = tmp_path / "before.yaml"
    path.write_text(TOPO.replace("  - {name: a-p, node: n1, ip: 10.244.0.2}\n", ""))
    up(resolve(load_topology(str(path))), k)
    before = sorted(k.ns)
    with pytest.raises(OwnershipConflict, match="belongs to lab fk-a, which is up") as err:
        up(lab, k)
    assert err.value.exit_code == 3 and str(err.value).endswith("; rolled back")
    assert sorted(k.ns) == sorted([*before, "fk-a-p"]) and k.read_tag("fk-a-p") == OTHER
    assert "fk-a-p" not in state_mod.load_state("fk").netns
