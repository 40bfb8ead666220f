"""A lab's iptables backend is part of the lab (realize/backend.py): recorded when its first up makes it, kept by
every later command whatever the machine's `iptables` alternative says, moved by `up --reconfigure`; the backend
it is not in must hold nothing, whatever its chains are named."""

from __future__ import annotations

import json

import pytest
from fake_lab import make_lab, status, up

from netlab.api.running import _default_topology, backend_moved
from netlab.errors import netlab_command, python_words
from netlab.kernel import iptables
from netlab.kernel.base import Op, TableText
from netlab.kernel.fake import FakeKernel
from netlab.lab import up as lab_up
from netlab.lab.journal import Journal
from netlab.realize import backend, state as state_mod, state_dir

lab = pytest.fixture(make_lab, name="lab")


@pytest.fixture(autouse=True)
def machine(monkeypatch):
    """The machine's backend now (its `iptables` alternative, or NETLAB_IPTABLES): ``machine[0]``."""
    now = ["nft"]
    monkeypatch.setattr(iptables, "_lab_backend", "")
    monkeypatch.setattr(iptables, "machine_backend", lambda: now[0])
    monkeypatch.delenv("NETLAB_IPTABLES", raising=False)
    return now


def recorded(name: str) -> str | None:
    return state_mod.load_state(name).extra.get("iptables")


def test_a_lab_keeps_the_backend_it_was_made_with_until_up_reconfigure(lab, machine):
    k = FakeKernel()
    up(lab, k)
    assert recorded(lab.name) == "nft" and iptables.in_use() == "nft"
    machine[0] = "legacy"  # update-alternatives --set iptables /usr/sbin/iptables-legacy
    assert state_mod.running_lab(lab.name) and iptables.in_use() == "nft"  # what status, trace, break act on
    up(lab, k)
    assert recorded(lab.name) == "nft" and iptables.in_use() == "nft"
    line = backend_moved(state_mod.load_state(lab.name))
    assert line is not None and line.startswith(f"lab {lab.name} made with iptables-nft; iptables now points at "
                                                "legacy (netlab keeps using iptables-nft"), line
    assert "reconfigure=True)` moves it to iptables-legacy" in line  # a lab made from a dict (fake_lab)
    lab_up.up(lab, k, journal=Journal(k), reconfigure=True)
    assert recorded(lab.name) == "legacy" and iptables.in_use() == "legacy"
    assert backend_moved(state_mod.load_state(lab.name)) is None


def test_the_record_is_checked_by_the_states_schema(lab):
    up(lab, FakeKernel())
    path = state_dir.state_file(lab.name)
    data = json.loads(open(path).read())
    for value, ok in (("legacy", True), ("iptables", False)):
        data["extra"]["iptables"] = value
        with open(path, "w") as fh:
            fh.write(json.dumps(data, indent=1))  # not the bytes netlab wrote: checked whole on load
        if ok:
            assert recorded(lab.name) == "legacy"
        else:
            with pytest.raises(state_mod.StateCorrupt, match="iptables"):
                state_mod.load_state(lab.name)


def test_a_lab_without_the_record_is_in_the_backend_that_holds_its_rules(lab, machine, monkeypatch):
    up(lab, FakeKernel())
    state = state_mod.load_state(lab.name)
    del state.extra["iptables"]  # an older netlab's lab
    asked = []
    held = {"fk-n1": "legacy"}
    monkeypatch.setattr(iptables, "holding", lambda ns: asked.append(ns) or held.get(ns, ""))
    assert backend.of_lab(state) == "legacy" and asked == ["fk-n1"]
    held.clear()  # neither (or both) hold rules: the machine's
    assert backend.of_lab(state) == "nft"


OTHER = """*nat
:POSTROUTING ACCEPT [0:0]
:FLANNEL-POSTRTG - [0:0]
:SOMEONE-ELSES - [0:0]
-A FLANNEL-POSTRTG -s 10.244.0.0/16 -d 10.244.0.0/16 -j RETURN
-A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -j MASQUERADE --random-fully
COMMIT
"""


