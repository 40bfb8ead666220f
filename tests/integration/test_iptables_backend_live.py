"""A lab's iptables backend is the one it was made with (realize/backend.py), whatever the machine's `iptables`
alternative says later: read and re-upped with the alternatives pointing at legacy (a private copy of
/etc/alternatives, bound over it in a mount namespace of the command's own: the machine's is never changed), and
moved by `up --reconfigure`; checked with iptables-legacy-save, iptables-nft-save and real traffic."""

from __future__ import annotations

import os
import subprocess

import pytest

from helpers import NETLAB, netlab
from netlab.errors import netlab_command

pytestmark = pytest.mark.root

LEGACY = """set -e
cp -a /etc/alternatives/. "$ALT"/
for t in iptables ip6tables; do
  for s in "" -save -restore; do ln -sfn /usr/sbin/$t-legacy$s "$ALT/$t$s"; done
done
mount --bind "$ALT" /etc/alternatives
exec "$@"
"""


def under_legacy(tmp_path, *args: str) -> subprocess.CompletedProcess:
    """`netlab ARGS` on a machine whose iptables alternatives point at legacy (this mount namespace only)."""
    alt = tmp_path / "alternatives"
    alt.mkdir(exist_ok=True)
    return subprocess.run(["unshare", "-m", "--propagation", "slave", "sh", "-c", LEGACY, "legacy", *NETLAB, *args],
                          capture_output=True, text=True, env={**os.environ, "ALT": str(alt)},
                          timeout=300)


def saved(netns: str, backend: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "exec", netns, f"iptables-{backend}-save"], check=True, capture_output=True,
                         text=True).stdout
    return [line for line in out.splitlines() if line.startswith(("-A ", ":"))]


def chains(lines: list[str]) -> set[str]:
    builtin = {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}
    return {line[1:].split()[0] for line in lines if line.startswith(":")} - builtin


def ping(lab: str) -> None:
    subprocess.run(["ip", "netns", "exec", f"{lab}-a", "ping", "-c1", "-W2", "10.244.1.2"], check=True,
                   capture_output=True)


def test_a_lab_keeps_its_backend_and_up_reconfigure_moves_it(labs, tmp_path):
    version = subprocess.run(["iptables-save", "--version"], capture_output=True, text=True).stdout
    if "nf_tables" not in version:
        pytest.skip("this machine's iptables is not iptables-nft")
    lab = labs.name("ib")
    topo = f"name: {lab}\nnodes: [{{name: n1}}, {{name: n2}}]\npods:\n  - {{name: a, node: n1}}\n" \
           "  - {name: b, node: n2}\n"
    path, _ = labs.up(topo)
    n1 = f"{lab}-n1"
    assert "FLANNEL-POSTRTG" in chains(saved(n1, "nft")) and saved(n1, "legacy") == []

    st = under_legacy(tmp_path, "status", "--lab", lab)
    assert st.returncode == 0 and "all as planned" in st.stdout, st.stdout + st.stderr
    assert (f"lab {lab} made with iptables-nft; iptables now points at legacy (netlab keeps using iptables-nft "
            f"for this lab; `{netlab_command(f'up -t {path} --reconfigure')}` moves it to iptables-legacy)") in st.stderr
    assert under_legacy(tmp_path, "up", "-t", path).returncode == 0
    assert saved(n1, "legacy") == [] and "FLANNEL-POSTRTG" in chains(saved(n1, "nft"))  # nothing moved
    ping(lab)

    up = under_legacy(tmp_path, "up", "-t", path, "--reconfigure")
    assert up.returncode == 0, up.stdout + up.stderr
    legacy, nft = saved(n1, "legacy"), saved(n1, "nft")
    assert {"FLANNEL-POSTRTG", "FLANNEL-FWD", "KUBE-MARK-MASQ"} <= chains(legacy), legacy
    assert any("MASQUERADE --random-fully" in line for line in legacy)
    assert chains(nft) == set() and not [line for line in nft if line.startswith("-A ")], nft
    ping(lab)
    st = under_legacy(tmp_path, "status", "--lab", lab)
    assert (st.returncode, st.stderr) == (0, ""), st.stdout + st.stderr
    st = netlab("status", "--lab", lab)  # the machine's alternative: nft
    assert "all as planned" in st.stdout and f"lab {lab} made with iptables-legacy; iptables now points at nft" \
        in st.stderr, st.stdout + st.stderr

    # A chain of any name in the backend the lab is not in is reported, and up takes it away
    subprocess.run(["ip", "netns", "exec", n1, "iptables-nft-restore", "--noflush"], check=True, text=True,
                   input="*nat\n:FLANNEL-POSTRTG - [0:0]\n-A FLANNEL-POSTRTG -j MASQUERADE --random-fully\nCOMMIT\n")
    st = netlab("status", "--lab", lab, check=False)
    assert st.returncode == 1 and "iptables-nft: extra chain: FLANNEL-POSTRTG" in st.stdout, st.stdout
    netlab("up", "-t", path)
    assert chains(saved(n1, "nft")) == set() and "FLANNEL-POSTRTG" in chains(saved(n1, "legacy"))
    assert netlab("status", "--lab", lab).returncode == 0


def test_an_edited_labs_move_is_up_lab_reconfigure_and_it_keeps_what_the_lab_runs(labs, tmp_path):
    """Review item 6: a lab whose file was edited since its up was told `up -t FILE --reconfigure` to move, which
    applies the edit (here: makes pod c); `up --lab L --reconfigure`, as status names the repair, moves it alone."""
    version = subprocess.run(["iptables-save", "--version"], capture_output=True, text=True).stdout
    if "nf_tables" not in version:
        pytest.skip("this machine's iptables is not iptables-nft")
    lab = labs.name("ie")
    topo = f"name: {lab}\nnodes: [{{name: n1}}, {{name: n2}}]\npods:\n  - {{name: a, node: n1}}\n" \
           "  - {name: b, node: n2}\n"
    path, _ = labs.up(topo)
    with open(path, "a") as fh:
        fh.write("  - {name: c, node: n1}\n")
    st = under_legacy(tmp_path, "status", "--lab", lab)
    move = netlab_command(f"up --lab {lab} --reconfigure")
    assert f"`{move}` moves it to iptables-legacy)" in st.stderr, st.stderr
    up = under_legacy(tmp_path, *move.split(" netlab ", 1)[1].split())
    assert up.returncode == 0, up.stdout + up.stderr
    n1 = f"{lab}-n1"
    assert "FLANNEL-POSTRTG" in chains(saved(n1, "legacy")) and chains(saved(n1, "nft")) == set()
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout.split()
    assert f"{lab}-a" in netns and f"{lab}-c" not in netns  # the edit is not applied
    ping(lab)
    st = under_legacy(tmp_path, "status", "--lab", lab)
    assert st.returncode == 0 and "moves it" not in st.stderr, st.stdout + st.stderr