def test_status_says_every_chain_the_other_backend_holds_and_up_takes_them_away(lab):
    k = FakeKernel()
    up(lab, k)
    # What an `up` under the other alternative left behind in the backend the lab is not in: chains no jump uses
    k.apply([Op("restore", TableText("fk-n1", "nat", OTHER, "legacy", noflush=True))])
    drift = "\n".join(status(lab, k).drift)
    assert "iptables-legacy: extra chain: FLANNEL-POSTRTG" in drift and "extra chain: SOMEONE-ELSES" in drift, drift
    assert "MASQUERADE --random-fully" in drift
    up(lab, k)
    assert status(lab, k).drift == []
    assert "FLANNEL" not in k.iptables_save("fk-n1", "nat", "legacy")


def test_a_cni_plugins_chains_in_the_other_backend_are_the_plugins():
    text = "*nat\n:POSTROUTING ACCEPT [0:0]\n:CNI-abc - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n" \
           "-A POSTROUTING -j CNI-abc\n-A CNI-abc -j MASQUERADE\nCOMMIT\n"
    assert backend.foreign_drift("nat", text, plugins=True) == ["extra chain: KUBE-MARK-MASQ"]
    payload = backend.foreign_payload("nat", text, plugins=True)
    assert payload == "*nat\n:KUBE-MARK-MASQ - [0:0]\n-X KUBE-MARK-MASQ\nCOMMIT\n"
    assert backend.foreign_payload("nat", "*nat\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n", plugins=False) is None


def test_the_way_to_move_a_lab_to_the_machines_backend_is_said_for_where_the_lab_came_from(lab, machine, tmp_path):
    """A lab made from a dict (no file) was told to run plain `sudo netlab up --reconfigure`, which applies the
    built-in default lab: only the Python call gives its dict again. A file's lab is told its file's up (the
    Python call in Lab.status' words), the built-in default's the plain up; one whose file no longer gives what it
    runs (edited, gone, impaired since) `up --lab L --reconfigure`, as status names its repair (review item 6: it
    was told `up -t FILE --reconfigure`, which applies the edit)."""
    up(lab, FakeKernel())
    machine[0] = "legacy"
    state = state_mod.load_state(lab.name)
    assert state.source is None

    def move() -> str:
        line = backend_moved(state)
        assert line is not None
        return line.split("this lab; ")[1]

    assert move() == "`Lab.up(dict, reconfigure=True)` moves it to iptables-legacy)"
    with python_words():
        assert move() == "`Lab.up(dict, reconfigure=True)` moves it to iptables-legacy)"
    (tmp_path / "my lab.yaml").write_text((tmp_path / "t.yaml").read_text())  # the file the lab was made from
    state.source = str(tmp_path / "my lab.yaml")
    typed = netlab_command(f"up -t '{tmp_path}/my lab.yaml' --reconfigure")
    assert move() == f"`{typed}` moves it to iptables-legacy)"
    with python_words():
        assert move() == f"`Lab.up('{tmp_path}/my lab.yaml', reconfigure=True)` moves it to iptables-legacy)"
    by_name = netlab_command(f"up --lab {lab.name} --reconfigure")
    with open(state.source, "a") as fh:  # edited since its last up: its up would apply the edit
        fh.write("  - {name: c, node: n1, ip: 10.244.0.9}\n")
    assert move() == f"`{by_name}` moves it to iptables-legacy)"
    with python_words():
        assert move() == f"`Lab.up(name={lab.name!r}, reconfigure=True)` moves it to iptables-legacy)"
    state.source = "/labs/gone.yaml"  # deleted or moved: its up fails
    assert move() == f"`{by_name}` moves it to iptables-legacy)"
    state.source = str(tmp_path / "t.yaml")
    assert move() == f"`{netlab_command(f'up -t {tmp_path}/t.yaml --reconfigure')}` moves it to iptables-legacy)"
    state.extra["impair"] = {"runtime": {"fk-a": {"eth0": {"rate": "1mbit"}}}}  # netlab impair since
    assert move() == f"`{by_name}` moves it to iptables-legacy)"
    del state.extra["impair"]
    state.source, state.topology = None, {**_default_topology(), "name": lab.name}
    assert move() == f"`{netlab_command('up --reconfigure')}` moves it to iptables-legacy)"
    with python_words():
        assert move() == f"`Lab.up(name={lab.name!r}, reconfigure=True)` moves it to iptables-legacy)"


@pytest.mark.parametrize("args", [("status",), ("probe",), ("get", "nodes"), ("trace", "client", "web-1")])
def test_a_netlab_iptables_that_names_no_backend_is_refused_by_every_command_on_a_lab(lab, monkeypatch, args):
    """QA qr2 4: status and probe of a lab with a recorded backend went on, rc 0/1, without a word of it; up and
    doctor refused it."""
    from cli_inprocess import run_cli

    from netlab.errors import EnvironmentNotReady

    up(lab, FakeKernel())
    monkeypatch.setenv("NETLAB_IPTABLES", "bogus")
    with pytest.raises(EnvironmentNotReady, match="NETLAB_IPTABLES='bogus': use nft or legacy"):
        state_mod.running_lab(lab.name)
    got = run_cli(*args, "--lab", lab.name)
    assert got.returncode == 3 and got.stderr == ("netlab: NETLAB_IPTABLES='bogus': use nft or legacy (or unset it "
                                                  "for the system default)\n"), got


def test_up_reconfigure_says_which_backend_each_restore_is_in(lab, machine):
    """QA qr2 5: a lab moved from nft to legacy was said `restore iptables filter in NS` twice (made in legacy,
    taken out of nft), and `NS: deleted stale filter chains ...` of no backend."""
    k = FakeKernel()
    up(lab, k)
    machine[0] = "legacy"
    for ns in k.ns.values():  # the fake's "" is the lab's backend: what iptables-nft holds, legacy not
        if ns.tables.get(""):
            ns.tables["nft"] = ns.tables.pop("")
    lines = lab_up.up(lab, k, features=(), journal=Journal(k), reconfigure=True).fixed
    restores = [line for line in lines if "iptables" in line]
    assert len(restores) == len(set(restores)), lines
    assert "restore iptables-legacy filter in fk-n1" in lines and "restore iptables-legacy nat in fk-n1" in lines
    out = [line for line in lines if line.startswith("take the lab's filter rules and chains ")
           and line.endswith(" out of iptables-nft in fk-n1 (the lab is in iptables-legacy)")]
    assert len(out) == 1 and "FLANNEL-FWD" in out[0], lines
    assert not any("deleted stale" in line or line.startswith("restore iptables ") for line in lines), lines
    assert "FLANNEL" not in k.iptables_save("fk-n1", "filter", "nft")


@pytest.mark.parametrize("args", [("impair", "a:eth0", "--loss", "5%"), ("status",), ("up",)])
def test_a_netlab_nft_that_names_no_way_is_refused_before_any_change(lab, monkeypatch, args):
    """QA q28 5: NETLAB_NFT=bogus was read by impair's first nft transaction, after it had recorded the loss; the
    rollback failed alike and the refused loss stayed the lab's topology (exit 4, drift). Refused up front now, as
    NETLAB_IPTABLES is: one line, exit 3, the state as it was."""
    from cli_inprocess import run_cli

    from netlab.errors import EnvironmentNotReady

    up(lab, FakeKernel())
    saved = open(state_dir.state_file(lab.name), "rb").read()
    monkeypatch.setenv("NETLAB_NFT", "bogus")
    with pytest.raises(EnvironmentNotReady, match="NETLAB_NFT='bogus': use library or process"):
        state_mod.running_lab(lab.name)
    got = run_cli(*args, "--lab", lab.name)
    assert got.returncode == 3 and got.stderr == ("netlab: NETLAB_NFT='bogus': use library or process (or unset it: "
                                                  "the library when it can be loaded, else the nft program)\n"), got
    assert open(state_dir.state_file(lab.name), "rb").read() == saved
